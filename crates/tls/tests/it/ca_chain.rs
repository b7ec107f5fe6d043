//! CA chain and leaf issuance, checked by independent verifiers (openssl, x509-parser).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;
use std::process::Command;

use cryptoutil_tls::ca::{DEFAULT_LEAF_VALIDITY, DEMO_SERVICES};
use cryptoutil_tls::{
    CaOptions, CertInfo, DemoCaOptions, KeyAlgorithm, LeafKind, TlsError, demo_ca_is_complete,
    init_demo_ca, issue_leaf, load_cert_chain,
};
use x509_parser::extensions::{GeneralName, ParsedExtension};
use x509_parser::prelude::{FromDer, X509Certificate};

fn openssl_verify(root: &Path, untrusted: &Path, leaf_pem: &Path, purpose: &str) {
    // The leaf is the first certificate of cert.pem; give openssl only that one as the target.
    let chain = load_cert_chain(leaf_pem).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let leaf_only = dir.path().join("leaf.pem");
    std::fs::write(&leaf_only, cryptoutil_tls::pem::certs_to_pem(&chain[..1])).unwrap();
    let mut cmd = Command::new("openssl");
    cmd.arg("verify")
        .arg("-x509_strict")
        .arg("-purpose")
        .arg(purpose)
        .arg("-CAfile")
        .arg(root);
    if std::fs::metadata(untrusted)
        .map(|m| m.len() > 0)
        .unwrap_or(false)
    {
        cmd.arg("-untrusted").arg(untrusted);
    }
    let out = cmd.arg(&leaf_only).output().expect("openssl is installed");
    assert!(
        out.status.success(),
        "openssl verify failed for {}: {}{}",
        leaf_pem.display(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[cfg(unix)]
fn mode(p: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

fn parse(der: &[u8]) -> X509Certificate<'_> {
    X509Certificate::from_der(der).unwrap().1
}

#[test]
fn demo_ca_layout_and_chain_verify() {
    let dir = tempfile::tempdir().unwrap();
    let demo = init_demo_ca(dir.path(), &DemoCaOptions::default()).unwrap();
    let out = dir.path();

    // Layout (SPEC §8).
    for f in [
        "ca/root.pem",
        "ca/policy.pem",
        "ca/issuing.pem",
        "ca/issuing-key.pem",
        "ca/intermediates.pem",
        "kms/cert.pem",
        "kms/key.pem",
        "identity/cert.pem",
        "identity/key.pem",
        "rs/cert.pem",
        "rs/key.pem",
        "demo/cert.pem",
        "demo/key.pem",
    ] {
        assert!(out.join(f).is_file(), "{f} missing");
    }
    assert!(!out.join("ca/root-key.pem").exists());
    assert_eq!(demo.root_path(), out.join("ca/root.pem"));
    #[cfg(unix)]
    {
        for f in [
            "ca/issuing-key.pem",
            "kms/key.pem",
            "identity/key.pem",
            "rs/key.pem",
            "demo/key.pem",
        ] {
            assert_eq!(mode(&out.join(f)), 0o600, "{f}");
        }
        assert_eq!(mode(&out.join("kms/cert.pem")), 0o644);
    }
    let key_pem = std::fs::read_to_string(out.join("kms/key.pem")).unwrap();
    assert!(key_pem.starts_with("-----BEGIN PRIVATE KEY-----"), "PKCS#8");

    let root = load_cert_chain(&out.join("ca/root.pem")).unwrap();
    let policy = load_cert_chain(&out.join("ca/policy.pem")).unwrap();
    let issuing = load_cert_chain(&out.join("ca/issuing.pem")).unwrap();
    assert_eq!(root.len(), 1);

    // CA certificates.
    for (der, path_len, self_signed) in [
        (&root[0], 2, true),
        (&policy[0], 1, false),
        (&issuing[0], 0, false),
    ] {
        let c = parse(der);
        let bc = c.basic_constraints().unwrap().unwrap();
        assert!(bc.critical);
        assert!(bc.value.ca);
        assert_eq!(bc.value.path_len_constraint, Some(path_len));
        let ku = c.key_usage().unwrap().unwrap().value;
        assert!(ku.key_cert_sign() && ku.crl_sign());
        assert!(!ku.digital_signature());
        assert_eq!(c.subject() == c.issuer(), self_signed);
        let years =
            (c.validity().not_after.timestamp() - c.validity().not_before.timestamp()) / 86400;
        assert!((3650..=3653).contains(&years), "CA validity {years} days");
        let ski = c
            .extensions()
            .iter()
            .find_map(|e| match e.parsed_extension() {
                ParsedExtension::SubjectKeyIdentifier(k) => Some(k.0.to_vec()),
                _ => None,
            });
        assert!(ski.is_some(), "SKI");
    }
    // AKI of issuing = SKI of policy.
    let ski_policy =
        parse(&policy[0])
            .extensions()
            .iter()
            .find_map(|e| match e.parsed_extension() {
                ParsedExtension::SubjectKeyIdentifier(k) => Some(k.0.to_vec()),
                _ => None,
            });
    let aki_issuing =
        parse(&issuing[0])
            .extensions()
            .iter()
            .find_map(|e| match e.parsed_extension() {
                ParsedExtension::AuthorityKeyIdentifier(a) => {
                    a.key_identifier.as_ref().map(|k| k.0.to_vec())
                }
                _ => None,
            });
    assert_eq!(ski_policy, aki_issuing);

    // Server leaves.
    for (name, fqdn) in DEMO_SERVICES {
        let cert_pem = out.join(name).join("cert.pem");
        let chain = load_cert_chain(&cert_pem).unwrap();
        assert_eq!(chain.len(), 3, "leaf + issuing + policy, no root");
        assert_eq!(chain[1], issuing[0]);
        assert_eq!(chain[2], policy[0]);
        assert!(!chain.contains(&root[0]));
        let c = parse(&chain[0]);
        assert_ne!(c.subject(), c.issuer(), "never a self-signed leaf");
        assert_eq!(c.issuer(), parse(&issuing[0]).subject());
        assert_eq!(
            c.subject()
                .iter_common_name()
                .next()
                .unwrap()
                .as_str()
                .unwrap(),
            fqdn
        );
        let bc = c.basic_constraints().unwrap().unwrap();
        assert!(!bc.value.ca);
        let eku = c.extended_key_usage().unwrap().unwrap().value;
        assert!(eku.server_auth && !eku.client_auth);
        let sans: Vec<String> = c
            .subject_alternative_name()
            .unwrap()
            .unwrap()
            .value
            .general_names
            .iter()
            .map(|g| match g {
                GeneralName::DNSName(d) => (*d).to_owned(),
                GeneralName::IPAddress(ip) => format!("ip:{ip:?}"),
                other => format!("{other:?}"),
            })
            .collect();
        assert!(sans.contains(&fqdn.to_owned()), "{sans:?}");
        assert!(sans.contains(&"localhost".to_owned()), "{sans:?}");
        assert!(sans.contains(&"ip:[127, 0, 0, 1]".to_owned()), "{sans:?}");
        assert!(
            sans.contains(&format!("ip:{:?}", std::net::Ipv6Addr::LOCALHOST.octets())),
            "{sans:?}"
        );
        let days =
            (c.validity().not_after.timestamp() - c.validity().not_before.timestamp()) / 86400;
        assert_eq!(days, 397);
        assert!(c.validity().is_valid());
        openssl_verify(
            &out.join("ca/root.pem"),
            &out.join("ca/intermediates.pem"),
            &cert_pem,
            "sslserver",
        );
        let svc = demo.service(name).unwrap();
        assert_eq!(svc.paths.cert, cert_pem);
    }

    // Client leaf.
    let chain = load_cert_chain(&out.join("demo/cert.pem")).unwrap();
    let c = parse(&chain[0]);
    let eku = c.extended_key_usage().unwrap().unwrap().value;
    assert!(eku.client_auth && !eku.server_auth);
    assert_eq!(
        c.subject()
            .iter_common_name()
            .next()
            .unwrap()
            .as_str()
            .unwrap(),
        "demo"
    );
    openssl_verify(
        &out.join("ca/root.pem"),
        &out.join("ca/intermediates.pem"),
        &out.join("demo/cert.pem"),
        "sslclient",
    );
}

#[test]
fn refuses_to_overwrite_without_flag() {
    let dir = tempfile::tempdir().unwrap();
    let opts = DemoCaOptions {
        ca: CaOptions {
            chain_length: 1,
            ..CaOptions::default()
        },
        ..DemoCaOptions::default()
    };
    init_demo_ca(dir.path(), &opts).unwrap();
    let e = init_demo_ca(dir.path(), &opts).unwrap_err();
    assert!(matches!(e, TlsError::AlreadyExists { .. }), "{e}");
    init_demo_ca(
        dir.path(),
        &DemoCaOptions {
            overwrite: true,
            ..opts
        },
    )
    .unwrap();
}

#[test]
fn extra_names_and_the_completeness_check() {
    let dir = tempfile::tempdir().unwrap();
    let opts = DemoCaOptions {
        extra_names: vec![
            ("kms".to_owned(), "kms-1".to_owned()),
            ("postgres".to_owned(), "postgres".to_owned()),
        ],
        ..DemoCaOptions::default()
    };
    assert!(!demo_ca_is_complete(dir.path(), &opts).unwrap());
    let ca = init_demo_ca(dir.path(), &opts).unwrap();
    assert!(demo_ca_is_complete(dir.path(), &opts).unwrap());
    let sans = |service: &str| {
        let chain = load_cert_chain(&dir.path().join(service).join("cert.pem")).unwrap();
        CertInfo::from_der(&chain[0]).unwrap().sans
    };
    assert!(sans("kms").contains(&"kms-1".to_owned()));
    assert!(sans("kms").contains(&"kms.cryptoutil.demo.local".to_owned()));
    assert!(sans("postgres").contains(&"postgres".to_owned()));
    assert!(sans("postgres").contains(&"127.0.0.1".to_owned()));
    assert_eq!(ca.service("postgres").unwrap().subject_name, "postgres");

    // A name the existing PKI lacks, or a missing key: never silently used or replaced.
    let more = DemoCaOptions {
        extra_names: vec![("kms".to_owned(), "kms-2".to_owned())],
        ..DemoCaOptions::default()
    };
    let e = demo_ca_is_complete(dir.path(), &more).unwrap_err();
    assert!(
        matches!(e, TlsError::IncompleteDemoCa { .. }) && e.to_string().contains("kms-2"),
        "{e}"
    );
    std::fs::remove_file(dir.path().join("rs/key.pem")).unwrap();
    let e = demo_ca_is_complete(dir.path(), &opts).unwrap_err();
    assert!(
        matches!(e, TlsError::IncompleteDemoCa { .. }) && e.to_string().contains("rs/key.pem"),
        "{e}"
    );

    for service in ["ca", "demo", "Kms", "-x", "a/b", ""] {
        let bad = DemoCaOptions {
            extra_names: vec![(service.to_owned(), "x.example".to_owned())],
            ..DemoCaOptions::default()
        };
        let e = init_demo_ca(&dir.path().join("other"), &bad).unwrap_err();
        assert!(matches!(e, TlsError::InvalidName { .. }), "{service}: {e}");
    }
}

#[test]
fn other_curves_and_lengths_verify() {
    for (alg, len, sig_oid) in [
        (KeyAlgorithm::EcP384, 3, "1.2.840.10045.4.3.3"),
        (KeyAlgorithm::EcP521, 2, "1.2.840.10045.4.3.4"),
        (KeyAlgorithm::EcP256, 1, "1.2.840.10045.4.3.2"),
        (KeyAlgorithm::EcP256, 5, "1.2.840.10045.4.3.2"),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let opts = DemoCaOptions {
            ca: CaOptions {
                chain_length: len,
                algorithm: alg,
                ..CaOptions::default()
            },
            ..DemoCaOptions::default()
        };
        let demo = init_demo_ca(dir.path(), &opts).unwrap();
        assert_eq!(demo.ca.intermediates.len(), len - 1);
        let kms = demo.service("kms").unwrap();
        let chain = load_cert_chain(&kms.paths.cert).unwrap();
        assert_eq!(chain.len(), len, "{alg:?} len {len}");
        let c = parse(&chain[0]);
        assert_eq!(
            c.signature_algorithm.algorithm.to_id_string(),
            sig_oid,
            "{alg:?}"
        );
        let root = parse(&load_cert_chain(&demo.ca.root).unwrap()[0])
            .basic_constraints()
            .unwrap()
            .unwrap()
            .value
            .path_len_constraint;
        assert_eq!(root, Some(u32::try_from(len - 1).unwrap()));
        openssl_verify(
            &demo.ca.root,
            &demo.ca.intermediates_bundle,
            &kms.paths.cert,
            "sslserver",
        );
        openssl_verify(
            &demo.ca.root,
            &demo.ca.intermediates_bundle,
            &demo.client.paths.cert,
            "sslclient",
        );
        // More leaves can be issued from the written CA directory, whatever its length.
        let extra = issue_leaf(
            &demo.ca.dir,
            &dir.path().join("extra"),
            &LeafKind::Server {
                names: vec!["extra.example".into()],
            },
            DEFAULT_LEAF_VALIDITY,
        )
        .unwrap();
        assert_eq!(load_cert_chain(&extra.cert).unwrap().len(), len);
        openssl_verify(
            &demo.ca.root,
            &demo.ca.intermediates_bundle,
            &extra.cert,
            "sslserver",
        );
    }
}

#[test]
fn issue_more_leaves_from_ca_dir() {
    let dir = tempfile::tempdir().unwrap();
    let opts = DemoCaOptions {
        ca: CaOptions {
            algorithm: KeyAlgorithm::EcP384,
            ..CaOptions::default()
        },
        ..DemoCaOptions::default()
    };
    let demo = init_demo_ca(dir.path(), &opts).unwrap();
    let out = dir.path().join("extra");
    let paths = issue_leaf(
        &demo.ca.dir,
        &out,
        &LeafKind::Server {
            names: vec!["extra.cryptoutil.demo.local".into(), "10.1.2.3".into()],
        },
        time::Duration::days(30),
    )
    .unwrap();
    #[cfg(unix)]
    assert_eq!(mode(&paths.key), 0o600);
    openssl_verify(
        &demo.ca.root,
        &demo.ca.intermediates_bundle,
        &paths.cert,
        "sslserver",
    );
    let chain = load_cert_chain(&paths.cert).unwrap();
    assert_eq!(chain.len(), 3);
    let c = parse(&chain[0]);
    assert_eq!(
        c.subject()
            .iter_organization()
            .next()
            .unwrap()
            .as_str()
            .unwrap(),
        "cryptoutil"
    );
    let days = (c.validity().not_after.timestamp() - c.validity().not_before.timestamp()) / 86400;
    assert_eq!(days, 30);

    let client = issue_leaf(
        &demo.ca.dir,
        &dir.path().join("alice"),
        &LeafKind::Client {
            name: "alice".into(),
        },
        DEFAULT_LEAF_VALIDITY,
    )
    .unwrap();
    openssl_verify(
        &demo.ca.root,
        &demo.ca.intermediates_bundle,
        &client.cert,
        "sslclient",
    );

    // Refusals: too long, bad name, missing CA dir.
    let e = issue_leaf(
        &demo.ca.dir,
        &out,
        &LeafKind::Client { name: "x".into() },
        time::Duration::days(399),
    )
    .unwrap_err();
    assert!(matches!(e, TlsError::InvalidValidity(_)), "{e}");
    let e = issue_leaf(
        &demo.ca.dir,
        &out,
        &LeafKind::Server {
            names: vec!["-bad.example".into()],
        },
        DEFAULT_LEAF_VALIDITY,
    )
    .unwrap_err();
    assert!(matches!(e, TlsError::InvalidName { .. }), "{e}");
    let e = issue_leaf(
        &dir.path().join("nope"),
        &out,
        &LeafKind::Client { name: "x".into() },
        DEFAULT_LEAF_VALIDITY,
    )
    .unwrap_err();
    assert!(e.to_string().contains("nope"), "{e}");
}
