//! Many tenants on one catwalk: routes, tokens, sessions that belong to their tenant and token, env that stays
//! with its tenant, the admin API, and modules fetched by URL, pinned and cached.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use anyhow::Result;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::support::{Catwalk, Client, client, metric, plain_server, sha256_hex};
use crate::wasi::guest;

const CANARY: &str = "canary-5be1d0c7";

fn write_config(dir: &Path, toml: &str) -> Result<String> {
    std::fs::create_dir_all(dir)?;
    let path = dir.join("tenants.toml");
    std::fs::write(&path, toml)?;
    Ok(path.display().to_string())
}

/// catwalk with no tenants yet, and the admin API behind `admin`; `name` names its scratch dir, whose `state`
/// is its state dir (the admin API keeps its tenants there), sealed with [`STATE_KEY`].
pub async fn with_admin_api(name: &str, admin: &str) -> Result<Catwalk> {
    let config = write_config(&scratch(name), "")?;
    let state = scratch(name).join("state");
    Catwalk::start_without_command(
        &[
            "--config",
            &config,
            "--admin-token-sha256",
            &sha256_hex(admin.as_bytes()),
            "--state-dir",
            &state.display().to_string(),
        ],
        &[("CATWALK_STATE_KEY", STATE_KEY)],
    )
    .await
}

/// The key tests' admin APIs seal tenants with.
pub const STATE_KEY: &str = "c0ffee00c0ffee00c0ffee00c0ffee00c0ffee00c0ffee00c0ffee00c0ffee00";

fn scratch(name: &str) -> std::path::PathBuf {
    std::env::temp_dir().join(format!("catwalk-tenants-{name}-{}", std::process::id()))
}

/// `wasm` with a custom section of fresh bytes: the same module, a digest no earlier run has cached.
fn unique(mut wasm: Vec<u8>) -> Vec<u8> {
    let nonce = Sha256::digest(format!("{:?}", std::time::SystemTime::now()));
    // Section id 0 (custom), size, name length, name "nonce", then 16 bytes.
    wasm.extend_from_slice(&[0, 1 + 5 + 16, 5]);
    wasm.extend_from_slice(b"nonce");
    wasm.extend_from_slice(&nonce[..16]);
    wasm
}

fn toml_list(items: &[String]) -> String {
    format!(
        "[{}]",
        items
            .iter()
            .map(|s| format!("{s:?}"))
            .collect::<Vec<_>>()
            .join(", ")
    )
}

