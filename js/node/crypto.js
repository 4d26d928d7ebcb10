// `crypto`: randomness from WASI (catwalk-js's `random_get`), and hashes and HMACs of the common digests
// (md5, sha1, sha224, sha256, sha384, sha512, computed by the runtime). Ciphers, key derivation and keys are not
// in the sandbox's runtime; asking for one fails with a clear error rather than a wrong answer.
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
const BLOCK = { md5: 64, sha1: 64, sha224: 64, sha256: 64, sha384: 128, sha512: 128 };
const normal = (algorithm) => String(algorithm).toLowerCase().replace("-", "");
const bytesOf = (data, encoding) => (typeof data === "string" ? Buffer.from(data, encoding ?? "utf8") : Buffer.from(data.buffer ?? data, data.byteOffset ?? 0, data.byteLength));
const digestOf = (algorithm, bytes) => {
  const out = host.digest(algorithm, new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength));
  if (out === null || out === undefined) throw Object.assign(new Error("Digest method not supported"), { code: "ERR_CRYPTO_INVALID_DIGEST" });
  return Buffer.from(out.buffer, out.byteOffset, out.byteLength);
};
class Hash {
  constructor(algorithm, key) {
    this._algorithm = normal(algorithm);
    if (!(this._algorithm in BLOCK)) throw Object.assign(new Error("Digest method not supported"), { code: "ERR_CRYPTO_INVALID_DIGEST" });
    this._chunks = [];
    this._done = false;
    if (key !== undefined) {
      // HMAC (RFC 2104) over the runtime's digest.
      let k = bytesOf(key);
      const block = BLOCK[this._algorithm];
      if (k.length > block) k = digestOf(this._algorithm, k);
      const padded = Buffer.alloc(block);
      k.copy(padded);
      this._outer = Buffer.from(padded.map((b) => b ^ 0x5c));
      this._chunks.push(Buffer.from(padded.map((b) => b ^ 0x36)));
    }
  }
  update(data, encoding) {
    if (this._done) throw Object.assign(new Error("Digest already called"), { code: "ERR_CRYPTO_HASH_FINALIZED" });
    this._chunks.push(bytesOf(data, encoding));
    return this;
  }
  digest(encoding) {
    if (this._done) throw Object.assign(new Error("Digest already called"), { code: "ERR_CRYPTO_HASH_FINALIZED" });
    this._done = true;
    let out = digestOf(this._algorithm, Buffer.concat(this._chunks));
    if (this._outer) out = digestOf(this._algorithm, Buffer.concat([this._outer, out]));
    return encoding && encoding !== "buffer" ? out.toString(encoding) : out;
  }
  copy() {
    const copy = Object.create(Hash.prototype);
    Object.assign(copy, this, { _chunks: [...this._chunks] });
    return copy;
  }
}
export const createHash = (algorithm) => new Hash(algorithm);
export const createHmac = (algorithm, key) => new Hash(algorithm, key);
export const hash = (algorithm, data, encoding = "hex") => new Hash(algorithm).update(data).digest(encoding);
export const createCipheriv = unavailable("createCipheriv");
export const createDecipheriv = unavailable("createDecipheriv");
export const pbkdf2 = unavailable("pbkdf2");
export const pbkdf2Sync = unavailable("pbkdf2Sync");
export const scrypt = unavailable("scrypt");
export const scryptSync = unavailable("scryptSync");
export const generateKeyPair = unavailable("generateKeyPair");
export const createPublicKey = unavailable("createPublicKey");
export const createPrivateKey = unavailable("createPrivateKey");
export const getHashes = () => Object.keys(BLOCK);
export const webcrypto = { getRandomValues, randomUUID, subtle: new Proxy({}, { get: (_, key) => unavailable(`subtle.${String(key)}`) }) };
export default { getRandomValues, randomUUID, randomBytes, randomInt, randomFillSync, timingSafeEqual, createHash, createHmac, hash, createCipheriv, createDecipheriv, pbkdf2, pbkdf2Sync, scrypt, scryptSync, generateKeyPair, createPublicKey, createPrivateKey, getHashes, webcrypto };
