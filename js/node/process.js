// `process`: catwalk-js's global one.
export default globalThis.process;
