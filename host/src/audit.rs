//! The audit trail: one JSON line per call a client makes of a tenant's server (`tools/call`,
//! `resources/read`, `prompts/get`) and per refusal (its token, the tenant's offer or rates, a sandboxed
//! server's egress), apart from the debug log: to stdout, or to files in a dir, a new one each day
//! (`--audit-log`).
//!
//! A record holds when, which tenant, who (a static token as the start of its SHA-256, an OAuth token as its
//! issuer's subject), the client's name and version, the method and the entry it names, the outcome and error
//! code, how long it took and the bytes each way. Never an argument or a result: a tenant may ask for its calls'
//! arguments as a keyed hash (`audit = { hash_arguments = true }`), so that two calls can be compared without
//! being read.
//!
//! Lines are written by a thread of their own through a bounded queue that, when full, makes the writer wait
//! rather than drop a record.

use std::io::Write;
use std::sync::Arc;
use std::time::Instant;

use ring::hmac;
use serde::Deserialize;
use serde_json::{Value, json};
use tracing_appender::non_blocking::{NonBlocking, NonBlockingBuilder, WorkerGuard};

/// The methods whose calls are recorded, and the field of their params that names the entry.
const AUDITED: &[(&str, &str)] = &[
    ("tools/call", "name"),
    ("prompts/get", "name"),
    ("resources/read", "uri"),
];

/// Where the records go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuditTarget {
    Stdout,
    /// Files `audit.YYYY-MM-DD.jsonl` in a dir, a new one each day; the last `keep` are kept.
    Dir {
        dir: std::path::PathBuf,
        keep: usize,
    },
}

/// The process's audit trail.
pub struct AuditLog {
    writer: NonBlocking,
    _flush: WorkerGuard,
    /// The newest records, for the status page.
    recent: std::sync::Mutex<std::collections::VecDeque<Value>>,
}

/// Records kept in memory for the status page.
const RECENT: usize = 50;

impl std::fmt::Debug for AuditLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuditLog").finish_non_exhaustive()
    }
}

impl AuditLog {
    pub fn open(target: &AuditTarget) -> Result<Arc<Self>, String> {
        let builder = NonBlockingBuilder::default()
            .lossy(false)
            .buffered_lines_limit(65_536)
            .thread_name("catwalk-audit");
        let (writer, flush) = match target {
            AuditTarget::Stdout => builder.finish(std::io::stdout()),
            AuditTarget::Dir { dir, keep } => {
                let files = tracing_appender::rolling::Builder::new()
                    .rotation(tracing_appender::rolling::Rotation::DAILY)
                    .filename_prefix("audit")
                    .filename_suffix("jsonl")
                    .max_log_files(*keep)
                    .build(dir)
                    .map_err(|e| format!("cannot write the audit log in {}: {e}", dir.display()))?;
                builder.finish(files)
            }
        };
        Ok(Arc::new(Self {
            writer,
            _flush: flush,
            recent: Default::default(),
        }))
    }

    fn write(&self, record: &Value) {
        let mut line = record.to_string();
        line.push('\n');
        let _ = self.writer.clone().write_all(line.as_bytes());
        let mut recent = crate::vocab::lock(&self.recent);
        if recent.len() == RECENT {
            recent.pop_front();
        }
        recent.push_back(record.clone());
    }

    /// The newest records, oldest first.
    pub fn recent(&self) -> Vec<Value> {
        crate::vocab::lock(&self.recent).iter().cloned().collect()
    }
}

/// One tenant's view of the audit trail.
#[derive(Debug)]
pub struct TenantAudit {
    log: Arc<AuditLog>,
    tenant: Arc<str>,
    /// The key of its calls' argument hashes, if it asked for them.
    arguments_key: Option<hmac::Key>,
}

/// Who made a request: a label for the subject, and the client's name and version.
#[derive(Debug, Clone, Default)]
pub struct Caller {
    pub subject: Option<Arc<str>>,
    pub client: Option<Arc<(String, String)>>,
}

