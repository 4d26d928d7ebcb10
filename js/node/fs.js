// `fs`: Node's sync, callback and stream APIs over catwalk-js's WASI primitives (`__catwalk.fs`, fs.rs). The
// guest sees only the directories catwalk granted it; errors are Node's (`ENOENT: ..., open '/x'`, with `code`).
import { Buffer } from "buffer";
import path from "path";
import { fileURLToPath } from "./url.js";

const native = globalThis.__catwalk.fs;

const toPath = (p) => {
  if (p instanceof URL || (typeof p === "object" && p !== null && typeof p.href === "string")) return fileURLToPath(p);
  if (Buffer.isBuffer(p)) return p.toString();
  if (typeof p !== "string") throw Object.assign(new TypeError(`The "path" argument must be of type string. Received ${typeof p}`), { code: "ERR_INVALID_ARG_TYPE" });
  return path.resolve(globalThis.process.cwd(), p);
};
const encodingOf = (options) => (typeof options === "string" ? options : options?.encoding ?? null);
const decode = (bytes, encoding) => {
  const buffer = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  return encoding && encoding !== "buffer" ? buffer.toString(encoding) : buffer;
};
const dataOf = (data, options) => {
  if (typeof data === "string") {
    const encoding = encodingOf(options) ?? "utf8";
    return encoding === "utf8" || encoding === "utf-8" ? data : Buffer.from(data, encoding);
  }
  if (ArrayBuffer.isView(data)) return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  return String(data);
};

export const constants = {
  F_OK: 0, R_OK: 4, W_OK: 2, X_OK: 1,
  O_RDONLY: 0, O_WRONLY: 1, O_RDWR: 2, O_CREAT: 64, O_EXCL: 128, O_TRUNC: 512, O_APPEND: 1024,
  COPYFILE_EXCL: 1, COPYFILE_FICLONE: 2, COPYFILE_FICLONE_FORCE: 4,
  S_IFMT: 0o170000, S_IFREG: 0o100000, S_IFDIR: 0o040000, S_IFLNK: 0o120000,
};
export const { F_OK, R_OK, W_OK, X_OK } = constants;

const MODES = { file: 0o100644, dir: 0o040755, symlink: 0o120777, other: 0o010644 };
// What Stats and Dirent answer about the kind of an entry.
class Entry {
  constructor(kind) { Object.defineProperty(this, "_kind", { value: kind }); }
  isFile() { return this._kind === "file"; }
  isDirectory() { return this._kind === "dir"; }
  isSymbolicLink() { return this._kind === "symlink"; }
  isBlockDevice() { return false; }
  isCharacterDevice() { return false; }
  isFIFO() { return false; }
  isSocket() { return false; }
}
export class Stats extends Entry {
  constructor([kind, size, mtimeMs, atimeMs, ctimeMs, birthtimeMs, ino, nlink]) {
    super(kind);
    Object.assign(this, {
      dev: 0, mode: MODES[kind], nlink, uid: 0, gid: 0, rdev: 0, blksize: 4096, ino, size,
      blocks: Math.ceil(size / 512), atimeMs, mtimeMs, ctimeMs, birthtimeMs,
      atime: new Date(atimeMs), mtime: new Date(mtimeMs), ctime: new Date(ctimeMs), birthtime: new Date(birthtimeMs),
    });
  }
}
export class Dirent extends Entry {
  constructor(name, kind, parentPath) {
    super(kind);
    this.name = name;
    this.parentPath = parentPath;
    this.path = parentPath;
  }
}

const present = (p) => { try { native.stat(p, true); return true; } catch { return false; } };

