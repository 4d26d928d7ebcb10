//! Tenants put through the admin API are kept: versioned, safe to retry, sealed at rest, and back after a
//! crash. And a fleet's tenants are routed by where the control plane placed them.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};

use crate::support::{Catwalk, client, eventually, helper, sha256_hex, spawn_serving};
use crate::tenants::STATE_KEY;
use crate::wasi::guest;

const ADMIN: &str = "durable-admin-t0ken";

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("catwalk-durable-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("a scratch dir");
    dir
}

/// catwalk in this process with the admin API, `tenants_toml` as its tenants file, `flags` and `env`.
async fn in_process(
    dir: &Path,
    tenants_toml: &str,
    flags: &[&str],
    env: &[(&str, &str)],
) -> Result<Catwalk> {
    let config = dir.join("tenants.toml");
    std::fs::write(&config, tenants_toml)?;
    let state = dir.join("state").display().to_string();
    let admin = sha256_hex(ADMIN.as_bytes());
    let mut all = vec![
        "--config",
        config.to_str().context("UTF-8")?,
        "--admin-token-sha256",
        &admin,
        "--state-dir",
        &state,
    ];
    all.extend_from_slice(flags);
    Catwalk::start_without_command(&all, env).await
}

struct Admin {
    http: reqwest::Client,
    base: String,
}

impl Admin {
    fn new(base: &str) -> Self {
        Self {
            http: reqwest::Client::new(),
            base: base.to_owned(),
        }
    }

    fn put(&self, path: &str, body: &Value) -> reqwest::RequestBuilder {
        self.http
            .put(format!("{}/admin/{path}", self.base))
            .bearer_auth(ADMIN)
            .header("content-type", "application/json")
            .body(body.to_string())
    }

    fn get(&self, path: &str) -> reqwest::RequestBuilder {
        self.http
            .get(format!("{}/admin/{path}", self.base))
            .bearer_auth(ADMIN)
    }

    fn delete(&self, path: &str) -> reqwest::RequestBuilder {
        self.http
            .delete(format!("{}/admin/{path}", self.base))
            .bearer_auth(ADMIN)
    }
}

fn etag(response: &reqwest::Response) -> String {
    response
        .headers()
        .get("etag")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned()
}

/// The JSON-RPC error message of an admin refusal.
async fn refusal(response: reqwest::Response) -> Result<(u16, String)> {
    let status = response.status().as_u16();
    let body: Value = response.json().await?;
    let message = body["error"]["message"]
        .as_str()
        .with_context(|| format!("a JSON-RPC error: {body}"))?
        .to_owned();
    Ok((status, message))
}

