//! Command implementations; each returns a [`Failure`] that `main` maps to an exit code.

mod barrier;
mod config;
mod demo;
mod health;
mod identity;
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
        Command::Identity {
            command: IdentityCommand::Login(args),
        } => identity::login(&args),
        Command::Identity {
            command: IdentityCommand::Token(args),
        } => identity::token(&args),
        Command::Identity {
            command: IdentityCommand::Logout(args),
        } => identity::logout(&args),
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
        } | Command::Identity {
            command: IdentityCommand::Server { .. } | IdentityCommand::Rs { .. }
        } | Command::Demo { .. }
    )
}

/// The `--url` of a client command: an `https` URL with a host, or a usage error.
fn https_url(text: &str) -> Result<url::Url, Failure> {
    url::Url::parse(text)
        .ok()
        .filter(|u| u.scheme() == "https" && u.host().is_some())
        .ok_or_else(|| Failure::Usage(format!("--url {text:?} is not an https URL")))
}

/// The `--timeout` of a client command: a duration above zero and at most `max`, or a usage
/// error that gives `example`.
fn timeout(
    text: &str,
    max: std::time::Duration,
    example: &str,
) -> Result<std::time::Duration, Failure> {
    humantime::parse_duration(text)
        .ok()
        .filter(|d| !d.is_zero() && *d <= max)
        .ok_or_else(|| {
            Failure::Usage(format!(
                "--timeout {text:?}: give a duration between 1ms and {}, such as {example}",
                humantime::format_duration(max)
            ))
        })
}
