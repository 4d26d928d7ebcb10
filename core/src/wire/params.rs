//! `Mcp-Param-*` headers (2026-07-28): a tool may mark arguments with `x-mcp-header` in its `inputSchema`, and a
//! client then mirrors each such argument of a `tools/call` into an `Mcp-Param-{Name}` header. This module reads
//! the declarations of a `tools/list` ([`scan`]) and checks a call's headers against its arguments ([`check`]):
//! a header missing for an argument that has a value, one that is not valid (`=?base64?…?=` that does not
//! decode), or one whose value differs is a mismatch. Declarations the spec does not allow (a name that is not an
//! HTTP token, one used twice, a parameter that is not a string, integer, number or boolean, or one not reached
//! through `properties` alone) make the tool's declarations void: nothing is enforced for it.

use std::collections::HashMap;

use http::HeaderMap;
use serde_json::{Map, Value};

use super::decode_header;

const DECLARATION: &str = "x-mcp-header";

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
pub fn check(
    headers: &HeaderMap,
    arguments: &Map<String, Value>,
    mirrored: &[Mirror],
) -> Result<(), String> {
    for mirror in mirrored {
        let Some((first, rest)) = mirror.path.split_first() else {
            continue;
        };
        let mut value = arguments.get(first);
        for step in rest {
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
    use http::HeaderValue;
    use serde_json::json;

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
                    http::HeaderName::from_static(k),
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