impl Caller {
    /// The client's name and version from an `initialize` request's or a 2026-07-28 request's `clientInfo`.
    pub fn client_info(info: Option<&Value>) -> Option<Arc<(String, String)>> {
        let info = info?;
        let field = |name: &str| {
            info.get(name)
                .and_then(Value::as_str)
                .map(|s| s.chars().take(128).collect::<String>())
                .unwrap_or_default()
        };
        Some(Arc::new((field("name"), field("version"))))
    }
}

/// A call on its way: what its record needs when the answer comes. Every call begun is recorded once: by
/// [`Call::answered`], [`Call::failed`] or [`Call::refused`], or, dropped without any (its client went away, or
/// no server could be had for it), as `abandoned`.
#[derive(Debug)]
pub struct Call {
    audit: Arc<TenantAudit>,
    method: &'static str,
    name: Option<String>,
    caller: Caller,
    transport: &'static str,
    started: Instant,
    bytes_in: usize,
    arguments: Option<String>,
    recorded: bool,
}

impl Call {
    /// The server's answer (the JSON-RPC response as sent to the client).
    pub fn answered(mut self, answer: &[u8]) {
        let (outcome, code) = match serde_json::from_slice::<Answer>(answer) {
            Ok(Answer {
                error: Some(error), ..
            }) => ("error", error.code),
            Ok(Answer {
                result: Some(result),
                ..
            }) if result.is_error == Some(true) => ("tool_error", None),
            Ok(Answer {
                result: Some(result),
                ..
            }) if result.result_type.as_deref() == Some("input_required") => {
                ("input_required", None)
            }
            Ok(_) => ("ok", None),
            Err(_) => ("error", None),
        };
        self.record(outcome, code, None, answer.len());
    }

    /// Ended without an answer of the server's: catwalk answered with `code` (a timeout, the server gone).
    pub fn failed(mut self, code: i64) {
        self.record("error", Some(code), None, 0);
    }

    /// Refused by catwalk before it reached the server, for `reason`.
    pub fn refused(mut self, reason: &str, code: i64) {
        self.record("denied", Some(code), Some(reason), 0);
    }

    fn record(&mut self, outcome: &str, code: Option<i64>, reason: Option<&str>, bytes_out: usize) {
        self.recorded = true;
        let mut record = self.audit.base(&self.caller);
        record["transport"] = self.transport.into();
        record["method"] = self.method.into();
        record["name"] = self.name.take().into();
        record["outcome"] = outcome.into();
        if let Some(code) = code {
            record["code"] = code.into();
        }
        if let Some(reason) = reason {
            record["reason"] = reason.into();
        }
        record["duration_ms"] = (self.started.elapsed().as_secs_f64() * 1000.0).into();
        record["bytes_in"] = self.bytes_in.into();
        record["bytes_out"] = bytes_out.into();
        if let Some(arguments) = self.arguments.take() {
            record["arguments_hmac"] = arguments.into();
        }
        self.audit.log.write(&record);
    }
}

impl Drop for Call {
    fn drop(&mut self) {
        if !self.recorded {
            self.record("abandoned", None, None, 0);
        }
    }
}

/// How an answer came out, read from it.
#[derive(Deserialize)]
struct Answer {
    error: Option<AnswerError>,
    result: Option<AnswerResult>,
}

#[derive(Deserialize)]
struct AnswerError {
    code: Option<i64>,
}

#[derive(Deserialize)]
struct AnswerResult {
    #[serde(rename = "isError")]
    is_error: Option<bool>,
    #[serde(rename = "resultType")]
    result_type: Option<String>,
}

impl TenantAudit {
    /// `arguments_key`: the key of the tenant's argument hashes, or `None` for no hashes.
    pub fn new(log: Arc<AuditLog>, tenant: &str, arguments_key: Option<[u8; 32]>) -> Arc<Self> {
        Arc::new(Self {
            log,
            tenant: tenant.into(),
            arguments_key: arguments_key.map(|k| hmac::Key::new(hmac::HMAC_SHA256, &k)),
        })
    }

    /// Whether requests of `method` are recorded (so that their params are worth reading).
    pub fn audits(method: &str) -> bool {
        AUDITED.iter().any(|(m, _)| *m == method)
    }

