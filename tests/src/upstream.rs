//! A fake upstream API for egress tests: HTTPS with a CA of its own (made here with rcgen, for the names the
//! test asks for), HTTP/1.1 and HTTP/2, reached by real hostnames through catwalk's `--egress-resolve` and
//! `--egress-ca`. It answers the routes it is given, and under `/__catwalk/` it has what the attack tests need:
//! - `echo`: the request's headers and body, as JSON;
//! - `redirect?to=URL`: a 302 to `URL`;
//! - `big?bytes=N`: a body of N bytes;
//! - `hang`: never answers;
//! - `slow?ms=N`: answers after N ms, counting how many such requests it holds at once;
//! - `requests`: every request it received (host, method, path, headers, body), as JSON;
//! - `stats`: the most `slow` requests held at once.
//!
//! Every request is recorded, so a test can assert what arrived (the real token) and what never did.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// A canned answer: for requests to `host` (any host when `None`) whose path starts with `path`.
#[derive(Debug, Clone)]
pub struct Route {
    pub host: Option<String>,
    pub path: String,
    pub status: u16,
    pub body: Value,
}

/// One request as it arrived.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Recorded {
    pub host: String,
    pub method: String,
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: String,
    pub http2: bool,
}

#[derive(Default)]
struct State {
    routes: Vec<Route>,
    log: Mutex<Vec<Recorded>>,
    slow_now: AtomicUsize,
    slow_most: AtomicUsize,
    connections: AtomicUsize,
}

/// A running upstream: its address, its CA (PEM), and what it has received.
pub struct Upstream {
    pub addr: SocketAddr,
    pub plain: SocketAddr,
    pub ca_pem: String,
    state: Arc<State>,
    stop: CancellationToken,
}

impl Drop for Upstream {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

impl Upstream {
    /// Listens on `bind` with TLS for `names`, on any port, and on another in plain HTTP.
    pub async fn start(bind: &str, names: &[&str], routes: Vec<Route>) -> anyhow::Result<Self> {
        Self::start_on(bind, 0, names, routes).await
    }

    /// As [`Upstream::start`], with TLS on `port` (443, where clients that resolve its names connect).
    pub async fn start_on(
        bind: &str,
        port: u16,
        names: &[&str],
        routes: Vec<Route>,
    ) -> anyhow::Result<Self> {
        let (ca_pem, config) = tls(names)?;
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let listener = TcpListener::bind(format!("{bind}:{port}")).await?;
        let plain_listener = TcpListener::bind(format!("{bind}:0")).await?;
        let addr = listener.local_addr()?;
        let plain = plain_listener.local_addr()?;
        let state = Arc::new(State {
            routes,
            ..State::default()
        });
        let stop = CancellationToken::new();
        for (listener, tls) in [(listener, Some(acceptor)), (plain_listener, None)] {
            let state = state.clone();
            let stop = stop.clone();
            tokio::spawn(async move {
                loop {
                    let accepted = tokio::select! {
                        accepted = listener.accept() => accepted,
                        () = stop.cancelled() => return,
                    };
                    let Ok((stream, _)) = accepted else { continue };
                    state.connections.fetch_add(1, Ordering::Relaxed);
                    let state = state.clone();
                    let tls = tls.clone();
                    tokio::spawn(async move {
                        let service = hyper::service::service_fn(move |request| {
                            let state = state.clone();
                            async move {
                                Ok::<_, std::convert::Infallible>(answer(&state, request).await)
                            }
                        });
                        let builder =
                            hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
                        match tls {
                            Some(acceptor) => {
                                if let Ok(stream) = acceptor.accept(stream).await {
                                    let _ = builder
                                        .serve_connection(TokioIo::new(stream), service)
                                        .await;
                                }
                            }
                            None => {
                                let _ = builder
                                    .serve_connection(TokioIo::new(stream), service)
                                    .await;
                            }
                        }
                    });
                }
            });
        }
        Ok(Self {
            addr,
            plain,
            ca_pem,
            state,
            stop,
        })
    }

    /// Every request received so far.
    pub fn requests(&self) -> Vec<Recorded> {
        self.state.log.lock().unwrap().clone()
    }

    /// The most `slow` requests it held at once.
    pub fn most_at_once(&self) -> usize {
        self.state.slow_most.load(Ordering::Relaxed)
    }

