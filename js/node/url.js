// `url`: the WHATWG URL and URLSearchParams, Node's file URL helpers, and the legacy `parse`/`format`. Parsing,
// setting a part and form data are native, by the URL Standard (the runtime's whatwg.rs), as in Node; the
// classes here hold the parts and keep a URL and its searchParams in step.
const host = () => globalThis.__catwalk;
// The order of the parts the runtime gives (whatwg.rs, PARTS).
const [HREF, PROTOCOL, USERNAME, PASSWORD, HOST, HOSTNAME, PORT, PATHNAME, SEARCH, HASH, ORIGIN] = Array.from({ length: 11 }, (_, i) => i);

// WebIDL's USVString: a lone surrogate becomes U+FFFD.
const usv = (value) => {
  const text = String(value);
  return typeof text.toWellFormed === "function" ? text.toWellFormed() : text.replace(/[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g, "\uFFFD");
};
// Node's URL errors carry `code: "ERR_INVALID_URL"` and the `input`: libraries tell a native URL by it.
const invalid = (input) => Object.assign(new TypeError("Invalid URL"), { code: "ERR_INVALID_URL", input });
const parseParts = (input, base) => (base === undefined ? host().urlParse(usv(input)) : host().urlParse(usv(input), usv(base)));

// What a URL and its URLSearchParams tell each other (module-private).
const setQuery = Symbol("setQuery");
const resetList = Symbol("resetList");
const attach = Symbol("attach");

export class URL {
  #parts;
  #params = null;
  constructor(input, base) {
    if (arguments.length === 0) throw new TypeError('The "url" argument must be specified');
    const parts = parseParts(input, base);
    if (!parts) throw invalid(String(input));
    this.#parts = parts;
  }
  static canParse(input, base) { return parseParts(input, base) != null; }
  static parse(input, base) { const parts = parseParts(input, base); return parts ? new URL(parts[HREF]) : null; }
  #set(part, value) {
    const parts = host().urlSet(this.#parts[HREF], part, usv(value));
    if (parts) this.#parts = parts;
  }
  [setQuery](serialized) { this.#set("search", serialized); }
  get href() { return this.#parts[HREF]; }
  set href(value) {
    const parts = parseParts(value);
    if (!parts) throw invalid(String(value));
    this.#parts = parts;
    this.#params?.[resetList](parts[SEARCH]);
  }
  get origin() { return this.#parts[ORIGIN]; }
  get protocol() { return this.#parts[PROTOCOL]; }
  set protocol(value) { this.#set("protocol", value); }
  get username() { return this.#parts[USERNAME]; }
  set username(value) { this.#set("username", value); }
  get password() { return this.#parts[PASSWORD]; }
  set password(value) { this.#set("password", value); }
  get host() { return this.#parts[HOST]; }
  set host(value) { this.#set("host", value); }
  get hostname() { return this.#parts[HOSTNAME]; }
  set hostname(value) { this.#set("hostname", value); }
  get port() { return this.#parts[PORT]; }
  set port(value) { this.#set("port", value); }
  get pathname() { return this.#parts[PATHNAME]; }
  set pathname(value) { this.#set("pathname", value); }
  get search() { return this.#parts[SEARCH]; }
  set search(value) {
    this.#set("search", value);
    this.#params?.[resetList](this.#parts[SEARCH]);
  }
  get searchParams() {
    if (!this.#params) {
      this.#params = new URLSearchParams(this.#parts[SEARCH]);
      this.#params[attach](this);
    }
    return this.#params;
  }
  get hash() { return this.#parts[HASH]; }
  set hash(value) { this.#set("hash", value); }
  toString() { return this.#parts[HREF]; }
  toJSON() { return this.#parts[HREF]; }
  get [Symbol.toStringTag]() { return "URL"; }
}

export class URLSearchParams {
  #list = [];
  #url = null;
  constructor(init = "") {
    if (init instanceof URLSearchParams) this.#list = init.#list.map(([k, v]) => [k, v]);
    else if (init !== null && (typeof init === "object" || typeof init === "function")) {
      if (typeof init[Symbol.iterator] === "function") {
        for (const pair of init) {
          const entry = [...pair];
          if (entry.length !== 2) throw new TypeError("Each query pair must be an iterable [name, value] tuple");
          this.#list.push([usv(entry[0]), usv(entry[1])]);
        }
      } else {
        for (const key of Object.keys(init)) this.#list.push([usv(key), usv(init[key])]);
      }
    } else {
      this.#list = URLSearchParams.#parse(usv(init));
    }
  }
  static #parse(text) {
    const flat = host().formParse(text.startsWith("?") ? text.slice(1) : text);
    const list = [];
    for (let i = 0; i < flat.length; i += 2) list.push([flat[i], flat[i + 1]]);
    return list;
  }
  [attach](url) { this.#url = url; }
  [resetList](search) { this.#list = URLSearchParams.#parse(search); }
  #update() { this.#url?.[setQuery](this.toString()); }
  get size() { return this.#list.length; }
  append(name, value) { this.#list.push([usv(name), usv(value)]); this.#update(); }
  delete(name, value) {
    const key = usv(name);
    const only = value === undefined ? null : usv(value);
    this.#list = this.#list.filter(([k, v]) => k !== key || (only !== null && v !== only));
    this.#update();
  }
  get(name) { const key = usv(name); return this.#list.find(([k]) => k === key)?.[1] ?? null; }
  getAll(name) { const key = usv(name); return this.#list.filter(([k]) => k === key).map(([, v]) => v); }
  has(name, value) {
    const key = usv(name);
    const only = value === undefined ? null : usv(value);
    return this.#list.some(([k, v]) => k === key && (only === null || v === only));
  }
  set(name, value) {
    const key = usv(name);
    const at = this.#list.findIndex(([k]) => k === key);
    if (at < 0) this.#list.push([key, usv(value)]);
    else this.#list = this.#list.filter(([k], i) => k !== key || i === at).map((entry, i) => (i === at ? [key, usv(value)] : entry));
    this.#update();
  }
  // By name, in UTF-16 code units, keeping the order of equal names (Array.prototype.sort is stable).
  sort() { this.#list.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)); this.#update(); }
  forEach(callback, self) { for (const [k, v] of this.#list) callback.call(self, v, k, this); }
  *entries() { for (const [k, v] of this.#list) yield [k, v]; }
  *keys() { for (const [k] of this.#list) yield k; }
  *values() { for (const [, v] of this.#list) yield v; }
  [Symbol.iterator]() { return this.entries(); }
  toString() { return host().formSerialize(this.#list.flat()); }
  get [Symbol.toStringTag]() { return "URLSearchParams"; }
}

const encodePath = (path) => path.replace(/%/g, "%25").replace(/\\/g, "%5C").replace(/\n/g, "%0A")
  .replace(/\r/g, "%0D").replace(/\t/g, "%09").replace(/#/g, "%23").replace(/\?/g, "%3F").replace(/ /g, "%20")
  .replace(/[^\x00-\x7f]/g, (c) => encodeURIComponent(c));

export function fileURLToPath(url) {
  const href = typeof url === "string" ? url : url.href;
  if (!href.startsWith("file:")) throw Object.assign(new TypeError("The URL must be of scheme file"), { code: "ERR_INVALID_URL_SCHEME" });
  let path = href.slice(5).replace(/^\/\/[^/]*/, "").replace(/[?#].*$/, "");
  if (/%2f/i.test(path)) throw Object.assign(new TypeError("File URL path must not include encoded / characters"), { code: "ERR_INVALID_FILE_URL_PATH" });
  return decodeURIComponent(path);
}

export function pathToFileURL(path) {
  let resolved = String(path);
  if (!resolved.startsWith("/")) resolved = `${globalThis.process?.cwd?.() ?? "/"}/${resolved}`;
  return new URL(`file://${encodePath(resolved)}`);
}

// The legacy API, as far as servers use it: the parts of an absolute URL.
export function parse(text) {
  const match = /^(?:([a-z][a-z0-9+.-]*:))?(?:\/\/(?:([^@/]*)@)?([^/:?#]*)(?::(\d+))?)?([^?#]*)(\?[^#]*)?(#.*)?$/i.exec(String(text)) ?? [];
  const [, protocol = null, auth = null, hostname = null, port = null, pathname = null, search = null, hash = null] = match;
  return {
    protocol, slashes: /^[a-z][a-z0-9+.-]*:\/\//i.test(text) || null, auth,
    host: hostname === null ? null : port ? `${hostname}:${port}` : hostname,
    port, hostname, hash, search, query: search ? search.slice(1) : null,
    pathname, path: pathname === null ? null : `${pathname}${search ?? ""}`, href: String(text),
  };
}

export function format(url) {
  if (typeof url === "string") return url;
  if (url instanceof URL || typeof url.href === "string") return url.href;
  const auth = url.auth ? `${url.auth}@` : "";
  const host = url.host ?? (url.hostname ? `${url.hostname}${url.port ? `:${url.port}` : ""}` : "");
  return `${url.protocol ?? ""}${url.slashes || host ? "//" : ""}${auth}${host}${url.pathname ?? ""}${url.search ?? ""}${url.hash ?? ""}`;
}

// `url.resolve`: `to` against `from`, as a browser resolves a link (and a relative `from` stays relative).
export function resolve(from, to) {
  const resolved = new URL(String(to), new URL(String(from), "resolve://"));
  if (resolved.protocol === "resolve:") {
    const { pathname, search, hash } = resolved;
    return `${pathname}${search}${hash}`;
  }
  return resolved.toString();
}

// Node answers "" for a domain that is not valid.
export const domainToASCII = (domain) => host().urlParse(`http://${usv(domain)}`)?.[HOSTNAME] ?? "";
export default { URL, URLSearchParams, fileURLToPath, pathToFileURL, parse, format, resolve, domainToASCII };
