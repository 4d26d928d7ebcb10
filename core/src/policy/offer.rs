//! Offer: which of its server's tools, prompts and resources a tenant offers its clients.
//!
//! ```toml
//! tools = { allow = ["search_*", "get_issue"], deny = ["*_admin"] }
//! prompts = { deny = ["*"] }
//! resources = { allow = ["file:///srv/docs/*"] }
//! ```
//!
//! An entry is offered when no `deny` pattern matches it and, if `allow` is given, an `allow` pattern does.
//! Patterns are globs: `*` stands for any run of characters (`/` included), `?` for one. Tools and prompts are
//! matched by name; resources by URI (and resource templates by their URI template).
//!
//! What is not offered is not there: it is left out of every list (the server's cursors are kept, so a
//! client paging through sees each offered entry once), and a request that names it gets the error the
//! protocol gives for an entry that does not exist, whatever the server would have said.

use serde::Deserialize;
use serde_json::Value;

use crate::jsonrpc::code;

/// Patterns per kind, and per pattern, at most; and the longest pattern.
const MAX_PATTERNS: usize = 256;
const MAX_PATTERN_LEN: usize = 512;

/// One kind's patterns, as written.
#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PatternsDef {
    #[serde(default)]
    pub allow: Option<Vec<String>>,
    #[serde(default)]
    pub deny: Vec<String>,
}

/// One kind's patterns, validated.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Patterns {
    /// `None`: everything not denied.
    allow: Option<Vec<String>>,
    deny: Vec<String>,
}

impl PatternsDef {
    /// The patterns of `field` (`tools`): an error names the problem, not the pattern.
    pub fn validate(self) -> Result<Patterns, String> {
        let count = self.deny.len() + self.allow.as_ref().map_or(0, Vec::len);
        if count > MAX_PATTERNS {
            return Err(format!("at most {MAX_PATTERNS} patterns"));
        }
        let patterns = self.deny.iter().chain(self.allow.iter().flatten());
        for pattern in patterns {
            if pattern.is_empty() || pattern.len() > MAX_PATTERN_LEN {
                return Err(format!(
                    "a pattern is 1 to {MAX_PATTERN_LEN} bytes (a glob of * and ?)"
                ));
            }
        }
        Ok(Patterns {
            allow: self.allow,
            deny: self.deny,
        })
    }
}

impl Patterns {
    /// Whether `name` is offered.
    pub fn admits(&self, name: &str) -> bool {
        !self.deny.iter().any(|p| glob(p, name))
            && self
                .allow
                .as_ref()
                .is_none_or(|allow| allow.iter().any(|p| glob(p, name)))
    }

    fn is_open(&self) -> bool {
        self.allow.is_none() && self.deny.is_empty()
    }
}

/// What a tenant offers of its server's tools, prompts and resources.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Offer {
    pub tools: Patterns,
    pub prompts: Patterns,
    pub resources: Patterns,
}

/// Why a request was refused: its JSON-RPC error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub code: i64,
    pub message: String,
}

/// The protocol's error for a resource that does not exist.
pub const RESOURCE_NOT_FOUND: i64 = -32002;

const UPDATED: &str = "notifications/resources/updated";

/// The lists that are filtered: the method, the result's array, and the field each entry is matched by.
const LISTS: &[(&str, &str, &str)] = &[
    ("tools/list", "tools", "name"),
    ("prompts/list", "prompts", "name"),
    ("resources/list", "resources", "uri"),
    (
        "resources/templates/list",
        "resourceTemplates",
        "uriTemplate",
    ),
];

impl Offer {
    /// Whether everything is offered (nothing to check or filter).
    pub fn is_open(&self) -> bool {
        self.tools.is_open() && self.prompts.is_open() && self.resources.is_open()
    }

    /// Whether the answer to `method` is a list this offer filters.
    pub fn filters(&self, method: &str) -> bool {
        LISTS
            .iter()
            .any(|(m, _, _)| *m == method && !self.patterns(m).is_open())
    }

