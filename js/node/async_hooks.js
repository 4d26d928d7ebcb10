// `async_hooks`: AsyncLocalStorage without propagation across awaits (QuickJS has no hooks for it): `run` sets
// the store for the synchronous part of its callback, which is how the servers that use it read it back.
export class AsyncLocalStorage {
  #store;
  getStore() { return this.#store; }
  run(store, callback, ...args) {
    const previous = this.#store;
    this.#store = store;
    try { return callback(...args); } finally { this.#store = previous; }
  }
  enterWith(store) { this.#store = store; }
  exit(callback, ...args) { return this.run(undefined, callback, ...args); }
  disable() { this.#store = undefined; }
}
export class AsyncResource {
  constructor(type) { this.type = type; }
  runInAsyncScope(callback, thisArg, ...args) { return callback.apply(thisArg, args); }
  bind(callback) { return callback.bind(this); }
  static bind(callback) { return callback; }
}
export const executionAsyncId = () => 0;
export const triggerAsyncId = () => 0;
export const createHook = () => ({ enable() { return this; }, disable() { return this; } });
export default { AsyncLocalStorage, AsyncResource, executionAsyncId, triggerAsyncId, createHook };