export const existsSync = (p) => { try { return present(toPath(p)); } catch { return false; } };
export const readFileSync = (p, options) => {
  if (typeof p === "number") return readAll(p, encodingOf(options));
  return decode(native.readFile(toPath(p)), encodingOf(options));
};
export const writeFileSync = (p, data, options) => {
  if (typeof p === "number") { writeSync(p, dataOf(data, options)); return; }
  native.writeFile(toPath(p), dataOf(data, options), typeof options === "object" && options?.flag ? options.flag : "w");
};
export const appendFileSync = (p, data, options) => native.writeFile(toPath(p), dataOf(data, options), "a");
export const statSync = (p, options = {}) => {
  try { return new Stats(native.stat(toPath(p), true)); } catch (error) {
    if (options.throwIfNoEntry === false && error.code === "ENOENT") return undefined;
    throw error;
  }
};
export const lstatSync = (p, options = {}) => {
  try { return new Stats(native.stat(toPath(p), false)); } catch (error) {
    if (options.throwIfNoEntry === false && error.code === "ENOENT") return undefined;
    throw error;
  }
};
export const readdirSync = (p, options = {}) => {
  const dir = toPath(p);
  const found = [];
  const visit = (at, prefix) => {
    for (const [name, kind] of native.readdir(at)) {
      const relative = prefix ? `${prefix}/${name}` : name;
      found.push(options.withFileTypes ? new Dirent(name, kind, at) : relative);
      if (options.recursive && kind === "dir") visit(`${at}/${name}`, relative);
    }
  };
  visit(dir, "");
  if (encodingOf(options) === "buffer") return found.map((n) => (typeof n === "string" ? Buffer.from(n) : n));
  return found;
};
export const mkdirSync = (p, options) => {
  const dir = toPath(p);
  const recursive = typeof options === "object" && Boolean(options?.recursive);
  if (!recursive) { native.mkdir(dir, false); return undefined; }
  let first = dir;
  while (!present(path.dirname(first)) && path.dirname(first) !== first) first = path.dirname(first);
  return native.mkdir(dir, true) ? first : undefined;
};
export const rmdirSync = (p, options = {}) => native.rmdir(toPath(p), Boolean(options.recursive));
export const rmSync = (p, options = {}) => {
  const target = toPath(p);
  let stats;
  try { stats = native.stat(target, false); } catch (error) {
    if (options.force && error.code === "ENOENT") return;
    throw error;
  }
  if (stats[0] === "dir") {
    if (!options.recursive) throw Object.assign(new Error(`Path is a directory: rm returned EISDIR (is a directory) ${target}`), { code: "ERR_FS_EISDIR" });
    native.rmdir(target, true);
  } else native.unlink(target);
};
export const unlinkSync = (p) => native.unlink(toPath(p));
export const renameSync = (from, to) => native.rename(toPath(from), toPath(to));
export const copyFileSync = (from, to, mode = 0) => {
  if (mode & constants.COPYFILE_EXCL && present(toPath(to))) native.writeFile(toPath(to), "", "wx");
  native.copyFile(toPath(from), toPath(to));
};
export const cpSync = (from, to, options = {}) => {
  const source = toPath(from);
  const target = toPath(to);
  if (native.stat(source, true)[0] !== "dir") { copyFileSync(source, target); return; }
  if (!options.recursive) throw Object.assign(new Error(`Recursive option is required to copy a directory: ${source}`), { code: "ERR_FS_EISDIR" });
  mkdirSync(target, { recursive: true });
  for (const [name] of native.readdir(source)) cpSync(`${source}/${name}`, `${target}/${name}`, options);
};
export const readlinkSync = (p) => native.readlink(toPath(p));
export const realpathSync = (p) => native.realpath(toPath(p));
realpathSync.native = realpathSync;
export const accessSync = (p, mode = F_OK) => {
  const target = toPath(p);
  native.stat(target, true);
  if (mode & W_OK) {
    // WASI has no access(): a read-only grant shows as the error a write would get.
    const probe = native.stat(target, true)[0] === "dir" ? null : target;
    if (probe) { const fd = native.open(probe, "r+"); native.close(fd); }
  }
};
export const truncateSync = (p, len = 0) => native.truncate(toPath(p), len);
export const ftruncateSync = () => { throw unavailable("ftruncate"); };
export const mkdtempSync = (prefix) => {
  const suffix = [...globalThis.__catwalk.random(6)].map((b) => "abcdefghijklmnopqrstuvwxyz0123456789"[b % 36]).join("");
  const dir = `${toPath(prefix)}${suffix}`;
  native.mkdir(dir, false);
  return dir;
};
// WASI has no permissions, owners or times to set: these succeed on a path that exists, as a no-op.
export const chmodSync = (p) => { native.stat(toPath(p), true); };
export const chownSync = chmodSync;
export const utimesSync = chmodSync;
export const lutimesSync = chmodSync;
export const symlinkSync = () => { throw unavailable("symlink"); };
export const linkSync = () => { throw unavailable("link"); };

