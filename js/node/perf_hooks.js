// perf_hooks: `performance` (the layer's global), Node's constants, and what metrics libraries (OpenTelemetry's
// runtime instrumentation) set up as they load: observers and event-loop-delay histograms. The sandbox measures no
// garbage collection and no loop delay, so an observer sees no entries and a histogram stays empty, as Node's are
// before their first sample.
export const performance = globalThis.performance;

export const constants = {
  NODE_PERFORMANCE_GC_MAJOR: 4, NODE_PERFORMANCE_GC_MINOR: 1, NODE_PERFORMANCE_GC_MINOR_MARK_SWEEP: 2,
  NODE_PERFORMANCE_GC_INCREMENTAL: 8, NODE_PERFORMANCE_GC_WEAKCB: 16, NODE_PERFORMANCE_GC_FLAGS_NO: 0,
  NODE_PERFORMANCE_GC_FLAGS_CONSTRUCT_RETAINED: 2, NODE_PERFORMANCE_GC_FLAGS_FORCED: 4,
  NODE_PERFORMANCE_GC_FLAGS_SYNCHRONOUS_PHANTOM_PROCESSING: 8, NODE_PERFORMANCE_GC_FLAGS_ALL_AVAILABLE_GARBAGE: 16,
  NODE_PERFORMANCE_GC_FLAGS_ALL_EXTERNAL_MEMORY: 32, NODE_PERFORMANCE_GC_FLAGS_SCHEDULE_IDLE: 64,
};

export class PerformanceObserver {
  static supportedEntryTypes = ["dns", "function", "gc", "http", "http2", "mark", "measure", "net", "resource"];
  constructor(callback) {
    if (typeof callback !== "function") throw Object.assign(new TypeError('The "callback" argument must be of type function'), { code: "ERR_INVALID_ARG_TYPE" });
  }
  observe() {}
  disconnect() {}
  takeRecords() { return []; }
}

// An empty histogram, with Node's answers for one that has no samples yet.
class Histogram {
  count = 0;
  min = 9223372036854776000;
  max = 0;
  mean = NaN;
  stddev = NaN;
  exceeds = 0;
  percentiles = new Map();
  percentile() { return 0; }
  reset() {}
  enable() { return true; }
  disable() { return true; }
  record() {}
  recordDelta() {}
}

export const monitorEventLoopDelay = () => new Histogram();
export const createHistogram = () => new Histogram();

export default { performance, constants, PerformanceObserver, monitorEventLoopDelay, createHistogram };
