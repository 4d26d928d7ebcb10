// `readline`: `createInterface` over a stream (process.stdin, mostly), emitting a 'line' per line.
import { EventEmitter } from "events";
import { StringDecoder } from "string_decoder";

class Interface extends EventEmitter {
  constructor(input) {
    super();
    this.input = input;
    this.closed = false;
    let rest = "";
    const decoder = new StringDecoder("utf8");
    this._data = (chunk) => {
      rest += typeof chunk === "string" ? chunk : decoder.write(chunk);
      let at;
      while ((at = rest.search(/\r?\n/)) >= 0) {
        const line = rest.slice(0, at);
        rest = rest.slice(rest[at] === "\r" ? at + 2 : at + 1);
        this.emit("line", line);
      }
    };
    this._end = () => { if (rest) this.emit("line", rest); rest = ""; this.close(); };
    input.on("data", this._data);
    input.on("end", this._end);
  }
  close() {
    if (this.closed) return;
    this.closed = true;
    this.input.off("data", this._data);
    this.input.off("end", this._end);
    this.emit("close");
  }
  setPrompt() {}
  prompt() {}
  pause() { this.input.pause?.(); return this; }
  resume() { this.input.resume?.(); return this; }
  write() {}
  async *[Symbol.asyncIterator]() {
    const lines = [];
    let wake = null;
    this.on("line", (line) => { lines.push(line); wake?.(); });
    this.on("close", () => wake?.());
    while (!this.closed || lines.length > 0) {
      if (lines.length > 0) yield lines.shift();
      else await new Promise((resolve) => { wake = resolve; });
    }
  }
}

export const createInterface = (input, ...rest) => new Interface(input?.input ?? input, ...rest);
export { Interface };
export default { createInterface, Interface };
