//! The egress proxy inside a tenant's network namespace: the only way out of it.
//!
//! Three doors, all under the tenant's egress policy ([`Egress`]: its grants, names resolved by catwalk, the
//! blocked ranges, no second lookup), none of them decrypting:
//! - the proxy port ([`PROXY_PORT`]), for clients that honour `HTTPS_PROXY`/`HTTP_PROXY`: `CONNECT host:port`,
//!   allowed by its authority and then by the TLS ClientHello's SNI, which must name the same host; and
//!   plain HTTP in absolute form (`GET http://host/path`), allowed by its URL;
//! - HTTPS ports (443 and the ports grants name), for clients that connect to what catwalk's resolver
//!   answered (every granted name resolves to 127.0.0.1 in there): allowed by SNI;
//! - HTTP ports (80 and the ports grants name): allowed by `Host`.
//!
//! Plain HTTP goes one request per connection (`Connection: close`), so a second request on it cannot name
//! another host. A refusal is an HTTP 403 whose body says why (or, where TLS was spoken, a closed
//! connection), logged and counted with the tenant, host and reason, never the path or a header.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

use crate::audit::TenantAudit;
use crate::metrics::TenantMetrics;
use crate::policy::egress::{Denied, Egress, Reason, Scheme, Target};

/// Where a tenant's processes find the proxy: `http://127.0.0.1:PROXY_PORT`.
pub const PROXY_PORT: u16 = 3128;
/// The longest request head or ClientHello read before a connection is allowed.
const MAX_HEAD: usize = 32 * 1024;
/// How long a client has to say where it is going.
const HEAD_TIMEOUT: Duration = Duration::from_secs(15);

/// What a door lets through: one tenant's policy.
pub struct Gate {
    pub tenant: Arc<str>,
    pub policy: Arc<Egress>,
    pub metrics: Option<Arc<TenantMetrics>>,
    /// Where refusals are recorded, if an audit trail is kept.
    pub audit: Option<Arc<TenantAudit>>,
    pub connect_timeout: Duration,
}

/// How a listener's connections say where they go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Door {
    Proxy,
    Tls(u16),
    Http(u16),
}

/// Accepts on `listener` until `stop`; each connection goes where its door allows, or nowhere.
pub async fn serve(listener: TcpListener, door: Door, gate: Arc<Gate>, stop: CancellationToken) {
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    tracing::debug!(tenant = %gate.tenant, "egress proxy accept: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = stop.cancelled() => return,
        };
        let gate = gate.clone();
        let stop = stop.clone();
        tokio::spawn(async move {
            tokio::select! {
                () = connection(stream, door, &gate) => {}
                () = stop.cancelled() => {}
            }
        });
    }
}

/// Why a connection goes nowhere.
enum Refusal {
    /// Refused by the policy, for this host.
    Denied(Denied, String),
    /// The client's bytes were not what this door takes.
    Bad(String),
    /// Allowed, but the upstream could not be reached.
    Failed(String),
}

/// A policy refusal for `host`.
fn denied(host: &str) -> impl Fn(Denied) -> Refusal + '_ {
    move |denied| Refusal::Denied(denied, host.to_owned())
}

async fn connection(mut client: TcpStream, door: Door, gate: &Gate) {
    let _ = client.set_nodelay(true);
    let opened = match tokio::time::timeout(HEAD_TIMEOUT, open(&mut client, door, gate)).await {
        Ok(opened) => opened,
        Err(_) => Err(Refusal::Bad("no request within 15 s".into())),
    };
    let (mut upstream, host, early) = match opened {
        Ok(opened) => opened,
        Err(refusal) => {
            refuse(&mut client, door, gate, refusal).await;
            return;
        }
    };
    if upstream.write_all(&early).await.is_err() {
        return;
    }
    let moved = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
    if let (Ok((sent, received)), Some(metrics)) = (moved, &gate.metrics) {
        metrics.egress_bytes(&host, "sent", sent + early.len() as u64);
        metrics.egress_bytes(&host, "received", received);
    }
}