#[tokio::test]
async fn each_tenant_is_reachable_only_on_its_route_with_its_token() -> Result<()> {
    let dir = scratch("routes");
    let (private_a, private_b) = (dir.join("a-data"), dir.join("b-data"));
    for (d, secret) in [(&private_a, "a's file"), (&private_b, "b's file")] {
        std::fs::create_dir_all(d)?;
        std::fs::write(d.join("secret.txt"), secret)?;
    }
    let (plain, plain_dir) = plain_server(&dir)?;
    let token = "t0ken-of-locked";
    let other_token = "second-t0ken-of-locked";
    let config = write_config(
        &dir,
        &format!(
            "[[tenant]]\nid = \"node\"\ncommand = {}\ndirs = [\"{plain_dir}\"]\nenv = {{ CANARY = \"{CANARY}\" }}\n\n\
             [[tenant]]\nid = \"guest-a\"\nwasm = \"{}\"\ndirs = [\"{}::/data\"]\n\n\
             [[tenant]]\nid = \"guest-b\"\nwasm = \"{}\"\ndirs = [\"{}::/data\"]\n\n\
             [[tenant]]\nid = \"locked\"\ncommand = {}\ndirs = [\"{plain_dir}\"]\ntoken_sha256 = [\"{}\", \"{}\"]\n",
            toml_list(&plain),
            guest("wasm32-wasip1", "catwalk-hostile-fs-read"),
            private_a.display(),
            guest("wasm32-wasip1", "catwalk-hostile-env"),
            private_b.display(),
            toml_list(&plain),
            sha256_hex(token.as_bytes()),
            sha256_hex(other_token.as_bytes()),
        ),
    )?;
    let cw = Catwalk::start_without_command(
        &["--config", &config],
        &[("CATWALK_TEST_HOST_SECRET", CANARY)],
    )
    .await?;
    let route = |tenant: &str| format!("{}/t/{tenant}/mcp", cw.base);

    // The node tenant gets its own env, and nothing of catwalk's.
    let mut node = client(route("node"), None);
    node.initialize("2025-11-25").await?;
    let names: Vec<String> =
        serde_json::from_str(&node.call_text(json!(1), "echo_env", json!({})).await?)?;
    assert!(names.contains(&"CANARY".to_owned()), "{names:?}");
    assert!(
        !names.contains(&"CATWALK_TEST_HOST_SECRET".to_owned()),
        "{names:?}"
    );

    // Guest A reads its own grant but not B's directory; guest B does not see A's... or the node tenant's env.
    let mut guest_a = client(route("guest-a"), None);
    guest_a.initialize("2025-11-25").await?;
    let own = guest_a
        .call(json!(1), "read_file", json!({"path": "/data/secret.txt"}))
        .await?;
    assert_eq!(own["result"]["content"][0]["text"], "READ 8 bytes", "{own}");
    let other = guest_a
        .call(
            json!(2),
            "read_file",
            json!({"path": private_b.join("secret.txt")}),
        )
        .await?;
    assert_eq!(other["result"]["isError"], true, "{other}");
    let mut guest_b = client(route("guest-b"), None);
    guest_b.initialize("2025-11-25").await?;
    for name in ["CANARY", "CATWALK_TEST_HOST_SECRET"] {
        let answer = guest_b.call(json!(1), "env", json!({"name": name})).await?;
        assert_eq!(answer["result"]["content"][0]["text"], "absent", "{answer}");
    }

    // A session exists only on its own tenant's route.
    let mut stolen = client(route("guest-a"), None);
    stolen.session = node.session.clone();
    let answer = stolen
        .post(&json!({"jsonrpc": "2.0", "id": 9, "method": "tools/list"}))
        .await?;
    assert_eq!(answer.status, 404, "{}", answer.text);

    // The locked tenant: no token, a wrong one, or one in the query string are refused.
    let anonymous = client(route("locked"), None);
    let init = json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
        "protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "0"}}});
    for attempt in [&anonymous, &client(route("locked"), Some("guess"))] {
        let answer = attempt.post(&init).await?;
        assert_eq!(answer.status, 401, "{}", answer.text);
        let challenge = answer.headers["www-authenticate"].to_str()?;
        assert!(
            challenge.starts_with("Bearer resource_metadata=\"http://")
                && challenge.ends_with("/.well-known/oauth-protected-resource/t/locked/mcp\""),
            "{challenge}"
        );
        assert_eq!(answer.messages[0]["error"]["code"], -32600);
    }
    let in_query = client(format!("{}?access_token={token}", route("locked")), None)
        .post(&init)
        .await?;
    assert_eq!(in_query.status, 400, "{}", in_query.text);
    let metadata: Value = reqwest::get(format!(
        "{}/.well-known/oauth-protected-resource/t/locked/mcp",
        cw.base
    ))
    .await?
    .json()
    .await?;
    assert_eq!(metadata["resource"], route("locked"));

    // With its token it works; the session is that token's: with the tenant's other token it does not exist.
    let mut locked = client(route("locked"), Some(token));
    locked.initialize("2025-11-25").await?;
    assert!(
        locked
            .call_text(json!(1), "echo_env", json!({}))
            .await?
            .contains("PATH")
    );
    let mut other = client(route("locked"), Some(other_token));
    other.session = locked.session.clone();
    let answer = other
        .post(&json!({"jsonrpc": "2.0", "id": 2, "method": "tools/list"}))
        .await?;
    assert_eq!(answer.status, 404, "{}", answer.text);

    // No tenant on /mcp, none by an unknown id; nothing said anywhere shows the canary.
    for url in [cw.mcp(), route("nobody")] {
        let answer = client(url, None).post(&init).await?;
        assert_eq!(answer.status, 404, "{}", answer.text);
        assert!(!answer.text.contains(CANARY));
    }
    // Without an admin token, a machine of many tenants does not serve its metrics.
    assert_eq!(
        reqwest::get(format!("{}/metrics", cw.base)).await?.status(),
        404
    );
    let ready = reqwest::get(format!("{}/readyz", cw.base))
        .await?
        .text()
        .await?;
    assert!(
        ready.contains("\"guest-a\"") && !ready.contains(CANARY),
        "{ready}"
    );
    cw.stop().await?;
    std::fs::remove_dir_all(dir)?;
    Ok(())
}

