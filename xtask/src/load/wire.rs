//! The generator's hot path: one keep-alive HTTPS connection sending one pre-built request over
//! and over.
//!
//! The generator shares the machine's two cores with the server, so every cycle it spends is a
//! cycle the server does not get. Through reqwest, each request parsed its URL again (with IDNA
//! host processing), cloned the client's connector and went through the connection pool: about
//! as much CPU per request as the server's own work. Here, as `wrk` does, the HTTP/1.1 request
//! is serialized once and written as it is, and the response is read in the same task with
//! `httparse` and its `Content-Length` (no channel to a separate connection task). HTTP/2 goes
//! through `hyper::client::conn::http2`. TLS is `tokio-rustls`: TLS 1.3, the demo CA verified,
//! as everywhere else.

use std::sync::Arc;

use bytes::{Buf, Bytes, BytesMut};
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http2;
use hyper_util::rt::{TokioExecutor, TokioIo};
use reqwest::StatusCode;
use reqwest::header::{HOST, HeaderMap, HeaderValue};
use rustls::pki_types::ServerName;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

use super::RequestSpec;

/// A request ready to be sent many times: parsed once, cheap to clone per send.
#[derive(Debug, Clone)]
pub struct Template {
    method: reqwest::Method,
    /// Absolute form, for HTTP/2 (`:scheme` and `:authority` come from it).
    absolute: hyper::Uri,
    headers: HeaderMap,
    body: Bytes,
    /// The whole HTTP/1.1 request, head and body.
    http1: Bytes,
    host: String,
    port: u16,
}

/// Largest response head and body the generator reads.
const MAX_HEAD: usize = 64 * 1024;
const MAX_BODY: usize = 64 * 1024 * 1024;

impl Template {
    /// Parses `spec`'s URL and freezes its headers and body.
    pub fn new(spec: &RequestSpec) -> Result<Self, String> {
        let url = reqwest::Url::parse(&spec.url).map_err(|e| format!("{}: {e}", spec.url))?;
        let host_text = url
            .host_str()
            .ok_or_else(|| format!("{}: no host", spec.url))?;
        let port = url
            .port_or_known_default()
            .ok_or_else(|| format!("{}: no port", spec.url))?;
        let authority = format!("{host_text}:{port}");
        let host = host_text
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        let mut origin = url.path().to_owned();
        if let Some(query) = url.query() {
            origin.push('?');
            origin.push_str(query);
        }
        let mut headers = spec.headers.clone();
        headers.insert(
            HOST,
            HeaderValue::from_str(&authority).map_err(|e| format!("{}: {e}", spec.url))?,
        );
        let body = Bytes::from(spec.body.clone().unwrap_or_default());
        let mut http1 = format!("{} {origin} HTTP/1.1\r\n", spec.method).into_bytes();
        for (name, value) in &headers {
            http1.extend_from_slice(name.as_str().as_bytes());
            http1.extend_from_slice(b": ");
            http1.extend_from_slice(value.as_bytes());
            http1.extend_from_slice(b"\r\n");
        }
        if !body.is_empty() || spec.method == reqwest::Method::POST {
            http1.extend_from_slice(format!("content-length: {}\r\n", body.len()).as_bytes());
        }
        http1.extend_from_slice(b"\r\n");
        http1.extend_from_slice(&body);
        Ok(Self {
            method: spec.method.clone(),
            absolute: spec.url.parse().map_err(|e| format!("{}: {e}", spec.url))?,
            headers,
            body,
            http1: Bytes::from(http1),
            host,
            port,
        })
    }

    /// The request for HTTP/2 (`:scheme` and `:authority` from the absolute URI).
    fn http2_request(&self) -> hyper::Request<Full<Bytes>> {
        let mut request = hyper::Request::new(Full::new(self.body.clone()));
        *request.method_mut() = self.method.clone();
        *request.uri_mut() = self.absolute.clone();
        let mut headers = self.headers.clone();
        headers.remove(HOST);
        *request.headers_mut() = headers;
        request
    }
}

enum Sender {
    Http1(Box<Http1>),
    Http2(http2::SendRequest<Full<Bytes>>),
}

