// `url`: the WHATWG URL (the maintained `whatwg-url`, loaded on first use: most servers never build a URL, and
// its Unicode tables are large), Node's file URL helpers, and the legacy `parse`/`format`.
let whatwg;
const impl = () => (whatwg ??= require("whatwg-url"));

// Node's URL errors carry `code: "ERR_INVALID_URL"` and the `input`: libraries tell a native URL by it.
const construct = (name, args, newTarget) => {
  try {
    // `newTarget`: a subclass's own (node-fetch's Headers extends URLSearchParams) gets its own prototype.
    return Reflect.construct(impl()[name], args, newTarget === proxies[name] ? impl()[name] : newTarget);
  } catch (error) {
    if (error instanceof TypeError && name === "URL") throw Object.assign(error, { code: "ERR_INVALID_URL", input: String(args[0]) });
    throw error;
  }
};
const proxies = {};
const lazy = (name) => (proxies[name] = new Proxy(function () {}, {
  construct: (_, args, newTarget) => construct(name, args, newTarget),
  apply: () => { throw new TypeError(`Class constructor ${name} cannot be invoked without 'new'`); },
  get: (_, key) => (key === "name" ? name : impl()[name][key]),
  has: (_, key) => key in impl()[name],
}));
export const URL = lazy("URL");
export const URLSearchParams = lazy("URLSearchParams");

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

export const domainToASCII = (domain) => impl().URL ? new URL(`http://${domain}`).hostname : domain;
export default { URL, URLSearchParams, fileURLToPath, pathToFileURL, parse, format, resolve, domainToASCII };