export const openSync = (p, flags = "r") => native.open(toPath(p), typeof flags === "number" ? flagString(flags) : flags);
export const closeSync = (fd) => native.close(fd);
export const fstatSync = (fd) => new Stats(native.fstat(fd));
export const fsyncSync = () => {};
export const fdatasyncSync = () => {};
export function readSync(fd, buffer, offsetOrOptions, length, position) {
  let offset = offsetOrOptions;
  if (typeof offsetOrOptions === "object" && offsetOrOptions !== null) ({ offset = 0, length = buffer.byteLength - offset, position = null } = offsetOrOptions);
  offset ??= 0;
  length ??= buffer.byteLength - offset;
  const bytes = native.read(fd, length, position ?? -1);
  new Uint8Array(buffer.buffer, buffer.byteOffset, buffer.byteLength).set(bytes, offset);
  return bytes.byteLength;
}
export function writeSync(fd, data, offsetOrPosition, lengthOrEncoding, position) {
  if (typeof data === "string") return native.write(fd, data, typeof offsetOrPosition === "number" ? offsetOrPosition : -1);
  const offset = offsetOrPosition ?? 0;
  const length = lengthOrEncoding ?? data.byteLength - offset;
  return native.write(fd, new Uint8Array(data.buffer, data.byteOffset + offset, length), position ?? -1);
}
const readAll = (fd, encoding) => {
  const chunks = [];
  for (;;) {
    const chunk = native.read(fd, 65536, -1);
    if (chunk.byteLength === 0) break;
    chunks.push(Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength));
  }
  const all = Buffer.concat(chunks);
  return encoding ? all.toString(encoding) : all;
};
const flagString = (flags) => {
  const access = flags & 3;
  if (flags & constants.O_APPEND) return access === 2 ? "a+" : "a";
  if (flags & constants.O_CREAT) return `${flags & constants.O_TRUNC ? "w" : "a"}${flags & constants.O_EXCL ? "x" : ""}${access === 2 ? "+" : ""}`;
  return access === 0 ? "r" : "r+";
};

const unavailable = (what) => Object.assign(new Error(`fs.${what} is not available in catwalk's sandbox`), { code: "ENOSYS", syscall: what });
export const watch = () => { throw unavailable("watch"); };
export const watchFile = () => { throw unavailable("watchFile"); };
export const unwatchFile = () => {};

export function createReadStream(p, options = {}) {
  if (typeof options === "string") options = { encoding: options };
  const { start = 0, end = Infinity, highWaterMark = 65536 } = options;
  let fd = null;
  let position = start;
  const { Readable } = require("stream");
  const stream = new Readable({
    highWaterMark,
    encoding: options.encoding,
    read() {
      try {
        fd ??= typeof options.fd === "number" ? options.fd : openSync(p, options.flags ?? "r");
        const wanted = Math.min(highWaterMark, end + 1 - position);
        const chunk = wanted > 0 ? native.read(fd, wanted, position) : new Uint8Array(0);
        position += chunk.byteLength;
        this.push(chunk.byteLength > 0 ? Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength) : null);
      } catch (error) { this.destroy(error); }
    },
    destroy(error, callback) {
      if (fd !== null && options.autoClose !== false) { try { native.close(fd); } catch {} }
      callback(error);
    },
  });
  stream.path = p;
  return stream;
}
export function createWriteStream(p, options = {}) {
  if (typeof options === "string") options = { encoding: options };
  let fd = null;
  const { Writable } = require("stream");
  const stream = new Writable({
    write(chunk, encoding, callback) {
      try {
        fd ??= openSync(p, options.flags ?? "w");
        native.write(fd, typeof chunk === "string" ? chunk : new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength), -1);
        callback();
      } catch (error) { callback(error); }
    },
    final(callback) { if (fd !== null) native.close(fd); fd = null; callback(); },
  });
  stream.path = p;
  return stream;
}

