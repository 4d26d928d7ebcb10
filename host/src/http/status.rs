//! `GET /admin/status` (admin token): the machine at a glance, for people. Tenants, their sessions and instances,
//! requests, refusals and egress, memory per tenant, and the newest audit records: an HTML page (no script at
//! all), or the same as JSON with `Accept: application/json` or `?format=json`.

use std::collections::HashMap;
use std::fmt::Write;
use std::sync::Arc;

use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::Tenants;
use super::accepts;
use crate::session::Session;

#[derive(Deserialize)]
pub struct Format {
    format: Option<String>,
}

pub async fn status(
    State(tenants): State<Arc<Tenants>>,
    Query(format): Query<Format>,
    headers: HeaderMap,
) -> Response {
    let snapshot = snapshot(&tenants);
    let json = format.format.as_deref() == Some("json")
        || (accepts(&headers, &["application/json"]) && !accepts(&headers, &["text/html"]));
    let mut response = match json {
        true => axum::Json(snapshot).into_response(),
        false => (
            [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
            html(&snapshot),
        )
            .into_response(),
    };
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'none'; style-src 'unsafe-inline'"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    response
}

/// Everything the page shows, as JSON.
fn snapshot(tenants: &Tenants) -> Value {
    let host = &tenants.host;
    // One pass over the sessions and one rendering of the metrics, whatever the number of tenants.
    let mut sessions: HashMap<Arc<str>, Vec<Arc<Session>>> = HashMap::new();
    for session in host.registry.all().into_iter().filter(|s| !s.is_ended()) {
        sessions
            .entry(session.owner.tenant.clone())
            .or_default()
            .push(session);
    }
    let mut series = host.metrics.series_by_tenant();
    let mut list = Vec::new();
    for app in tenants.list() {
        let mut mine: Vec<Value> = sessions
            .remove(&app.tenant)
            .unwrap_or_default()
            .iter()
            .map(|s| {
                json!({
                    "id": s.id.as_str().chars().take(12).collect::<String>(),
                    "transport": format!("{:?}", s.transport),
                    "version": s.version(),
                    "client": s.client().map(|c| json!({"name": c.0, "version": c.1})),
                    "age_secs": s.age().as_secs(),
                    "idle_secs": s.idle().as_secs(),
                })
            })
            .collect();
        mine.sort_by_key(|s| s["age_secs"].as_u64());
        let mut counts: Map<String, Value> = Map::new();
        for (series, value) in series.remove(&*app.tenant).unwrap_or_default() {
            let value = match value.fract() == 0.0 && value >= 0.0 {
                true => Value::from(value as u64),
                false => Value::from(value),
            };
            counts.insert(series, value);
        }
        let sum = |prefix: &str| {
            counts
                .iter()
                .filter(|(k, _)| k.starts_with(prefix))
                .map(|(_, v)| v.as_u64().unwrap_or(0))
                .sum::<u64>()
        };
        let by = |prefix: &str, label: &str| {
            let mut found = Map::new();
            for (series, value) in counts.iter().filter(|(k, _)| k.starts_with(prefix)) {
                let key = series
                    .split(&format!("{label}=\""))
                    .nth(1)
                    .and_then(|rest| rest.split('"').next())
                    .unwrap_or("");
                found.insert(key.to_owned(), value.clone());
            }
            Value::Object(found)
        };
        let auth = match (&app.access.oauth, app.access.tokens.is_empty()) {
            (Some(_), _) => "oauth",
            (None, false) => "tokens",
            (None, true) => "open",
        };
        list.push(json!({
            "id": &*app.tenant,
            "backend": app.launcher.kind(),
            "auth": auth,
            "sessions": mine,
            "instances": {
                "sessions": mine.len(),
                "pooled": app.front.len(),
                "spares": sum("catwalk_spares{"),
            },
            "memory_bytes": host.tenant_rss(&app.tenant),
            "requests": by("catwalk_http_requests_total{", "status"),
            "refusals": by("catwalk_refusals_total{", "reason"),
            "egress": {
                "requests": sum("catwalk_egress_requests_total{"),
                "denials": by("catwalk_egress_denials_total{", "reason"),
            },
        }));
    }
    json!({
        "machine": tenants.machine.as_deref(),
        "sessions": {"open": host.registry.len(), "max": host.registry.max_sessions()},
        "tenants": list,
        "audit": host.audit.as_ref().map(|audit| audit.recent()),
    })
}

/// The page: plain HTML tables, every value escaped.
fn html(snapshot: &Value) -> String {
    let mut page = String::from(
        "<!doctype html><html lang=en><head><meta charset=utf-8><title>catwalk status</title><style>\
         body{font:14px system-ui,sans-serif;margin:2em;color:#222}table{border-collapse:collapse;margin:.5em 0 1.5em}\
         td,th{border:1px solid #ccc;padding:.25em .6em;text-align:left}th{background:#f3f3f3}\
         h2{margin-top:1.5em}.muted{color:#777}</style></head><body><h1>catwalk</h1>",
    );
    let sessions = &snapshot["sessions"];
    let _ = write!(
        page,
        "<p>{} of {} sessions open{}</p>",
        sessions["open"],
        sessions["max"],
        match snapshot["machine"].as_str() {
            Some(machine) => format!(" on machine <b>{}</b>", escape(machine)),
            None => String::new(),
        }
    );
    page.push_str(
        "<h2>Tenants</h2><table id=tenants><tr><th>tenant</th><th>backend</th><th>auth</th><th>sessions</th>\
         <th>pooled</th><th>spares</th><th>memory</th><th>requests</th><th>refusals</th><th>egress</th>\
         <th>egress denials</th></tr>",
    );
    let tenants = snapshot["tenants"].as_array().cloned().unwrap_or_default();
    for tenant in &tenants {
        let memory = match tenant["memory_bytes"].as_u64() {
            Some(bytes) => format!("{:.1} MiB", bytes as f64 / (1 << 20) as f64),
            None => "<span class=muted>not measured</span>".into(),
        };
        let _ = write!(
            page,
            "<tr><td><b>{}</b></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td>\
             <td>{}</td><td>{}</td><td>{}</td></tr>",
            escape(tenant["id"].as_str().unwrap_or("")),
            escape(tenant["backend"].as_str().unwrap_or("")),
            escape(tenant["auth"].as_str().unwrap_or("")),
            tenant["instances"]["sessions"],
            tenant["instances"]["pooled"],
            tenant["instances"]["spares"],
            memory,
            pairs(&tenant["requests"]),
            pairs(&tenant["refusals"]),
            tenant["egress"]["requests"],
            pairs(&tenant["egress"]["denials"]),
        );
    }
    page.push_str(
        "</table><h2>Sessions</h2><table id=sessions><tr><th>tenant</th><th>session</th>\
        <th>transport</th><th>version</th><th>client</th><th>age</th><th>idle</th></tr>",
    );
    for tenant in &tenants {
        for session in tenant["sessions"].as_array().into_iter().flatten() {
            let client = match session["client"].as_object() {
                Some(c) => format!(
                    "{} {}",
                    c.get("name").and_then(Value::as_str).unwrap_or(""),
                    c.get("version").and_then(Value::as_str).unwrap_or("")
                ),
                None => String::new(),
            };
            let _ = write!(
                page,
                "<tr><td>{}</td><td><code>{}</code></td><td>{}</td><td>{}</td><td>{}</td><td>{} s</td><td>{} s</td></tr>",
                escape(tenant["id"].as_str().unwrap_or("")),
                escape(session["id"].as_str().unwrap_or("")),
                escape(session["transport"].as_str().unwrap_or("")),
                escape(session["version"].as_str().unwrap_or("")),
                escape(&client),
                session["age_secs"],
                session["idle_secs"],
            );
        }
    }
    page.push_str("</table><h2>Audit</h2>");
    match snapshot["audit"].as_array() {
        None => page.push_str("<p class=muted>No audit trail: start catwalk with --audit-log.</p>"),
        Some(records) => {
            page.push_str(
                "<table id=audit><tr><th>time</th><th>tenant</th><th>subject</th><th>method</th>\
                <th>name</th><th>outcome</th><th>reason</th><th>ms</th></tr>",
            );
            for record in records.iter().rev() {
                let text = |key: &str| match &record[key] {
                    Value::Null => String::new(),
                    Value::String(s) => escape(s),
                    other => escape(&other.to_string()),
                };
                let ms = record["duration_ms"]
                    .as_f64()
                    .map_or(String::new(), |ms| format!("{ms:.1}"));
                let _ = write!(
                    page,
                    "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{ms}</td></tr>",
                    text("time"),
                    text("tenant"),
                    text("subject"),
                    text("method"),
                    text("name"),
                    text("outcome"),
                    text("reason"),
                );
            }
            page.push_str("</table>");
        }
    }
    page.push_str("</body></html>");
    page
}

/// `{"200": 3, "404": 1}` as `200: 3, 404: 1`, escaped.
fn pairs(value: &Value) -> String {
    value
        .as_object()
        .map(|map| {
            map.iter()
                .map(|(k, v)| format!("{}: {}", escape(k), v))
                .collect::<Vec<_>>()
                .join(", ")
        })
        .unwrap_or_default()
}

fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_a_client_named_itself_is_text_on_the_page_not_markup() {
        let snapshot = json!({
            "sessions": {"open": 1, "max": 10},
            "machine": null,
            "tenants": [{"id": "acme", "backend": "npm", "auth": "open",
                "instances": {"sessions": 1, "pooled": 0, "spares": 0}, "memory_bytes": null,
                "requests": {}, "refusals": {}, "egress": {"requests": 0, "denials": {}},
                "sessions": [{"id": "abc", "transport": "Streamable", "version": "2025-11-25",
                    "client": {"name": "<script>alert(1)</script>", "version": "1"}, "age_secs": 1, "idle_secs": 0}]}],
            "audit": [{"time": "t", "tenant": "acme", "name": "<img src=x>", "outcome": "ok"}],
        });
        let page = html(&snapshot);
        assert!(
            !page.contains("<script>") && !page.contains("<img"),
            "{page}"
        );
        assert!(page.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
        assert!(page.contains("<b>acme</b>"));
    }
}
