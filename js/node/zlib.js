// `zlib`: gzip, zlib and raw deflate, and brotli, as Node has them, over catwalk-js's native codecs
// (js/runtime/src/zlib.rs: flate2 and the brotli crate). The one-shot functions (`gzipSync`, `gunzip` with a
// callback, and the rest) and the streams (`createGzip` and the rest, Transform streams) share one path: a native
// stream the input is written through. Output bytes are zlib's format, not zlib's exact bytes: another compressor
// makes other (equally valid) choices, so compressed sizes can differ from Node's by a few bytes.
import { Buffer } from "buffer";
import { Transform } from "stream";

const host = globalThis.__catwalk;

export const constants = Object.freeze({
  Z_NO_FLUSH: 0, Z_PARTIAL_FLUSH: 1, Z_SYNC_FLUSH: 2, Z_FULL_FLUSH: 3, Z_FINISH: 4, Z_BLOCK: 5, Z_OK: 0,
  Z_STREAM_END: 1, Z_NEED_DICT: 2, Z_ERRNO: -1, Z_STREAM_ERROR: -2, Z_DATA_ERROR: -3, Z_MEM_ERROR: -4,
  Z_BUF_ERROR: -5, Z_VERSION_ERROR: -6, Z_NO_COMPRESSION: 0, Z_BEST_SPEED: 1, Z_BEST_COMPRESSION: 9,
  Z_DEFAULT_COMPRESSION: -1, Z_FILTERED: 1, Z_HUFFMAN_ONLY: 2, Z_RLE: 3, Z_FIXED: 4, Z_DEFAULT_STRATEGY: 0,
  ZLIB_VERNUM: 4897, DEFLATE: 1, INFLATE: 2, GZIP: 3, GUNZIP: 4, DEFLATERAW: 5, INFLATERAW: 6, UNZIP: 7,
  BROTLI_DECODE: 8, BROTLI_ENCODE: 9, Z_MIN_WINDOWBITS: 8, Z_MAX_WINDOWBITS: 15, Z_DEFAULT_WINDOWBITS: 15,
  Z_MIN_CHUNK: 64, Z_MAX_CHUNK: Infinity, Z_DEFAULT_CHUNK: 16384, Z_MIN_MEMLEVEL: 1, Z_MAX_MEMLEVEL: 9,
  Z_DEFAULT_MEMLEVEL: 8, Z_MIN_LEVEL: -1, Z_MAX_LEVEL: 9, Z_DEFAULT_LEVEL: -1, BROTLI_OPERATION_PROCESS: 0,
  BROTLI_OPERATION_FLUSH: 1, BROTLI_OPERATION_FINISH: 2, BROTLI_OPERATION_EMIT_METADATA: 3, BROTLI_PARAM_MODE: 0,
  BROTLI_MODE_GENERIC: 0, BROTLI_MODE_TEXT: 1, BROTLI_MODE_FONT: 2, BROTLI_DEFAULT_MODE: 0,
  BROTLI_PARAM_QUALITY: 1, BROTLI_MIN_QUALITY: 0, BROTLI_MAX_QUALITY: 11, BROTLI_DEFAULT_QUALITY: 11,
  BROTLI_PARAM_LGWIN: 2, BROTLI_MIN_WINDOW_BITS: 10, BROTLI_MAX_WINDOW_BITS: 24,
  BROTLI_LARGE_MAX_WINDOW_BITS: 30, BROTLI_DEFAULT_WINDOW: 22, BROTLI_PARAM_LGBLOCK: 3,
  BROTLI_MIN_INPUT_BLOCK_BITS: 16, BROTLI_MAX_INPUT_BLOCK_BITS: 24,
  BROTLI_PARAM_DISABLE_LITERAL_CONTEXT_MODELING: 4, BROTLI_PARAM_SIZE_HINT: 5, BROTLI_PARAM_LARGE_WINDOW: 6,
  BROTLI_PARAM_NPOSTFIX: 7, BROTLI_PARAM_NDIRECT: 8, BROTLI_DECODER_RESULT_ERROR: 0,
  BROTLI_DECODER_RESULT_SUCCESS: 1, BROTLI_DECODER_RESULT_NEEDS_MORE_INPUT: 2,
  BROTLI_DECODER_RESULT_NEEDS_MORE_OUTPUT: 3, BROTLI_DECODER_PARAM_DISABLE_RING_BUFFER_REALLOCATION: 0,
  BROTLI_DECODER_PARAM_LARGE_WINDOW: 1, BROTLI_DECODER_NO_ERROR: 0, BROTLI_DECODER_SUCCESS: 1,
  BROTLI_DECODER_NEEDS_MORE_INPUT: 2, BROTLI_DECODER_NEEDS_MORE_OUTPUT: 3,
  BROTLI_DECODER_ERROR_FORMAT_EXUBERANT_NIBBLE: -1, BROTLI_DECODER_ERROR_FORMAT_RESERVED: -2,
  BROTLI_DECODER_ERROR_FORMAT_EXUBERANT_META_NIBBLE: -3, BROTLI_DECODER_ERROR_FORMAT_SIMPLE_HUFFMAN_ALPHABET: -4,
  BROTLI_DECODER_ERROR_FORMAT_SIMPLE_HUFFMAN_SAME: -5, BROTLI_DECODER_ERROR_FORMAT_CL_SPACE: -6,
  BROTLI_DECODER_ERROR_FORMAT_HUFFMAN_SPACE: -7, BROTLI_DECODER_ERROR_FORMAT_CONTEXT_MAP_REPEAT: -8,
  BROTLI_DECODER_ERROR_FORMAT_BLOCK_LENGTH_1: -9, BROTLI_DECODER_ERROR_FORMAT_BLOCK_LENGTH_2: -10,
  BROTLI_DECODER_ERROR_FORMAT_TRANSFORM: -11, BROTLI_DECODER_ERROR_FORMAT_DICTIONARY: -12,
  BROTLI_DECODER_ERROR_FORMAT_WINDOW_BITS: -13, BROTLI_DECODER_ERROR_FORMAT_PADDING_1: -14,
  BROTLI_DECODER_ERROR_FORMAT_PADDING_2: -15, BROTLI_DECODER_ERROR_FORMAT_DISTANCE: -16,
  BROTLI_DECODER_ERROR_FORMAT_BLOCK_SWITCH: -17, BROTLI_DECODER_ERROR_DICTIONARY_NOT_SET: -19,
  BROTLI_DECODER_ERROR_INVALID_ARGUMENTS: -20, BROTLI_DECODER_ERROR_ALLOC_CONTEXT_MODES: -21,
  BROTLI_DECODER_ERROR_ALLOC_TREE_GROUPS: -22, BROTLI_DECODER_ERROR_ALLOC_CONTEXT_MAP: -25,
  BROTLI_DECODER_ERROR_ALLOC_RING_BUFFER_1: -26, BROTLI_DECODER_ERROR_ALLOC_RING_BUFFER_2: -27,
  BROTLI_DECODER_ERROR_ALLOC_BLOCK_TYPE_TREES: -30, BROTLI_DECODER_ERROR_UNREACHABLE: -31,
});
export const codes = Object.freeze({
  Z_OK: 0, Z_STREAM_END: 1, Z_NEED_DICT: 2, Z_ERRNO: -1, Z_STREAM_ERROR: -2, Z_DATA_ERROR: -3, Z_MEM_ERROR: -4,
  Z_BUF_ERROR: -5, Z_VERSION_ERROR: -6, 0: "Z_OK", 1: "Z_STREAM_END", 2: "Z_NEED_DICT", "-1": "Z_ERRNO",
  "-2": "Z_STREAM_ERROR", "-3": "Z_DATA_ERROR", "-4": "Z_MEM_ERROR", "-5": "Z_BUF_ERROR", "-6": "Z_VERSION_ERROR",
});

