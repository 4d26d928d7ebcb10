// Node's `http` client (and, through https.js, `https`), over catwalk's outbound HTTP: `request`, `get`,
// `ClientRequest`, `IncomingMessage`, `Agent`. catwalk makes the connection and the TLS handshake under the
// tenant's egress grants, so an agent's socket options, `ca` and `rejectUnauthorized` have nothing to act on:
// certificates are always verified, against the machine's roots. Servers (`createServer`) are not offered.
import { EventEmitter } from "events";
import { Readable, Writable } from "readable-stream";
import { Buffer } from "buffer";

export const METHODS = ["ACL", "BIND", "CHECKOUT", "CONNECT", "COPY", "DELETE", "GET", "HEAD", "LINK", "LOCK", "M-SEARCH", "MERGE", "MKACTIVITY", "MKCALENDAR", "MKCOL", "MOVE", "NOTIFY", "OPTIONS", "PATCH", "POST", "PROPFIND", "PROPPATCH", "PURGE", "PUT", "QUERY", "REBIND", "REPORT", "SEARCH", "SOURCE", "SUBSCRIBE", "TRACE", "UNBIND", "UNLINK", "UNLOCK", "UNSUBSCRIBE"];
export const STATUS_CODES = { 100: "Continue", 101: "Switching Protocols", 200: "OK", 201: "Created", 202: "Accepted", 203: "Non-Authoritative Information", 204: "No Content", 205: "Reset Content", 206: "Partial Content", 300: "Multiple Choices", 301: "Moved Permanently", 302: "Found", 303: "See Other", 304: "Not Modified", 307: "Temporary Redirect", 308: "Permanent Redirect", 400: "Bad Request", 401: "Unauthorized", 402: "Payment Required", 403: "Forbidden", 404: "Not Found", 405: "Method Not Allowed", 406: "Not Acceptable", 408: "Request Timeout", 409: "Conflict", 410: "Gone", 411: "Length Required", 412: "Precondition Failed", 413: "Payload Too Large", 414: "URI Too Long", 415: "Unsupported Media Type", 416: "Range Not Satisfiable", 418: "I'm a Teapot", 422: "Unprocessable Entity", 425: "Too Early", 426: "Upgrade Required", 428: "Precondition Required", 429: "Too Many Requests", 431: "Request Header Fields Too Large", 500: "Internal Server Error", 501: "Not Implemented", 502: "Bad Gateway", 503: "Service Unavailable", 504: "Gateway Timeout", 505: "HTTP Version Not Supported" };
export const maxHeaderSize = 16384;

export class Agent extends EventEmitter {
  constructor(options = {}) {
    super();
    this.options = { path: null, ...options };
    this.keepAlive = Boolean(options.keepAlive);
    this.keepAliveMsecs = options.keepAliveMsecs ?? 1000;
    this.maxSockets = options.maxSockets ?? Infinity;
    this.maxFreeSockets = options.maxFreeSockets ?? 256;
    this.maxTotalSockets = options.maxTotalSockets ?? Infinity;
    this.defaultPort = 80;
    this.protocol = "http:";
    this.sockets = {};
    this.freeSockets = {};
    this.requests = {};
  }
  getName(options = {}) { return `${options.host ?? "localhost"}:${options.port ?? ""}:${options.localAddress ?? ""}`; }
  destroy() {}
  createConnection() { throw unsupported("Agent#createConnection"); }
}
export const globalAgent = new Agent({ keepAlive: true });

function unsupported(what) {
  return Object.assign(new Error(`http: ${what} is not available in catwalk's sandbox (catwalk makes every connection itself)`), { code: "ERR_CATWALK_SANDBOX" });
}

// The stand-in for a request's socket: what libraries poke at (timeouts, keep-alive, events) without a socket.
class Socket extends EventEmitter {
  constructor(secure) {
    super();
    this.encrypted = secure;
    this.connecting = false;
    this.readable = true;
    this.writable = true;
    this.destroyed = false;
    this.remoteAddress = undefined;
    this.authorized = secure;
  }
  setTimeout(ms, callback) { if (callback) this.once("timeout", callback); return this; }
  setNoDelay() { return this; }
  setKeepAlive() { return this; }
  ref() { return this; }
  unref() { return this; }
  address() { return {}; }
  getPeerCertificate() { return {}; }
  destroy(error) { if (!this.destroyed) { this.destroyed = true; if (error) this.emit("error", error); this.emit("close", Boolean(error)); } return this; }
  end() { return this; }
}

