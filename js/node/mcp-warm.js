// Runs the MCP SDK's message schemas once over the messages a client sends first, while `catwalk pack` takes the
// snapshot. zod compiles a parser for each object schema the first time it parses one (with `new Function`):
// done here, the compiled parsers are in the snapshot that every instance starts from, rather than compiled again
// in each instance on its first request. Nothing here depends on a tenant: the messages are fixed, and parsing
// only fills zod's caches. A failure leaves a cache cold; it never stops the snapshot.
const client = { name: "catwalk-snapshot", version: "1.0.0" };
const messages = [
  ["initialize", { protocolVersion: "2025-06-18", capabilities: { roots: { listChanged: true }, sampling: {}, elicitation: {} }, clientInfo: client }],
  ["notifications/initialized", undefined],
  ["ping", undefined],
  ["tools/list", {}],
  ["tools/call", { name: "tool", arguments: { text: "" } }],
  ["resources/list", {}],
  ["resources/templates/list", {}],
  ["resources/read", { uri: "file:///a" }],
  ["resources/subscribe", { uri: "file:///a" }],
  ["prompts/list", {}],
  ["prompts/get", { name: "prompt", arguments: {} }],
  ["completion/complete", { ref: { type: "ref/prompt", name: "prompt" }, argument: { name: "a", value: "" } }],
  ["logging/setLevel", { level: "info" }],
  ["notifications/cancelled", { requestId: 1, reason: "cancelled" }],
  ["notifications/roots/list_changed", undefined],
];

const parse = (schema, value) => {
  try {
    schema.safeParse(value);
  } catch {
    // A cold cache, not a broken snapshot.
  }
};

// The method a request or notification schema is for, if it names one.
const methodOf = (schema) => {
  try {
    const method = schema?.shape?.method;
    return method?.value ?? method?._def?.value ?? undefined;
  } catch {
    return undefined;
  }
};

/// `types` is the namespace of the SDK's `types.js`.
export function warm(types) {
  const schemas = Object.values(types).filter((s) => typeof s?.safeParse === "function");
  const byMethod = new Map(schemas.map((s) => [methodOf(s), s]).filter(([m]) => typeof m === "string"));
  let id = 0;
  for (const [method, params] of messages) {
    const message = { method, ...(params === undefined ? {} : { params }) };
    const wire = method.startsWith("notifications/") ? { jsonrpc: "2.0", ...message } : { jsonrpc: "2.0", id: ++id, ...message };
    if (types.JSONRPCMessageSchema) parse(types.JSONRPCMessageSchema, wire);
    const schema = byMethod.get(method);
    if (schema) parse(schema, message);
  }
  if (types.JSONRPCMessageSchema) {
    parse(types.JSONRPCMessageSchema, { jsonrpc: "2.0", id: 1, result: {} });
    parse(types.JSONRPCMessageSchema, { jsonrpc: "2.0", id: 1, error: { code: -32601, message: "Method not found" } });
  }
}
