// `worker_threads` in the sandbox: there are no threads, so this is always the main thread and `new Worker`
// throws; message channels work within the one thread (libraries such as undici make them, or mark values
// uncloneable, when they load). Also the globals `MessageChannel`, `MessagePort` and `BroadcastChannel`.
const unavailable = (what) => Object.assign(new Error(`worker_threads.${what} is not available in catwalk's sandbox`), { code: "ERR_CATWALK_SANDBOX" });
const later = (callback) => setTimeout(callback, 0);

export class MessagePort {
  #other = null;
  #listeners = [];
  #queue = [];
  #started = false;
  #closed = false;
  #onmessage = null;

  static pair() {
    const a = new MessagePort();
    const b = new MessagePort();
    a.#other = b;
    b.#other = a;
    return [a, b];
  }

  postMessage(value) {
    const other = this.#other;
    if (this.#closed || !other) return;
    other.#receive(structuredClone(value));
  }

  #receive(data) {
    this.#queue.push(data);
    if (this.#started) later(() => this.#flush());
  }

  #flush() {
    while (this.#started && this.#queue.length > 0) {
      const data = this.#queue.shift();
      const event = { type: "message", data, target: this, ports: [] };
      for (const { listener, emitter, once } of [...this.#listeners]) {
        if (once) this.#listeners = this.#listeners.filter((l) => l.listener !== listener);
        if (emitter) listener.call(this, data);
        else if (typeof listener === "function") listener.call(this, event);
        else listener.handleEvent(event);
      }
      this.#onmessage?.call(this, event);
    }
  }

  start() {
    if (this.#started) return;
    this.#started = true;
    if (this.#queue.length > 0) later(() => this.#flush());
  }

  close() {
    if (this.#closed) return;
    this.#closed = true;
    const other = this.#other;
    this.#other = null;
    if (other) {
      other.#other = null;
      other.#emit("close");
    }
    this.#emit("close");
  }

  #emit(type) {
    for (const { listener, emitter } of this.#listeners.filter((l) => l.type === type)) {
      if (emitter) listener.call(this);
    }
  }

  get onmessage() { return this.#onmessage; }
  set onmessage(handler) { this.#onmessage = handler; this.start(); }

  addEventListener(type, listener, options = {}) {
    if (!listener) return;
    this.#listeners.push({ type, listener, emitter: false, once: Boolean(options?.once) });
    if (type === "message") this.start();
  }
  removeEventListener(type, listener) { this.#listeners = this.#listeners.filter((l) => l.type !== type || l.listener !== listener); }
  dispatchEvent() { return true; }
  on(type, listener) {
    this.#listeners.push({ type, listener, emitter: true, once: false });
    if (type === "message") this.start();
    return this;
  }
  once(type, listener) {
    this.#listeners.push({ type, listener, emitter: true, once: true });
    if (type === "message") this.start();
    return this;
  }
  off(type, listener) { this.removeEventListener(type, listener); return this; }
  addListener(type, listener) { return this.on(type, listener); }
  removeListener(type, listener) { return this.off(type, listener); }
  removeAllListeners(type) { this.#listeners = type === undefined ? [] : this.#listeners.filter((l) => l.type !== type); return this; }
  ref() { return this; }
  unref() { return this; }
  hasRef() { return false; }
}

export class MessageChannel {
  constructor() {
    [this.port1, this.port2] = MessagePort.pair();
  }
}

const broadcast = new Map();
export class BroadcastChannel {
  #closed = false;
  constructor(name) {
    this.name = String(name);
    this.onmessage = null;
    if (!broadcast.has(this.name)) broadcast.set(this.name, new Set());
    broadcast.get(this.name).add(this);
  }
  postMessage(value) {
    if (this.#closed) throw Object.assign(new Error("BroadcastChannel is closed."), { name: "InvalidStateError" });
    for (const other of broadcast.get(this.name)) {
      if (other === this) continue;
      const data = structuredClone(value);
      later(() => other.onmessage?.({ type: "message", data, target: other }));
    }
  }
  close() {
    this.#closed = true;
    broadcast.get(this.name)?.delete(this);
  }
  ref() { return this; }
  unref() { return this; }
}

export class Worker {
  constructor() { throw unavailable("Worker"); }
}

export const isMainThread = true;
export const parentPort = null;
export const workerData = null;
export const threadId = 0;
export const resourceLimits = {};
export const SHARE_ENV = Symbol.for("nodejs.worker_threads.SHARE_ENV");
const environment = new Map();
export const setEnvironmentData = (key, value) => { if (value === undefined) environment.delete(key); else environment.set(key, value); };
export const getEnvironmentData = (key) => environment.get(key);
export const markAsUntransferable = () => {};
export const isMarkedAsUntransferable = () => false;
export const markAsUncloneable = () => {};
export const moveMessagePortToContext = () => { throw unavailable("moveMessagePortToContext"); };
export const receiveMessageOnPort = () => undefined;

export default {
  isMainThread, parentPort, workerData, threadId, resourceLimits, SHARE_ENV, Worker, MessageChannel, MessagePort,
  BroadcastChannel, setEnvironmentData, getEnvironmentData, markAsUntransferable, isMarkedAsUntransferable,
  markAsUncloneable, moveMessagePortToContext, receiveMessageOnPort,
};
