//! What a server offers (tools, resources, prompts) and the values handlers return.

use serde_json::{Map, Value, json};

/// A JSON-RPC error returned by a handler.
#[derive(Debug, Clone, PartialEq)]
pub struct Error {
    pub code: i64,
    pub message: String,
    pub data: Option<Value>,
}

impl Error {
    pub fn new(code: i64, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            data: None,
        }
    }

    /// -32602: the arguments are wrong.
    pub fn invalid_params(message: impl Into<String>) -> Self {
        Self::new(-32602, message)
    }

    /// -32601: no such method.
    pub fn method_not_found(method: &str) -> Self {
        Self::new(-32601, format!("method not found: {method}"))
    }

    /// -32002: no such resource.
    pub fn resource_not_found(uri: &str) -> Self {
        Self {
            code: -32002,
            message: format!("resource not found: {uri}"),
            data: Some(json!({ "uri": uri })),
        }
    }

    /// -32603: something failed inside the server.
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(-32603, message)
    }

    pub(crate) fn to_json(&self) -> Value {
        let mut error = json!({ "code": self.code, "message": self.message });
        if let Some(data) = &self.data {
            error["data"] = data.clone();
        }
        error
    }
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.message, self.code)
    }
}

impl std::error::Error for Error {}

/// A tool's arguments, with typed accessors that fail as `invalid_params`.
#[derive(Debug, Clone, Default)]
pub struct Args(pub Map<String, Value>);

impl Args {
    pub fn get(&self, name: &str) -> Option<&Value> {
        self.0.get(name)
    }

    /// A required string argument.
    pub fn str(&self, name: &str) -> crate::Result<&str> {
        self.0
            .get(name)
            .and_then(Value::as_str)
            .ok_or_else(|| Error::invalid_params(format!("argument {name:?} must be a string")))
    }

    /// An optional number argument.
    pub fn f64_or(&self, name: &str, default: f64) -> f64 {
        self.0.get(name).and_then(Value::as_f64).unwrap_or(default)
    }
}

/// A tool: its name, description and JSON Schema for its input.
#[derive(Debug, Clone)]
pub struct Tool {
    pub(crate) definition: Value,
}

impl Tool {
    /// A tool that takes an object with no declared properties (add them with [`Tool::param`]).
    pub fn new(name: &str, description: &str) -> Self {
        Self {
            definition: json!({
                "name": name,
                "description": description,
                "inputSchema": { "type": "object", "properties": {} },
            }),
        }
    }

    /// A tool with a complete input schema of your own (any JSON Schema 2020-12 document).
    pub fn with_schema(name: &str, description: &str, input_schema: Value) -> Self {
        Self {
            definition: json!({ "name": name, "description": description, "inputSchema": input_schema }),
        }
    }

    /// Declares a parameter of a JSON type (`"string"`, `"number"`, `"boolean"`, ...).
    pub fn param(mut self, name: &str, kind: &str, description: &str, required: bool) -> Self {
        let schema = &mut self.definition["inputSchema"];
        schema["properties"][name] = json!({ "type": kind, "description": description });
        if required {
            match schema["required"].as_array_mut() {
                Some(list) => list.push(json!(name)),
                None => schema["required"] = json!([name]),
            }
        }
        self
    }

    pub(crate) fn name(&self) -> &str {
        self.definition["name"].as_str().unwrap_or_default()
    }
}

/// What a tool call returns.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolResult {
    pub content: Vec<Value>,
    pub is_error: bool,
    pub structured: Option<Value>,
}

impl ToolResult {
    /// One text block.
    pub fn text(text: impl Into<String>) -> Self {
        Self {
            content: vec![json!({ "type": "text", "text": text.into() })],
            is_error: false,
            structured: None,
        }
    }

    /// Any content blocks (text, image, audio, resource, resource_link).
    pub fn content(content: Vec<Value>) -> Self {
        Self {
            content,
            is_error: false,
            structured: None,
        }
    }