#[tokio::test]
async fn a_bad_tenants_file_fails_at_start_naming_tenant_and_field_without_secrets() -> Result<()> {
    let dir = scratch("bad");
    let config = write_config(
        &dir,
        &format!(
            "[[tenant]]\nid = \"acme\"\ncommand = [\"x\"]\nenv = {{ KEY = \"{CANARY}\" }}\n\
             token_sha256 = [\"{CANARY}\"]\n"
        ),
    )?;
    let error = Catwalk::start_without_command(&["--config", &config], &[])
        .await
        .err()
        .expect("refused")
        .to_string();
    assert!(error.contains("tenant \"acme\": token_sha256"), "{error}");
    assert!(!error.contains(CANARY), "{error}");
    std::fs::remove_dir_all(dir)?;
    Ok(())
}

/// A file server on 127.0.0.1 for one module, counting its requests.
async fn module_server(bytes: Vec<u8>) -> Result<(String, Arc<AtomicUsize>)> {
    let hits = Arc::new(AtomicUsize::new(0));
    let counted = hits.clone();
    let app = axum::Router::new().route(
        "/guest.wasm",
        axum::routing::get(move || {
            let bytes = bytes.clone();
            let counted = counted.clone();
            async move {
                counted.fetch_add(1, Ordering::SeqCst);
                bytes
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}/guest.wasm", listener.local_addr()?);
    tokio::spawn(async move { axum::serve(listener, app).await });
    Ok((url, hits))
}

#[tokio::test]
async fn the_admin_api_adds_replaces_and_removes_tenants_and_pins_fetched_modules() -> Result<()> {
    let admin = "admin-t0ken";
    let state = scratch("admin").join("state");
    let cw = with_admin_api("admin", admin).await?;
    let http = reqwest::Client::new();
    let tenant_url = |id: &str| format!("{}/admin/tenants/{id}", cw.base);
    let put = |id: &str, body: Value, token: &str| {
        http.put(tenant_url(id))
            .bearer_auth(token)
            .header("content-type", "application/json")
            .body(body.to_string())
            .send()
    };

    let conformance = unique(std::fs::read(guest(
        "wasm32-wasip1",
        "catwalk-conformance-guest",
    ))?);
    let (url, hits) = module_server(conformance.clone()).await?;
    let pinned = |sha: String| json!({"id": "a", "wasm": {"url": url, "sha256": sha}});

    // Refused: no admin token, a wrong digest, a body that is not a tenant, an id that differs from the URL.
    assert_eq!(
        put("a", pinned(sha256_hex(&conformance)), "wrong")
            .await?
            .status(),
        401
    );
    let wrong = put("a", pinned(sha256_hex(b"other")), admin).await?;
    assert_eq!(wrong.status(), 400);
    assert!(wrong.text().await?.contains("SHA-256"));
    let not_json = http
        .put(tenant_url("a"))
        .bearer_auth(admin)
        .body(format!("{{\"id\": \"a\", \"env\": {{\"K\": \"{CANARY}\"}}"))
        .send()
        .await?;
    assert_eq!(not_json.status(), 400);
    assert!(!not_json.text().await?.contains(CANARY));
    assert_eq!(
        put("b", pinned(sha256_hex(&conformance)), admin)
            .await?
            .status(),
        400
    );

    // Added from the URL with the right digest, then served.
    assert_eq!(
        put("a", pinned(sha256_hex(&conformance)), admin)
            .await?
            .status(),
        201
    );
    let mut session = client(format!("{}/t/a/mcp", cw.base), None);
    session.initialize("2025-11-25").await?;
    assert_eq!(
        session
            .call_text(json!(1), "test_simple_text", json!({}))
            .await?,
        "This is a simple text response for testing."
    );
    // A second tenant with the same module is served from the cache: no further fetch.
    let fetched = hits.load(Ordering::SeqCst);
    let mut second = pinned(sha256_hex(&conformance));
    second["id"] = json!("a2");
    assert_eq!(put("a2", second, admin).await?.status(), 201);
    assert_eq!(
        hits.load(Ordering::SeqCst),
        fetched,
        "served from the cache"
    );
    assert!(
        state
            .join("modules")
            .join(format!("{}.wasm", sha256_hex(&conformance)))
            .exists()
    );

    // Replaced with another module: the open session ends, a new one sees the new server.
    let env_guest = guest("wasm32-wasip1", "catwalk-hostile-env");
    let replaced = put("a", json!({"id": "a", "wasm": env_guest}), admin).await?;
    assert_eq!(replaced.status(), 200);
    let answer = session
        .post(&json!({"jsonrpc": "2.0", "id": 2, "method": "tools/list"}))
        .await?;
    assert_eq!(answer.status, 404, "{}", answer.text);
    let mut fresh = client(format!("{}/t/a/mcp", cw.base), None);
    fresh.initialize("2025-11-25").await?;
    let answer = fresh.call(json!(1), "env", json!({"name": "HOME"})).await?;
    assert_eq!(answer["result"]["content"][0]["text"], "absent", "{answer}");

    let list: Value = http
        .get(format!("{}/admin/tenants", cw.base))
        .bearer_auth(admin)
        .send()
        .await?
        .json()
        .await?;
    let ids: Vec<&str> = list["tenants"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["a", "a2"]);
    assert_eq!(list["tenants"][0]["sessions"], 1);

    // Metrics need the admin token here; they count per tenant and show no tenant's env.
    let metrics = format!("{}/metrics", cw.base);
    assert_eq!(http.get(&metrics).send().await?.status(), 401);
    let text = http
        .get(&metrics)
        .bearer_auth(admin)
        .send()
        .await?
        .text()
        .await?;
    assert!(text.contains("catwalk_sessions{tenant=\"a\"} 1"), "{text}");
    assert!(text.contains("catwalk_sessions{tenant=\"a2\"} 0"), "{text}");
    // Two sessions had a guest: started for them, or taken from the spares started ahead of need.
    let started = |outcome: &str| {
        metric(
            &text,
            &format!(
                "catwalk_instance_starts_total{{tenant=\"a\",backend=\"wasi\",outcome=\"{outcome}\"}}"
            ),
        )
        .unwrap_or(0.0)
    };
    assert_eq!(started("ok") + started("spare"), 2.0, "{text}");
    assert!(!text.contains(CANARY));

    // Removed: its session ends, its route is gone.
    let removed = http
        .delete(tenant_url("a"))
        .bearer_auth(admin)
        .send()
        .await?;
    assert_eq!(removed.status(), 204);
    let answer = fresh
        .post(&json!({"jsonrpc": "2.0", "id": 2, "method": "tools/list"}))
        .await?;
    assert_eq!(answer.status, 404, "{}", answer.text);
    let again = http
        .delete(tenant_url("a"))
        .bearer_auth(admin)
        .send()
        .await?;
    assert_eq!(again.status(), 404);
    cw.stop().await?;
    std::fs::remove_dir_all(scratch("admin"))?;
    Ok(())
}

#[tokio::test]
async fn a_tenant_session_cap_holds_while_others_still_get_sessions() -> Result<()> {
    let dir = scratch("caps");
    let demo = guest("wasm32-wasip1", "catwalk-hostile-env");
    let config = write_config(
        &dir,
        &format!(
            "[[tenant]]\nid = \"small\"\nwasm = \"{demo}\"\n[tenant.limits]\nmax_sessions = 2\n\n\
             [[tenant]]\nid = \"other\"\nwasm = \"{demo}\"\n"
        ),
    )?;
    let cw = Catwalk::start_without_command(&["--config", &config], &[]).await?;
    let mut open = Vec::new();
    for _ in 0..2 {
        let mut c = client(format!("{}/t/small/mcp", cw.base), None);
        c.initialize("2025-11-25").await?;
        open.push(c);
    }
    let init = json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
        "protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "0"}}});
    let third = client(format!("{}/t/small/mcp", cw.base), None)
        .post(&init)
        .await?;
    assert_eq!(third.status, 503, "{}", third.text);
    let mut other = client(format!("{}/t/other/mcp", cw.base), None);
    other.initialize("2025-11-25").await?;
    cw.stop().await?;
    std::fs::remove_dir_all(dir)?;
    Ok(())
}

/// Whether this kernel enforces Landlock, asked of the kernel itself (not of catwalk).
fn kernel_has_landlock() -> bool {
    use landlock::{ABI, Access, AccessFs, Ruleset, RulesetAttr};
    Ruleset::default()
        .handle_access(AccessFs::from_all(ABI::V1))
        .and_then(|r| r.create())
        .is_ok()
}

#[tokio::test]
async fn children_of_different_tenants_cannot_read_or_signal_each_other() -> Result<()> {
    let dir = scratch("confined");
    let (plain, plain_dir) = plain_server(&dir)?;
    // Readable by every uid, but granted to no tenant: only Landlock keeps it from them.
    let ungranted = dir.join("ungranted.txt");
    std::fs::write(&ungranted, "not granted")?;
    let state = std::env::temp_dir().join("catwalk-test-state");
    let config = write_config(
        &dir,
        &format!(
            "[[tenant]]\nid = \"alpha\"\ncommand = {cmd}\ndirs = [\"{plain_dir}\"]\n\
             [tenant.limits]\nnofile = 512\n\n\
             [[tenant]]\nid = \"beta\"\ncommand = {cmd}\ndirs = [\"{plain_dir}\"]\n",
            cmd = toml_list(&plain),
        ),
    )?;
    let cw = Catwalk::start_without_command(&["--config", &config], &[]).await?;
    let ready: Value = reqwest::get(format!("{}/readyz", cw.base))
        .await?
        .json()
        .await?;
    let children = &ready["children"];
    let root = rustix::process::geteuid().is_root();
    assert_eq!(children["uid_per_tenant"], root, "{ready}");
    let landlock = kernel_has_landlock();
    assert_eq!(children["landlock"] != "none", landlock, "{ready}");

    let mut alpha = client(format!("{}/t/alpha/mcp", cw.base), None);
    let mut beta = client(format!("{}/t/beta/mcp", cw.base), None);
    alpha.initialize("2025-11-25").await?;
    beta.initialize("2025-11-25").await?;
    async fn call(client: &Client, tool: &str, args: Value) -> Result<String> {
        let answer = client.call(json!(tool), tool, args).await?;
        Ok(answer["result"]["content"][0]["text"]
            .as_str()
            .unwrap_or_default()
            .to_owned())
    }
    let who = |text: String| -> Result<Value> { Ok(serde_json::from_str(&text)?) };
    let a = who(call(&alpha, "whoami", json!({})).await?)?;
    let b = who(call(&beta, "whoami", json!({})).await?)?;
    let beta_work = state.join("tenants/beta/work");
    assert_eq!(
        a["cwd"],
        state.join("tenants/alpha/work").display().to_string()
    );
    assert_eq!(b["cwd"], beta_work.display().to_string());
    assert_eq!(
        a["home"],
        state.join("tenants/alpha/home").display().to_string()
    );
    assert_eq!(
        a["tmpdir"],
        state.join("tenants/alpha/tmp").display().to_string()
    );

    // Each writes in its own working dir.
    let secret = beta_work.join("secret.txt");
    assert_eq!(
        call(
            &beta,
            "write_file",
            json!({"path": secret, "text": "beta's"})
        )
        .await?,
        "written"
    );
    assert_eq!(
        call(&beta, "read_file", json!({"path": secret})).await?,
        "beta's"
    );
    assert_eq!(
        call(
            &alpha,
            "write_file",
            json!({"path": state.join("tenants/alpha/work/mine.txt"), "text": "a"})
        )
        .await?,
        "written"
    );
    // Open files are limited as the tenant asked (alpha) or by default (beta).
    let limits = |text: String| {
        text.lines()
            .find(|l| l.starts_with("Max open files"))
            .map(|l| l.split_whitespace().nth(3).unwrap_or_default().to_owned())
            .unwrap_or_default()
    };
    let proc_limits = json!({"path": "/proc/self/limits"});
    assert_eq!(
        limits(call(&alpha, "read_file", proc_limits.clone()).await?),
        "512"
    );
    assert_eq!(limits(call(&beta, "read_file", proc_limits).await?), "4096");

    if root || landlock {
        // Alpha cannot read beta's files, nor write into beta's dir.
        let read = call(&alpha, "read_file", json!({"path": secret})).await?;
        assert_eq!(read, "error: EACCES");
        let write = call(
            &alpha,
            "write_file",
            json!({"path": beta_work.join("x"), "text": "x"}),
        )
        .await?;
        assert_eq!(write, "error: EACCES");
    }
    if landlock {
        // What no grant names is out of reach, even where the file's mode would let anyone read it; and
        // signals stay inside the child's own domain.
        let read = call(&alpha, "read_file", json!({"path": ungranted})).await?;
        assert_eq!(read, "error: EACCES");
        // Nor the tenants file, which holds every tenant's secrets, nor the rest of /etc beyond what programs
        // need to start.
        let read = call(&alpha, "read_file", json!({"path": config})).await?;
        assert_eq!(read, "error: EACCES");
        assert_eq!(
            call(&alpha, "read_file", json!({"path": "/etc/debian_version"})).await?,
            "error: EACCES"
        );
        assert!(
            !call(&alpha, "read_file", json!({"path": "/etc/hosts"}))
                .await?
                .starts_with("error")
        );
        let write = call(
            &alpha,
            "write_file",
            json!({"path": dir.join("new.txt"), "text": "x"}),
        )
        .await?;
        assert_eq!(write, "error: EACCES");
    }
    if root {
        assert_ne!(a["uid"], 0);
        assert_ne!(a["uid"], b["uid"]);
        // catwalk's own environment (it holds every tenant's secrets) is closed to a tenant's uid.
        let environ = json!({"path": format!("/proc/{}/environ", std::process::id())});
        assert_eq!(call(&alpha, "read_file", environ).await?, "error: EACCES");
    }
    if root || landlock {
        let signal = call(&alpha, "signal", json!({"pid": b["pid"]})).await?;
        assert_eq!(signal, "error: EPERM");
        let signal = call(&alpha, "signal", json!({"pid": std::process::id()})).await?;
        assert_eq!(signal, "error: EPERM");
    }
    assert_eq!(
        call(&alpha, "signal", json!({"pid": a["pid"]})).await?,
        "sent"
    );
    cw.stop().await?;
    std::fs::remove_dir_all(dir)?;
    Ok(())
}

#[tokio::test]
async fn a_catalog_serves_listed_packages_sandboxed_and_others_through_npx() -> Result<()> {
    let dir = scratch("catalog");
    std::fs::create_dir_all(&dir)?;
    let env_guest = std::fs::read(guest("wasm32-wasip1", "catwalk-hostile-env"))?;
    std::fs::write(dir.join("env-guest.wasm"), &env_guest)?;
    let catalog = dir.join("catalog.toml");
    std::fs::write(
        &catalog,
        format!(
            "[[package]]\nname = \"@catwalk-test/env-guest\"\n\
             wasm = {{ path = \"env-guest.wasm\", sha256 = \"{}\" }}\n\
             [[package]]\nname = \"@catwalk-test/tampered\"\nversion = \"1.0.0\"\n\
             wasm = {{ path = \"env-guest.wasm\", sha256 = \"{}\" }}\n",
            sha256_hex(&env_guest),
            sha256_hex(b"something else"),
        ),
    )?;
    let catalog = catalog.display().to_string();

    // A tenant whose package is listed runs its WASI build with its env; one not listed goes to npx.
    let config = write_config(
        &dir,
        &format!(
            "[[tenant]]\nid = \"listed\"\npackage = \"@catwalk-test/env-guest@3.1.4\"\n\
             env = {{ CANARY = \"{CANARY}\" }}\n\n\
             [[tenant]]\nid = \"unlisted\"\npackage = \"@catwalk-test/not-in-the-catalog\"\n\n\
             [[tenant]]\nid = \"forced\"\npackage = \"@catwalk-test/env-guest\"\nsandbox = \"npx\"\n"
        ),
    )?;
    let cw =
        Catwalk::start_without_command(&["--config", &config, "--catalog", &catalog], &[]).await?;
    let ready: Value = reqwest::get(format!("{}/readyz", cw.base))
        .await?
        .json()
        .await?;
    let detail = |tenant: &str| {
        ready["tenants"][tenant]["detail"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    };
    assert!(
        detail("listed").starts_with("@catwalk-test/env-guest@3.1.4 (wasm32-wasip1"),
        "{ready}"
    );
    assert!(
        detail("unlisted").contains("package @catwalk-test/not-in-the-catalog"),
        "{ready}"
    );
    assert!(
        detail("forced").contains("package @catwalk-test/env-guest"),
        "{ready}"
    );
    let mut listed = client(format!("{}/t/listed/mcp", cw.base), None);
    listed.initialize("2025-11-25").await?;
    let env = |name: &'static str| {
        let listed = &listed;
        async move {
            listed
                .call_text(json!(name), "env", json!({"name": name}))
                .await
        }
    };
    assert_eq!(env("CANARY").await?, format!("SET {CANARY}"));
    assert_eq!(env("PATH").await?, "absent");
    cw.stop().await?;

    // The single-tenant flow: a package (MCP_PACKAGE) listed in the catalog runs sandboxed, with the tenant's variables.
    let cw = Catwalk::start_without_command(
        &[
            "--catalog",
            &catalog,
            "--package",
            "@catwalk-test/env-guest",
        ],
        &[("API_KEY", "k-123")],
    )
    .await?;
    let mut single = Client::new(cw.mcp());
    single.initialize("2025-11-25").await?;
    assert_eq!(
        single
            .call_text(json!(1), "env", json!({"name": "API_KEY"}))
            .await?,
        "SET k-123"
    );
    assert_eq!(
        single
            .call_text(json!(2), "env", json!({"name": "HOME"}))
            .await?,
        "absent"
    );
    cw.stop().await?;

    // A build whose digest does not match its pin is refused; a package that must be sandboxed, has no build
    // and cannot be packed either (npm has no such package) is refused: catwalk does not start, and says why.
    for (package, sandbox, expected) in [
        ("@catwalk-test/tampered@1.0.0", "auto", "SHA-256"),
        (
            "@catwalk-test/not-in-the-catalog",
            "wasi",
            "cannot run sandboxed (--sandbox wasi): npm could not resolve @catwalk-test/not-in-the-catalog",
        ),
    ] {
        let cw = Catwalk::start_without_command(
            &[
                "--catalog",
                &catalog,
                "--sandbox",
                sandbox,
                "--package",
                package,
            ],
            &[],
        )
        .await?;
        let error = cw.stop().await.expect_err("refused").to_string();
        assert!(error.contains(expected), "{package}: {error}");
    }
    std::fs::remove_dir_all(dir)?;
    Ok(())
}

/// The uid of every process whose command line mentions `needle`.
fn uids_of(needle: &str) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter(|e| {
            e.file_name()
                .to_str()
                .is_some_and(|n| n.bytes().all(|b| b.is_ascii_digit()))
        })
        .filter(|e| {
            std::fs::read(e.path().join("cmdline"))
                .is_ok_and(|c| String::from_utf8_lossy(&c).contains(needle))
        })
        .filter_map(|e| {
            let status = std::fs::read_to_string(e.path().join("status")).ok()?;
            let line = status.lines().find(|l| l.starts_with("Uid:"))?;
            line.split_whitespace().nth(1)?.parse().ok()
        })
        .collect()
}

#[tokio::test]
async fn a_real_npm_package_installs_and_runs_confined_as_its_tenant() -> Result<()> {
    let dir = scratch("npm");
    let config = write_config(
        &dir,
        "[[tenant]]\nid = \"everything\"\npackage = \"@modelcontextprotocol/server-everything\"\n",
    )?;
    let cw = Catwalk::start_without_command(&["--config", &config], &[]).await?;
    // Installed into the tenant's own dir, as the tenant (the registry is reached with the machine's CA settings).
    crate::support::eventually(
        std::time::Duration::from_secs(240),
        "the package installed",
        || async {
            let ready: Value = match reqwest::get(format!("{}/readyz", cw.base)).await {
                Ok(r) => r.json().await.unwrap_or_default(),
                Err(_) => Value::Null,
            };
            ready["tenants"]["everything"]["ready"] == true
        },
    )
    .await?;
    let mut everything = client(format!("{}/t/everything/mcp", cw.base), None);
    everything.initialize("2025-11-25").await?;
    assert_eq!(
        everything
            .call_text(json!(1), "echo", json!({"message": "confined"}))
            .await?,
        "Echo: confined"
    );
    let uids = uids_of("tenants/everything/npm/");
    assert!(
        !uids.is_empty(),
        "the server runs from the tenant's install"
    );
    if rustix::process::geteuid().is_root() {
        assert!(uids.iter().all(|&uid| uid >= 1_000_000_000), "{uids:?}");
    }
    cw.stop().await?;
    std::fs::remove_dir_all(dir)?;
    Ok(())
}