/// Reads where the client goes, checks it, and connects: the upstream, its host, and the bytes to send it
/// first.
async fn open(
    client: &mut TcpStream,
    door: Door,
    gate: &Gate,
) -> Result<(TcpStream, String, Vec<u8>), Refusal> {
    match door {
        Door::Tls(port) => {
            let (hello, sni) = client_hello(client, Vec::new()).await?;
            let host = sni.ok_or_else(|| {
                Refusal::Bad("a TLS connection without a server name (SNI) goes nowhere".into())
            })?;
            let upstream = dial(gate, Scheme::Https, &host, port).await?;
            Ok((upstream, host, hello))
        }
        Door::Http(port) => {
            let (head, rest) = request_head(client).await?;
            let request = parse(&head)?;
            let host = request
                .header("host")
                .map(|h| split_host(h).0.to_owned())
                .ok_or_else(|| Refusal::Bad("a request without Host goes nowhere".into()))?;
            let path = request.target.clone();
            let upstream = dial(gate, Scheme::Http, &host, port).await?;
            let authority = match port {
                80 => host.clone(),
                port => format!("{host}:{port}"),
            };
            let mut early = rewrite(&request, &path, &authority);
            early.extend_from_slice(&rest);
            Ok((upstream, host, early))
        }
        Door::Proxy => {
            let (head, rest) = request_head(client).await?;
            let request = parse(&head)?;
            let (method, target) = (request.method.as_str(), request.target.as_str());
            if method.eq_ignore_ascii_case("CONNECT") {
                return tunnel(client, gate, target, rest).await;
            }
            let url = url::Url::parse(target).map_err(|_| {
                Refusal::Bad(format!(
                    "{method} {target}: a proxy takes CONNECT host:port or an absolute http:// URL"
                ))
            })?;
            if url.scheme() != "http" {
                return Err(Refusal::Bad(format!(
                    "{}: only http:// is proxied in the clear; https goes by CONNECT",
                    url.scheme()
                )));
            }
            let host = url
                .host_str()
                .ok_or_else(|| Refusal::Bad("a URL without a host".into()))?
                .to_owned();
            let port = url.port_or_known_default().unwrap_or(80);
            let path = match url.query() {
                Some(query) => format!("{}?{query}", url.path()),
                None => url.path().to_owned(),
            };
            let upstream = dial(gate, Scheme::Http, &host, port).await?;
            let authority = match url.port() {
                Some(port) => format!("{host}:{port}"),
                None => host.clone(),
            };
            let mut early = rewrite(&request, &path, &authority);
            early.extend_from_slice(&rest);
            Ok((upstream, host, early))
        }
    }
}

/// `CONNECT host:port`: refused at once unless a grant names the host and port; then allowed by what the client
/// sends first: TLS for an https grant, its ClientHello naming the same host, or a plain HTTP request (as
/// Node's `fetch` tunnels `http://` URLs) for an http grant, its `Host` naming the same host.
async fn tunnel(
    client: &mut TcpStream,
    gate: &Gate,
    authority: &str,
    rest: Vec<u8>,
) -> Result<(TcpStream, String, Vec<u8>), Refusal> {
    let (host, port) = split_host(authority);
    let port = port
        .and_then(|p| p.parse::<u16>().ok())
        .ok_or_else(|| Refusal::Bad(format!("CONNECT {authority}: no port")))?;
    let host = host.to_owned();
    let target = target(&host);
    if gate
        .policy
        .check(Scheme::Http, target.clone(), port)
        .is_err()
    {
        gate.policy
            .check(Scheme::Https, target, port)
            .map_err(denied(&host))?;
    }
    client
        .write_all(b"HTTP/1.1 200 Connection Established\r\n\r\n")
        .await
        .map_err(|e| Refusal::Failed(e.to_string()))?;
    let mut first = rest;
    if first.is_empty() {
        read_more(client, &mut first, "tunnelled request").await?;
    }
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    // A TLS record starts with its content type, 22 for a handshake.
    if first.first() == Some(&22) {
        let (hello, sni) = client_hello(client, first).await?;
        if let Some(sni) = sni
            && !sni.eq_ignore_ascii_case(bare)
        {
            return Err(denied(&host)(Denied::new(
                Reason::NotGranted,
                format!("the tunnel to {host} asked TLS for {sni}"),
            )));
        }
        let upstream = dial(gate, Scheme::Https, &host, port).await?;
        return Ok((upstream, host, hello));
    }
    let (head, rest) = request_head_after(client, first).await?;
    let request = parse(&head)?;
    let named = request.header("host").map(|h| split_host(h).0);
    if !named.is_some_and(|n| {
        n.trim_start_matches('[')
            .trim_end_matches(']')
            .eq_ignore_ascii_case(bare)
    }) {
        return Err(denied(&host)(Denied::new(
            Reason::NotGranted,
            format!("the tunnel to {host} carried a request for another host"),
        )));
    }
    let upstream = dial(gate, Scheme::Http, &host, port).await?;
    let authority = match port {
        80 => host.clone(),
        port => format!("{host}:{port}"),
    };
    let path = request.target.clone();
    let mut early = rewrite(&request, &path, &authority);
    early.extend_from_slice(&rest);
    Ok((upstream, host, early))
}

