//! The packed server run in the sandbox, as it will be served: the bytecode step runs it to its exit, and
//! the smoke test asks it `initialize` and `tools/list`. A failure quotes what the guest wrote to stderr.
//!
//! A `tools/list` answered with an error fails the test, unless the server asked the network for something
//! and did not get it: a server that fetches its list from its API (as Supabase's does) answers that way
//! whenever its API is out of reach, under Node too. It is packed, and the manifest says why it has no list.

use std::sync::Arc;

use bytes::Bytes;

use super::{Artifact, PackError, Packer, SMOKE_TIMEOUT, io};
use crate::backend::ServerEvent;
use crate::backend::wasi::{GuestPolicy, WasiServer};

impl Packer {
    pub(super) fn server(&self, policy: &GuestPolicy) -> Result<Arc<WasiServer>, String> {
        self.server_of(&self.runtime, policy)
    }

    /// A server of `wasm` (the runtime, or a snapshot of it) under `policy`.
    pub(super) fn server_of(
        &self,
        wasm: &[u8],
        policy: &GuestPolicy,
    ) -> Result<Arc<WasiServer>, String> {
        WasiServer::new(self.wasi.clone(), "catwalk-js", wasm, policy.clone())
            .map(|server| Arc::new(server.with_stderr_tail()))
            .map_err(|e| e.to_string())
    }

    /// Runs the runtime until it exits: `Err` with why (and what it wrote to stderr), unless it exited with
    /// status 0.
    pub(super) async fn run_to_exit(&self, policy: &GuestPolicy) -> Result<(), String> {
        let server = self.server(policy)?;
        self.exit_of(&server)
            .await
            .map_err(|reason| with_stderr(reason, &server))
    }

    pub(super) async fn exit_of(&self, server: &Arc<WasiServer>) -> Result<(), String> {
        let mut instance = server
            .launch(&Arc::from("pack"))
            .map_err(|e| e.to_string())?;
        loop {
            match tokio::time::timeout(SMOKE_TIMEOUT, instance.from_server.recv()).await {
                Ok(Some(ServerEvent::Exited { reason })) => {
                    return if reason == "exited" || reason.ends_with("with status 0") {
                        Ok(())
                    } else {
                        Err(reason)
                    };
                }
                Ok(Some(_)) => {}
                Ok(None) => return Err("the runtime ended without a word".into()),
                Err(_) => {
                    instance.stop.cancel();
                    return Err("the runtime did not finish in time".into());
                }
            }
        }
    }

    /// Starts the packed server (`wasm`: the runtime or its snapshot), initializes it and lists its tools.
    pub(super) async fn smoke(&self, wasm: &[u8], policy: &GuestPolicy) -> Result<Listing, String> {
        let server = self.server_of(wasm, policy)?;
        self.smoke_on(&server)
            .await
            .map_err(|reason| with_stderr(reason, &server))
    }

    /// [`Self::smoke`] of what `artifact` serves under `policy`; the outer error is reading it.
    pub(super) async fn smoke_from(
        &self,
        artifact: &Artifact,
        policy: &GuestPolicy,
    ) -> Result<Result<Listing, String>, PackError> {
        let program = tokio::fs::read(artifact.program_path(policy))
            .await
            .map_err(io("reading the program to smoke-test"))?;
        Ok(self.smoke(&program, policy).await)
    }

