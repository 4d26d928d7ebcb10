// `crypto`: randomness from WASI (catwalk-js's `random_get`). Hashes, ciphers and keys are not in the
// sandbox's runtime; asking for one fails with a clear error rather than a wrong answer.
import { Buffer } from "buffer";

const host = globalThis.__catwalk;
const unavailable = (what) => () => {
  throw Object.assign(new Error(`crypto.${what} is not available in catwalk's sandbox`), { code: "ERR_FEATURE_UNAVAILABLE_ON_PLATFORM" });
};

export const getRandomValues = (array) => globalThis.crypto.getRandomValues(array);
export const randomUUID = () => globalThis.crypto.randomUUID();
export function randomBytes(size, callback) {
  const bytes = Buffer.alloc(size);
  for (let at = 0; at < size; at += 65536) bytes.set(host.random(Math.min(65536, size - at)), at);
  if (typeof callback === "function") { queueMicrotask(() => callback(null, bytes)); return undefined; }
  return bytes;
}
export function randomInt(min, max, callback) {
  if (max === undefined || typeof max === "function") { callback = max; max = min; min = 0; }
  const range = max - min;
  const words = new Uint32Array(2);
  getRandomValues(words);
  const value = min + Math.floor(((words[0] * 2 ** 32 + words[1]) / 2 ** 64) * range);
  if (typeof callback === "function") { queueMicrotask(() => callback(null, value)); return undefined; }
  return value;
}
export const randomFillSync = (buffer, offset = 0, size = buffer.byteLength - offset) => {
  getRandomValues(new Uint8Array(buffer.buffer ?? buffer, (buffer.byteOffset ?? 0) + offset, size));
  return buffer;
};
export function timingSafeEqual(a, b) {
  if (a.byteLength !== b.byteLength) throw new RangeError("Input buffers must have the same byte length");
  let diff = 0;
  for (let i = 0; i < a.byteLength; i++) diff |= a[i] ^ b[i];
  return diff === 0;
}
export const createHash = unavailable("createHash");
export const createHmac = unavailable("createHmac");
export const createCipheriv = unavailable("createCipheriv");
export const createDecipheriv = unavailable("createDecipheriv");
export const pbkdf2 = unavailable("pbkdf2");
export const pbkdf2Sync = unavailable("pbkdf2Sync");
export const scrypt = unavailable("scrypt");
export const scryptSync = unavailable("scryptSync");
export const generateKeyPair = unavailable("generateKeyPair");
export const createPublicKey = unavailable("createPublicKey");
export const createPrivateKey = unavailable("createPrivateKey");
export const getHashes = () => [];
export const webcrypto = { getRandomValues, randomUUID, subtle: new Proxy({}, { get: (_, key) => unavailable(`subtle.${String(key)}`) }) };
export default { getRandomValues, randomUUID, randomBytes, randomInt, randomFillSync, timingSafeEqual, createHash, createHmac, createCipheriv, createDecipheriv, pbkdf2, pbkdf2Sync, scrypt, scryptSync, generateKeyPair, createPublicKey, createPrivateKey, getHashes, webcrypto };