/// An HTTP/1.1 connection: the TLS stream and what has been read but not yet used.
struct Http1 {
    stream: TlsStream<TcpStream>,
    read: BytesMut,
    closed: bool,
}

impl Http1 {
    async fn send(&mut self, request: &[u8]) -> Result<(StatusCode, Bytes), String> {
        let result = self.exchange(request).await;
        if result.is_err() {
            self.closed = true;
        }
        result
    }

    async fn exchange(&mut self, request: &[u8]) -> Result<(StatusCode, Bytes), String> {
        self.stream
            .write_all(request)
            .await
            .map_err(|e| format!("writing the request: {e}"))?;
        self.stream
            .flush()
            .await
            .map_err(|e| format!("writing the request: {e}"))?;
        loop {
            if let Some(head) = parse_head(&self.read)? {
                if head.close {
                    self.closed = true;
                }
                while self.read.len() < head.length + head.body {
                    self.fill().await?;
                }
                self.read.advance(head.length);
                let body = self.read.split_to(head.body).freeze();
                return Ok((head.status, body));
            }
            self.fill().await?;
        }
    }

    async fn fill(&mut self) -> Result<(), String> {
        self.read.reserve(16 * 1024);
        match self.stream.read_buf(&mut self.read).await {
            Ok(0) => Err("the server closed the connection".to_owned()),
            Ok(_) => Ok(()),
            Err(e) => Err(format!("reading the response: {e}")),
        }
    }
}

/// A parsed response head: its status, its length, the body's length and whether the server
/// closes the connection after it.
#[derive(Debug, PartialEq, Eq)]
struct Head {
    status: StatusCode,
    length: usize,
    body: usize,
    close: bool,
}

/// The response head at the start of `read`, once it is complete (`Ok(None)` until then).
/// Bodies must have a `Content-Length` (every response of the measured routes has one).
fn parse_head(read: &[u8]) -> Result<Option<Head>, String> {
    let mut headers = [httparse::EMPTY_HEADER; 48];
    let mut response = httparse::Response::new(&mut headers);
    let length = match response.parse(read) {
        Ok(httparse::Status::Complete(length)) => length,
        Ok(httparse::Status::Partial) if read.len() < MAX_HEAD => return Ok(None),
        Ok(httparse::Status::Partial) => return Err("response head too large".to_owned()),
        Err(e) => return Err(format!("malformed response head: {e}")),
    };
    let status = response
        .code
        .and_then(|c| StatusCode::from_u16(c).ok())
        .ok_or("response without a valid status")?;
    let mut body = None;
    let mut close = false;
    for header in response.headers.iter() {
        if header.name.eq_ignore_ascii_case("content-length") {
            body = std::str::from_utf8(header.value)
                .ok()
                .and_then(|v| v.trim().parse::<usize>().ok());
        } else if header.name.eq_ignore_ascii_case("transfer-encoding") {
            return Err("chunked responses are not supported by the load generator".to_owned());
        } else if header.name.eq_ignore_ascii_case("connection") {
            close = header.value.eq_ignore_ascii_case(b"close");
        }
    }
    let body = match body {
        Some(n) if n <= MAX_BODY => n,
        Some(n) => return Err(format!("response body of {n} bytes is too large")),
        // 1xx, 204 and 304 have no body; anything else must say how long it is.
        None if status.is_informational() || status.as_u16() == 204 || status.as_u16() == 304 => 0,
        None => return Err(format!("status {status} without Content-Length")),
    };
    Ok(Some(Head {
        status,
        length,
        body,
        close,
    }))
}

/// One open connection to the template's server.
pub struct Connection {
    sender: Sender,
}

