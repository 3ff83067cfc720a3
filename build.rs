//! Build script of the C face.
//!
//! Always: gives `libtidewire.so` its SONAME, so programs record `libtidewire.so.0` and the
//! installed symlinks work.
//!
//! Only with the `header` feature (`make header`, and the drift check of `make test`):
//! generates `tidewire.h` with cbindgen into `$TIDEWIRE_HEADER_OUT`, or into `OUT_DIR`
//! when that variable is unset. Plain builds neither need cbindgen nor touch `include/`.

fn main() {
    let major = std::env::var("CARGO_PKG_VERSION_MAJOR").unwrap_or_else(|_| "0".into());
    let target_os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    if target_os == "linux" || target_os.ends_with("bsd") {
        println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,libtidewire.so.{major}");
    }
    println!("cargo:rerun-if-changed=build.rs");
    #[cfg(feature = "header")]
    header::generate();
}

#[cfg(feature = "header")]
mod header {
    use std::path::PathBuf;

    fn var(name: &str) -> String {
        std::env::var(name).unwrap_or_else(|_| panic!("cargo sets {name}"))
    }

    pub fn generate() {
        println!("cargo:rerun-if-changed=src");
        println!("cargo:rerun-if-changed=cbindgen.toml");
        println!("cargo:rerun-if-env-changed=TIDEWIRE_HEADER_OUT");
        let crate_dir = PathBuf::from(var("CARGO_MANIFEST_DIR"));
        let out = match std::env::var_os("TIDEWIRE_HEADER_OUT") {
            Some(p) => PathBuf::from(p),
            None => PathBuf::from(var("OUT_DIR")).join("tidewire.h"),
        };
        // A missing output file makes cargo run this again, so a deleted or hand-edited
        // header is always regenerated.
        println!("cargo:rerun-if-changed={}", out.display());
        let mut config = cbindgen::Config::from_file(crate_dir.join("cbindgen.toml"))
            .unwrap_or_else(|e| panic!("cbindgen.toml: {e}"));
        // The version macros come from Cargo.toml, never typed by hand.
        config.after_includes = Some(format!(
            "{}\n#define TW_VERSION_MAJOR {}\n#define TW_VERSION_MINOR {}\n#define TW_VERSION_PATCH {}\n",
            config.after_includes.clone().unwrap_or_default(),
            var("CARGO_PKG_VERSION_MAJOR"),
            var("CARGO_PKG_VERSION_MINOR"),
            var("CARGO_PKG_VERSION_PATCH"),
        ));
        let bindings = cbindgen::Builder::new()
            // The sources alone (no `cargo metadata`): the API lives in this crate only.
            .with_src(crate_dir.join("src").join("lib.rs"))
            .with_config(config)
            .generate()
            .unwrap_or_else(|e| panic!("cbindgen: {e}"));
        if let Some(dir) = out.parent() {
            std::fs::create_dir_all(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
        }
        bindings.write_to_file(&out);
    }
}
