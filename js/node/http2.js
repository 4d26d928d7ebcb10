// Node's `http2` client, over catwalk's outbound HTTP: `connect` gives a session, and each `session.request`
// one exchange through catwalk (which speaks HTTP/2 or HTTP/1.1 to the host, as the host offers). Enough for
// the SDKs that use it (the AWS SDK's NodeHttp2Handler): streams, `response` with its headers, bodies both ways.
// Servers (`createServer`) are not offered.
import { EventEmitter } from "events";
import { Duplex } from "readable-stream";
import { Buffer } from "buffer";

export const constants = {
  HTTP2_HEADER_STATUS: ":status", HTTP2_HEADER_METHOD: ":method", HTTP2_HEADER_AUTHORITY: ":authority",
  HTTP2_HEADER_SCHEME: ":scheme", HTTP2_HEADER_PATH: ":path", HTTP2_HEADER_CONTENT_TYPE: "content-type",
  HTTP2_HEADER_CONTENT_LENGTH: "content-length", HTTP2_HEADER_ACCEPT: "accept", HTTP2_HEADER_AUTHORIZATION: "authorization",
  HTTP2_HEADER_USER_AGENT: "user-agent", HTTP2_METHOD_GET: "GET", HTTP2_METHOD_POST: "POST", HTTP2_METHOD_PUT: "PUT",
  HTTP2_METHOD_DELETE: "DELETE", HTTP2_METHOD_HEAD: "HEAD", NGHTTP2_NO_ERROR: 0, NGHTTP2_PROTOCOL_ERROR: 1,
  NGHTTP2_INTERNAL_ERROR: 2, NGHTTP2_REFUSED_STREAM: 7, NGHTTP2_CANCEL: 8,
};
export const sensitiveHeaders = Symbol("nodejs.http2.sensitiveHeaders");
export const getDefaultSettings = () => ({ headerTableSize: 4096, enablePush: false, initialWindowSize: 65535, maxFrameSize: 16384 });
export const getPackedSettings = () => Buffer.alloc(0);
export const getUnpackedSettings = () => ({});

const unsupported = (what) => Object.assign(new Error(`http2.${what} is not available in catwalk's sandbox (a server is reached over MCP)`), { code: "ERR_CATWALK_SANDBOX" });
export function createServer() { throw unsupported("createServer"); }
export function createSecureServer() { throw unsupported("createSecureServer"); }

export class ClientHttp2Stream extends Duplex {
  constructor(session, headers) {
    // Not destroyed when its body is written: the exchange goes on to the response.
    super({ autoDestroy: false, emitClose: false, allowHalfOpen: true });
    this.session = session;
    this.sentHeaders = headers;
    this.rstCode = undefined;
    this.id = session._nextStream += 2;
    const method = String(headers[":method"] ?? "GET").toUpperCase();
    const path = headers[":path"] ?? "/";
    const fields = [];
    for (const [name, value] of Object.entries(headers)) {
      if (name.startsWith(":") || value === undefined) continue;
      for (const v of Array.isArray(value) ? value : [value]) fields.push([name, String(v)]);
    }
    try {
      this._exchange = globalThis.__catwalk.exchange({ method, url: `${session._origin}${path}`, headers: fields });
    } catch (error) {
      this._exchange = null;
      queueMicrotask(() => this.destroy(error));
      return;
    }
    const exchange = this._exchange;
    exchange.onhead = (head) => {
      clearTimeout(this._timer);
      const received = { ":status": head.status };
      for (const [name, value] of head.headers) {
        if (name === "set-cookie") (received[name] ??= []).push(value);
        else received[name] = name in received ? `${received[name]}, ${value}` : value;
      }
      this.emit("response", received, 0);
    };
    exchange.ondata = (chunk) => { if (!this.push(Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength))) exchange.pause(); };
    exchange.onend = () => {
      this.push(null);
      queueMicrotask(() => this.emit("close"));
    };
    exchange.onerror = (error) => this.destroy(error);
  }
  _read() { this._exchange?.resume(); }
  _write(chunk, encoding, callback) {
    this._exchange?.write(typeof chunk === "string" ? Buffer.from(chunk, encoding) : chunk);
    callback();
  }
  _final(callback) {
    this._exchange?.end();
    callback();
  }
  _destroy(error, callback) {
    clearTimeout(this._timer);
    this._exchange?.close();
    callback(error);
    queueMicrotask(() => this.emit("close"));
  }
  close(code = constants.NGHTTP2_NO_ERROR, callback) {
    this.rstCode = code;
    if (callback) this.once("close", callback);
    this.destroy();
  }
  setTimeout(ms, callback) {
    if (callback) this.once("timeout", callback);
    clearTimeout(this._timer);
    if (ms > 0) {
      this._timer = setTimeout(() => this.emit("timeout"), ms);
      this._timer.unref?.();
    }
    return this;
  }
  priority() {}
  sendTrailers() {}
}

export class ClientHttp2Session extends EventEmitter {
  constructor(authority) {
    super();
    const url = new URL(typeof authority === "string" ? authority : authority.href ?? `${authority.protocol}//${authority.host}`);
    this._origin = url.origin;
    this._nextStream = -1;
    this.encrypted = url.protocol === "https:";
    this.alpnProtocol = "h2";
    this.closed = false;
    this.destroyed = false;
    this.connecting = false;
    this.type = 1;
    this.socket = new EventEmitter();
    this.localSettings = getDefaultSettings();
    this.remoteSettings = getDefaultSettings();
  }
  request(headers = {}, options = {}) {
    if (this.closed || this.destroyed) throw Object.assign(new Error("The session has been destroyed"), { code: "ERR_HTTP2_INVALID_SESSION" });
    const stream = new ClientHttp2Stream(this, headers);
    if (options.endStream) stream.end();
    return stream;
  }
  settings(settings, callback) { if (callback) queueMicrotask(() => callback(null, settings, 0)); }
  ping(payload, callback) {
    const done = typeof payload === "function" ? payload : callback;
    queueMicrotask(() => done?.(null, 0, Buffer.alloc(8)));
    return true;
  }
  setTimeout(ms, callback) { if (callback) this.once("timeout", callback); }
  ref() {}
  unref() {}
  goaway() {}
  close(callback) {
    if (this.closed) return;
    this.closed = true;
    queueMicrotask(() => { this.emit("close"); callback?.(); });
  }
  destroy(error) {
    if (this.destroyed) return;
    this.destroyed = true;
    this.closed = true;
    queueMicrotask(() => { if (error) this.emit("error", error); this.emit("close"); });
  }
}

export function connect(authority, options, listener) {
  if (typeof options === "function") { listener = options; options = {}; }
  const session = new ClientHttp2Session(authority, options);
  if (listener) session.once("connect", listener);
  queueMicrotask(() => session.emit("connect", session, session.socket));
  return session;
}

export default {
  constants, sensitiveHeaders, getDefaultSettings, getPackedSettings, getUnpackedSettings, connect, createServer,
  createSecureServer, ClientHttp2Session, ClientHttp2Stream,
};
