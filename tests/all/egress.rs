//! Egress: a WASI guest's HTTP(S) requests, made by catwalk under its tenant's grants. The guest (`tests/guests/
//! egress`, with catwalk-guest's client) is served as a `wasm32-wasip1` module (catwalk's `catwalk_http`) and as a
//! `wasm32-wasip2` component (`wasi:http`); the upstream is a fake API with a CA of its own
//! (`catwalk_tests::upstream`), reached by name through `--egress-resolve` and `--egress-ca`. What must never
//! arrive is checked where it would arrive: the upstream's log, and listeners in a network namespace.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use anyhow::{Context, Result, bail};
use catwalk_tests::upstream::Upstream;
use serde_json::{Value, json};

use crate::support::{Catwalk, Client, metric, scrape};
use crate::wasi::guest;

const SECRET: &str = "tok_real_secret_value_0123456789";

/// A tool call's result: `Ok(structured)` when the request got a response, `Err(text)` when the guest's client
/// reported an error.
async fn fetch(
    client: &Client,
    id: u64,
    args: Value,
) -> Result<std::result::Result<Value, String>> {
    let response = client.call(json!(id), "fetch", args).await?;
    let result = &response["result"];
    let text = result["content"][0]["text"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    Ok(match result["isError"].as_bool() {
        Some(true) => Err(text),
        _ if result.is_null() => Err(format!("no result: {response}")),
        _ => Ok(result["structuredContent"].clone()),
    })
}

async fn start(upstream: &Upstream, ca: &std::path::Path, wasm: &str) -> Result<Catwalk> {
    let port = upstream.addr.port();
    let api = format!("api.test:443=127.0.0.1:{port}");
    let other = format!("other.test:443=127.0.0.1:{port}");
    let secret = format!("TOKEN={SECRET}@api.test");
    let ca = ca.display().to_string();
    Catwalk::start_without_command(
        &[
            "--wasm",
            wasm,
            "--egress",
            "https://api.test",
            "--egress",
            "https://other.test",
            "--egress-resolve",
            &api,
            "--egress-resolve",
            &other,
            "--egress-ca",
            &ca,
            "--secret",
            &secret,
            "--egress-timeout",
            "2s",
            "--egress-max-response",
            "64KiB",
        ],
        &[],
    )
    .await
}

#[tokio::test]
async fn guests_reach_granted_names_and_their_secret_never_enters_the_sandbox() -> Result<()> {
    let upstream = Upstream::start("127.0.0.1", &["api.test", "other.test"], Vec::new()).await?;
    let dir = std::env::temp_dir().join(format!("catwalk-egress-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let ca = dir.join("ca.pem");
    std::fs::write(&ca, &upstream.ca_pem)?;
    for target in ["wasm32-wasip1", "wasm32-wasip2"] {
        let wasm = guest(target, "catwalk-egress-guest");
        let cw = start(&upstream, &ca, &wasm).await?;
        let mut client = Client::new(cw.mcp());
        client.initialize("2025-11-25").await?;

        // The guest's env holds a placeholder, not the secret.
        let placeholder = client
            .call_text(json!(1), "env", json!({"name": "TOKEN"}))
            .await?;
        assert!(
            placeholder.starts_with("tok_") && placeholder.len() >= 28,
            "{target}: {placeholder}"
        );
        assert!(
            !placeholder.contains("real_secret"),
            "{target}: the guest saw the secret"
        );

        // A granted name, over HTTPS (HTTP/2), with the placeholder in a header: the real value arrives, and
        // comes back masked. The guest's Host header is not the one sent.
        let bearer = format!("Bearer {placeholder}");
        // (A component's wasi:http refuses a Host header itself.)
        let headers = match target {
            "wasm32-wasip1" => json!({"authorization": bearer, "host": "evil.test"}),
            _ => json!({"authorization": bearer}),
        };
        let answer = fetch(
            &client,
            2,
            json!({"url": "https://api.test/__catwalk/echo", "headers": headers}),
        )
        .await?;
        let answer = answer
            .map_err(anyhow::Error::msg)
            .with_context(|| format!("{target}: the granted request failed"))?;
        assert_eq!(answer["status"], 200, "{target}: {answer}");
        let echoed: Value = serde_json::from_str(answer["body"].as_str().unwrap())?;
        assert_eq!(echoed["host"], "api.test", "{target}: Host is the URL's");
        assert_eq!(echoed["http2"], true, "{target}: HTTP/2 was negotiated");
        let auth = echoed["headers"]
            .as_array()
            .unwrap()
            .iter()
            .find(|h| h[0] == "authorization")
            .map(|h| h[1].as_str().unwrap().to_owned())
            .unwrap_or_default();
        assert_eq!(
            auth,
            format!("Bearer {}", "*".repeat(SECRET.len())),
            "{target}: the echoed secret is masked"
        );
        let arrived = upstream.requests();
        let last = arrived.last().context("nothing arrived")?;
        assert!(
            last.headers
                .iter()
                .any(|(k, v)| k == "authorization" && v == &format!("Bearer {SECRET}")),
            "{target}: the real token arrived: {last:?}"
        );
        assert_eq!(last.host, "api.test");

        // Refused before anything is sent: the placeholder to a host it is not bound to, in a query, in a
        // body; a name not granted; a URL with credentials.
        let before = upstream.requests().len();
        for (n, args, why) in [
            (
                3,
                json!({"url": "https://other.test/__catwalk/echo", "headers": {"authorization": bearer}}),
                "placeholder",
            ),
            (
                4,
                json!({"url": format!("https://api.test/__catwalk/echo?token={placeholder}")}),
                "placeholder",
            ),
            (
                5,
                json!({"url": "https://api.test/__catwalk/echo", "method": "POST", "body": format!("{{\"token\":\"{placeholder}\"}}")}),
                "placeholder",
            ),
            (6, json!({"url": "https://evil.test/"}), "not granted"),
            (
                7,
                json!({"url": "http://api.test/__catwalk/echo"}),
                "not granted",
            ),
            (8, json!({"url": "https://api.test:8443/"}), "not granted"),
            (
                9,
                json!({"url": "https://user:pw@api.test/"}),
                "credentials",
            ),
        ] {
            let refused = fetch(&client, n, args.clone()).await?;
            let message = refused
                .err()
                .with_context(|| format!("{target}: {args} was not refused"))?;
            assert!(message.contains(why), "{target}: {args}: {message}");
            assert!(!message.contains("real_secret"), "{target}: {message}");
        }
        assert_eq!(
            upstream.requests().len(),
            before,
            "{target}: a refused request arrived"
        );
        assert!(
            upstream
                .requests()
                .iter()
                .all(|r| r.host == "api.test" || !format!("{:?}", r.headers).contains(SECRET)),
            "{target}: the secret went to another host"
        );

        // A redirect is the guest's to follow: the client sees it.
        let redirected = fetch(&client, 10, json!({"url": "https://api.test/__catwalk/redirect?to=http%3A%2F%2F169.254.169.254%2F"})).await?;
        let redirected = redirected.map_err(anyhow::Error::msg)?;
        assert_eq!(redirected["status"], 302, "{target}: {redirected}");

        // Past the response cap, and an upstream that never answers: errors, in their words.
        let big = fetch(
            &client,
            11,
            json!({"url": "https://api.test/__catwalk/big?bytes=200000"}),
        )
        .await?;
        assert!(
            big.as_ref()
                .err()
                .is_some_and(|e| e.contains("larger than")),
            "{target}: {big:?}"
        );
        let hang = fetch(
            &client,
            12,
            json!({"url": "https://api.test/__catwalk/hang"}),
        )
        .await?;
        assert!(
            hang.as_ref()
                .err()
                .is_some_and(|e| e.starts_with("refused:")),
            "{target}: {hang:?}"
        );

        let metrics = scrape(&cw.base, None).await?;
        let denied = |reason: &str| {
            metric(
                &metrics,
                &format!("catwalk_egress_denials_total{{tenant=\"\",reason=\"{reason}\"}}"),
            )
            .unwrap_or(0.0)
        };
        assert!(denied("placeholder") >= 3.0, "{target}: {metrics}");
        assert!(denied("not_granted") >= 3.0, "{target}: {metrics}");
        assert!(metric(&metrics, "catwalk_egress_requests_total{tenant=\"\",host=\"https://api.test\",status=\"200\"}").unwrap_or(0.0) >= 1.0, "{metrics}");
        assert!(!metrics.contains(SECRET) && !metrics.contains(&placeholder));

        let ready: Value = reqwest::get(format!("{}/readyz", cw.base))
            .await?
            .json()
            .await?;
        assert_eq!(
            ready["grants"]["egress"],
            json!(["https://api.test", "https://other.test"]),
            "{ready}"
        );
        assert_eq!(ready["grants"]["secrets"][0]["name"], "TOKEN");
        assert!(!ready.to_string().contains(SECRET));
        cw.stop().await?;
    }
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}

#[tokio::test]
async fn a_guest_with_no_grants_reaches_nothing() -> Result<()> {
    let upstream = Upstream::start("127.0.0.1", &["api.test"], Vec::new()).await?;
    let wasm = guest("wasm32-wasip1", "catwalk-egress-guest");
    let cw = Catwalk::start_without_command(&["--wasm", &wasm], &[]).await?;
    let mut client = Client::new(cw.mcp());
    client.initialize("2025-11-25").await?;
    let url = format!("http://127.0.0.1:{}/__catwalk/echo", upstream.plain.port());
    let refused = fetch(&client, 1, json!({"url": url})).await?;
    assert!(
        refused
            .as_ref()
            .err()
            .is_some_and(|e| e.contains("granted no egress")),
        "{refused:?}"
    );
    assert_eq!(upstream.connections(), 0);
    cw.stop().await
}

/// A network namespace of the test's own, torn down when dropped.
struct Netns(String);

impl Netns {
    fn create() -> Result<Self> {
        let name = format!("cw-egress-{}", std::process::id());
        let ns = Self(name.clone());
        ip(&["netns", "add", &name])?;
        ip(&["-n", &name, "link", "set", "lo", "up"])?;
        for addr in [
            "169.254.169.254/32",
            "10.0.0.1/32",
            "192.168.77.1/32",
            "100.64.0.1/32",
        ] {
            ip(&["-n", &name, "addr", "add", addr, "dev", "lo"])?;
        }
        // `ip netns exec` mounts these over /etc/hosts for what it runs.
        let etc = format!("/etc/netns/{name}");
        std::fs::create_dir_all(&etc)?;
        std::fs::write(
            format!("{etc}/hosts"),
            "127.0.0.1 localhost\n169.254.169.254 metadata.corp.test\n10.0.0.1 private.corp.test\n100.64.0.1 cgnat.corp.test\n",
        )?;
        Ok(ns)
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = ip(&["netns", "del", &self.0]);
        let _ = std::fs::remove_dir_all(format!("/etc/netns/{}", self.0));
    }
}

fn ip(args: &[&str]) -> Result<()> {
    let status = Command::new("ip")
        .args(args)
        .status()
        .context("running ip")?;
    if !status.success() {
        bail!("ip {args:?}: {status}");
    }
    Ok(())
}

/// Refused addresses, in every spelling, and granted names that resolve to them, tried from a guest whose
/// catwalk runs in a network namespace where those addresses exist and listen: a broken guard would reach a
/// listener of this test's, and nothing leaves the machine.
#[test]
fn private_and_metadata_addresses_are_refused_and_nothing_arrives() -> Result<()> {
    if !rustix::process::geteuid().is_root() {
        eprintln!("skipped: network namespaces need root");
        return Ok(());
    }
    let ns = Netns::create()?;
    let name = ns.0.clone();
    let wasm = guest("wasm32-wasip1", "catwalk-egress-guest");
    let outcome = std::thread::spawn(move || -> Result<(usize, Vec<String>, String)> {
        let file = std::fs::File::open(format!("/var/run/netns/{name}"))?;
        nix::sched::setns(file, nix::sched::CloneFlags::CLONE_NEWNET)?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        runtime.block_on(async move {
            let arrived = Arc::new(AtomicUsize::new(0));
            for addr in [
                "169.254.169.254:80",
                "10.0.0.1:80",
                "192.168.77.1:80",
                "100.64.0.1:80",
                "127.0.0.1:9999",
                "[::1]:80",
            ] {
                let listener = tokio::net::TcpListener::bind(addr)
                    .await
                    .with_context(|| format!("binding {addr}"))?;
                let arrived = arrived.clone();
                tokio::spawn(async move {
                    while listener.accept().await.is_ok() {
                        arrived.fetch_add(1, Ordering::SeqCst);
                    }
                });
            }
            let mut child = Command::new("ip")
                .args([
                    "netns",
                    "exec",
                    &name,
                    crate::support::helper().as_str(),
                    "serve",
                    "--port",
                    "0",
                    "--log-format",
                    "json",
                    "--wasm",
                    &wasm,
                    "--egress",
                    "http://*.corp.test",
                    "--egress",
                    "http://localhost:9999",
                    "--state-dir",
                    &std::env::temp_dir()
                        .join("catwalk-test-state")
                        .display()
                        .to_string(),
                ])
                .env_clear()
                .env("PATH", std::env::var("PATH").unwrap_or_default())
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()?;
            let stderr = child.stderr.take().unwrap();
            let (addr_tx, addr_rx) = std::sync::mpsc::channel();
            std::thread::spawn(move || {
                for line in BufReader::new(stderr).lines().map_while(|l| l.ok()) {
                    if let Ok(entry) = serde_json::from_str::<Value>(&line)
                        && entry["fields"]["message"] == "catwalk is serving"
                    {
                        let _ = addr_tx.send(
                            entry["fields"]["addr"]
                                .as_str()
                                .unwrap_or_default()
                                .to_owned(),
                        );
                    }
                }
            });
            let addr = addr_rx
                .recv_timeout(std::time::Duration::from_secs(60))
                .context("catwalk did not start")?;
            let base = format!("http://{addr}");
            let mut client = Client::new(format!("{base}/mcp"));
            client.initialize("2025-11-25").await?;
            let mut failures = Vec::new();
            let urls = [
                "http://169.254.169.254/latest/meta-data/",
                "http://2852039166/",
                "http://0251.0376.0251.0376/",
                "http://0xa9fea9fe/",
                "http://0xa9.0xfe.0xa9.0xfe/",
                "http://[::ffff:169.254.169.254]/",
                "http://[::ffff:a9fe:a9fe]/",
                "http://10.0.0.1/",
                "http://012.0.0.1/",
                "http://167772161/",
                "http://[::ffff:10.0.0.1]/",
                "http://192.168.77.1/",
                "http://100.64.0.1/",
                "http://127.0.0.1:9999/",
                "http://[::1]/",
                "http://0.0.0.0:9999/",
                "http://metadata.corp.test/",
                "http://private.corp.test/",
                "http://cgnat.corp.test/",
                "http://localhost:9999/",
            ];
            for (n, url) in urls.iter().enumerate() {
                match fetch(&client, n as u64 + 1, json!({"url": url})).await? {
                    Ok(answer) => failures.push(format!("{url} answered {answer}")),
                    Err(message) if message.contains("refused") => {}
                    Err(message) => failures.push(format!("{url}: {message}")),
                }
            }
            let metrics = scrape(&base, None).await?;
            let _ = child.kill();
            let _ = child.wait();
            Ok((arrived.load(Ordering::SeqCst), failures, metrics))
        })
    })
    .join()
    .map_err(|_| anyhow::anyhow!("the namespace thread panicked"))??;
    let (arrived, failures, metrics) = outcome;
    assert!(failures.is_empty(), "not refused: {failures:#?}");
    assert_eq!(arrived, 0, "a refused request reached a listener");
    let denied = |reason: &str| {
        metric(
            &metrics,
            &format!("catwalk_egress_denials_total{{tenant=\"\",reason=\"{reason}\"}}"),
        )
        .unwrap_or(0.0)
    };
    assert!(denied("not_granted") >= 16.0, "{metrics}");
    assert!(denied("blocked_address") >= 4.0, "{metrics}");
    drop(ns);
    Ok(())
}