// The callback API: each call made from its sync twin, answered on a later turn as Node's are.
const callbackOf = (sync) => (...args) => {
  const callback = typeof args[args.length - 1] === "function" ? args.pop() : null;
  let result;
  let failure = null;
  try { result = sync(...args); } catch (error) { failure = error; }
  if (callback) queueMicrotask(() => (failure ? callback(failure) : callback(null, result)));
};
export const readFile = callbackOf(readFileSync);
export const writeFile = callbackOf(writeFileSync);
export const appendFile = callbackOf(appendFileSync);
export const stat = callbackOf(statSync);
export const lstat = callbackOf(lstatSync);
export const readdir = callbackOf(readdirSync);
export const mkdir = callbackOf(mkdirSync);
export const rmdir = callbackOf(rmdirSync);
export const rm = callbackOf(rmSync);
export const unlink = callbackOf(unlinkSync);
export const rename = callbackOf(renameSync);
export const copyFile = callbackOf(copyFileSync);
export const cp = callbackOf(cpSync);
export const readlink = callbackOf(readlinkSync);
export const realpath = callbackOf(realpathSync);
realpath.native = realpath;
export const access = callbackOf(accessSync);
export const truncate = callbackOf(truncateSync);
export const mkdtemp = callbackOf(mkdtempSync);
export const chmod = callbackOf(chmodSync);
export const chown = callbackOf(chownSync);
export const utimes = callbackOf(utimesSync);
export const open = callbackOf(openSync);
export const close = callbackOf(closeSync);
export const fstat = callbackOf(fstatSync);
export const fsync = callbackOf(fsyncSync);
export const read = (fd, buffer, offset, length, position, callback) => {
  try { const n = readSync(fd, buffer, offset, length, position); queueMicrotask(() => callback(null, n, buffer)); } catch (error) { queueMicrotask(() => callback(error)); }
};
export const write = (fd, data, ...rest) => {
  const callback = typeof rest[rest.length - 1] === "function" ? rest.pop() : () => {};
  try { const n = writeSync(fd, data, ...rest); queueMicrotask(() => callback(null, n, data)); } catch (error) { queueMicrotask(() => callback(error)); }
};
export const exists = (p, callback) => queueMicrotask(() => callback(existsSync(p)));

import promises from "./fs-promises.js";
export { promises };

export default {
  constants, F_OK, R_OK, W_OK, X_OK, Stats, Dirent, existsSync, readFileSync, writeFileSync, appendFileSync, statSync,
  lstatSync, readdirSync, mkdirSync, rmdirSync, rmSync, unlinkSync, renameSync, copyFileSync, cpSync, readlinkSync,
  realpathSync, accessSync, truncateSync, ftruncateSync, mkdtempSync, chmodSync, chownSync, utimesSync, lutimesSync,
  symlinkSync, linkSync, openSync, closeSync, fstatSync, fsyncSync, fdatasyncSync, readSync, writeSync, watch,
  watchFile, unwatchFile, createReadStream, createWriteStream, readFile, writeFile, appendFile, stat, lstat, readdir,
  mkdir, rmdir, rm, unlink, rename, copyFile, cp, readlink, realpath, access, truncate, mkdtemp, chmod, chown,
  utimes, open, close, fstat, fsync, read, write, exists, promises,
};
