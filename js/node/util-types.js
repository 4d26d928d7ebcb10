// `util/types`: the util polyfill's `types`.
import util from "./util.js";

export default util.types;
