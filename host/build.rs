//! Builds two guests for `wasm32-wasip1` into the catwalk binary: the demo guest (`catwalk-guest`'s `echo`
//! example), served when nothing else is configured, and `catwalk-js`, the JavaScript runtime `catwalk pack`
//! runs npm servers in. They are built by a nested cargo with its own target directory (the outer build holds
//! the lock on ours), which installs the wasm target if rustup is there to do it. Either may be missing (no
//! wasm target; no clang and wasi-libc for QuickJS's C): the binary still builds, and says so when asked for it.

use std::path::PathBuf;
use std::process::Command;

fn main() {
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let manifest = PathBuf::from(
        std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"),
    );
    let sdk = manifest.join("../guest-sdk");
    for path in ["src", "examples/echo.rs", "Cargo.toml"] {
        println!("cargo:rerun-if-changed={}", sdk.join(path).display());
    }
    let runtime = manifest.join("../js/runtime");
    for path in ["src", "Cargo.toml"] {
        println!("cargo:rerun-if-changed={}", runtime.join(path).display());
    }
    let _ = Command::new("rustup")
        .args(["target", "add", "wasm32-wasip1"])
        .output();
    let target_dir = out.join("guests");
    build(
        &manifest,
        &target_dir,
        &["-p", "catwalk-guest", "--example", "echo"],
        &target_dir.join("wasm32-wasip1/release/examples/echo.wasm"),
        &out.join("demo.wasm"),
        "the demo WASI guest could not be built (is the wasm32-wasip1 target installed? `bash scripts/deps.sh` \
         adds it); the next build tries again",
    );
    build(
        &manifest,
        &target_dir,
        &["-p", "catwalk-js"],
        &target_dir.join("wasm32-wasip1/release/catwalk-js.wasm"),
        &out.join("catwalk-js.wasm"),
        "the JavaScript runtime (catwalk-js) could not be built: `catwalk pack` needs it. `bash scripts/deps.sh` \
         installs what it needs (clang, lld, llvm-ar, wasi-libc, libclang-rt-dev-wasm32); the next build tries again",
    );
    // The binary is position-independent, so the loader relocates ~40,000 pointers at start-up. As RELA entries
    // (24 bytes each) that table is 0.9 MiB, read at every start and resident for the life of the process; packed
    // (DT_RELR, glibc 2.36 and binutils 2.38 on) it is a few KiB. Same addresses, same ASLR.
    let target = |key: &str| std::env::var(key).unwrap_or_default();
    if target("CARGO_CFG_TARGET_OS") == "linux" && target("CARGO_CFG_TARGET_ENV") == "gnu" {
        println!("cargo:rustc-link-arg-bins=-Wl,-z,pack-relative-relocs");
    }
}

/// Builds one guest in release for `wasm32-wasip1` and copies it to `to`; an empty file there if it failed.
fn build(
    manifest: &std::path::Path,
    target_dir: &std::path::Path,
    what: &[&str],
    built: &std::path::Path,
    to: &std::path::Path,
    warning: &str,
) {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let status = Command::new(cargo)
        .args(["build", "--release", "--target", "wasm32-wasip1"])
        .args(what)
        .arg("--target-dir")
        .arg(target_dir)
        .current_dir(manifest.join(".."))
        // The outer build's flags are for the host, not for the guest.
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_TARGET_DIR")
        .env_remove("CARGO_BUILD_TARGET")
        .status();
    match status {
        Ok(status) if status.success() && built.exists() => {
            std::fs::copy(built, to).expect("copying a built guest");
        }
        _ => {
            println!("cargo:warning={warning}");
            std::fs::write(to, b"").expect("writing an empty placeholder");
            // A path that never exists makes cargo run this script again on every build, so the guest is built
            // as soon as what it needs is installed (otherwise the empty placeholder would stay until the build
            // dir is wiped).
            println!(
                "cargo:rerun-if-changed={}",
                to.with_extension("not-built-yet").display()
            );
        }
    }
}
