// `dns/promises`: dns.js's promises.
import dns from "./dns.js";
export const lookup = dns.promises.lookup;
export default dns.promises;
