// The globals a Node program expects beyond what catwalk-js's prelude gives (process, timers, console,
// TextEncoder/Decoder, crypto.getRandomValues): Buffer, URL, EventTarget, AbortController, performance,
// DOMException, Intl, MessageChannel, `global`, and `require` for what a bundle could not resolve ahead of time.
// esbuild injects this module into every packed bundle, so it runs before the package's own code.
import { Buffer } from "buffer";
import { URL, URLSearchParams } from "./url.js";
import { createRequire } from "./module.js";
import { ReadableStream, WritableStream, TransformStream } from "web-streams-polyfill";
import { fetch, Headers, Request, Response, Blob, File, FormData } from "./fetch.js";
// Intl (en-US) and the built-ins' toLocale*String and localeCompare through it: it installs itself.
import "./intl.js";
import { MessageChannel, MessagePort, BroadcastChannel } from "./worker_threads.js";

globalThis.global ??= globalThis;
globalThis.Buffer ??= Buffer;
globalThis.URL ??= URL;
globalThis.URLSearchParams ??= URLSearchParams;
globalThis.ReadableStream ??= ReadableStream;
globalThis.WritableStream ??= WritableStream;
globalThis.TransformStream ??= TransformStream;
// The network, through catwalk (fetch.js).
globalThis.fetch ??= fetch;
globalThis.Headers ??= Headers;
globalThis.Request ??= Request;
globalThis.Response ??= Response;
globalThis.Blob ??= Blob;
globalThis.File ??= File;
globalThis.FormData ??= FormData;
// Message channels within the one thread (worker_threads.js).
globalThis.MessageChannel ??= MessageChannel;
globalThis.MessagePort ??= MessagePort;
globalThis.BroadcastChannel ??= BroadcastChannel;

class DOMException extends Error {
  constructor(message = "", name = "Error") {
    super(message);
    this.name = name;
  }
}
globalThis.DOMException ??= DOMException;

class Event {
  constructor(type, options = {}) {
    this.type = String(type);
    this.bubbles = Boolean(options.bubbles);
    this.cancelable = Boolean(options.cancelable);
    this.defaultPrevented = false;
    this.timeStamp = performance.now();
    this.target = null;
    this.currentTarget = null;
  }
  preventDefault() { if (this.cancelable) this.defaultPrevented = true; }
  stopPropagation() {}
  stopImmediatePropagation() { this._stopped = true; }
}
class CustomEvent extends Event {
  constructor(type, options = {}) { super(type, options); this.detail = options.detail ?? null; }
}
class EventTarget {
  #listeners = new Map();
  addEventListener(type, listener, options = {}) {
    if (!listener) return;
    const once = typeof options === "object" && Boolean(options.once);
    const list = this.#listeners.get(type) ?? [];
    if (list.some((l) => l.listener === listener)) return;
    list.push({ listener, once });
    this.#listeners.set(type, list);
    options?.signal?.addEventListener("abort", () => this.removeEventListener(type, listener));
  }
  removeEventListener(type, listener) {
    const list = this.#listeners.get(type);
    if (list) this.#listeners.set(type, list.filter((l) => l.listener !== listener));
  }
  dispatchEvent(event) {
    event.target = this;
    event.currentTarget = this;
    for (const entry of [...(this.#listeners.get(event.type) ?? [])]) {
      if (entry.once) this.removeEventListener(event.type, entry.listener);
      if (typeof entry.listener === "function") entry.listener.call(this, event);
      else entry.listener.handleEvent(event);
      if (event._stopped) break;
    }
    const handler = this[`on${event.type}`];
    if (typeof handler === "function") handler.call(this, event);
    return !event.defaultPrevented;
  }
}

class AbortSignal extends EventTarget {
  constructor() {
    super();
    this.aborted = false;
    this.reason = undefined;
    this.onabort = null;
  }
  throwIfAborted() { if (this.aborted) throw this.reason; }
  _abort(reason) {
    if (this.aborted) return;
    this.aborted = true;
    this.reason = reason === undefined ? new DOMException("This operation was aborted", "AbortError") : reason;
    this.dispatchEvent(new Event("abort"));
  }
  static abort(reason) {
    const signal = new AbortSignal();
    signal._abort(reason);
    return signal;
  }
  static timeout(ms) {
    const signal = new AbortSignal();
    setTimeout(() => signal._abort(new DOMException("The operation was aborted due to timeout", "TimeoutError")), ms).unref();
    return signal;
  }
  static any(signals) {
    const signal = new AbortSignal();
    for (const source of signals) {
      if (source.aborted) { signal._abort(source.reason); break; }
      source.addEventListener("abort", () => signal._abort(source.reason), { once: true });
    }
    return signal;
  }
}
class AbortController {
  constructor() { this.signal = new AbortSignal(); }
  abort(reason) { this.signal._abort(reason); }
}
globalThis.Event ??= Event;
globalThis.CustomEvent ??= CustomEvent;
globalThis.EventTarget ??= EventTarget;
globalThis.AbortSignal ??= AbortSignal;
globalThis.AbortController ??= AbortController;

// The time origin is this instance's start, worked out at the first read (a snapshot is taken before it starts).
let origin;
globalThis.performance ??= {
  get timeOrigin() { return (origin ??= Date.now() - (globalThis.__catwalk?.now?.() ?? 0)); },
  now: () => globalThis.__catwalk.now(),
  mark() {},
  measure() {},
};

// Bundled code asks `require` only for what esbuild could not see ahead of time (a computed name): the layer's
// built-ins and JSON files of the package tree.
globalThis.require ??= createRequire("/app/");