export class IncomingMessage extends Readable {
  constructor(exchange, head, socket) {
    super();
    this._exchange = exchange;
    this.socket = socket;
    this.connection = socket;
    this.httpVersion = "1.1";
    this.httpVersionMajor = 1;
    this.httpVersionMinor = 1;
    this.statusCode = head.status;
    this.statusMessage = STATUS_CODES[head.status] ?? "";
    this.rawHeaders = head.headers.flat();
    this.headers = {};
    this.headersDistinct = {};
    for (const [name, value] of head.headers) {
      (this.headersDistinct[name] ??= []).push(value);
      if (name === "set-cookie") (this.headers[name] ??= []).push(value);
      else if (name in this.headers) this.headers[name] += (name === "cookie" ? "; " : ", ") + value;
      else this.headers[name] = value;
    }
    this.trailers = {};
    this.rawTrailers = [];
    this.complete = false;
    this.aborted = false;
  }
  _read() { this._exchange?.resume(); }
  _destroy(error, callback) { this._exchange?.close(); callback(error); }
  setTimeout(ms, callback) { this.socket.setTimeout(ms, callback); return this; }
}

function headerPairs(headers) {
  const pairs = [];
  for (const [name, value] of Object.entries(headers)) {
    if (value === undefined) continue;
    for (const v of Array.isArray(value) ? value : [value]) pairs.push([name, String(v)]);
  }
  return pairs;
}

function target(input, options, defaultProtocol) {
  let opts = {};
  if (typeof input === "string" || input instanceof URL) {
    const url = input instanceof URL ? input : new URL(input);
    opts = {
      protocol: url.protocol, hostname: url.hostname.replace(/^\[|\]$/g, ""), port: url.port,
      path: `${url.pathname}${url.search}`, auth: url.username ? `${decodeURIComponent(url.username)}:${decodeURIComponent(url.password)}` : undefined,
    };
    opts = { ...opts, ...options };
  } else {
    opts = { ...input };
  }
  const protocol = opts.protocol ?? opts.agent?.protocol ?? defaultProtocol;
  const hostname = opts.hostname ?? (opts.host ? String(opts.host).replace(/:\d+$/, "") : "localhost");
  const port = opts.port ?? opts.defaultPort ?? opts.agent?.defaultPort ?? (protocol === "https:" ? 443 : 80);
  const path = opts.path ?? "/";
  // An absolute-form target (as to a proxy) names where the request goes; catwalk checks that host.
  const url = /^https?:\/\//i.test(path)
    ? path
    : `${protocol}//${hostname.includes(":") ? `[${hostname}]` : hostname}${port ? `:${port}` : ""}${path.startsWith("/") ? path : `/${path}`}`;
  return { opts, url, protocol };
}

