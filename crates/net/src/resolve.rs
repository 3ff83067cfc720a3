//! Name resolution off the poll thread.
//!
//! `getaddrinfo` blocks for as long as DNS takes, so `connect` to a host name hands the lookup
//! to a small pool of helper threads and the connection waits in the `Resolving` stage. The
//! answer comes back through the context's inbox and wakes the Poll. IP literals never get
//! here. The resolver itself is pluggable ([`Resolve`]) so that tests can inject a slow one
//! and applications can bring their own (a cache, DNS over HTTPS, ...).

use std::io;
use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread;

use crate::sender::{Resolved, Shared};

/// Turns a host name into addresses. Called on a helper thread, may block.
pub trait Resolve: Send + Sync + 'static {
    fn resolve(&self, host: &str, port: u16) -> io::Result<Vec<SocketAddr>>;
}

/// The operating system's resolver (`getaddrinfo` through `ToSocketAddrs`).
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemResolver;

impl Resolve for SystemResolver {
    fn resolve(&self, host: &str, port: u16) -> io::Result<Vec<SocketAddr>> {
        Ok((host, port).to_socket_addrs()?.collect())
    }
}

struct Job {
    conn: u64,
    host: String,
    port: u16,
}

/// Helper threads, started on first use, at most `max_threads`. Each takes jobs from one
/// queue, so a lookup that hangs holds up only its own thread.
pub(crate) struct ResolverPool {
    resolver: Arc<dyn Resolve>,
    shared: Arc<Shared>,
    max_threads: usize,
    threads: usize,
    /// Jobs submitted and not yet answered (counted on the poll thread).
    outstanding: usize,
    jobs: Option<mpsc::Sender<Job>>,
    queue: Arc<Mutex<mpsc::Receiver<Job>>>,
}

impl ResolverPool {
    pub(crate) fn new(resolver: Arc<dyn Resolve>, shared: Arc<Shared>, max_threads: usize) -> Self {
        let (tx, rx) = mpsc::channel();
        ResolverPool {
            resolver,
            shared,
            max_threads: max_threads.max(1),
            threads: 0,
            outstanding: 0,
            jobs: Some(tx),
            queue: Arc::new(Mutex::new(rx)),
        }
    }

    /// Queues a lookup whose answer will arrive as a [`Resolved`] for `conn`.
    pub(crate) fn submit(&mut self, conn: u64, host: &str, port: u16) -> io::Result<()> {
        if self.outstanding >= self.threads && self.threads < self.max_threads {
            self.spawn()?;
        }
        let job = Job {
            conn,
            host: host.to_owned(),
            port,
        };
        let sent = self.jobs.as_ref().map(|tx| tx.send(job).is_ok());
        if sent != Some(true) {
            return Err(io::Error::other("resolver threads are gone"));
        }
        self.outstanding += 1;
        Ok(())
    }

    /// Called for every answer taken from the inbox.
    pub(crate) fn answered(&mut self) {
        self.outstanding = self.outstanding.saturating_sub(1);
    }

    fn spawn(&mut self) -> io::Result<()> {
        let queue = self.queue.clone();
        let resolver = self.resolver.clone();
        let shared = self.shared.clone();
        thread::Builder::new()
            .name("tidewire-resolve".into())
            .spawn(move || loop {
                // Hold the queue lock only to take a job, never during the lookup.
                let job = {
                    let rx = queue.lock().unwrap_or_else(|p| p.into_inner());
                    rx.recv()
                };
                let Ok(job) = job else { return };
                let result = resolver.resolve(&job.host, job.port).and_then(|addrs| {
                    if addrs.is_empty() {
                        Err(io::Error::new(io::ErrorKind::NotFound, "no address found"))
                    } else {
                        Ok(addrs)
                    }
                });
                shared.push_resolved(Resolved {
                    conn: job.conn,
                    result,
                });
            })?;
        self.threads += 1;
        Ok(())
    }
}

impl Drop for ResolverPool {
    fn drop(&mut self) {
        // Closing the job queue lets idle threads exit; a thread inside a slow lookup exits
        // when the lookup returns (its answer goes to an inbox nobody reads any more).
        self.jobs = None;
    }
}
