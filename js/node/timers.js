// `timers` and `timers/promises`, on catwalk-js's timers.
export const { setTimeout, clearTimeout, setInterval, clearInterval, setImmediate, clearImmediate } = globalThis;

const abortable = (signal, start) => new Promise((resolve, reject) => {
  if (signal?.aborted) { reject(signal.reason); return; }
  const timer = start(resolve);
  signal?.addEventListener("abort", () => { clearTimeout(timer); reject(signal.reason); }, { once: true });
});
export const promises = {
  setTimeout: (ms, value, options = {}) => abortable(options.signal, (resolve) => {
    const timer = globalThis.setTimeout(() => resolve(value), ms);
    if (options.ref === false) timer.unref();
    return timer;
  }),
  setImmediate: (value, options = {}) => abortable(options.signal, (resolve) => globalThis.setImmediate(() => resolve(value))),
  async *setInterval(ms, value) {
    for (;;) { await promises.setTimeout(ms); yield value; }
  },
  scheduler: { wait: (ms, options) => promises.setTimeout(ms, undefined, options), yield: () => promises.setImmediate() },
};
export default { setTimeout, clearTimeout, setInterval, clearInterval, setImmediate, clearImmediate, promises };
