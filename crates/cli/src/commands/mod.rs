//! Command implementations; each returns a [`Failure`] that `main` maps to an exit code.

mod barrier;
mod config;
mod server;
mod tls;

use crate::Failure;
use crate::cli::{
    BarrierCommand, Cli, Command, DemoCommand, IdentityCommand, KmsCommand, RsCommand,
    ServerCommand,
};

/// Runs the parsed command line.
pub fn run(cli: Cli) -> Result<(), Failure> {
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
        Command::Demo { demo } => Err(Failure::NotBuilt(match demo {
            DemoCommand::Kms(_) => "`cryptoutil demo kms`",
            DemoCommand::Identity(_) => "`cryptoutil demo identity`",
            DemoCommand::All(_) => "`cryptoutil demo all`",
        })),
        Command::Tls { command } => tls::run(command),
        Command::Config { command } => config::run(command),
    }
}
