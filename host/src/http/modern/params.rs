//! `Mcp-Param-*` headers: a tool may mark arguments with `x-mcp-header` in its `inputSchema`, and a 2026-07-28
//! client then mirrors each such argument of a `tools/call` into an `Mcp-Param-{Name}` header, so that what
//! sits in front of the server can route on it without reading the body. The server must hold the two to
//! agree: a header missing for an argument that has a value, one that is not valid (`=?base64?…?=` that does
//! not decode), or one whose value differs is refused with 400 and -32020.
//!
//! catwalk is the HTTP server, so it checks, for both kinds of server behind it: the tools' declarations come
//! from the server's `tools/list`, asked once and kept per tenant until the server says its tools changed.
//! Declarations the spec does not allow (a name that is not an HTTP token, one used twice, a parameter that is
//! not a string, integer, number or boolean, or one not reached through `properties` alone) make the tool's
//! declarations void: nothing is enforced for it. Headers that mirror nothing pass.

use std::collections::HashMap;
use std::sync::Arc;

use axum::http::HeaderMap;
use axum::response::Response;
use serde_json::{Map, Value, json};

use super::bridge::{Exchange, Failure, internal};
use super::checks::{Meta, decode_header, header_mismatch, reject, without_modern_meta};
use crate::http::Scope;
use crate::vocab::lock;

const DECLARATION: &str = "x-mcp-header";
/// Pages of `tools/list` catwalk reads at most when it learns a server's tools.
const MAX_PAGES: usize = 64;

/// The mirrored arguments of each tool, by tool name.
pub type Mirrors = HashMap<String, Vec<Mirror>>;

/// One argument a client mirrors into a header.
#[derive(Debug, Clone, PartialEq)]
pub struct Mirror {
    /// Where the argument sits in `arguments` (property names, outermost first).
    path: Vec<String>,
    /// The header's name after `Mcp-Param-`.
    name: String,
}

/// Checks a `tools/call`'s `Mcp-Param-*` headers against its arguments; the refusal if they disagree.
pub(super) async fn verify(
    scope: &Scope,
    headers: &HeaderMap,
    id: &Value,
    params: &Value,
    meta: &Meta,
    passthrough: bool,
) -> Result<(), Response> {
    let mirrors = match known(scope, params, meta, passthrough).await {
        Ok(mirrors) => mirrors,
        Err((status, code, message)) => return Err(reject(status, id, code, &message, None)),
    };
    let Some(tool) = params.get("name").and_then(Value::as_str) else {
        return Ok(());
    };
    let Some(mirrored) = mirrors.get(tool) else {
        return Ok(());
    };
    let empty = Map::new();
    let arguments = params
        .get("arguments")
        .and_then(Value::as_object)
        .unwrap_or(&empty);
    check(headers, arguments, mirrored).map_err(|message| header_mismatch(id, &message))
}

/// What catwalk knows of the tenant's tools' mirrored arguments, learnt from its server first if need be.
async fn known(
    scope: &Scope,
    params: &Value,
    meta: &Meta,
    passthrough: bool,
) -> Result<Arc<Mirrors>, Failure> {
    let pool = &scope.app.front;
    if let Some(known) = lock(&pool.mirrored).clone() {
        return Ok(known);
    }
    // The request's own `_meta`, for a server that reads it; a 2025-era server is initialized from `meta`.
    let request_meta = params.get("_meta").cloned().unwrap_or_else(|| json!({}));
    let mut tools = Vec::new();
    let mut cursor: Option<Value> = None;
    for _ in 0..MAX_PAGES {
        let mut list = json!({"_meta": request_meta});
        if let Some(cursor) = cursor.take() {
            list["cursor"] = cursor;
        }
        let exchange = Exchange {
            client_id: Value::from("catwalk/tools-list"),
            method: "tools/list".into(),
            params: match passthrough {
                true => list,
                false => without_modern_meta(list),
            },
            meta: meta.clone(),
            digest: String::new(),
            owner: scope.token,
            passthrough,
        };
        let answer = internal(scope, exchange).await?;
        let Some(result) = answer.get("result") else {
            // A server without tools mirrors nothing.
            break;
        };
        tools.extend(
            result
                .get("tools")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .cloned(),
        );
        match result.get("nextCursor") {
            Some(next) if !next.is_null() => cursor = Some(next.clone()),
            _ => break,
        }
    }
    let known = Arc::new(scan(&tools));
    *lock(&pool.mirrored) = Some(known.clone());
    Ok(known)
}

