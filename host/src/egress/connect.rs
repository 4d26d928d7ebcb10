//! Connecting: a name is checked against the tenant's grants, resolved by catwalk, and only the addresses that
//! passed ([`Egress::resolve`]) are connected to; TLS comes on top ([`tls_config`]: the machine's CA bundle, or
//! webpki's roots where it has none, plus the operator's extra roots).

use std::future::Future;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use http::Uri;
use hyper_util::rt::TokioIo;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use tokio::net::TcpStream;

use super::BoxError;
use crate::policy::egress::{Denied, Egress, Reason, Scheme, Target};

/// Opens TCP connections for one tenant's pool, to checked addresses only.
#[derive(Clone)]
pub struct Dialer {
    policy: Arc<Egress>,
    timeout: Duration,
}

impl Dialer {
    pub fn new(policy: Arc<Egress>, timeout: Duration) -> Self {
        Self { policy, timeout }
    }
}

impl tower::Service<Uri> for Dialer {
    type Response = TokioIo<TcpStream>;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, BoxError>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, uri: Uri) -> Self::Future {
        let policy = self.policy.clone();
        let timeout = self.timeout;
        Box::pin(async move {
            let scheme = uri
                .scheme_str()
                .and_then(Scheme::parse)
                .ok_or_else(|| Denied::new(Reason::BadRequest, "only http and https are sent"))?;
            let host = uri
                .host()
                .ok_or_else(|| Denied::new(Reason::BadRequest, "no host"))?;
            let target = match host
                .trim_start_matches('[')
                .trim_end_matches(']')
                .parse::<IpAddr>()
            {
                Ok(ip) => Target::Ip(ip),
                Err(_) => Target::Name(host.to_ascii_lowercase()),
            };
            let port = uri.port_u16().unwrap_or(scheme.default_port());
            // Checked again here: this is where the addresses come from, so this is where the check counts.
            let allowed = policy.check(scheme, target, port)?;
            let addresses = policy.resolve(&allowed).await?;
            let mut last = None;
            for address in addresses {
                match tokio::time::timeout(timeout, TcpStream::connect(address)).await {
                    Ok(Ok(stream)) => {
                        let _ = stream.set_nodelay(true);
                        return Ok(TokioIo::new(stream));
                    }
                    Ok(Err(e)) => last = Some(format!("{e}")),
                    Err(_) => last = Some(format!("no connection within {timeout:?}")),
                }
            }
            Err(format!(
                "could not connect to {}: {}",
                allowed.target,
                last.unwrap_or_else(|| "no address".into())
            )
            .into())
        })
    }
}

/// Where the machine keeps its CA bundle, in the order looked for (after `SSL_CERT_FILE`).
const BUNDLES: &[&str] = &[
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/ssl/cert.pem",
];

/// The TLS settings of every tenant's requests: the machine's CA bundle (`SSL_CERT_FILE`, or the first of
/// [`BUNDLES`]), or webpki's roots where the machine has none; plus `extra`, the operator's roots
/// (`--egress-ca`).
pub fn tls_config(extra: &[PathBuf]) -> Result<Arc<rustls::ClientConfig>, String> {
    let mut roots = rustls::RootCertStore::empty();
    let bundle = std::env::var_os("SSL_CERT_FILE")
        .map(PathBuf::from)
        .into_iter()
        .chain(BUNDLES.iter().map(PathBuf::from))
        .find(|path| path.is_file());
    let mut machine = 0;
    if let Some(bundle) = bundle {
        for cert in certificates(&bundle).unwrap_or_default() {
            if roots.add(cert).is_ok() {
                machine += 1;
            }
        }
    }
    if machine == 0 {
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    }
    for path in extra {
        let certs = certificates(path)?;
        if certs.is_empty() {
            return Err(format!("{}: no PEM certificate in it", path.display()));
        }
        for cert in certs {
            roots
                .add(cert)
                .map_err(|e| format!("{}: not a CA certificate: {e}", path.display()))?;
        }
    }
    let config = rustls::ClientConfig::builder()
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

fn certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    CertificateDer::pem_file_iter(path)
        .map_err(|e| format!("{}: {e}", path.display()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("{}: {e}", path.display()))
}