    /// TCP connections accepted so far (both ports).
    pub fn connections(&self) -> usize {
        self.state.connections.load(Ordering::Relaxed)
    }
}

/// A CA and a certificate it signed for `names` (and localhost, 127.0.0.1): the CA's PEM and the server's TLS
/// settings, with HTTP/2 and HTTP/1.1 offered.
fn tls(names: &[&str]) -> anyhow::Result<(String, rustls::ServerConfig)> {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair, KeyUsagePurpose};
    let ca_key = KeyPair::generate()?;
    let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "catwalk test CA");
    let ca = ca_params.self_signed(&ca_key)?;
    let mut all: Vec<String> = names.iter().map(|n| n.to_string()).collect();
    all.extend(["localhost".into(), "127.0.0.1".into()]);
    let leaf_key = KeyPair::generate()?;
    let issuer = rcgen::Issuer::from_params(&ca_params, &ca_key);
    let leaf = CertificateParams::new(all)?.signed_by(&leaf_key, &issuer)?;
    let key = rustls::pki_types::PrivateKeyDer::try_from(leaf_key.serialize_der())
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()?
    .with_no_client_auth()
    .with_single_cert(vec![leaf.der().clone(), ca.der().clone()], key)?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok((ca.pem(), config))
}

fn json_response(status: u16, body: &Value) -> Response<Full<Bytes>> {
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body.to_string())))
        .unwrap()
}

async fn answer(state: &State, request: Request<Incoming>) -> Response<Full<Bytes>> {
    let http2 = request.version() == hyper::Version::HTTP_2;
    let (parts, body) = request.into_parts();
    let host = parts
        .uri
        .authority()
        .map(|a| a.host().to_owned())
        .or_else(|| {
            parts
                .headers
                .get("host")
                .and_then(|h| h.to_str().ok())
                .map(|h| h.split(':').next().unwrap_or(h).to_owned())
        })
        .unwrap_or_default();
    let body = body
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let path = parts
        .uri
        .path_and_query()
        .map(ToString::to_string)
        .unwrap_or_default();
    let headers: Vec<(String, String)> = parts
        .headers
        .iter()
        .map(|(k, v)| {
            (
                k.to_string(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect();
    let recorded = Recorded {
        host: host.clone(),
        method: parts.method.to_string(),
        path: path.clone(),
        headers: headers.clone(),
        body: String::from_utf8_lossy(&body).into_owned(),
        http2,
    };
    let query = |name: &str| {
        parts.uri.query().and_then(|q| {
            q.split('&').find_map(|pair| {
                let (k, v) = pair.split_once('=')?;
                (k == name).then(|| v.to_owned())
            })
        })
    };
    if let Some(special) = parts.uri.path().strip_prefix("/__catwalk/") {
        match special {
            "requests" => {
                let log = state.log.lock().unwrap().clone();
                return json_response(200, &serde_json::to_value(log).unwrap());
            }
            "stats" => {
                return json_response(
                    200,
                    &json!({"most_at_once": state.slow_most.load(Ordering::Relaxed)}),
                );
            }
            _ => {}
        }
        state.log.lock().unwrap().push(recorded);
        return match special {
            "echo" => json_response(
                200,
                &json!({"method": parts.method.as_str(), "host": host, "path": path, "headers": headers,
                    "body": String::from_utf8_lossy(&body), "http2": http2}),
            ),
            "redirect" => Response::builder()
                .status(302)
                .header(
                    "location",
                    query("to").map(|t| percent_decode(&t)).unwrap_or_default(),
                )
                .body(Full::new(Bytes::new()))
                .unwrap(),
            "big" => {
                let n: usize = query("bytes")
                    .and_then(|b| b.parse().ok())
                    .unwrap_or(1 << 20);
                Response::new(Full::new(Bytes::from(vec![b'x'; n])))
            }
            "hang" => {
                std::future::pending::<()>().await;
                unreachable!()
            }
            "slow" => {
                let ms: u64 = query("ms").and_then(|m| m.parse().ok()).unwrap_or(200);
                let now = state.slow_now.fetch_add(1, Ordering::SeqCst) + 1;
                state.slow_most.fetch_max(now, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(ms)).await;
                state.slow_now.fetch_sub(1, Ordering::SeqCst);
                json_response(200, &json!({"slow": ms}))
            }
            _ => json_response(404, &json!({"error": "no such test route"})),
        };
    }
    state.log.lock().unwrap().push(recorded);
    let route = state
        .routes
        .iter()
        .find(|r| r.host.as_deref().is_none_or(|h| h == host) && path.starts_with(&r.path));
    match route {
        Some(route) => json_response(route.status, &route.body),
        None => json_response(404, &json!({"message": "Not Found"})),
    }
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && let Some(hex) = text.get(i + 1..i + 3)
            && let Ok(b) = u8::from_str_radix(hex, 16)
        {
            out.push(b);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}
