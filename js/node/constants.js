// `constants`: the legacy module of fs and os constants (graceful-fs still reads it).
import { constants } from "./fs.js";
export default { ...constants };
