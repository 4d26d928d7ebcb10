// undici, for the packages that import it rather than use Node's global fetch (which is built on it): its `fetch`
// and the web's classes are the layer's (fetch.js), so each request goes through catwalk under the tenant's egress
// grants, and `request` answers as undici's does. undici's own client cannot run here: it parses HTTP with llhttp
// compiled to WebAssembly, which QuickJS does not have, and it opens sockets, which the sandbox does not.
// Dispatchers (Agent, ProxyAgent, Pool, Client) are accepted and not used: where a request goes, and through
// which proxy, is catwalk's to decide, not the package's.
import { fetch, Headers, Request, Response, Blob, File, FormData } from "./fetch.js";

class Dispatcher {
  constructor(options) {
    this.options = options;
  }
  close() { return Promise.resolve(); }
  destroy() { return Promise.resolve(); }
}
class Agent extends Dispatcher {}
class ProxyAgent extends Dispatcher {}
class EnvHttpProxyAgent extends Dispatcher {}
class Pool extends Dispatcher {}
class Client extends Dispatcher {}

let dispatcher = new Agent();
const setGlobalDispatcher = (d) => { dispatcher = d; };
const getGlobalDispatcher = () => dispatcher;

// undici's `request`: status, headers as a plain object (lower-case names), and a body read once, as text, JSON,
// bytes or chunks.
async function request(url, options = {}) {
  const { method = "GET", headers, body, signal } = options;
  const response = await fetch(url, { method, headers, body, signal });
  let used = false;
  const bytes = async () => {
    if (used) throw new TypeError("Body is unusable: Body has already been read");
    used = true;
    return new Uint8Array(await response.arrayBuffer());
  };
  const text = async () => new TextDecoder().decode(await bytes());
  return {
    statusCode: response.status,
    headers: Object.fromEntries(response.headers),
    trailers: {},
    body: {
      text,
      json: async () => JSON.parse(await text()),
      arrayBuffer: async () => (await bytes()).buffer,
      bytes,
      blob: async () => new Blob([await bytes()]),
      async *[Symbol.asyncIterator]() { yield globalThis.Buffer.from(await bytes()); },
    },
  };
}

export default {
  fetch, Headers, Request, Response, FormData, File,
  Dispatcher, Agent, ProxyAgent, EnvHttpProxyAgent, Pool, Client, setGlobalDispatcher, getGlobalDispatcher, request,
};