#[tokio::test]
async fn admin_changes_are_versioned_and_a_repeated_put_leaves_sessions_alone() -> Result<()> {
    let dir = scratch("versions");
    let wasm = guest("wasm32-wasip1", "catwalk-conformance-guest");
    let file_tenant = format!("[[tenant]]\nid = \"from-file\"\nwasm = \"{wasm}\"\n");
    let cw = in_process(&dir, &file_tenant, &[], &[("CATWALK_STATE_KEY", STATE_KEY)]).await?;
    let admin = Admin::new(&cw.base);
    let def = json!({"id": "a", "wasm": wasm, "env": {"API_TOKEN": "canary-versions-51e2"}});

    // Added only if absent, with its version in ETag.
    let added = admin
        .put("tenants/a", &def)
        .header("if-none-match", "*")
        .send()
        .await?;
    assert_eq!(added.status(), 201);
    let first = etag(&added);
    assert!(!first.is_empty());

    // A session on it survives the same PUT again (a retry): nothing changes, not even the version.
    let mut session = client(format!("{}/t/a/mcp", cw.base), None);
    session.initialize("2025-11-25").await?;
    let retried = admin.put("tenants/a", &def).send().await?;
    assert_eq!(retried.status(), 200);
    assert_eq!(etag(&retried), first);
    assert_eq!(retried.json::<Value>().await?["changed"], false);
    assert_eq!(
        session
            .call_text(json!(1), "test_simple_text", json!({}))
            .await?,
        "This is a simple text response for testing."
    );

    // Five concurrent replacements, each conditional on the first version: exactly one wins, the rest get 412.
    let puts = (0..5).map(|i| {
        let mut changed = def.clone();
        changed["env"]["N"] = json!(i.to_string());
        admin
            .put("tenants/a", &changed)
            .header("if-match", first.as_str())
            .send()
    });
    let answers = futures_util::future::join_all(puts).await;
    let mut statuses: Vec<u16> = Vec::new();
    let mut current = first.clone();
    for answer in answers {
        let answer = answer?;
        if answer.status() == 200 {
            current = etag(&answer);
        } else {
            let (status, message) = refusal(answer).await?;
            assert!(message.contains("not the current one"), "{message}");
            statuses.push(status);
            continue;
        }
        statuses.push(200);
    }
    statuses.sort_unstable();
    assert_eq!(statuses, [200, 412, 412, 412, 412]);
    assert_ne!(current, first);
    let shown = admin.get("tenants/a").send().await?;
    assert_eq!(etag(&shown), current);
    let shown: Value = shown.json().await?;
    assert_eq!(shown["source"], "admin");
    assert!(!shown.to_string().contains("canary-versions"), "{shown}");

    // A stale DELETE is refused; the current one removes it.
    let stale = admin
        .delete("tenants/a")
        .header("if-match", first.as_str())
        .send()
        .await?;
    assert_eq!(stale.status(), 412);
    let removed = admin
        .delete("tenants/a")
        .header("if-match", current.as_str())
        .send()
        .await?;
    assert_eq!(removed.status(), 204);

    // The tenants file's tenant is the operator's.
    let (status, message) = refusal(
        admin
            .put(
                "tenants/from-file",
                &json!({"id": "from-file", "wasm": wasm}),
            )
            .send()
            .await?,
    )
    .await?;
    assert_eq!(status, 409);
    assert!(message.contains("tenants file"), "{message}");
    assert_eq!(
        admin.delete("tenants/from-file").send().await?.status(),
        409
    );

    // Placement needs a machine id.
    let (status, message) =
        refusal(admin.put("placement", &json!({"a": "m1"})).send().await?).await?;
    assert_eq!(status, 409);
    assert!(message.contains("machine id"), "{message}");
    cw.stop().await?;

    // Without a key, a tenant with secrets is refused with the reason, and one without is kept.
    let plain = scratch("no-key");
    let cw = in_process(&plain, "", &[], &[]).await?;
    let admin = Admin::new(&cw.base);
    let (status, message) = refusal(admin.put("tenants/a", &def).send().await?).await?;
    assert_eq!(status, 422);
    assert!(message.contains("CATWALK_STATE_KEY"), "{message}");
    assert!(!message.contains("canary"), "{message}");
    let bare = json!({"id": "b", "wasm": wasm});
    assert_eq!(admin.put("tenants/b", &bare).send().await?.status(), 201);
    cw.stop().await?;
    std::fs::remove_dir_all(dir)?;
    std::fs::remove_dir_all(plain)?;
    Ok(())
}

