// Node's `https` client: http.js's, with HTTPS as the default protocol. catwalk does the TLS handshake, so
// certificates are always verified (against the machine's roots); `ca`, `cert` and `rejectUnauthorized` are
// accepted and have nothing to act on.
import http, { ClientRequest, IncomingMessage } from "./http.js";

export class Agent extends http.Agent {
  constructor(options = {}) {
    super(options);
    this.defaultPort = 443;
    this.protocol = "https:";
  }
}
export const globalAgent = new Agent({ keepAlive: true });

export function request(input, options, callback) {
  return new ClientRequest(input, options, callback, "https:");
}

export function get(input, options, callback) {
  const req = request(input, options, callback);
  req.end();
  return req;
}

export const createServer = http.createServer;
export const Server = http.Server;
export { ClientRequest, IncomingMessage };
export default { Agent, globalAgent, request, get, createServer, Server, ClientRequest, IncomingMessage };