    /// A call of `method` starts, if its method is recorded; `bytes_in` is the size of the request.
    pub fn begin(
        self: &Arc<Self>,
        method: &str,
        params: Option<&Value>,
        caller: Caller,
        transport: &'static str,
        bytes_in: usize,
    ) -> Option<Call> {
        let (method, field) = AUDITED.iter().find(|(m, _)| *m == method)?;
        let name = params
            .and_then(|p| p.get(*field))
            .and_then(Value::as_str)
            .map(|n| n.chars().take(256).collect());
        let arguments = self.arguments_key.as_ref().map(|key| {
            let arguments = params.and_then(|p| p.get("arguments")).cloned();
            let text = arguments.unwrap_or(Value::Null).to_string();
            hex(hmac::sign(key, text.as_bytes()).as_ref())
        });
        Some(Call {
            audit: self.clone(),
            method,
            name,
            caller,
            transport,
            started: Instant::now(),
            bytes_in,
            arguments,
            recorded: false,
        })
    }

    /// A request refused before anything of it was read (its token, a rate): no method, no name.
    pub fn denied(&self, caller: &Caller, reason: &str, status: u16) {
        let mut record = self.base(caller);
        record["outcome"] = "denied".into();
        record["reason"] = reason.into();
        record["status"] = status.into();
        self.log.write(&record);
    }

    /// A sandboxed server's outbound request refused by the tenant's egress policy.
    pub fn egress_denied(&self, host: &str, reason: &str) {
        let mut record = self.base(&Caller::default());
        record["method"] = "egress".into();
        record["name"] = host.into();
        record["outcome"] = "denied".into();
        record["reason"] = format!("egress_{reason}").into();
        self.log.write(&record);
    }

    fn base(&self, caller: &Caller) -> Value {
        let time = time::OffsetDateTime::now_utc()
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default();
        json!({
            "time": time,
            "tenant": &*self.tenant,
            "subject": caller.subject.as_deref(),
            "client": caller.client.as_ref().map(|c| json!({"name": c.0, "version": c.1})),
        })
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calls_are_recorded_by_method_and_name_and_arguments_only_as_a_keyed_hash() {
        let dir = std::env::temp_dir().join(format!("catwalk-audit-unit-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let log = AuditLog::open(&AuditTarget::Dir {
            dir: dir.clone(),
            keep: 2,
        })
        .unwrap();
        let audit = TenantAudit::new(log.clone(), "acme", Some([7; 32]));
        let caller = Caller {
            subject: Some("oauth:alice".into()),
            client: Caller::client_info(Some(&json!({"name": "claude", "version": "1.2"}))),
        };
        let params = json!({"name": "search", "arguments": {"q": "canary-argument"}});
        let call = audit
            .begin(
                "tools/call",
                Some(&params),
                caller.clone(),
                "streamable",
                99,
            )
            .unwrap();
        call.answered(
            br#"{"jsonrpc":"2.0","id":1,"result":{"content":[{"type":"text","text":"canary-result"}],"isError":true}}"#,
        );
        let again = audit
            .begin("tools/call", Some(&params), caller, "streamable", 99)
            .unwrap();
        again.refused("not_offered", -32602);
        drop(audit.begin(
            "prompts/get",
            Some(&json!({"name": "p"})),
            Caller::default(),
            "modern",
            5,
        ));
        assert!(
            audit
                .begin("tools/list", None, Caller::default(), "streamable", 1)
                .is_none()
        );
        drop(audit);
        drop(log);
        let text: String = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| std::fs::read_to_string(e.unwrap().path()).unwrap())
            .collect();
        let lines: Vec<Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 3, "{text}");
        assert_eq!(lines[2]["outcome"], "abandoned");
        assert_eq!(lines[0]["tenant"], "acme");
        assert_eq!(lines[0]["subject"], "oauth:alice");
        assert_eq!(lines[0]["client"]["name"], "claude");
        assert_eq!(lines[0]["name"], "search");
        assert_eq!(lines[0]["outcome"], "tool_error");
        assert_eq!(lines[0]["bytes_in"], 99);
        assert_eq!(lines[1]["outcome"], "denied");
        assert_eq!(lines[1]["code"], -32602);
        assert_eq!(lines[0]["arguments_hmac"], lines[1]["arguments_hmac"]);
        assert!(!text.contains("canary"), "{text}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
