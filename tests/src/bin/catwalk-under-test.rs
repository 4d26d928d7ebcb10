//! The `catwalk` binary, built in this package so that tests know its path: they run it as the helper that
//! confines tenants' children (`catwalk confine`), and as a process of its own where logs must be read whole.

fn main() -> anyhow::Result<()> {
    catwalk::cli::main()
}
