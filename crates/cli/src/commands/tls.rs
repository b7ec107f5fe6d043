//! `cryptoutil tls init-demo-ca` and `cryptoutil tls issue`.

use cryptoutil_tls::ca::{
    CaOptions, DemoCaOptions, KeyAlgorithm, LeafKind, MAX_LEAF_VALIDITY, demo_ca_is_complete,
    init_demo_ca, issue_leaf,
};

use cryptoutil_tls::TlsError;

use crate::Failure;
use crate::cli::{CurveArg, InitDemoCaArgs, IssueArgs, LeafKindArg, TlsCommand};

pub fn run(command: TlsCommand) -> Result<(), Failure> {
    match command {
        TlsCommand::InitDemoCa(args) => init(&args),
        TlsCommand::Issue(args) => issue(&args),
    }
}

fn init(args: &InitDemoCaArgs) -> Result<(), Failure> {
    let chain_length = usize::from(args.chain_length);
    if !(1..=cryptoutil_tls::ca::MAX_CHAIN_LENGTH).contains(&chain_length) {
        return Err(Failure::Usage(format!(
            "--chain-length must be between 1 and {}",
            cryptoutil_tls::ca::MAX_CHAIN_LENGTH
        )));
    }
    let opts = DemoCaOptions {
        ca: CaOptions {
            chain_length,
            algorithm: match args.curve {
                CurveArg::P256 => KeyAlgorithm::EcP256,
                CurveArg::P384 => KeyAlgorithm::EcP384,
                CurveArg::P521 => KeyAlgorithm::EcP521,
            },
            ..CaOptions::default()
        },
        extra_names: args.sans.clone(),
        ..DemoCaOptions::default()
    };
    if args.if_missing && demo_ca_is_complete(&args.out, &opts).map_err(classify)? {
        eprintln!(
            "demo CA already present and complete in {}; left untouched",
            args.out.display()
        );
        return Ok(());
    }
    let ca = init_demo_ca(&args.out, &opts).map_err(classify)?;
    eprintln!("demo CA written to {}", args.out.display());
    eprintln!("  trust anchor: {}", ca.root_path().display());
    for leaf in ca.services.iter().chain(std::iter::once(&ca.client)) {
        eprintln!(
            "  {:<9} {} ({})",
            leaf.name,
            leaf.paths.cert.display(),
            leaf.subject_name
        );
    }
    Ok(())
}

fn issue(args: &IssueArgs) -> Result<(), Failure> {
    let days = i64::from(args.days);
    let validity = time::Duration::days(days);
    if args.days == 0 || validity > MAX_LEAF_VALIDITY {
        return Err(Failure::Usage(format!(
            "--days must be between 1 and {}",
            MAX_LEAF_VALIDITY.whole_days()
        )));
    }
    let kind = match args.kind {
        LeafKindArg::Server => LeafKind::Server {
            names: args.names.clone(),
        },
        LeafKindArg::Client => match args.names.as_slice() {
            [name] => LeafKind::Client { name: name.clone() },
            _ => {
                return Err(Failure::Usage(
                    "a client certificate takes exactly one --name".into(),
                ));
            }
        },
    };
    let paths = issue_leaf(&args.ca_dir, &args.out, &kind, validity).map_err(classify)?;
    eprintln!(
        "certificate written: {} and {}",
        paths.cert.display(),
        paths.key.display()
    );
    Ok(())
}

/// Failures the user can fix by changing the command (names, an existing CA, a CA directory
/// that is not one) exit 2; the rest (a disk that cannot be written, generation) exit 1.
fn classify(error: TlsError) -> Failure {
    match error {
        TlsError::Io { .. } | TlsError::Generate { .. } | TlsError::Signing(_) => {
            Failure::Runtime(error.to_string())
        }
        other => Failure::Usage(other.to_string()),
    }
}
