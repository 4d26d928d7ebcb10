// `diagnostics_channel`: named channels that publish to their subscribers, in process, as Node's do. Libraries
// (undici, fastify, pino) make their channels when they load and publish only when someone subscribes; the
// sandbox has no tracing of its own, so nothing subscribes unless the package itself does.
const channels = new Map();

export class Channel {
  #subscribers = [];
  constructor(name) { this.name = name; }
  get hasSubscribers() { return this.#subscribers.length > 0; }
  subscribe(subscriber) { this.#subscribers.push(subscriber); }
  unsubscribe(subscriber) {
    const at = this.#subscribers.indexOf(subscriber);
    if (at < 0) return false;
    this.#subscribers.splice(at, 1);
    return true;
  }
  publish(message) {
    for (const subscriber of [...this.#subscribers]) {
      try {
        subscriber(message, this.name);
      } catch (error) {
        queueMicrotask(() => { throw error; });
      }
    }
  }
  bindStore() {}
  unbindStore() { return false; }
  runStores(message, fn, thisArg, ...args) {
    this.publish(message);
    return fn.apply(thisArg, args);
  }
}

export function channel(name) {
  if (typeof name !== "string" && typeof name !== "symbol") {
    throw Object.assign(new TypeError('The "channel" argument must be of type string or symbol'), { code: "ERR_INVALID_ARG_TYPE" });
  }
  let found = channels.get(name);
  if (!found) channels.set(name, (found = new Channel(name)));
  return found;
}

export const hasSubscribers = (name) => channels.get(name)?.hasSubscribers ?? false;
export const subscribe = (name, subscriber) => channel(name).subscribe(subscriber);
export const unsubscribe = (name, subscriber) => channel(name).unsubscribe(subscriber);

const EVENTS = ["start", "end", "asyncStart", "asyncEnd", "error"];

export class TracingChannel {
  constructor(nameOrChannels) {
    for (const event of EVENTS) {
      this[event] = typeof nameOrChannels === "string" ? channel(`tracing:${nameOrChannels}:${event}`) : nameOrChannels[event];
    }
  }
  get hasSubscribers() { return EVENTS.some((event) => this[event].hasSubscribers); }
  subscribe(handlers) { for (const event of EVENTS) if (handlers[event]) this[event].subscribe(handlers[event]); }
  unsubscribe(handlers) {
    let all = true;
    for (const event of EVENTS) if (handlers[event] && !this[event].unsubscribe(handlers[event])) all = false;
    return all;
  }
  // A synchronous span: start, `run`, an error if it threw, end (`record`: its value as the context's result).
  #span(context, run, record) {
    this.start.publish(context);
    try {
      const result = run();
      if (record) context.result = result;
      return result;
    } catch (error) {
      context.error = error;
      this.error.publish(context);
      throw error;
    } finally {
      this.end.publish(context);
    }
  }
  // An asynchronous operation's end: its error or result, then asyncStart, `then` (a callback's own call), asyncEnd.
  #finish(context, error, result, then = () => undefined) {
    if (error) {
      context.error = error;
      this.error.publish(context);
    } else {
      context.result = result;
    }
    this.asyncStart.publish(context);
    try { return then(); } finally { this.asyncEnd.publish(context); }
  }
  traceSync(fn, context = {}, thisArg, ...args) {
    if (!this.hasSubscribers) return fn.apply(thisArg, args);
    return this.#span(context, () => fn.apply(thisArg, args), true);
  }
  // As Node: the promise is not the span's result; its value is, when it settles.
  tracePromise(fn, context = {}, thisArg, ...args) {
    if (!this.hasSubscribers) return fn.apply(thisArg, args);
    return this.#span(context, () => Promise.resolve(fn.apply(thisArg, args)).then(
      (result) => { this.#finish(context, undefined, result); return result; },
      (error) => { this.#finish(context, error); throw error; },
    ), false);
  }
  traceCallback(fn, position = -1, context = {}, thisArg, ...args) {
    if (!this.hasSubscribers) return fn.apply(thisArg, args);
    const at = position < 0 ? args.length + position : position;
    const callback = args[at];
    args[at] = (error, result) => this.#finish(context, error, result, () => callback(error, result));
    return this.traceSync(fn, context, thisArg, ...args);
  }
}

export const tracingChannel = (nameOrChannels) => new TracingChannel(nameOrChannels);

export default { channel, hasSubscribers, subscribe, unsubscribe, tracingChannel, Channel, TracingChannel };