#[tokio::test]
async fn tenants_are_routed_to_where_they_are_placed_and_a_moved_one_drains() -> Result<()> {
    let dir = scratch("placement");
    let wasm = guest("wasm32-wasip1", "catwalk-conformance-guest");
    let cw = in_process(
        &dir,
        "",
        &["--machine-id", "m1", "--move-deadline", "3s"],
        &[("CATWALK_STATE_KEY", STATE_KEY)],
    )
    .await?;
    let admin = Admin::new(&cw.base);
    for id in ["stay", "moves", "lingers"] {
        let def = json!({"id": id, "wasm": wasm});
        assert_eq!(
            admin
                .put(&format!("tenants/{id}"), &def)
                .send()
                .await?
                .status(),
            201
        );
    }
    let mut moving = client(format!("{}/t/moves/mcp", cw.base), None);
    moving.initialize("2025-11-25").await?;
    let mut lingering = client(format!("{}/t/lingers/mcp", cw.base), None);
    lingering.initialize("2025-11-25").await?;

    let placement = json!({"stay": "m1", "moves": "m2", "lingers": "m2", "elsewhere": "m3"});
    let placed = admin.put("placement", &placement).send().await?;
    assert_eq!(placed.status(), 201);
    let version = etag(&placed);
    let again = admin.put("placement", &placement).send().await?;
    assert_eq!(
        (again.status().as_u16(), etag(&again)),
        (200, version.clone())
    );
    let stale = admin
        .put("placement", &json!({}))
        .header("if-match", "\"1\"")
        .send()
        .await?;
    assert_eq!(stale.status(), 412);
    assert_eq!(
        admin.get("placement").send().await?.json::<Value>().await?,
        placement
    );

    // New sessions of a moved tenant are replayed to its machine; its open session goes on here.
    let mut fresh = client(format!("{}/t/moves/mcp", cw.base), None);
    let refused = fresh
        .request(
            &json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
            "protocolVersion": "2025-11-25", "capabilities": {},
            "clientInfo": {"name": "t", "version": "1"}}}),
        )
        .send()
        .await?;
    assert_eq!(refused.status(), 421);
    assert_eq!(
        refused.headers()["fly-replay"],
        "instance=m2;timeout=5s;fallback=force_self"
    );
    assert_eq!(
        moving
            .call_text(json!(1), "test_simple_text", json!({}))
            .await?,
        "This is a simple text response for testing."
    );
    // So does its protected-resource metadata.
    let http = reqwest::Client::new();
    let metadata = http
        .get(format!(
            "{}/.well-known/oauth-protected-resource/t/moves/mcp",
            cw.base
        ))
        .send()
        .await?;
    assert_eq!(metadata.status(), 421);
    // A tenant placed here is served; one placed on a machine that could not take it gets 503 and a retry;
    // one the fleet does not know is 404.
    fresh = client(format!("{}/t/stay/mcp", cw.base), None);
    fresh.initialize("2025-11-25").await?;
    let back = http
        .get(format!(
            "{}/.well-known/oauth-protected-resource/t/elsewhere/mcp",
            cw.base
        ))
        .header("fly-replay-failed", "1")
        .send()
        .await?;
    assert_eq!(back.status(), 503);
    assert_eq!(back.headers()["retry-after"], "1");
    let unknown = client(format!("{}/t/nowhere/mcp", cw.base), None)
        .request(&json!({"jsonrpc": "2.0", "id": 0, "method": "ping"}))
        .send()
        .await?;
    assert_eq!(unknown.status(), 404);

    // The moved tenant's session ends: the tenant is gone from here. The lingering one is ended at the deadline.
    assert_eq!(moving.delete().await?, 200);
    eventually(
        Duration::from_secs(30),
        "the moved tenant drained",
        || async {
            admin
                .get("tenants/moves")
                .send()
                .await
                .is_ok_and(|r| r.status() == reqwest::StatusCode::NOT_FOUND)
        },
    )
    .await?;
    eventually(
        Duration::from_secs(30),
        "the lingering session ended",
        || async {
            lingering
                .post(&json!({"jsonrpc": "2.0", "id": 3, "method": "tools/list"}))
                .await
                .is_ok_and(|a| a.status == 404)
        },
    )
    .await?;
    assert_eq!(admin.get("tenants/lingers").send().await?.status(), 404);
    assert_eq!(admin.get("tenants/stay").send().await?.status(), 200);
    cw.stop().await?;
    std::fs::remove_dir_all(dir)?;
    Ok(())
}

/// A catwalk process (so that it can be killed), serving once it says so in its log.
struct Process {
    child: tokio::process::Child,
    base: String,
}

async fn spawn(state: &Path, config: &Path) -> Result<Process> {
    let mut command = tokio::process::Command::new(helper());
    command
        .args(["serve", "--port", "0", "--log-format", "json", "--config"])
        .arg(config)
        .arg("--state-dir")
        .arg(state)
        .arg("--helper")
        .arg(helper())
        .args(["--machine-id", "m1"])
        .arg("--admin-token-sha256")
        .arg(sha256_hex(ADMIN.as_bytes()))
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("CATWALK_STATE_KEY", STATE_KEY)
        .stdin(Stdio::null())
        .stdout(Stdio::null());
    let (child, addr, mut lines) = spawn_serving(&mut command).await?;
    // The rest of its log is read and dropped, so that it never blocks on a full pipe.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    Ok(Process {
        child,
        base: format!("http://{addr}"),
    })
}