    /// A tool-level failure the model should see (`isError: true`), as opposed to a protocol error.
    pub fn error(text: impl Into<String>) -> Self {
        Self {
            is_error: true,
            ..Self::text(text)
        }
    }

    /// Adds `structuredContent`.
    pub fn structured(mut self, value: Value) -> Self {
        self.structured = Some(value);
        self
    }

    pub(crate) fn to_json(&self) -> Value {
        let mut result = json!({ "content": self.content });
        if self.is_error {
            result["isError"] = json!(true);
        }
        if let Some(structured) = &self.structured {
            result["structuredContent"] = structured.clone();
        }
        result
    }
}

/// A resource at a fixed URI.
#[derive(Debug, Clone)]
pub struct Resource {
    pub(crate) definition: Value,
}

impl Resource {
    pub fn new(uri: &str, name: &str, description: &str, mime_type: &str) -> Self {
        Self {
            definition: json!({ "uri": uri, "name": name, "description": description, "mimeType": mime_type }),
        }
    }

    pub(crate) fn uri(&self) -> &str {
        self.definition["uri"].as_str().unwrap_or_default()
    }
}

/// Resources whose URIs match a template like `file:///{path}`; the handler gets the matched variables.
#[derive(Debug, Clone)]
pub struct ResourceTemplate {
    pub(crate) definition: Value,
}

impl ResourceTemplate {
    pub fn new(uri_template: &str, name: &str, description: &str, mime_type: &str) -> Self {
        Self {
            definition: json!({
                "uriTemplate": uri_template, "name": name, "description": description, "mimeType": mime_type,
            }),
        }
    }

    /// The variables of `uri` if it matches this template (level-1 templates: `{name}` segments).
    pub(crate) fn matches(&self, uri: &str) -> Option<Map<String, Value>> {
        let template = self.definition["uriTemplate"].as_str()?;
        let mut vars = Map::new();
        let mut rest = uri;
        let mut parts = template.split('{');
        rest = rest.strip_prefix(parts.next()?)?;
        for part in parts {
            let (name, literal) = part.split_once('}')?;
            let end = if literal.is_empty() {
                rest.len()
            } else {
                rest.find(literal)?
            };
            if end == 0 {
                return None;
            }
            vars.insert(name.to_owned(), Value::String(rest[..end].to_owned()));
            rest = &rest[end + literal.len()..];
        }
        rest.is_empty().then_some(vars)
    }
}

/// A prompt and its arguments.
#[derive(Debug, Clone)]
pub struct Prompt {
    pub(crate) definition: Value,
}

impl Prompt {
    pub fn new(name: &str, description: &str) -> Self {
        Self {
            definition: json!({ "name": name, "description": description, "arguments": [] }),
        }
    }

    pub fn arg(mut self, name: &str, description: &str, required: bool) -> Self {
        if let Some(args) = self.definition["arguments"].as_array_mut() {
            args.push(json!({ "name": name, "description": description, "required": required }));
        }
        self
    }

    pub(crate) fn name(&self) -> &str {
        self.definition["name"].as_str().unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_match_and_extract() {
        let t = ResourceTemplate::new("test://template/{id}/data", "t", "d", "application/json");
        assert_eq!(t.matches("test://template/123/data").unwrap()["id"], "123");
        assert!(t.matches("test://template//data").is_none());
        assert!(t.matches("test://other/1/data").is_none());
        assert!(t.matches("test://template/1/data/more").is_none());
    }

    #[test]
    fn tools_declare_params() {
        let tool = Tool::new("t", "d")
            .param("a", "string", "A", true)
            .param("b", "number", "B", false);
        assert_eq!(tool.definition["inputSchema"]["required"], json!(["a"]));
        assert_eq!(
            tool.definition["inputSchema"]["properties"]["b"]["type"],
            "number"
        );
    }
}