    /// Whether requests of `method` name an entry the offer decides on (so that their params are worth
    /// reading).
    pub fn gates(method: &str) -> bool {
        matches!(
            method,
            "tools/call"
                | "prompts/get"
                | "resources/read"
                | "resources/subscribe"
                | "resources/unsubscribe"
                | "completion/complete"
        )
    }

    /// Whether notifications of `method` name an entry the offer decides on.
    pub fn screens(method: &str) -> bool {
        method == UPDATED
    }

    /// Whether a request (`method` and its `params`) may go to the server.
    pub fn check(&self, method: &str, params: Option<&Value>) -> Result<(), Refusal> {
        let field = |name: &str| params.and_then(|p| p.get(name)).and_then(Value::as_str);
        let (patterns, name, kind) = match method {
            "tools/call" => (&self.tools, field("name"), "tool"),
            "prompts/get" => (&self.prompts, field("name"), "prompt"),
            "resources/read" | "resources/subscribe" | "resources/unsubscribe" => {
                (&self.resources, field("uri"), "resource")
            }
            "completion/complete" => {
                let reference = params.and_then(|p| p.get("ref"));
                let of = |name: &str| reference.and_then(|r| r.get(name)).and_then(Value::as_str);
                match reference
                    .and_then(|r| r.get("type"))
                    .and_then(Value::as_str)
                {
                    Some("ref/prompt") => (&self.prompts, of("name"), "prompt"),
                    Some("ref/resource") => (&self.resources, of("uri"), "resource"),
                    _ => return Ok(()),
                }
            }
            _ => return Ok(()),
        };
        // A request without the name is the server's to refuse: it is malformed, not a way past the offer.
        match name {
            Some(name) if !patterns.admits(name) => Err(not_found(kind, name)),
            _ => Ok(()),
        }
    }

    /// Leaves out of `method`'s result (`{"tools": [...], "nextCursor": ...}`) what is not offered. The cursor
    /// stays: the server's next page follows, filtered in turn.
    pub fn filter(&self, method: &str, result: &mut Value) {
        let Some((_, array, key)) = LISTS.iter().find(|(m, _, _)| *m == method) else {
            return;
        };
        let patterns = self.patterns(method);
        if let Some(entries) = result.get_mut(*array).and_then(Value::as_array_mut) {
            entries.retain(|entry| {
                entry
                    .get(*key)
                    .and_then(Value::as_str)
                    .is_some_and(|name| patterns.admits(name))
            });
        }
    }

    /// Whether a server notification may reach the client: a resource's update only if it is offered.
    pub fn admits_notification(&self, method: &str, params: Option<&Value>) -> bool {
        if method != UPDATED {
            return true;
        }
        params
            .and_then(|p| p.get("uri"))
            .and_then(Value::as_str)
            .is_none_or(|uri| self.resources.admits(uri))
    }

    fn patterns(&self, method: &str) -> &Patterns {
        match method.split('/').next() {
            Some("tools") => &self.tools,
            Some("prompts") => &self.prompts,
            _ => &self.resources,
        }
    }
}

/// The same error for what is not offered as for what does not exist, so a client learns nothing of what is
/// hidden.
fn not_found(kind: &str, name: &str) -> Refusal {
    let name: String = name.chars().take(200).collect();
    match kind {
        "resource" => Refusal {
            code: RESOURCE_NOT_FOUND,
            message: format!("Resource not found: {name}"),
        },
        _ => Refusal {
            code: code::INVALID_PARAMS,
            message: format!("Unknown {kind}: {name}"),
        },
    }
}

