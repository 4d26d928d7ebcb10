// `fs/promises`: the promise API, each call made from its sync twin in `fs`, and file handles.
import * as fs from "./fs.js";
import { Buffer } from "buffer";

// By name, looked up at call time: `fs` and this module import each other, so neither may read the other's
// exports while they are still being evaluated.
const promiseOf = (name) => (...args) => new Promise((resolve, reject) => {
  try { resolve(fs[name](...args)); } catch (error) { reject(error); }
});

export class FileHandle {
  constructor(fd) { this.fd = fd; }
  async read(buffer, offset, length, position) {
    if (buffer === undefined || (typeof buffer === "object" && !ArrayBuffer.isView(buffer))) {
      const options = buffer ?? {};
      buffer = options.buffer ?? Buffer.alloc(16384);
      ({ offset = 0, length = buffer.byteLength - offset, position = null } = options);
    }
    const bytesRead = fs.readSync(this.fd, buffer, offset ?? 0, length ?? buffer.byteLength - (offset ?? 0), position);
    return { bytesRead, buffer };
  }
  async write(data, ...rest) { return { bytesWritten: fs.writeSync(this.fd, data, ...rest), buffer: data }; }
  async readFile(options) { return fs.readFileSync(this.fd, options); }
  async writeFile(data, options) { fs.writeFileSync(this.fd, data, options); }
  async appendFile(data, options) { fs.writeFileSync(this.fd, data, options); }
  async stat() { return fs.fstatSync(this.fd); }
  async truncate() { throw Object.assign(new Error("ftruncate is not available in catwalk's sandbox"), { code: "ENOSYS" }); }
  async sync() {}
  async datasync() {}
  async chmod() {}
  async close() { if (this.fd !== -1) fs.closeSync(this.fd); this.fd = -1; }
  createReadStream(options = {}) { return fs.createReadStream(null, { ...options, fd: this.fd }); }
  async *readLines() {
    const text = fs.readFileSync(this.fd, "utf8");
    yield* text.split(/\r?\n/).filter((line, i, all) => i < all.length - 1 || line !== "");
  }
  [Symbol.asyncDispose]() { return this.close(); }
}

export const open = async (path, flags = "r") => new FileHandle(fs.openSync(path, flags));
export const readFile = promiseOf("readFileSync");
export const writeFile = promiseOf("writeFileSync");
export const appendFile = promiseOf("appendFileSync");
export const stat = promiseOf("statSync");
export const lstat = promiseOf("lstatSync");
export const readdir = promiseOf("readdirSync");
export const mkdir = promiseOf("mkdirSync");
export const rmdir = promiseOf("rmdirSync");
export const rm = promiseOf("rmSync");
export const unlink = promiseOf("unlinkSync");
export const rename = promiseOf("renameSync");
export const copyFile = promiseOf("copyFileSync");
export const cp = promiseOf("cpSync");
export const readlink = promiseOf("readlinkSync");
export const realpath = promiseOf("realpathSync");
export const access = promiseOf("accessSync");
export const truncate = promiseOf("truncateSync");
export const mkdtemp = promiseOf("mkdtempSync");
export const chmod = promiseOf("chmodSync");
export const chown = promiseOf("chownSync");
export const utimes = promiseOf("utimesSync");
export const symlink = promiseOf("symlinkSync");
export const link = promiseOf("linkSync");
export const watch = () => { throw Object.assign(new Error("fs.watch is not available in catwalk's sandbox"), { code: "ENOSYS" }); };
export { constants } from "./fs.js";
export default { open, readFile, writeFile, appendFile, stat, lstat, readdir, mkdir, rmdir, rm, unlink, rename, copyFile, cp, readlink, realpath, access, truncate, mkdtemp, chmod, chown, utimes, symlink, link, watch, FileHandle, get constants() { return fs.constants; } };