export class ClientRequest extends Writable {
  constructor(input, options, callback, defaultProtocol = "http:") {
    if (typeof options === "function") { callback = options; options = {}; }
    // Node's ClientRequest is not destroyed when its body is written: the exchange goes on to the response.
    super({ autoDestroy: false, emitClose: false });
    const { opts, url, protocol } = target(input, options ?? {}, defaultProtocol);
    this.method = String(opts.method ?? "GET").toUpperCase();
    this.path = opts.path ?? "/";
    this.host = opts.hostname ?? opts.host ?? "localhost";
    this.protocol = protocol;
    this.agent = opts.agent ?? globalAgent;
    this.reusedSocket = false;
    this.aborted = false;
    this.finished = false;
    this.headersSent = false;
    this._url = url;
    this._headers = {};
    this._names = {};
    for (const [name, value] of Object.entries(opts.headers ?? {})) this.setHeader(name, value);
    if (Array.isArray(opts.headers)) for (let i = 0; i + 1 < opts.headers.length; i += 2) this.setHeader(opts.headers[i], opts.headers[i + 1]);
    if (opts.auth && !this.hasHeader("authorization")) this.setHeader("Authorization", `Basic ${Buffer.from(opts.auth).toString("base64")}`);
    this.socket = new Socket(protocol === "https:");
    this.connection = this.socket;
    this._exchange = null;
    if (callback) this.once("response", callback);
    if (opts.timeout) this.setTimeout(opts.timeout);
    if (opts.signal) {
      const onAbort = () => this.destroy(opts.signal.reason ?? Object.assign(new Error("The operation was aborted"), { name: "AbortError", code: "ABORT_ERR" }));
      if (opts.signal.aborted) queueMicrotask(onAbort); else opts.signal.addEventListener("abort", onAbort, { once: true });
    }
    queueMicrotask(() => { if (!this.destroyed) this.emit("socket", this.socket); });
  }
  setHeader(name, value) {
    if (this.headersSent) throw Object.assign(new Error("Cannot set headers after they are sent to the client"), { code: "ERR_HTTP_HEADERS_SENT" });
    const key = String(name).toLowerCase();
    this._headers[key] = value;
    this._names[key] = String(name);
    return this;
  }
  getHeader(name) { return this._headers[String(name).toLowerCase()]; }
  getHeaders() { return { ...this._headers }; }
  getHeaderNames() { return Object.keys(this._headers); }
  getRawHeaderNames() { return Object.values(this._names); }
  hasHeader(name) { return String(name).toLowerCase() in this._headers; }
  removeHeader(name) { const key = String(name).toLowerCase(); delete this._headers[key]; delete this._names[key]; }
  flushHeaders() { this._start(); }
  setNoDelay() {}
  setSocketKeepAlive() {}
  setTimeout(ms, callback) {
    if (callback) this.once("timeout", callback);
    clearTimeout(this._timer);
    if (ms > 0) {
      this._timer = setTimeout(() => { this.emit("timeout"); this.socket.emit("timeout"); }, ms);
      this._timer.unref?.();
    }
    return this;
  }
  abort() {
    if (this.aborted) return;
    this.aborted = true;
    queueMicrotask(() => this.emit("abort"));
    this.destroy();
  }
  _start() {
    if (this._exchange || this.destroyed) return this._exchange;
    this.headersSent = true;
    const headers = headerPairs(this._headers);
    try {
      this._exchange = globalThis.__catwalk.exchange({ method: this.method, url: this._url, headers });
    } catch (error) {
      queueMicrotask(() => this.destroy(error));
      return null;
    }
    const exchange = this._exchange;
    exchange.onhead = (head) => {
      clearTimeout(this._timer);
      const response = new IncomingMessage(exchange, head, this.socket);
      response.req = this;
      this.res = response;
      exchange.ondata = (chunk) => { if (!response.push(Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength))) exchange.pause(); };
      exchange.onend = () => {
        response.complete = true;
        response.push(null);
        this.socket.emit("free");
        queueMicrotask(() => { this.emit("close"); this.socket.destroy(); });
      };
      exchange.onerror = (error) => { response.aborted = true; response.destroy(error); this.emit("close"); };
      if (!this.emit("response", response)) response.resume();
    };
    exchange.onerror = (error) => this.destroy(error);
    return exchange;
  }
  _write(chunk, encoding, callback) {
    const exchange = this._start();
    if (exchange) exchange.write(typeof chunk === "string" ? Buffer.from(chunk, encoding) : chunk);
    callback();
  }
  _final(callback) {
    const exchange = this._start();
    this.finished = true;
    exchange?.end();
    callback();
  }
  _destroy(error, callback) {
    clearTimeout(this._timer);
    this._exchange?.close();
    this.res?.destroy(error ?? undefined);
    this.socket.destroy();
    callback(error);
  }
}

export function request(input, options, callback) {
  return new ClientRequest(input, options, callback, "http:");
}

export function get(input, options, callback) {
  const req = request(input, options, callback);
  req.end();
  return req;
}

export function createServer() { throw unsupported("createServer"); }
export class Server extends EventEmitter { constructor() { super(); throw unsupported("Server"); } }
export class OutgoingMessage extends Writable {}
export class ServerResponse extends OutgoingMessage {}
export const validateHeaderName = (name) => { if (!/^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/.test(String(name))) throw Object.assign(new TypeError(`Header name must be a valid HTTP token ["${name}"]`), { code: "ERR_INVALID_HTTP_TOKEN" }); };
export const validateHeaderValue = (name, value) => { if (value === undefined) throw Object.assign(new TypeError(`Invalid value "undefined" for header "${name}"`), { code: "ERR_HTTP_INVALID_HEADER_VALUE" }); };
export const setMaxIdleHTTPParsers = () => {};

export default {
  METHODS, STATUS_CODES, maxHeaderSize, Agent, globalAgent, ClientRequest, IncomingMessage, OutgoingMessage, ServerResponse,
  Server, request, get, createServer, validateHeaderName, validateHeaderValue, setMaxIdleHTTPParsers,
};