fn target(host: &str) -> Target {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    match bare.parse::<IpAddr>() {
        Ok(ip) => Target::Ip(ip),
        Err(_) => Target::Name(bare.trim_end_matches('.').to_ascii_lowercase()),
    }
}

/// Checks `scheme://host:port` against the tenant's policy, resolves it there, and connects to an address
/// that passed.
async fn dial(gate: &Gate, scheme: Scheme, host: &str, port: u16) -> Result<TcpStream, Refusal> {
    let allowed = gate
        .policy
        .check(scheme, target(host), port)
        .map_err(denied(host))?;
    let addresses = gate.policy.resolve(&allowed).await.map_err(denied(host))?;
    let mut last = String::from("no address");
    for address in addresses {
        match tokio::time::timeout(gate.connect_timeout, TcpStream::connect(address)).await {
            Ok(Ok(stream)) => {
                let _ = stream.set_nodelay(true);
                return Ok(stream);
            }
            Ok(Err(e)) => last = e.to_string(),
            Err(_) => last = format!("no connection within {:?}", gate.connect_timeout),
        }
    }
    Err(Refusal::Failed(format!(
        "could not connect to {host}:{port}: {last}"
    )))
}

async fn refuse(client: &mut TcpStream, door: Door, gate: &Gate, refusal: Refusal) {
    let (status, text) = match &refusal {
        Refusal::Denied(denied, host) => {
            tracing::warn!(
                tenant = %gate.tenant,
                reason = denied.reason.as_str(),
                "egress refused at the proxy: {denied}"
            );
            if let Some(metrics) = &gate.metrics {
                metrics.egress_denied(denied.reason.as_str());
            }
            if let Some(audit) = &gate.audit {
                audit.egress_denied(host, denied.reason.as_str());
            }
            (
                "403 Forbidden",
                format!("catwalk refused the connection: {denied}"),
            )
        }
        Refusal::Bad(why) => {
            tracing::debug!(tenant = %gate.tenant, "egress proxy: {why}");
            ("400 Bad Request", format!("catwalk's egress proxy: {why}"))
        }
        Refusal::Failed(why) => {
            tracing::info!(tenant = %gate.tenant, "egress proxy: {why}");
            if let Some(metrics) = &gate.metrics {
                metrics.egress_failed("connect");
            }
            ("502 Bad Gateway", format!("catwalk's egress proxy: {why}"))
        }
    };
    // Where the client speaks TLS, an HTTP answer would be noise: the connection just closes.
    if !matches!(door, Door::Tls(_)) {
        let answer = format!(
            "HTTP/1.1 {status}\r\ncontent-type: text/plain; charset=utf-8\r\ncontent-length: {}\r\n\
             connection: close\r\n\r\n{text}\n",
            text.len() + 1
        );
        let _ = client.write_all(answer.as_bytes()).await;
    }
    let _ = client.shutdown().await;
}

/// Reads up to the end of a request head: the head, and whatever came after it.
async fn request_head(client: &mut TcpStream) -> Result<(Vec<u8>, Vec<u8>), Refusal> {
    request_head_after(client, Vec::with_capacity(1024)).await
}

/// [`request_head`], after `read`, bytes already read.
async fn request_head_after(
    client: &mut TcpStream,
    read: Vec<u8>,
) -> Result<(Vec<u8>, Vec<u8>), Refusal> {
    let mut buffer = read;
    loop {
        if let Some(end) = memchr::memmem::find(&buffer, b"\r\n\r\n") {
            let rest = buffer.split_off(end + 4);
            return Ok((buffer, rest));
        }
        read_more(client, &mut buffer, "request head").await?;
    }
}

/// Reads what the client sends next onto `buffer`, while `buffer` is within [`MAX_HEAD`]; `what` is what is
/// being read, for the refusal.
async fn read_more(
    client: &mut TcpStream,
    buffer: &mut Vec<u8>,
    what: &str,
) -> Result<(), Refusal> {
    if buffer.len() > MAX_HEAD {
        return Err(Refusal::Bad(format!("a {what} over 32 KiB")));
    }
    let mut chunk = [0u8; 4096];
    let n = client
        .read(&mut chunk)
        .await
        .map_err(|e| Refusal::Bad(e.to_string()))?;
    if n == 0 {
        return Err(Refusal::Bad(format!(
            "the client closed before its {what} ended"
        )));
    }
    buffer.extend_from_slice(&chunk[..n]);
    Ok(())
}

/// A request head, parsed.
struct Head {
    method: String,
    target: String,
    headers: Vec<(String, Vec<u8>)>,
}

impl Head {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .and_then(|(_, v)| std::str::from_utf8(v).ok())
            .map(str::trim)
    }
}