/// Whether `text` matches the glob `pattern` (`*` any run, `?` one character), by the usual backtracking on the
/// last star: linear in practice, and never worse than their product.
pub fn glob(pattern: &str, text: &str) -> bool {
    let (p, t): (Vec<char>, Vec<char>) = (pattern.chars().collect(), text.chars().collect());
    let (mut i, mut j) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while j < t.len() {
        match p.get(i) {
            Some('*') => {
                star = Some((i, j));
                i += 1;
            }
            Some(&c) if c == '?' || c == t[j] => {
                i += 1;
                j += 1;
            }
            _ => match star {
                Some((si, sj)) => {
                    i = si + 1;
                    j = sj + 1;
                    star = Some((si, sj + 1));
                }
                None => return false,
            },
        }
    }
    p[i..].iter().all(|&c| c == '*')
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn offer(allow: Option<&[&str]>, deny: &[&str]) -> Offer {
        let tools = PatternsDef {
            allow: allow.map(|a| a.iter().map(|s| s.to_string()).collect()),
            deny: deny.iter().map(|s| s.to_string()).collect(),
        }
        .validate()
        .unwrap();
        Offer {
            tools,
            ..Default::default()
        }
    }

    #[test]
    fn globs_match_runs_and_single_characters() {
        assert!(glob("*", ""));
        assert!(glob("get_*", "get_issue"));
        assert!(!glob("get_*", "list_issues"));
        assert!(glob("*_admin", "drop_admin"));
        assert!(glob("a*b*c", "aXXbYYc"));
        assert!(!glob("a*b*c", "aXXbYY"));
        assert!(glob("file:///srv/*", "file:///srv/docs/a.md"));
        assert!(glob("t?st", "tést"));
        assert!(!glob("t?st", "test2"));
        assert!(glob("echo", "echo"));
        assert!(!glob("echo", "echoo"));
    }

    #[test]
    fn deny_wins_and_allow_narrows() {
        let o = offer(Some(&["get_*", "echo"]), &["get_secret"]);
        assert!(o.tools.admits("get_issue"));
        assert!(o.tools.admits("echo"));
        assert!(!o.tools.admits("get_secret"));
        assert!(!o.tools.admits("delete_repo"));
        assert!(offer(None, &[]).is_open());
        assert!(!offer(Some(&[]), &[]).tools.admits("anything"));
    }

    #[test]
    fn calls_to_what_is_not_offered_are_refused_as_unknown() {
        let o = offer(None, &["add"]);
        let refused = o
            .check("tools/call", Some(&json!({"name": "add", "arguments": {}})))
            .unwrap_err();
        assert_eq!(refused.code, code::INVALID_PARAMS);
        assert_eq!(refused.message, "Unknown tool: add");
        assert!(
            o.check("tools/call", Some(&json!({"name": "echo"})))
                .is_ok()
        );
        assert!(o.check("tools/list", None).is_ok());
        let resources = Offer {
            resources: PatternsDef {
                allow: None,
                deny: vec!["secret://*".into()],
            }
            .validate()
            .unwrap(),
            ..Default::default()
        };
        let refused = resources
            .check("resources/read", Some(&json!({"uri": "secret://x"})))
            .unwrap_err();
        assert_eq!(refused.code, RESOURCE_NOT_FOUND);
        let completion = json!({"ref": {"type": "ref/resource", "uri": "secret://x"}});
        assert!(
            resources
                .check("completion/complete", Some(&completion))
                .is_err()
        );
        assert!(!resources.admits_notification(
            "notifications/resources/updated",
            Some(&json!({"uri": "secret://x"}))
        ));
    }

    #[test]
    fn lists_lose_what_is_not_offered_and_keep_their_cursor() {
        let o = offer(None, &["add", "long*"]);
        assert!(o.filters("tools/list"));
        assert!(!o.filters("prompts/list"));
        let mut result = json!({
            "tools": [{"name": "echo"}, {"name": "add"}, {"name": "longRunningOperation"}, {"nameless": 1}],
            "nextCursor": "2"
        });
        o.filter("tools/list", &mut result);
        assert_eq!(
            result,
            json!({"tools": [{"name": "echo"}], "nextCursor": "2"})
        );
    }

    #[test]
    fn bad_patterns_are_refused() {
        let empty = PatternsDef {
            allow: None,
            deny: vec![String::new()],
        };
        assert!(empty.validate().is_err());
        let many = PatternsDef {
            allow: Some(vec!["a".into(); MAX_PATTERNS + 1]),
            deny: vec![],
        };
        assert!(many.validate().is_err());
    }
}