/// What the test knows of one tenant or the placement: the version last answered, and, while a change is in
/// flight, that it may or may not have been kept.
#[derive(Debug, Clone, PartialEq)]
enum Known {
    Absent,
    At(u64),
}

/// A small generator of choices, seeded from the clock (the seed is printed to replay a failure).
struct Dice(u64);

impl Dice {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

fn version_of(response: &reqwest::Response) -> Result<u64> {
    etag(response)
        .trim_matches('"')
        .parse()
        .context("a version in ETag")
}

#[tokio::test]
async fn every_answered_change_survives_sigkill_and_no_secret_is_kept_in_plain_text() -> Result<()>
{
    const ROUNDS: usize = 20;
    const CHANGES: usize = 1000;
    const IDS: u64 = 24;
    let dir = scratch("crash");
    let state = dir.join("state");
    let config = dir.join("tenants.toml");
    std::fs::write(&config, "")?;
    let (server, _) = crate::support::plain_server(&dir)?;
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_nanos() as u64
        | 1;
    eprintln!("crash test seed: {seed}");
    let mut dice = Dice(seed);
    let mut tenants: BTreeMap<String, Known> = BTreeMap::new();
    let mut placement = Known::Absent;
    let mut canaries = Vec::new();
    let mut done = 0;
    let mut caught = 0;
    for round in 0..ROUNDS {
        let mut process = spawn(&state, &config).await?;
        let admin = Admin::new(&process.base);
        check_kept(&admin, &tenants, &placement, None).await?;
        let pid = process.child.id().context("a pid")? as i32;
        // This round's share of the changes, and the moment it is killed: after a random number of them, a
        // random few hundred microseconds into the next.
        let share = (CHANGES - done) / (ROUNDS - round);
        let kill_after = if round + 1 == ROUNDS {
            share - 1
        } else {
            dice.below(share as u64) as usize
        };
        let mut in_flight: Option<(String, bool)> = None;
        for n in 0..share {
            let id = format!("t{}", dice.below(IDS));
            let roll = dice.below(10);
            let kill_now = n == kill_after;
            let killer = kill_now.then(|| {
                let wait = Duration::from_micros(dice.below(800));
                tokio::spawn(async move {
                    tokio::time::sleep(wait).await;
                    let _ = nix::sys::signal::kill(
                        nix::unistd::Pid::from_raw(pid),
                        nix::sys::signal::Signal::SIGKILL,
                    );
                })
            });
            let request = if roll < 6 {
                let canary = format!("canary-{round}-{n}-{seed:x}");
                canaries.push(canary.clone());
                let def = json!({"id": id, "command": server, "env": {"API_TOKEN": canary},
                                 "limits": {"max_sessions": 1 + n}});
                admin.put(&format!("tenants/{id}"), &def)
            } else if roll < 8 {
                admin.delete(&format!("tenants/{id}"))
            } else {
                // Other machines' tenants (one of this machine's placed elsewhere would drain away).
                let map: BTreeMap<String, String> = (0..dice.below(5))
                    .map(|i| (format!("x{}", dice.below(IDS)), format!("m{}", i % 3 + 1)))
                    .collect();
                admin.put("placement", &json!(map))
            };
            let key = if roll < 8 {
                id.clone()
            } else {
                "placement".into()
            };
            let answer = request.send().await;
            done += 1;
            match answer {
                Ok(answer) => {
                    let status = answer.status().as_u16();
                    let known = match status {
                        200 | 201 => Known::At(version_of(&answer)?),
                        204 => Known::Absent,
                        404 if (6..8).contains(&roll) => Known::Absent,
                        _ => bail!(
                            "change {n} of round {round}: {status} {}",
                            answer.text().await?
                        ),
                    };
                    if key == "placement" {
                        placement = known;
                    } else {
                        tenants.insert(key, known);
                    }
                }
                // Killed while this change was in flight: it may or may not have been kept.
                Err(_) => {
                    in_flight = Some((key, (6..8).contains(&roll)));
                }
            }
            if let Some(killer) = killer {
                killer.await?;
                break;
            }
        }
        caught += usize::from(in_flight.is_some());
        if in_flight.is_none() {
            // Killed between changes, or not at all in this round: then now.
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
        process.child.wait().await?;
        // After the restart, the state holds every answered change, and possibly the one in flight.
        let process = spawn(&state, &config).await?;
        let admin = Admin::new(&process.base);
        let settled = check_kept(&admin, &tenants, &placement, in_flight.as_ref()).await?;
        if let Some((key, now)) = settled {
            if key == "placement" {
                placement = now;
            } else {
                tenants.insert(key, now);
            }
        }
        drop(process);
    }
    eprintln!("{done} changes; {caught} of {ROUNDS} kills caught a change in flight");
    assert_eq!(done, CHANGES);

    // Nothing of any tenant's secrets is in the state dir in plain text.
    let mut files = vec![state.clone()];
    let mut read = 0;
    while let Some(path) = files.pop() {
        if path.is_dir() {
            files.extend(std::fs::read_dir(&path)?.filter_map(|e| e.ok().map(|e| e.path())));
        } else if let Ok(bytes) = std::fs::read(&path) {
            read += 1;
            let text = String::from_utf8_lossy(&bytes);
            for canary in &canaries {
                assert!(
                    !text.contains(canary.as_str()),
                    "{canary} is in {}",
                    path.display()
                );
            }
            assert!(
                !text.contains(STATE_KEY),
                "the key is in {}",
                path.display()
            );
        }
    }
    assert!(read > 0);
    std::fs::remove_dir_all(dir)?;
    Ok(())
}

/// Checks that catwalk serves exactly what `tenants` and `placement` say, but for `in_flight` (the change that
/// was in flight at the kill, and whether it was a DELETE: kept or not). Returns what it turned out to be.
async fn check_kept(
    admin: &Admin,
    tenants: &BTreeMap<String, Known>,
    placement: &Known,
    in_flight: Option<&(String, bool)>,
) -> Result<Option<(String, Known)>> {
    let listed: Value = admin.get("tenants").send().await?.json().await?;
    let mut served = BTreeMap::new();
    for tenant in listed["tenants"].as_array().context("a list")? {
        let id = tenant["id"].as_str().context("an id")?.to_owned();
        let version = tenant["version"].as_u64().context("a version")?;
        served.insert(id, Known::At(version));
    }
    let placed = admin.get("placement").send().await?;
    let placed = match etag(&placed).as_str() {
        "" => Known::Absent,
        tag => Known::At(tag.trim_matches('"').parse()?),
    };
    let mut settled = None;
    let mut expected: BTreeMap<String, Known> = tenants
        .iter()
        .filter(|(_, k)| **k != Known::Absent)
        .map(|(id, k)| (id.clone(), k.clone()))
        .collect();
    let mut expected_placement = placement.clone();
    if let Some((key, deleting)) = in_flight {
        // The change in flight: whatever is there now must be what was answered before, or newer than any
        // version answered (the change itself).
        let newest = tenants
            .values()
            .chain([placement])
            .filter_map(|k| match k {
                Known::At(v) => Some(*v),
                Known::Absent => None,
            })
            .max()
            .unwrap_or(0);
        let now = if key == "placement" {
            placed.clone()
        } else {
            served.get(key).cloned().unwrap_or(Known::Absent)
        };
        let before = if key == "placement" {
            placement.clone()
        } else {
            tenants.get(key).cloned().unwrap_or(Known::Absent)
        };
        let acceptable = now == before
            || if *deleting {
                now == Known::Absent
            } else {
                matches!(now, Known::At(v) if v > newest)
            };
        if !acceptable {
            bail!("{key} is {now:?} after the kill: it was {before:?}, newest answered {newest}");
        }
        if key == "placement" {
            expected_placement = now.clone();
        } else if now == Known::Absent {
            expected.remove(key);
        } else {
            expected.insert(key.clone(), now.clone());
        }
        settled = Some((key.clone(), now));
    }
    assert_eq!(served, expected, "the tenants kept");
    assert_eq!(placed, expected_placement, "the placement kept");
    Ok(settled)
}