const NONE = 0;
const FLUSH = 1;
const FINISH = 2;
const EMPTY = new Uint8Array(0);

function bytesOf(data, name = "buffer") {
  if (typeof data === "string") return Buffer.from(data, "utf8");
  if (data instanceof ArrayBuffer) return new Uint8Array(data);
  if (ArrayBuffer.isView(data)) return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  throw Object.assign(
    new TypeError(`The "${name}" argument must be of type string or an instance of Buffer, TypedArray, DataView, or ArrayBuffer. Received ${data === null ? "null" : typeof data}`),
    { code: "ERR_INVALID_ARG_TYPE" },
  );
}
const toBuffer = (bytes) => Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);

// The native stream's settings from Node's options: zlib's `level`, or brotli's quality and window `params`.
function open(kind, options = {}) {
  if (kind.startsWith("Brotli")) {
    const params = options?.params ?? {};
    return host.zlibOpen(kind, params[constants.BROTLI_PARAM_QUALITY] ?? constants.BROTLI_DEFAULT_QUALITY,
      params[constants.BROTLI_PARAM_LGWIN] ?? constants.BROTLI_DEFAULT_WINDOW);
  }
  const level = options?.level ?? constants.Z_DEFAULT_COMPRESSION;
  if (!Number.isInteger(level) || level < -1 || level > 9) {
    throw Object.assign(new RangeError(`The value of "options.level" is out of range. It must be >= -1 and <= 9. Received ${level}`), { code: "ERR_OUT_OF_RANGE" });
  }
  if (options?.dictionary !== undefined) {
    throw Object.assign(new Error("zlib dictionaries are not available in catwalk's sandbox"), { code: "ERR_FEATURE_UNAVAILABLE_ON_PLATFORM" });
  }
  return host.zlibOpen(kind, level, 0);
}

