//! The `catwalk` binary (see [`catwalk::cli`]).

fn main() -> anyhow::Result<()> {
    catwalk::cli::main()
}
