//! Builds the demo guest (`catwalk-guest`'s `echo` example) for `wasm32-wasip1`, so the catwalk binary can
//! serve it when nothing else is configured. It is built by a nested cargo with its own target directory (the
//! outer build holds the lock on ours), and installs the wasm target if rustup is there to do it.

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
    let demo = out.join("demo.wasm");
    let _ = Command::new("rustup")
        .args(["target", "add", "wasm32-wasip1"])
        .output();
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let target_dir = out.join("demo-guest");
    let status = Command::new(cargo)
        .args([
            "build",
            "--release",
            "--target",
            "wasm32-wasip1",
            "-p",
            "catwalk-guest",
            "--example",
            "echo",
        ])
        .arg("--target-dir")
        .arg(&target_dir)
        .current_dir(manifest.join(".."))
        // The outer build's flags are for the host, not for the guest.
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_TARGET_DIR")
        .env_remove("CARGO_BUILD_TARGET")
        .status();
    let built = target_dir.join("wasm32-wasip1/release/examples/echo.wasm");
    match status {
        Ok(status) if status.success() && built.exists() => {
            std::fs::copy(&built, &demo).expect("copying the demo guest");
        }
        _ => {
            // Without the wasm target the binary still builds; `catwalk serve` with nothing configured then
            // says how to get the demo.
            println!(
                "cargo:warning=the demo WASI guest could not be built (is the wasm32-wasip1 target installed?)"
            );
            std::fs::write(&demo, b"").expect("writing the empty demo placeholder");
        }
    }
}
