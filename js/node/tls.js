// Node's `tls`, without sockets: catwalk terminates TLS itself for the server's HTTPS requests (https, fetch),
// so a TLS connection of the server's own fails with an error saying what the sandbox offers instead.
import { refusal } from "./net.js";

export const connect = (options, port) => { throw refusal("tls.connect", typeof options === "object" ? options : { port: options, host: port }); };
export const createServer = () => { throw Object.assign(new Error("tls.createServer is not available in catwalk's sandbox"), { code: "ERR_CATWALK_SANDBOX" }); };
export const createSecureContext = (options = {}) => ({ context: {}, options });
export const checkServerIdentity = () => undefined;
export const getCiphers = () => ["tls_aes_128_gcm_sha256", "tls_aes_256_gcm_sha384", "tls_chacha20_poly1305_sha256"];
export const rootCertificates = [];
export const DEFAULT_MIN_VERSION = "TLSv1.2";
export const DEFAULT_MAX_VERSION = "TLSv1.3";
export const DEFAULT_ECDH_CURVE = "auto";
export class TLSSocket { constructor() { throw refusal("tls.TLSSocket", {}); } }
export default { connect, createServer, createSecureContext, checkServerIdentity, getCiphers, rootCertificates, DEFAULT_MIN_VERSION, DEFAULT_MAX_VERSION, DEFAULT_ECDH_CURVE, TLSSocket };
