//! Shared helpers for the integration tests.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, dead_code)]

use std::net::SocketAddr;
use std::sync::Arc;

use cryptoutil_tls::rustls::pki_types::{CertificateDer, ServerName};
use cryptoutil_tls::rustls::{ClientConfig, ServerConfig};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::client::TlsStream;
use tokio_rustls::{TlsAcceptor, TlsConnector};

/// Starts a TLS echo server (line based) on 127.0.0.1:0 and returns its address.
pub async fn start_echo_server(config: Arc<ServerConfig>) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let acceptor = TlsAcceptor::from(config);
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let (r, mut w) = tokio::io::split(tls);
                let mut lines = BufReader::new(r).lines();
                while let Ok(Some(line)) = lines.next_line().await {
                    if w.write_all(format!("{line}\n").as_bytes()).await.is_err() {
                        return;
                    }
                    let _ = w.flush().await;
                }
            });
        }
    });
    addr
}

/// Connects, completes the handshake as seen by the client.
pub async fn connect(
    addr: SocketAddr,
    config: ClientConfig,
    server_name: &str,
) -> std::io::Result<TlsStream<TcpStream>> {
    let connector = TlsConnector::from(Arc::new(config));
    let tcp = TcpStream::connect(addr).await?;
    let name = ServerName::try_from(server_name.to_owned()).unwrap();
    connector.connect(name, tcp).await
}

/// Sends a line and reads the echo. In TLS 1.3 a server's refusal of the client certificate
/// only shows up here, after the client-side handshake finished.
pub async fn echo(stream: &mut TlsStream<TcpStream>, msg: &str) -> std::io::Result<String> {
    stream.write_all(format!("{msg}\n").as_bytes()).await?;
    stream.flush().await?;
    let mut line = String::new();
    let mut reader = BufReader::new(stream);
    let n = reader.read_line(&mut line).await?;
    if n == 0 {
        return Err(std::io::Error::new(
            std::io::ErrorKind::UnexpectedEof,
            "connection closed",
        ));
    }
    Ok(line.trim_end().to_owned())
}

/// The leaf certificate the server presented.
pub fn presented_leaf(stream: &TlsStream<TcpStream>) -> CertificateDer<'static> {
    stream
        .get_ref()
        .1
        .peer_certificates()
        .unwrap()
        .first()
        .unwrap()
        .clone()
        .into_owned()
}

/// Connects and echoes once; returns the presented leaf.
pub async fn roundtrip(
    addr: SocketAddr,
    config: ClientConfig,
    server_name: &str,
) -> std::io::Result<CertificateDer<'static>> {
    let mut s = connect(addr, config, server_name).await?;
    let got = echo(&mut s, "ping").await?;
    assert_eq!(got, "ping");
    Ok(presented_leaf(&s))
}
