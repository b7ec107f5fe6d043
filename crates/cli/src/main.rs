//! `cryptoutil`: the one binary of the suite.
//!
//! Exit codes (SPEC §8): 0 success, 1 runtime failure, 2 usage or configuration error.

mod cli;
mod client;
mod commands;

use std::process::ExitCode;

use clap::Parser;

/// mimalloc instead of glibc's allocator: allocation was a quarter of a KMS request's
/// instructions (docs/benchmarks.md, "Where the time goes").
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// A command's failure, mapped to the exit code SPEC §8 gives it.
#[derive(Debug)]
pub enum Failure {
    /// Usage or configuration error: exit 2.
    Usage(String),
    /// Runtime failure: exit 1.
    Runtime(String),
    /// Already reported (a demo's summary): exit with this code and print nothing more.
    Exit(u8),
}

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    let outcome = commands::run(cli);
    // Log lines are written by a thread in batches: write the last ones before exiting.
    cryptoutil_server::logging::flush();
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::Usage(message)) => {
            eprintln!("error: {message}");
            ExitCode::from(2)
        }
        Err(Failure::Runtime(message)) => {
            eprintln!("error: {message}");
            ExitCode::from(1)
        }
        Err(Failure::Exit(code)) => ExitCode::from(code),
    }
}