function oneShot(kind, data, options) {
  const input = bytesOf(data);
  const handle = open(kind, options);
  try {
    // `finishFlush` other than Z_FINISH leaves the stream open: a decompressor then gives what it has of a
    // stream cut short instead of failing.
    const mode = (options?.finishFlush ?? constants.Z_FINISH) === constants.Z_FINISH ? FINISH : FLUSH;
    const out = toBuffer(host.zlibWrite(handle, input, mode));
    if (options?.maxOutputLength !== undefined && out.length > options.maxOutputLength) {
      throw Object.assign(new RangeError(`Cannot create a Buffer larger than ${options.maxOutputLength} bytes`), { code: "ERR_BUFFER_TOO_LARGE" });
    }
    return options?.info ? { buffer: out, engine: undefined } : out;
  } finally {
    host.zlibClose(handle);
  }
}

class ZlibBase extends Transform {
  constructor(kind, options = {}) {
    super({ ...options, objectMode: false });
    this._kind = kind;
    this._handle = open(kind, options);
    this.bytesWritten = 0;
    this._closed = false;
  }
  _run(chunk, mode) {
    const out = host.zlibWrite(this._handle, chunk, mode);
    if (out.byteLength > 0) this.push(toBuffer(out));
  }
  _transform(chunk, encoding, callback) {
    const bytes = typeof chunk === "string" ? Buffer.from(chunk, encoding) : bytesOf(chunk, "chunk");
    this.bytesWritten += bytes.byteLength;
    try { this._run(bytes, NONE); } catch (error) { return callback(error); }
    callback();
  }
  _flush(callback) {
    try { this._run(EMPTY, FINISH); } catch (error) { return callback(error); }
    this._release();
    callback();
  }
  // Everything written so far comes out now (Z_SYNC_FLUSH), and the stream goes on.
  flush(kind, callback) {
    if (typeof kind === "function") callback = kind;
    try { if (!this._closed) this._run(EMPTY, FLUSH); } catch (error) { this.destroy(error); }
    if (typeof callback === "function") process.nextTick(callback);
  }
  params(level, strategy, callback) { if (typeof callback === "function") process.nextTick(callback); }
  reset() {
    this._release();
    this._handle = open(this._kind, {});
    this._closed = false;
  }
  close(callback) {
    if (typeof callback === "function") this.once("close", callback);
    this.destroy();
  }
  _destroy(error, callback) {
    this._release();
    callback(error);
  }
  _release() {
    if (!this._closed) host.zlibClose(this._handle);
    this._closed = true;
  }
}

const KINDS = ["Gzip", "Gunzip", "Deflate", "Inflate", "DeflateRaw", "InflateRaw", "Unzip", "BrotliCompress", "BrotliDecompress"];
const classes = {};
const functions = {};
for (const kind of KINDS) {
  const Class = { [kind]: class extends ZlibBase { constructor(options) { super(kind, options); } } }[kind];
  const name = kind[0].toLowerCase() + kind.slice(1);
  classes[kind] = Class;
  functions[`create${kind}`] = (options) => new Class(options);
  functions[`${name}Sync`] = (data, options) => oneShot(kind, data, options);
  functions[name] = (data, options, callback) => {
    if (typeof options === "function") { callback = options; options = {}; }
    if (typeof callback !== "function") {
      throw Object.assign(new TypeError(`The "callback" argument must be of type function. Received ${typeof callback}`), { code: "ERR_INVALID_ARG_TYPE" });
    }
    let result;
    try { result = oneShot(kind, data, options); } catch (error) { process.nextTick(callback, error); return; }
    process.nextTick(callback, null, result);
  };
}

const zstd = (what) => () => {
  throw Object.assign(new Error(`zlib.${what} is not available in catwalk's sandbox`), { code: "ERR_FEATURE_UNAVAILABLE_ON_PLATFORM" });
};
export function crc32(data, value = 0) {
  return host.crc32(bytesOf(data, "data"), value >>> 0);
}

export const { Gzip, Gunzip, Deflate, Inflate, DeflateRaw, InflateRaw, Unzip, BrotliCompress, BrotliDecompress } = classes;
export const {
  createGzip, createGunzip, createDeflate, createInflate, createDeflateRaw, createInflateRaw, createUnzip,
  createBrotliCompress, createBrotliDecompress, gzip, gzipSync, gunzip, gunzipSync, deflate, deflateSync, inflate,
  inflateSync, deflateRaw, deflateRawSync, inflateRaw, inflateRawSync, unzip, unzipSync, brotliCompress,
  brotliCompressSync, brotliDecompress, brotliDecompressSync,
} = functions;
export const ZstdCompress = zstd("ZstdCompress");
export const ZstdDecompress = zstd("ZstdDecompress");
export const createZstdCompress = zstd("createZstdCompress");
export const createZstdDecompress = zstd("createZstdDecompress");
export const zstdCompress = zstd("zstdCompress");
export const zstdCompressSync = zstd("zstdCompressSync");
export const zstdDecompress = zstd("zstdDecompress");
export const zstdDecompressSync = zstd("zstdDecompressSync");

export default {
  constants, codes, crc32, ...classes, ...functions, ZstdCompress, ZstdDecompress, createZstdCompress,
  createZstdDecompress, zstdCompress, zstdCompressSync, zstdDecompress, zstdDecompressSync,
};
