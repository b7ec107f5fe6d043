//! Command implementations; each returns a [`Failure`] that `main` maps to an exit code.

mod barrier;
mod config;
mod demo;
mod health;
mod kms;
mod server;
mod tls;
mod version;

use crate::Failure;
use crate::cli::{
    BarrierCommand, Cli, Command, IdentityCommand, KmsCommand, RsCommand, ServerCommand,
};

/// Runs the parsed command line.
pub fn run(cli: Cli) -> Result<(), Failure> {
    if starts_servers(&cli.command) {
        // A FIPS build refuses to start on a module that is not in FIPS mode (exit 2).
        version::require_fips_mode()?;
    }
    match cli.command {
        Command::Kms {
            command:
                KmsCommand::Server {
                    command: ServerCommand::Start(args),
                },
        } => server::start_kms(&args),
        Command::Kms {
            command:
                KmsCommand::Barrier {
                    command: BarrierCommand::GenerateShares(args),
                },
        } => barrier::generate_shares(&args),
        Command::Kms {
            command: KmsCommand::Inventory(args),
        } => kms::inventory(&args),
        Command::Identity {
            command:
                IdentityCommand::Server {
                    command: ServerCommand::Start(args),
                },
        } => server::start_identity(&args),
        Command::Identity {
            command:
                IdentityCommand::Rs {
                    command: RsCommand::Start(args),
                },
        } => server::start_rs(&args),
        Command::Demo { demo } => demo::run(demo),
        Command::Tls { command } => tls::run(command),
        Command::Config { command } => config::run(command),
        Command::Health(args) => health::run(&args),
        Command::Version(args) => version::run(&args),
    }
}

/// The commands that start a server (or a demo, which starts them in-process).
fn starts_servers(command: &Command) -> bool {
    matches!(
        command,
        Command::Kms {
            command: KmsCommand::Server { .. }
        } | Command::Identity { .. }
            | Command::Demo { .. }
    )
}
