import timers from "./timers.js";
export const { setTimeout, setImmediate, setInterval, scheduler } = timers.promises;
export default timers.promises;