    pub(super) async fn smoke_on(&self, server: &Arc<WasiServer>) -> Result<Listing, String> {
        let mut instance = server
            .launch(&Arc::from("pack"))
            .map_err(|e| e.to_string())?;
        let result = async {
            let initialize = serde_json::json!({
                "jsonrpc": "2.0", "id": 1, "method": "initialize",
                "params": {"protocolVersion": "2025-06-18", "capabilities": {},
                           "clientInfo": {"name": "catwalk-pack", "version": env!("CARGO_PKG_VERSION")}},
            });
            let init = result(exchange(&mut instance, initialize, 1).await?, "initialize")?;
            let capabilities = &init["capabilities"];
            send(
                &mut instance,
                serde_json::json!({"jsonrpc": "2.0", "method": "notifications/initialized"}),
            )
            .await?;
            if capabilities.get("tools").is_none() {
                return Ok(Listing::default());
            }
            let list = serde_json::json!({"jsonrpc": "2.0", "id": 2, "method": "tools/list"});
            let tools = match exchange(&mut instance, list, 2).await? {
                Err(error) if server.unanswered_requests() > 0 => {
                    return Ok(Listing {
                        tools: Vec::new(),
                        unlisted: Some(format!(
                            "tools/list was answered with an error ({error}) after {} of its requests \
                             went unanswered: it needs the network to list its tools, and the smoke test \
                             has only its tenant's egress grants",
                            server.unanswered_requests()
                        )),
                    });
                }
                answer => result(answer, "tools/list")?,
            };
            Ok(Listing {
                tools: tools["tools"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|t| t["name"].as_str().map(str::to_owned))
                    .collect(),
                unlisted: None,
            })
        }
        .await;
        instance.stop.cancel();
        result
    }
}

/// What the smoke test listed: the tools' names, or why there is no list.
#[derive(Debug, Default)]
pub(super) struct Listing {
    pub tools: Vec<String>,
    pub unlisted: Option<String>,
}

/// An answer's result, or `method`'s error as the reason the test failed.
fn result(
    answer: Result<serde_json::Value, serde_json::Value>,
    method: &str,
) -> Result<serde_json::Value, String> {
    answer.map_err(|error| format!("{method} was answered with an error: {error}"))
}

/// `reason`, and the last lines the guest wrote to stderr.
pub(super) fn with_stderr(reason: String, server: &WasiServer) -> String {
    let tail = server.stderr_tail();
    if tail.is_empty() {
        reason
    } else {
        format!("{reason}; its stderr ended with: {}", tail.join(" | "))
    }
}

/// Sends `message`; if the server ended before it could read it, says how it ended.
pub(super) async fn send(
    instance: &mut crate::backend::Instance,
    message: serde_json::Value,
) -> Result<(), String> {
    let method = message["method"].as_str().unwrap_or_default().to_owned();
    if instance
        .to_server
        .send(Bytes::from(message.to_string()))
        .await
        .is_ok()
    {
        return Ok(());
    }
    while let Ok(Some(event)) =
        tokio::time::timeout(SMOKE_TIMEOUT, instance.from_server.recv()).await
    {
        if let ServerEvent::Exited { reason } = event {
            return Err(format!("the server {reason} before it read {method}"));
        }
    }
    Err("the server is gone".to_owned())
}

/// Sends a request and waits for its answer, past whatever else the server says first: its result, or the
/// JSON-RPC error it was answered with.
pub(super) async fn exchange(
    instance: &mut crate::backend::Instance,
    request: serde_json::Value,
    id: u64,
) -> Result<Result<serde_json::Value, serde_json::Value>, String> {
    let method = request["method"].as_str().unwrap_or_default().to_owned();
    send(instance, request).await?;
    loop {
        let event = tokio::time::timeout(SMOKE_TIMEOUT, instance.from_server.recv())
            .await
            .map_err(|_| format!("no answer to {method} within {} s", SMOKE_TIMEOUT.as_secs()))?;
        match event {
            Some(ServerEvent::Message(line)) => {
                let Ok(message) = serde_json::from_slice::<serde_json::Value>(&line) else {
                    continue;
                };
                if message["id"].as_u64() != Some(id) || message.get("method").is_some() {
                    continue;
                }
                if let Some(error) = message.get("error") {
                    return Ok(Err(error.clone()));
                }
                return Ok(Ok(message["result"].clone()));
            }
            Some(ServerEvent::Oversized { len, .. }) => {
                return Err(format!("the server wrote a line of {len} bytes"));
            }
            Some(ServerEvent::Exited { reason }) => {
                return Err(format!("the server {reason} before it answered {method}"));
            }
            None => return Err("the server is gone".into()),
        }
    }
}
