//! The npm registry, read for verification: its signing keys (`/-/npm/v1/keys`), a version's `dist`
//! (integrity, signatures, attestations) and its publish time, and attestation bundles.

use std::time::Duration;

use serde::Deserialize;
use serde_json::Value;

/// The longest answer read from the registry (a popular package's full document is several MiB).
const MAX_DOCUMENT: usize = 64 << 20;

/// One registry, as npm is configured to use it.
#[derive(Clone)]
pub struct Registry {
    /// With a trailing `/`, and without the credentials a URL may carry (`https://user:token@host/`): this
    /// is the URL shown in errors, `/readyz` and pins.
    base: url::Url,
    /// The URL's credentials, sent as Basic auth with each request and never shown.
    auth: Option<(String, Option<String>)>,
    http: reqwest::Client,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry")
            .field("base", &self.base.as_str())
            .field("auth", &self.auth.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

/// A key the registry signs with (`/-/npm/v1/keys`).
#[derive(Debug, Clone, Deserialize)]
pub struct Key {
    pub keyid: String,
    /// Base64 SPKI.
    pub key: String,
    #[serde(default)]
    pub scheme: String,
    /// After this, signatures by the key are good only for versions published before it.
    #[serde(default)]
    pub expires: Option<String>,
}

/// What the registry says of one version.
#[derive(Debug, Clone, Default)]
pub struct Dist {
    pub integrity: Option<String>,
    /// `(keyid, base64 signature)`.
    pub signatures: Vec<(String, String)>,
    /// Where its attestations are, if it has any.
    pub attestations: Option<String>,
    /// When it was published (RFC 3339), where the document says.
    pub published: Option<String>,
}

/// A URL's percent-encoded user or password, as sent.
fn decode(part: &str) -> String {
    percent_encoding::percent_decode_str(part)
        .decode_utf8_lossy()
        .into_owned()
}

/// The client registries are read with. It trusts what npm trusts: the public roots, and the CA files
/// `NODE_EXTRA_CA_CERTS` and `npm_config_cafile` name in catwalk's environment (a registry mirror, or a proxy
/// that re-signs TLS).
pub fn client() -> Result<reqwest::Client, String> {
    let mut builder = reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(10))
        .timeout(Duration::from_secs(120));
    for var in [
        "NODE_EXTRA_CA_CERTS",
        "npm_config_cafile",
        "NPM_CONFIG_CAFILE",
    ] {
        let Some(path) = std::env::var_os(var) else {
            continue;
        };
        let pem = std::fs::read(&path).map_err(|e| format!("{var} ({}): {e}", path.display()))?;
        let certs = reqwest::Certificate::from_pem_bundle(&pem)
            .map_err(|e| format!("{var} ({}): {e}", path.display()))?;
        for cert in certs {
            builder = builder.add_root_certificate(cert);
        }
    }
    builder
        .build()
        .map_err(|e| format!("the registry client: {e}"))
}

impl Registry {
    /// The registry at `url`. A URL that does not parse is not repeated in the error: it may hold a token.
    pub fn new(url: &str, http: reqwest::Client) -> Result<Self, String> {
        let mut base =
            url::Url::parse(url).map_err(|e| format!("the npm registry is not a URL ({e})"))?;
        if !base.path().ends_with('/') {
            base.set_path(&format!("{}/", base.path()));
        }
        let auth = match (base.username(), base.password()) {
            ("", None) => None,
            (user, password) => Some((decode(user), password.map(decode))),
        };
        // Neither fails on a URL with a host, which a registry URL with credentials has.
        let _ = base.set_username("");
        let _ = base.set_password(None);
        Ok(Self { base, auth, http })
    }

    pub fn url(&self) -> &str {
        self.base.as_str()
    }

    /// Whether a tarball URL is this registry's.
    pub fn serves(&self, resolved: &str) -> bool {
        resolved.starts_with(self.base.as_str())
    }

    async fn get(&self, path: &str, accept: &str) -> Result<Option<Value>, String> {
        let url = format!("{}{path}", self.base);
        let mut request = self
            .http
            .get(&url)
            .header(reqwest::header::ACCEPT, accept)
            .timeout(Duration::from_secs(60));
        if let Some((user, password)) = &self.auth {
            request = request.basic_auth(user, password.as_ref());
        }
        let response = request
            .send()
            .await
            .map_err(|e| format!("GET {url}: {}", e.without_url()))?;
        if response.status() == reqwest::StatusCode::NOT_FOUND {
            return Ok(None);
        }
        if !response.status().is_success() {
            return Err(format!("GET {url}: {}", response.status()));
        }
        if response.content_length().unwrap_or(0) > MAX_DOCUMENT as u64 {
            return Err(format!("GET {url}: larger than {} MiB", MAX_DOCUMENT >> 20));
        }
        let body = response
            .bytes()
            .await
            .map_err(|e| format!("GET {url}: {}", e.without_url()))?;
        serde_json::from_slice(&body)
            .map(Some)
            .map_err(|e| format!("GET {url}: not JSON ({e})"))
    }

