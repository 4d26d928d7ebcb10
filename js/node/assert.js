// `assert`: the checks servers make of their own state.
class AssertionError extends Error {
  constructor(options) {
    super(options.message ?? "Assertion failed");
    this.name = "AssertionError";
    this.code = "ERR_ASSERTION";
    this.actual = options.actual;
    this.expected = options.expected;
    this.operator = options.operator;
  }
}
const fail = (message, actual, expected, operator) => {
  if (message instanceof Error) throw message;
  throw new AssertionError({ message, actual, expected, operator });
};
const same = (a, b, strict) => {
  if (strict ? Object.is(a, b) : a == b) return true;
  if (typeof a !== "object" || typeof b !== "object" || a === null || b === null) return false;
  if (strict && Object.getPrototypeOf(a) !== Object.getPrototypeOf(b)) return false;
  const keys = Object.keys(a);
  return keys.length === Object.keys(b).length && keys.every((k) => same(a[k], b[k], strict));
};
export default function assert(value, message) { if (!value) fail(message, value, true, "=="); }
assert.ok = assert;
assert.AssertionError = AssertionError;
assert.fail = (message = "Failed") => fail(message);
assert.equal = (a, b, m) => { if (a != b) fail(m ?? `${a} == ${b}`, a, b, "=="); };
assert.notEqual = (a, b, m) => { if (a == b) fail(m ?? `${a} != ${b}`, a, b, "!="); };
assert.strictEqual = (a, b, m) => { if (!Object.is(a, b)) fail(m ?? `Expected values to be strictly equal: ${a} !== ${b}`, a, b, "strictEqual"); };
assert.notStrictEqual = (a, b, m) => { if (Object.is(a, b)) fail(m ?? "Expected values to be not strictly equal", a, b, "notStrictEqual"); };
assert.deepEqual = (a, b, m) => { if (!same(a, b, false)) fail(m ?? "Expected values to be loosely deep-equal", a, b, "deepEqual"); };
assert.deepStrictEqual = (a, b, m) => { if (!same(a, b, true)) fail(m ?? "Expected values to be strictly deep-equal", a, b, "deepStrictEqual"); };
assert.notDeepStrictEqual = (a, b, m) => { if (same(a, b, true)) fail(m ?? "Expected values not to be strictly deep-equal", a, b, "notDeepStrictEqual"); };
assert.throws = (block, _expected, m) => { try { block(); } catch { return; } fail(m ?? "Missing expected exception."); };
assert.rejects = async (promise, _expected, m) => { try { await (typeof promise === "function" ? promise() : promise); } catch { return; } fail(m ?? "Missing expected rejection."); };
assert.match = (text, pattern, m) => { if (!pattern.test(text)) fail(m ?? `The input did not match ${pattern}`, text, pattern, "match"); };
assert.strict = assert;
