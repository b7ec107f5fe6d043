//! Criterion benchmark: one full TLS 1.3 handshake of the crypto policy per key exchange group,
//! in memory (a rustls `ClientConnection` and `ServerConnection` pumped through buffers, no
//! sockets). The server is `server_config` with the demo KMS leaf (EC P-256, chain Root → Policy
//! → Issuing); the client is `client_config` trusting the demo root, narrowed to one group and
//! with resumption off, so every iteration is a full handshake: both key exchanges, the server's
//! ECDSA signature, the client's chain verification, and the server's session tickets.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::hint::black_box;
use std::sync::Arc;

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use cryptoutil_tls::rustls::client::Resumption;
use cryptoutil_tls::rustls::crypto::CryptoProvider;
use cryptoutil_tls::rustls::crypto::aws_lc_rs::kx_group;
use cryptoutil_tls::rustls::pki_types::ServerName;
use cryptoutil_tls::rustls::{
    ClientConfig, ClientConnection, Connection, NamedGroup, ServerConfig, ServerConnection,
};
use cryptoutil_tls::{
    ClientAuth, DemoCaOptions, ReloadableCert, TrustConfig, client_config, init_demo_ca,
    server_config,
};

/// Moves everything `from` has to send into `to`; whether anything moved.
fn transfer(from: &mut Connection, to: &mut Connection, buf: &mut Vec<u8>) -> bool {
    buf.clear();
    while from.wants_write() {
        from.write_tls(buf).unwrap();
    }
    if buf.is_empty() {
        return false;
    }
    let mut rd = &buf[..];
    while !rd.is_empty() {
        to.read_tls(&mut rd).unwrap();
        to.process_new_packets().unwrap();
    }
    true
}

/// One full handshake; the group the client negotiated.
fn handshake(client: &Arc<ClientConfig>, server: &Arc<ServerConfig>) -> NamedGroup {
    let name = ServerName::try_from("kms.cryptoutil.demo.local").unwrap();
    let mut c = Connection::Client(ClientConnection::new(client.clone(), name).unwrap());
    let mut s = Connection::Server(ServerConnection::new(server.clone()).unwrap());
    let mut buf = Vec::with_capacity(8 * 1024);
    while c.is_handshaking() || s.is_handshaking() {
        let a = transfer(&mut c, &mut s, &mut buf);
        let b = transfer(&mut s, &mut c, &mut buf);
        assert!(a || b, "handshake stalled");
    }
    // The session tickets the server sends after the handshake are part of its cost.
    transfer(&mut s, &mut c, &mut buf);
    c.negotiated_key_exchange_group().unwrap().name()
}

fn handshakes(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let demo = init_demo_ca(dir.path(), &DemoCaOptions::default()).unwrap();
    let cert =
        Arc::new(ReloadableCert::from_leaf_paths(&demo.service("kms").unwrap().paths).unwrap());
    let server = server_config(cert, ClientAuth::None).unwrap();
    let trust = TrustConfig::from_ca_files(&[demo.root_path()]).unwrap();

    let mut g = c.benchmark_group("tls13_handshake");
    for group in [
        kx_group::X25519MLKEM768,
        kx_group::SECP256R1MLKEM768,
        kx_group::SECP256R1,
        kx_group::SECP384R1,
    ] {
        // Our client configuration, narrowed to this one group of the policy.
        let ours = client_config(trust.clone(), None).unwrap();
        assert!(
            ours.crypto_provider()
                .kx_groups
                .iter()
                .any(|g| g.name() == group.name()),
            "{:?} is not in the policy",
            group.name()
        );
        let provider = CryptoProvider {
            kx_groups: vec![group],
            ..(**ours.crypto_provider()).clone()
        };
        let mut client = ClientConfig::builder_with_provider(Arc::new(provider))
            .with_protocol_versions(cryptoutil_tls::config::PROTOCOL_VERSIONS)
            .unwrap()
            .with_root_certificates(trust.clone().into_root_store().unwrap())
            .with_no_client_auth();
        client.resumption = Resumption::disabled();
        let client = Arc::new(client);
        assert_eq!(handshake(&client, &server), group.name());
        let label = format!("{:?}", group.name());
        g.bench_function(BenchmarkId::from_parameter(label), |b| {
            b.iter(|| black_box(handshake(&client, &server)));
        });
    }
    g.finish();
}

criterion_group!(benches, handshakes);
criterion_main!(benches);
