// One conversation with an MCP server, recorded so that two runs of it (under Node, and packed to WASI) can be
// compared call by call: what initialize said, every list the server offers, then each call's answer or error.
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { ResultSchema } from "@modelcontextprotocol/sdk/types.js";

export const call = (name, args = {}) => (client) => client.callTool({ name, arguments: args }, undefined, { timeout: 60_000 });
export const prompt = (name, args = {}) => (client) => client.getPrompt({ name, arguments: args });
export const read = (uri) => (client) => client.readResource({ uri });

// What differs between two runs of one server whatever runs it: clocks and random ids.
export function normalize(value) {
  if (typeof value === "string") {
    return value
      .replace(/\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)/g, "<time>")
      // A clock time keeps its shape (4:20:51 AM is not 04:20:51 AM), not its digits.
      .replace(/\b\d{1,2}:\d\d:\d\d [AP]M\b/g, (clock) => clock.replace(/\d/g, "#"))
      .replace(/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/gi, "<uuid>")
      .replace(/\b(atime|mtime|ctime|birthtime|created|modified|accessed):.*$/gim, "$1: <time>");
  }
  if (Array.isArray(value)) return value.map(normalize);
  if (value && typeof value === "object") return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, normalize(v)]));
  return value;
}

const failure = (error) => ({ error: { code: error.code, message: error.message } });

const list = (client, method) => client.request({ method, params: {} }, ResultSchema).catch(failure);

// The whole conversation with one server: what initialize said, every list, then each call's answer or error.
export async function transcript(base, calls) {
  const client = new Client({ name: "catwalk-compat", version: "1.0.0" });
  await client.connect(new StreamableHTTPClientTransport(new URL(`${base}/mcp`)));
  const capabilities = client.getServerCapabilities() ?? {};
  const seen = {
    server: client.getServerVersion(),
    capabilities,
    instructions: client.getInstructions() ?? null,
    // The lists as the server sent them (the client's own checks would refuse an old server's schemas alike
    // under both runs, and hide what they said).
    tools: capabilities.tools ? await list(client, "tools/list") : null,
    prompts: capabilities.prompts ? await list(client, "prompts/list") : null,
    resources: capabilities.resources ? await list(client, "resources/list") : null,
    templates: capabilities.resources ? await list(client, "resources/templates/list") : null,
    calls: [],
  };
  for (const next of calls) {
    seen.calls.push(await next(client).catch(failure));
  }
  await client.close();
  return normalize(seen);
}

