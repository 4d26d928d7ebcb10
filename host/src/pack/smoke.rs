//! The packed server run in the sandbox, as it will be served: the bytecode step runs it to its exit, and
//! the smoke test asks it `initialize` and `tools/list`. A failure quotes what the guest wrote to stderr.

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

    /// Starts the packed server (`wasm`: the runtime or its snapshot), initializes it and lists its tools:
    /// their names.
    pub(super) async fn smoke(
        &self,
        wasm: &[u8],
        policy: &GuestPolicy,
    ) -> Result<Vec<String>, String> {
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
    ) -> Result<Result<Vec<String>, String>, PackError> {
        let program = tokio::fs::read(artifact.program_path(policy))
            .await
            .map_err(io("reading the program to smoke-test"))?;
        Ok(self.smoke(&program, policy).await)
    }

    pub(super) async fn smoke_on(&self, server: &Arc<WasiServer>) -> Result<Vec<String>, String> {
        let mut instance = server
            .launch(&Arc::from("pack"))
            .map_err(|e| e.to_string())?;
        let result = async {
            let initialize = serde_json::json!({
                "jsonrpc": "2.0", "id": 1, "method": "initialize",
                "params": {"protocolVersion": "2025-06-18", "capabilities": {},
                           "clientInfo": {"name": "catwalk-pack", "version": env!("CARGO_PKG_VERSION")}},
            });
            let init = exchange(&mut instance, initialize, 1).await?;
            let capabilities = &init["capabilities"];
            send(
                &instance,
                serde_json::json!({"jsonrpc": "2.0", "method": "notifications/initialized"}),
            )
            .await?;
            if capabilities.get("tools").is_none() {
                return Ok(Vec::new());
            }
            let list = serde_json::json!({"jsonrpc": "2.0", "id": 2, "method": "tools/list"});
            let tools = exchange(&mut instance, list, 2).await?;
            Ok(tools["tools"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|t| t["name"].as_str().map(str::to_owned))
                .collect())
        }
        .await;
        instance.stop.cancel();
        result
    }
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

pub(super) async fn send(
    instance: &crate::backend::Instance,
    message: serde_json::Value,
) -> Result<(), String> {
    instance
        .to_server
        .send(Bytes::from(message.to_string()))
        .await
        .map_err(|_| "the server is gone".to_owned())
}

/// Sends a request and waits for its answer's result, past whatever else the server says first.
pub(super) async fn exchange(
    instance: &mut crate::backend::Instance,
    request: serde_json::Value,
    id: u64,
) -> Result<serde_json::Value, String> {
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
                    return Err(format!("{method} was answered with an error: {error}"));
                }
                return Ok(message["result"].clone());
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