    /// The keys the registry signs with. A registry that publishes none signs nothing.
    pub async fn keys(&self) -> Result<Vec<Key>, String> {
        let Some(doc) = self.get("-/npm/v1/keys", "application/json").await? else {
            return Err(format!(
                "the registry {} publishes no signing keys (GET -/npm/v1/keys: 404 Not Found), so nothing it \
                 serves can be verified: give verify = \"off\" to run its packages unverified",
                self.base
            ));
        };
        serde_json::from_value(doc["keys"].clone())
            .map_err(|e| format!("the registry's signing keys do not parse: {e}"))
    }

    /// What the registry says of `name@version`. The publish time comes from the full document, read only when
    /// `with_time` (a signature by a key that has since expired is good only for what was published before).
    pub async fn dist(&self, name: &str, version: &str, with_time: bool) -> Result<Dist, String> {
        let path = name.replacen('/', "%2f", 1);
        let accept = match with_time {
            true => "application/json",
            false => "application/vnd.npm.install-v1+json; q=1.0, application/json; q=0.8",
        };
        let doc = self
            .get(&path, accept)
            .await?
            .ok_or_else(|| format!("the registry has no package {name}"))?;
        let dist = &doc["versions"][version]["dist"];
        if dist.is_null() {
            return Err(format!("the registry has no {name}@{version}"));
        }
        let signatures = dist["signatures"]
            .as_array()
            .map(|all| {
                all.iter()
                    .filter_map(|s| Some((s["keyid"].as_str()?.into(), s["sig"].as_str()?.into())))
                    .collect()
            })
            .unwrap_or_default();
        Ok(Dist {
            integrity: dist["integrity"].as_str().map(str::to_owned),
            signatures,
            attestations: dist["attestations"]["url"].as_str().map(str::to_owned),
            published: doc["time"][version].as_str().map(str::to_owned),
        })
    }

    /// The attestations at `url` (the registry's own `/-/npm/v1/attestations/...`): predicate type → bundle.
    pub async fn attestations(&self, url: &str) -> Result<Vec<(String, String)>, String> {
        let path = url
            .strip_prefix(self.base.as_str())
            .or_else(|| {
                // The public registry names its attestations by absolute URL on its own host.
                let origin = self.base.origin().ascii_serialization();
                url.strip_prefix(&origin).map(|p| p.trim_start_matches('/'))
            })
            .ok_or_else(|| format!("attestations at {url}, off the registry"))?;
        let doc = self
            .get(path, "application/json")
            .await?
            .ok_or_else(|| format!("GET {url}: 404 Not Found"))?;
        Ok(doc["attestations"]
            .as_array()
            .map(|all| {
                all.iter()
                    .filter_map(|a| {
                        Some((
                            a["predicateType"].as_str()?.to_owned(),
                            a["bundle"].to_string(),
                        ))
                    })
                    .collect()
            })
            .unwrap_or_default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// A registry URL's token goes to the registry as Basic auth and nowhere else: not into the URL shown
    /// in `/readyz` and pins, not into errors, not into `Debug`.
    #[tokio::test]
    async fn a_registry_urls_credentials_are_sent_and_never_shown() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.unwrap();
            let mut request = Vec::new();
            let mut buf = [0u8; 4096];
            while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                let n = socket.read(&mut buf).await.unwrap();
                assert!(n > 0, "the client closed before its request ended");
                request.extend_from_slice(&buf[..n]);
            }
            socket
                .write_all(b"HTTP/1.1 503 Service Unavailable\r\ncontent-length: 0\r\n\r\n")
                .await
                .unwrap();
            String::from_utf8(request).unwrap()
        });
        let registry = Registry::new(
            &format!("http://ci-bot:s3cr%2Ft-token@127.0.0.1:{port}/npm"),
            reqwest::Client::new(),
        )
        .unwrap();
        let error = registry.keys().await.unwrap_err();
        let request = server.await.unwrap();

        use base64::Engine;
        let basic = base64::engine::general_purpose::STANDARD.encode("ci-bot:s3cr/t-token");
        assert!(
            request.to_ascii_lowercase().contains(&format!(
                "authorization: basic {}",
                basic.to_ascii_lowercase()
            )),
            "{request}"
        );
        assert!(request.starts_with("GET /npm/-/npm/v1/keys "), "{request}");
        assert_eq!(registry.url(), format!("http://127.0.0.1:{port}/npm/"));
        for shown in [error.clone(), format!("{registry:?}")] {
            assert!(
                !shown.contains("s3cr") && !shown.contains("ci-bot"),
                "{shown}"
            );
        }
        assert!(error.contains("503"), "{error}");
        // One that does not parse is not repeated either.
        let bad = Registry::new("https://ci-bot:s3cr3t@[bad/", reqwest::Client::new()).unwrap_err();
        assert!(!bad.contains("s3cr3t"), "{bad}");
    }

    /// An unreachable registry's error does not carry the URL's credentials through reqwest's message.
    #[tokio::test]
    async fn a_transport_error_does_not_show_the_credentials() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        drop(listener);
        let registry = Registry::new(
            &format!("http://ci-bot:s3cr3t@127.0.0.1:{port}/"),
            reqwest::Client::new(),
        )
        .unwrap();
        let error = registry.keys().await.unwrap_err();
        assert!(!error.contains("s3cr3t"), "{error}");
        assert!(error.contains(&format!("127.0.0.1:{port}")), "{error}");
    }
}