impl Connection {
    /// Connects (TCP without Nagle, TLS, HTTP by the negotiated ALPN protocol).
    pub async fn open(
        template: &Template,
        tls: &Arc<rustls::ClientConfig>,
    ) -> Result<Self, String> {
        let target = format!("{}:{}", template.host, template.port);
        let tcp = TcpStream::connect((template.host.as_str(), template.port))
            .await
            .map_err(|e| format!("connecting to {target}: {e}"))?;
        tcp.set_nodelay(true)
            .map_err(|e| format!("TCP_NODELAY on {target}: {e}"))?;
        let name = ServerName::try_from(template.host.clone())
            .map_err(|e| format!("{}: {e}", template.host))?;
        let stream = TlsConnector::from(Arc::clone(tls))
            .connect(name, tcp)
            .await
            .map_err(|e| format!("TLS with {target}: {e}"))?;
        let h2 = stream.get_ref().1.alpn_protocol() == Some(b"h2");
        let sender = if h2 {
            let (sender, connection) = http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
                .await
                .map_err(|e| format!("HTTP/2 with {target}: {e}"))?;
            tokio::spawn(connection);
            Sender::Http2(sender)
        } else {
            Sender::Http1(Box::new(Http1 {
                stream,
                read: BytesMut::with_capacity(16 * 1024),
                closed: false,
            }))
        };
        Ok(Self { sender })
    }

    /// Whether the connection can still carry requests.
    pub fn is_open(&self) -> bool {
        match &self.sender {
            Sender::Http1(c) => !c.closed,
            Sender::Http2(s) => !s.is_closed(),
        }
    }

    /// Sends the template's request and reads the whole response.
    pub async fn send(&mut self, template: &Template) -> Result<(StatusCode, Bytes), String> {
        let fail = |e: String| format!("{} {}: {e}", template.method, template.absolute);
        let sender = match &mut self.sender {
            Sender::Http1(connection) => {
                return connection.send(&template.http1).await.map_err(fail);
            }
            Sender::Http2(sender) => sender,
        };
        sender.ready().await.map_err(|e| fail(e.to_string()))?;
        let response = sender
            .send_request(template.http2_request())
            .await
            .map_err(|e| fail(e.to_string()))?;
        let status = response.status();
        let body = response
            .into_body()
            .collect()
            .await
            .map_err(|e| fail(format!("reading the body: {e}")))?
            .to_bytes();
        Ok((status, body))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn template_keeps_method_path_query_headers_and_body() {
        let mut spec = RequestSpec::get("https://127.0.0.1:8443/service/api/v1/x?alg=oct/256");
        spec.method = reqwest::Method::POST;
        spec.body = Some(b"hello".to_vec());
        let template = Template::new(&spec).unwrap();
        assert_eq!((template.host.as_str(), template.port), ("127.0.0.1", 8443));
        assert_eq!(
            std::str::from_utf8(&template.http1).unwrap(),
            "POST /service/api/v1/x?alg=oct/256 HTTP/1.1\r\nhost: 127.0.0.1:8443\r\n\
             content-length: 5\r\n\r\nhello"
        );
        let h2 = template.http2_request();
        assert_eq!(h2.method(), reqwest::Method::POST);
        assert_eq!(
            h2.uri(),
            "https://127.0.0.1:8443/service/api/v1/x?alg=oct/256"
        );
        assert!(h2.headers().get(HOST).is_none());
    }

    #[test]
    fn ipv6_hosts_lose_their_brackets_for_connecting() {
        let template = Template::new(&RequestSpec::get("https://[::1]:9/")).unwrap();
        assert_eq!((template.host.as_str(), template.port), ("::1", 9));
        assert!(
            template
                .http1
                .starts_with(b"GET / HTTP/1.1\r\nhost: [::1]:9\r\n\r\n")
        );
    }

    #[test]
    fn response_heads_are_parsed_once_complete() {
        let response =
            b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\nContent-Length: 5\r\n\r\nhello";
        assert_eq!(parse_head(&response[..20]).unwrap(), None);
        assert_eq!(
            parse_head(response).unwrap(),
            Some(Head {
                status: StatusCode::OK,
                length: response.len() - 5,
                body: 5,
                close: false,
            })
        );
        let closing = b"HTTP/1.1 204 No Content\r\nconnection: close\r\n\r\n";
        let head = parse_head(closing).unwrap().unwrap();
        assert_eq!((head.body, head.close), (0, true));
        for bad in [
            &b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n"[..],
            b"HTTP/1.1 200 OK\r\n\r\n",
            b"HTTP/1.1 200 OK\r\ncontent-length: 999999999999\r\n\r\n",
            b"HTTP/1.1 2x0 OK\r\n\r\n",
        ] {
            assert!(parse_head(bad).is_err(), "{}", String::from_utf8_lossy(bad));
        }
    }
}