fn parse(head: &[u8]) -> Result<Head, Refusal> {
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut request = httparse::Request::new(&mut headers);
    match request.parse(head) {
        Ok(httparse::Status::Complete(_)) => Ok(Head {
            method: request.method.unwrap_or_default().to_owned(),
            target: request.path.unwrap_or_default().to_owned(),
            headers: request
                .headers
                .iter()
                .map(|h| (h.name.to_owned(), h.value.to_vec()))
                .collect(),
        }),
        Ok(httparse::Status::Partial) => Err(Refusal::Bad("an incomplete request head".into())),
        Err(e) => Err(Refusal::Bad(format!("not an HTTP request ({e})"))),
    }
}

/// `host:port`, `[v6]:port` or `host`: the host and the port, if any.
fn split_host(authority: &str) -> (&str, Option<&str>) {
    if let Some(end) = authority.strip_prefix('[').and_then(|a| a.find(']')) {
        let host = &authority[..end + 2];
        return (host, authority[end + 2..].strip_prefix(':'));
    }
    match authority.rsplit_once(':') {
        Some((host, port)) if !host.contains(':') => (host, Some(port)),
        _ => (authority, None),
    }
}

/// The request head sent upstream: origin-form, the host it was allowed for, one request per connection.
fn rewrite(request: &Head, path: &str, authority: &str) -> Vec<u8> {
    let mut head = Vec::with_capacity(512);
    head.extend_from_slice(request.method.as_bytes());
    head.push(b' ');
    head.extend_from_slice(path.as_bytes());
    head.extend_from_slice(b" HTTP/1.1\r\nhost: ");
    head.extend_from_slice(authority.as_bytes());
    head.extend_from_slice(b"\r\n");
    for (name, value) in &request.headers {
        let hop = [
            "host",
            "connection",
            "proxy-connection",
            "keep-alive",
            "proxy-authorization",
        ]
        .iter()
        .any(|n| name.eq_ignore_ascii_case(n));
        if !hop {
            head.extend_from_slice(name.as_bytes());
            head.extend_from_slice(b": ");
            head.extend_from_slice(value);
            head.extend_from_slice(b"\r\n");
        }
    }
    head.extend_from_slice(b"connection: close\r\n\r\n");
    head
}

/// Reads a TLS ClientHello (after `read`, bytes already read): every byte read, and the server name it asks
/// for.
async fn client_hello(
    client: &mut TcpStream,
    read: Vec<u8>,
) -> Result<(Vec<u8>, Option<String>), Refusal> {
    let mut acceptor = rustls::server::Acceptor::default();
    let mut buffer = read;
    let mut fed = 0;
    loop {
        while fed < buffer.len() {
            let mut unread = &buffer[fed..];
            let n = acceptor
                .read_tls(&mut unread)
                .map_err(|e| Refusal::Bad(format!("not TLS: {e}")))?;
            fed += n;
            if n == 0 {
                break;
            }
        }
        match acceptor.accept() {
            Ok(Some(accepted)) => {
                let sni = accepted.client_hello().server_name().map(str::to_owned);
                return Ok((buffer, sni));
            }
            Ok(None) => {}
            Err((e, _)) => return Err(Refusal::Bad(format!("not a TLS ClientHello: {e}"))),
        }
        read_more(client, &mut buffer, "ClientHello").await?;
    }
}

#[cfg(test)]
mod tests {
    use super::{parse, rewrite, split_host};

    #[test]
    fn requests_go_upstream_in_origin_form_one_per_connection() {
        let head = parse(
            b"GET http://api.test:8080/a?b=1 HTTP/1.1\r\nHost: evil.test\r\nProxy-Authorization: Basic x\r\n\
              Connection: keep-alive\r\nProxy-Connection: keep-alive\r\nAccept: */*\r\n\r\n",
        )
        .ok()
        .unwrap();
        let sent = String::from_utf8(rewrite(&head, "/a?b=1", "api.test:8080")).unwrap();
        assert_eq!(
            sent,
            "GET /a?b=1 HTTP/1.1\r\nhost: api.test:8080\r\nAccept: */*\r\nconnection: close\r\n\r\n"
        );
        assert!(parse(b"\x16\x03\x01 not http\r\n\r\n").is_err());
    }

    #[test]
    fn authorities_split() {
        assert_eq!(split_host("api.test:443"), ("api.test", Some("443")));
        assert_eq!(split_host("api.test"), ("api.test", None));
        assert_eq!(split_host("[::1]:8080"), ("[::1]", Some("8080")));
        assert_eq!(split_host("[::1]"), ("[::1]", None));
        assert_eq!(split_host("::1"), ("::1", None));
    }
}
