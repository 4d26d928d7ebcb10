// Node's `dns`: `lookup` (and `dns/promises`' `lookup`), answered by catwalk under the tenant's egress policy:
// a name no grant allows is not found, and the addresses are those catwalk would connect to (blocked ranges
// left out). Nothing else resolves: servers reach hosts by name through fetch and http, and catwalk resolves.
const notFound = (hostname, message) =>
  Object.assign(new Error(`getaddrinfo ENOTFOUND ${hostname}: ${message}`), { code: "ENOTFOUND", errno: -3008, syscall: "getaddrinfo", hostname });

function resolveNow(hostname, options) {
  const family = typeof options === "number" ? options : options?.family ?? 0;
  const found = JSON.parse(globalThis.__catwalk.dnsLookup(String(hostname)))
    .filter((a) => family === 0 || family === "IPv4" && a.family === 4 || family === "IPv6" && a.family === 6 || a.family === family);
  if (found.length === 0) throw notFound(hostname, "no address of that family");
  return found;
}

export function lookup(hostname, options, callback) {
  if (typeof options === "function") { callback = options; options = {}; }
  queueMicrotask(() => {
    let found;
    try { found = resolveNow(hostname, options); } catch (error) { callback(error.code ? error : notFound(hostname, error.message)); return; }
    if (options?.all) callback(null, found);
    else callback(null, found[0].address, found[0].family);
  });
}

const unsupported = (name) => () => {
  throw Object.assign(new Error(`dns.${name} is not available in catwalk's sandbox: names resolve only through dns.lookup, under the server's egress grants`), { code: "ERR_CATWALK_SANDBOX" });
};

export const promises = {
  lookup: (hostname, options) => new Promise((resolve, reject) => {
    lookup(hostname, options, (error, address, family) => {
      if (error) reject(error);
      else resolve(options?.all ? address : { address, family });
    });
  }),
};
for (const name of ["resolve", "resolve4", "resolve6", "resolveAny", "resolveCname", "resolveMx", "resolveNs", "resolveSrv", "resolveTxt", "reverse"]) {
  promises[name] = unsupported(name);
}

export const ADDRCONFIG = 1024;
export const V4MAPPED = 2048;
export const ALL = 256;
export const setDefaultResultOrder = () => {};
export const getDefaultResultOrder = () => "verbatim";
export const setServers = () => {};
export const getServers = () => [];
export class Resolver {
  constructor() { for (const name of Object.keys(promises)) if (name !== "lookup") this[name] = unsupported(name); }
  setServers() {}
  getServers() { return []; }
  cancel() {}
}
const dns = { lookup, promises, ADDRCONFIG, V4MAPPED, ALL, setDefaultResultOrder, getDefaultResultOrder, setServers, getServers, Resolver };
for (const name of ["resolve", "resolve4", "resolve6", "resolveAny", "resolveCname", "resolveMx", "resolveNs", "resolveSrv", "resolveTxt", "reverse"]) dns[name] = unsupported(name);
export default dns;