/// The mirrored arguments of every tool in a `tools/list` result that declares any (validly).
pub fn scan(tools: &[Value]) -> Mirrors {
    tools
        .iter()
        .filter_map(|tool| {
            let name = tool.get("name")?.as_str()?;
            let mut found = Vec::new();
            declarations(tool.get("inputSchema")?, Some(Vec::new()), &mut found).ok()?;
            (!found.is_empty()).then(|| (name.to_owned(), found))
        })
        .collect()
}

/// Collects the declarations in `schema` into `found`; `path` is where `schema` sits in the arguments when
/// it is reached through `properties` alone (`None` under any other keyword). An invalid declaration is an
/// error.
fn declarations(
    schema: &Value,
    path: Option<Vec<String>>,
    found: &mut Vec<Mirror>,
) -> Result<(), String> {
    match schema {
        Value::Array(items) => {
            for item in items {
                declarations(item, None, found)?;
            }
            Ok(())
        }
        Value::Object(fields) => {
            if let Some(declared) = fields.get(DECLARATION) {
                let name = declared.as_str().unwrap_or_default();
                let path = path
                    .clone()
                    .filter(|p| !p.is_empty())
                    .ok_or_else(|| format!("{name:?} is not reached through properties alone"))?;
                if !is_token(name) {
                    return Err(format!("{name:?} is not an HTTP token"));
                }
                if !matches!(
                    fields.get("type").and_then(Value::as_str),
                    Some("string" | "integer" | "number" | "boolean")
                ) {
                    return Err(format!("{name:?} is not on a string, number or boolean"));
                }
                if found.iter().any(|m| m.name.eq_ignore_ascii_case(name)) {
                    return Err(format!("{name:?} is declared twice"));
                }
                found.push(Mirror {
                    path,
                    name: name.to_owned(),
                });
            }
            for (key, value) in fields {
                match (key.as_str(), value, &path) {
                    ("properties", Value::Object(properties), Some(path)) => {
                        for (property, schema) in properties {
                            let mut inner = path.clone();
                            inner.push(property.clone());
                            declarations(schema, Some(inner), found)?;
                        }
                    }
                    _ => declarations(value, None, found)?,
                }
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

/// RFC 9110's `token`: what a header name may be made of.
fn is_token(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// Whether each mirrored argument that has a value came with its header, holding the same value.
fn check(
    headers: &HeaderMap,
    arguments: &Map<String, Value>,
    mirrored: &[Mirror],
) -> Result<(), String> {
    for mirror in mirrored {
        let mut value = arguments.get(&mirror.path[0]);
        for step in &mirror.path[1..] {
            value = value.and_then(|v| v.get(step));
        }
        // An argument absent or null is not mirrored.
        let Some(value) = value.filter(|v| !v.is_null()) else {
            continue;
        };
        let header = format!("mcp-param-{}", mirror.name.to_ascii_lowercase());
        let argument = mirror.path.join(".");
        let Some(sent) = headers.get(header.as_str()) else {
            return Err(format!(
                "Header mismatch: the Mcp-Param-{} header is missing, and arguments.{argument} has a value",
                mirror.name
            ));
        };
        let Some(sent) = decode_header(sent) else {
            return Err(format!(
                "Header mismatch: the Mcp-Param-{} header is not valid (=?base64?...?= must hold Base64 of UTF-8)",
                mirror.name
            ));
        };
        let sent = sent.trim();
        let agrees = match value {
            Value::String(text) => sent == text.as_str(),
            Value::Bool(flag) => sent == flag.to_string(),
            // Numbers agree by value: 42 and 42.0 are one number.
            Value::Number(number) => sent.parse::<f64>().ok() == number.as_f64(),
            _ => false,
        };
        if !agrees {
            return Err(format!(
                "Header mismatch: the Mcp-Param-{} header does not match arguments.{argument}",
                mirror.name
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn tools() -> Vec<Value> {
        vec![
            json!({"name": "route", "inputSchema": {"type": "object", "properties": {
                "region": {"type": "string", "x-mcp-header": "Region"},
                "limit": {"type": "integer", "x-mcp-header": "Limit"},
                "options": {"type": "object", "properties": {
                    "dry": {"type": "boolean", "x-mcp-header": "Dry-Run"},
                }},
                "query": {"type": "string"},
            }}}),
            json!({"name": "plain", "inputSchema": {"type": "object", "properties": {"q": {"type": "string"}}}}),
            json!({"name": "under-items", "inputSchema": {"type": "object", "properties": {
                "list": {"type": "array", "items": {"type": "string", "x-mcp-header": "Item"}},
            }}}),
            json!({"name": "twice", "inputSchema": {"type": "object", "properties": {
                "a": {"type": "string", "x-mcp-header": "Same"},
                "b": {"type": "string", "x-mcp-header": "same"},
            }}}),
            json!({"name": "not-a-token", "inputSchema": {"type": "object", "properties": {
                "a": {"type": "string", "x-mcp-header": "Bad Name"},
            }}}),
            json!({"name": "object-typed", "inputSchema": {"type": "object", "properties": {
                "a": {"type": "object", "x-mcp-header": "Whole"},
            }}}),
        ]
    }

    #[test]
    fn only_valid_declarations_reached_through_properties_count() {
        let mirrors = scan(&tools());
        assert_eq!(mirrors.len(), 1, "{mirrors:?}");
        let route = &mirrors["route"];
        let mut names: Vec<&str> = route.iter().map(|m| m.name.as_str()).collect();
        names.sort_unstable();
        assert_eq!(names, ["Dry-Run", "Limit", "Region"]);
        let nested = route.iter().find(|m| m.name == "Dry-Run").unwrap();
        assert_eq!(nested.path, ["options", "dry"]);
    }

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        pairs
            .iter()
            .map(|(k, v)| {
                (
                    axum::http::HeaderName::from_static(k),
                    HeaderValue::from_str(v).unwrap(),
                )
            })
            .collect()
    }

    #[test]
    fn mirrored_arguments_must_come_with_the_same_value() {
        let mirrors = scan(&tools());
        let route = &mirrors["route"];
        let args = |v: Value| v.as_object().unwrap().clone();
        let call = args(json!({"region": "Hello", "limit": 42, "options": {"dry": true}}));
        let all = [
            ("mcp-param-region", "=?base64?SGVsbG8=?="),
            ("mcp-param-limit", "42.0"),
            ("mcp-param-dry-run", "true"),
        ];
        assert_eq!(check(&headers(&all), &call, route), Ok(()));
        // Absent and null arguments are not mirrored; an unknown Mcp-Param header passes.
        let few = args(json!({"region": "Hello", "limit": null}));
        let extra = [("mcp-param-region", "Hello"), ("mcp-param-other", "x")];
        assert_eq!(check(&headers(&extra), &few, route), Ok(()));
        for (sent, why) in [
            (vec![("mcp-param-region", "Hello")], "missing"),
            (
                vec![
                    ("mcp-param-region", "=?base64?SGVsbG8?="),
                    ("mcp-param-limit", "42"),
                    ("mcp-param-dry-run", "true"),
                ],
                "not valid",
            ),
            (
                vec![
                    ("mcp-param-region", "=?base64?SGVs!!!bG8=?="),
                    ("mcp-param-limit", "42"),
                    ("mcp-param-dry-run", "true"),
                ],
                "not valid",
            ),
            (
                vec![
                    ("mcp-param-region", "SGVsbG8="),
                    ("mcp-param-limit", "42"),
                    ("mcp-param-dry-run", "true"),
                ],
                "does not match",
            ),
            (
                vec![
                    ("mcp-param-region", "Hello"),
                    ("mcp-param-limit", "41"),
                    ("mcp-param-dry-run", "true"),
                ],
                "does not match",
            ),
            (
                vec![
                    ("mcp-param-region", "Hello"),
                    ("mcp-param-limit", "42"),
                    ("mcp-param-dry-run", "True"),
                ],
                "does not match",
            ),
        ] {
            let refused = check(&headers(&sent), &call, route).unwrap_err();
            assert!(refused.contains(why), "{sent:?}: {refused}");
        }
    }
}
