//! TLS configuration for both roles (rustls with the `ring` provider).
//!
//! A [`TlsAcceptor`] (server) or [`TlsConnector`] (client) is built once and shared by every
//! connection that uses it (rustls configs are behind an `Arc`). The per-connection state is a
//! `rustls::Connection` kept by the runtime; it is driven without blocking like the socket.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, OnceLock};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, ServerConfig, SignatureScheme};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};

use crate::error::{Error, Result};

/// The crypto provider of every config built here. Passed explicitly rather than relying on
/// the process default, which rustls refuses to guess when a build enables two providers.
fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn tls_err(context: &str, e: impl std::fmt::Display) -> Error {
    Error::Tls(format!("{context}: {e}"))
}

fn read_file(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|e| tls_err(&format!("cannot read {}", path.display()), e))
}

/// Every certificate of a PEM text, in order. Other PEM sections (keys) are skipped.
fn parse_certs(pem: &[u8]) -> Result<Vec<CertificateDer<'static>>> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| tls_err("bad PEM certificate", e))?;
    if certs.is_empty() {
        return Err(Error::Tls("no certificate found in PEM data".into()));
    }
    Ok(certs)
}

/// The system's root certificates, read once per process on a loader thread.
///
/// Reading and parsing them takes milliseconds (measured by `crates/net/tests/roots.rs` on the
/// 2-core CI machine: 2.4 to 4.5 ms in a release build, about 60 ms in a debug build; a
/// dropped frame either way), so [`crate::Context::new`] starts the loader ([`prefetch_system_roots`]) and the
/// first `wss://` connect without TLS settings finds them ready. A connect that comes before
/// the loader is done waits for the rest of it (never longer than loading inline would
/// take).
struct SystemRoots {
    roots: Mutex<Option<Arc<RootCertStore>>>,
    loaded: Condvar,
}

static SYSTEM_ROOTS: OnceLock<Arc<SystemRoots>> = OnceLock::new();

fn load_system_roots() -> Arc<RootCertStore> {
    let mut roots = RootCertStore::empty();
    // Unreadable system certificates are skipped: one broken file in /etc/ssl/certs must
    // not make every wss:// connection impossible.
    let native = rustls_native_certs::load_native_certs();
    roots.add_parsable_certificates(native.certs);
    Arc::new(roots)
}

/// Starts loading the system's root certificates on a helper thread, once per process.
/// Cheap after the first call (an atomic load).
pub(crate) fn prefetch_system_roots() {
    SYSTEM_ROOTS.get_or_init(|| {
        let shared = Arc::new(SystemRoots {
            roots: Mutex::new(None),
            loaded: Condvar::new(),
        });
        let loader = shared.clone();
        let spawned = std::thread::Builder::new()
            .name("tidewire-roots".into())
            .spawn(move || {
                let roots = load_system_roots();
                *loader.roots.lock().unwrap_or_else(|p| p.into_inner()) = Some(roots);
                loader.loaded.notify_all();
            });
        if spawned.is_err() {
            // No thread: load now, on this thread (what happened before the loader).
            *shared.roots.lock().unwrap_or_else(|p| p.into_inner()) = Some(load_system_roots());
        }
        shared
    });
}

/// The system's root certificates, waiting for the loader when it is not done yet.
fn system_roots() -> Arc<RootCertStore> {
    prefetch_system_roots();
    let Some(shared) = SYSTEM_ROOTS.get() else {
        return load_system_roots();
    };
    let mut slot = shared.roots.lock().unwrap_or_else(|p| p.into_inner());
    loop {
        if let Some(roots) = slot.as_ref() {
            return roots.clone();
        }
        slot = shared.loaded.wait(slot).unwrap_or_else(|p| p.into_inner());
    }
}

/// Server-side TLS: a certificate chain and its private key.
#[derive(Clone)]
pub struct TlsAcceptor {
    pub(crate) config: Arc<ServerConfig>,
}

impl TlsAcceptor {
    /// From PEM text: the certificate chain (leaf first) and the private key (PKCS#8, PKCS#1
    /// or SEC1).
    pub fn from_pem(cert_chain_pem: &[u8], key_pem: &[u8]) -> Result<TlsAcceptor> {
        let certs = parse_certs(cert_chain_pem)?;
        let key = PrivateKeyDer::from_pem_slice(key_pem)
            .map_err(|e| tls_err("bad PEM private key", e))?;
        let config = ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| tls_err("protocol versions", e))?
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .map_err(|e| tls_err("certificate and key do not fit", e))?;
        Ok(TlsAcceptor {
            config: Arc::new(config),
        })
    }

    /// From two PEM files. Reading them blocks, so call this at start-up, not in a loop.
    pub fn from_pem_files(cert_chain: impl AsRef<Path>, key: impl AsRef<Path>) -> Result<Self> {
        let certs = read_file(cert_chain.as_ref())?;
        let key = read_file(key.as_ref())?;
        TlsAcceptor::from_pem(&certs, &key)
    }

    /// From a rustls config built by the application (client authentication, ALPN, ...).
    pub fn from_rustls(config: Arc<ServerConfig>) -> TlsAcceptor {
        TlsAcceptor { config }
    }

    pub(crate) fn session(&self) -> Result<rustls::Connection> {
        let conn = rustls::ServerConnection::new(self.config.clone())?;
        Ok(rustls::Connection::Server(conn))
    }
}

