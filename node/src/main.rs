//! `mailnode`: the command-line entry point. Parses the command line, sets up
//! logging and hands over to [`mailnode::cli::run`].

use std::io::IsTerminal;

use clap::Parser;

/// glibc arenas the process may use (see [`alloc_trim::limit_arenas`]).
/// With one arena the 100,000-message benchmark ended at 64 MiB resident
/// instead of 112 MiB (docs/benchmarks.md, "Memory").
const ARENAS: u16 = 1;

fn main() -> std::process::ExitCode {
    // Before any other thread exists. A `MALLOC_ARENA_MAX` in the
    // environment wins: glibc has applied it already.
    if std::env::var_os("MALLOC_ARENA_MAX").is_none() {
        alloc_trim::limit_arenas(ARENAS);
    }
    let cli = mailnode::cli::Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr)
        .init();
    match mailnode::cli::run(cli) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("mailnode: {err:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
