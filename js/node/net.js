// Node's `net`, without sockets: catwalk's sandbox offers HTTP(S) through catwalk (fetch, http, https) to the
// tenant's egress grants, and no raw TCP, so a connection (a database driver's, say) fails with an error naming
// the host and port it wanted and what the sandbox offers instead. The address helpers work.
import { EventEmitter } from "events";

const v4 = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/;
export const isIPv4 = (input) => v4.test(String(input));
export const isIPv6 = (input) => {
  const text = String(input).replace(/%.*$/, "");
  if (!/^[0-9a-fA-F:.]+$/.test(text) || !text.includes(":")) return false;
  try { return new URL(`http://[${text}]/`).hostname.length > 2; } catch { return false; }
};
export const isIP = (input) => (isIPv4(input) ? 4 : isIPv6(input) ? 6 : 0);

export function refusal(kind, options, port) {
  const where = typeof options === "object" && options !== null
    ? `${options.host ?? options.path ?? "localhost"}${options.port ? `:${options.port}` : ""}`
    : `${port ?? "localhost"}${options ? `:${options}` : ""}`;
  return Object.assign(
    new Error(`${kind} to ${where} is not available in catwalk's sandbox: it has no raw TCP or TLS sockets. Servers reach the network by HTTP(S) through catwalk (fetch, http, https), to the hosts their tenant grants (egress = ["https://host"]).`),
    { code: "ERR_CATWALK_SANDBOX" },
  );
}

export class Socket extends EventEmitter {
  constructor() { super(); this.destroyed = false; }
  connect(options, port) { throw refusal("net.connect", typeof options === "object" ? options : { port: options, host: port }); }
  setTimeout() { return this; }
  setNoDelay() { return this; }
  setKeepAlive() { return this; }
  ref() { return this; }
  unref() { return this; }
  destroy() { this.destroyed = true; return this; }
  end() { return this; }
  write() { return false; }
}
export class Server extends EventEmitter {
  listen() { throw Object.assign(new Error("net.Server#listen is not available in catwalk's sandbox: a server is reached over MCP, not a socket of its own"), { code: "ERR_CATWALK_SANDBOX" }); }
  close() { return this; }
}
export const connect = (options, port) => { throw refusal("net.connect", typeof options === "object" ? options : { port: options, host: port }); };
export const createConnection = connect;
export const createServer = () => new Server();
export const BlockList = class { addAddress() {} addRange() {} addSubnet() {} check() { return false; } };
export const SocketAddress = class { constructor(options = {}) { Object.assign(this, options); } };
// Happy Eyeballs settings, which libraries read when they load (playwright's network utilities).
let autoSelectFamily = true;
let autoSelectFamilyAttemptTimeout = 250;
export const getDefaultAutoSelectFamily = () => autoSelectFamily;
export const setDefaultAutoSelectFamily = (value) => { autoSelectFamily = Boolean(value); };
export const getDefaultAutoSelectFamilyAttemptTimeout = () => autoSelectFamilyAttemptTimeout;
export const setDefaultAutoSelectFamilyAttemptTimeout = (value) => { autoSelectFamilyAttemptTimeout = Math.max(10, Number(value)); };
export default {
  isIP, isIPv4, isIPv6, Socket, Server, connect, createConnection, createServer, BlockList, SocketAddress,
  getDefaultAutoSelectFamily, setDefaultAutoSelectFamily, getDefaultAutoSelectFamilyAttemptTimeout,
  setDefaultAutoSelectFamilyAttemptTimeout,
};