impl std::fmt::Debug for TlsAcceptor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TlsAcceptor")
    }
}

/// How a client verifies servers. The default verifies against the system's roots.
#[derive(Clone, Debug)]
pub struct TlsClientOptions {
    /// Trust the operating system's root certificates. Default true.
    pub use_system_roots: bool,
    /// Extra trusted CA certificates as PEM text (e.g. a private CA). Default none.
    pub extra_ca_pem: Option<Vec<u8>>,
    /// Extra trusted CA certificates read from a PEM file. Default none.
    pub extra_ca_file: Option<PathBuf>,
    /// **Dangerous**: accept any certificate for any name. The connection is then encrypted
    /// but not authenticated: anyone on the path can impersonate the server. Tests only.
    /// Default false.
    pub dangerous_skip_verification: bool,
}

impl Default for TlsClientOptions {
    fn default() -> Self {
        TlsClientOptions {
            use_system_roots: true,
            extra_ca_pem: None,
            extra_ca_file: None,
            dangerous_skip_verification: false,
        }
    }
}

/// Client-side TLS: which servers to trust. SNI and host name checks use the URL's host.
#[derive(Clone)]
pub struct TlsConnector {
    pub(crate) config: Arc<ClientConfig>,
}

impl TlsConnector {
    /// Builds a connector. The system roots are read once per process, on a loader thread
    /// that [`crate::Context::new`] starts; this call waits for it only when it is not done
    /// yet. Build a connector once and reuse it (the [`crate::Context`] caches the default
    /// one).
    pub fn new(options: &TlsClientOptions) -> Result<TlsConnector> {
        let builder = ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| tls_err("protocol versions", e))?;
        let config = if options.dangerous_skip_verification {
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(NoVerification(provider())))
                .with_no_client_auth()
        } else {
            let mut roots = if options.use_system_roots {
                RootCertStore::clone(&system_roots())
            } else {
                RootCertStore::empty()
            };
            let mut extra = Vec::new();
            if let Some(pem) = &options.extra_ca_pem {
                extra.extend(parse_certs(pem)?);
            }
            if let Some(path) = &options.extra_ca_file {
                extra.extend(parse_certs(&read_file(path)?)?);
            }
            for cert in extra {
                roots
                    .add(cert)
                    .map_err(|e| tls_err("bad CA certificate", e))?;
            }
            if roots.is_empty() {
                return Err(Error::Tls("no trusted root certificate".into()));
            }
            builder.with_root_certificates(roots).with_no_client_auth()
        };
        Ok(TlsConnector {
            config: Arc::new(config),
        })
    }

    /// From a rustls config built by the application.
    pub fn from_rustls(config: Arc<ClientConfig>) -> TlsConnector {
        TlsConnector { config }
    }

    /// A client session for `host` (sent as SNI unless it is an IP address, and checked
    /// against the certificate).
    pub(crate) fn session(&self, host: &str) -> Result<rustls::Connection> {
        let name = ServerName::try_from(host.to_owned())
            .map_err(|_| Error::InvalidUrl(format!("{host:?} is not a valid TLS server name")))?;
        let conn = rustls::ClientConnection::new(self.config.clone(), name)?;
        Ok(rustls::Connection::Client(conn))
    }
}

impl std::fmt::Debug for TlsConnector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TlsConnector")
    }
}

/// The verifier behind `dangerous_skip_verification`: trusts every certificate, but still
/// checks handshake signatures so that the TLS handshake itself is well-formed.
#[derive(Debug)]
struct NoVerification(Arc<CryptoProvider>);

impl ServerCertVerifier for NoVerification {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn acceptor_refuses_pem_without_certificate() {
        let err = TlsAcceptor::from_pem(b"", b"").err().map(|e| e.kind_str());
        assert_eq!(err, Some("tls"));
    }

    #[test]
    fn acceptor_refuses_garbage_key() {
        let cert = b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
        assert!(TlsAcceptor::from_pem(cert, b"not a key").is_err());
    }

    #[test]
    fn connector_refuses_bad_extra_ca() {
        let opts = TlsClientOptions {
            use_system_roots: false,
            extra_ca_pem: Some(b"garbage".to_vec()),
            ..TlsClientOptions::default()
        };
        assert!(TlsConnector::new(&opts).is_err());
    }

    #[test]
    fn connector_without_any_root_is_an_error_not_a_silent_failure() {
        let opts = TlsClientOptions {
            use_system_roots: false,
            ..TlsClientOptions::default()
        };
        assert!(TlsConnector::new(&opts).is_err());
    }

    #[test]
    fn dangerous_connector_builds_without_roots() {
        let opts = TlsClientOptions {
            use_system_roots: false,
            dangerous_skip_verification: true,
            ..TlsClientOptions::default()
        };
        let c = TlsConnector::new(&opts);
        assert!(c.is_ok());
        assert!(c
            .ok()
            .map(|c| c.session("localhost").is_ok())
            .unwrap_or(false));
    }
}
