// `util`: the maintained npm polyfill, plus what it lacks of Node's that servers use: `parseArgs` (their CLIs),
// `styleText`, `stripVTControlCharacters`, `isDeepStrictEqual`, `getSystemErrorName`, `toUSVString` and the
// text codecs. `util/types` is its `types`.
import base from "util/";
import assert from "./assert.js";

const argError = (code, message) => Object.assign(new TypeError(message), { code });

export function parseArgs(config = {}) {
  const {
    args = globalThis.process.argv.slice(2),
    options = {},
    strict = true,
    allowPositionals = !strict,
    allowNegative = false,
    tokens: wantTokens = false,
  } = config;
  const short = new Map(Object.entries(options).filter(([, o]) => o.short).map(([name, o]) => [o.short, name]));
  for (const [name, option] of Object.entries(options)) {
    if (option.type !== "string" && option.type !== "boolean") {
      throw argError("ERR_INVALID_ARG_VALUE", `The property 'options.${name}.type' must be one of: 'string', 'boolean'. Received ${JSON.stringify(option.type)}`);
    }
  }
  const values = Object.create(null);
  const positionals = [];
  const tokens = [];
  const store = (name, value) => {
    if (options[name]?.multiple) (values[name] ??= []).push(value);
    else values[name] = value;
  };
  const option = (name, rawName, index, value, inlineValue) => {
    const known = options[name];
    if (!known) {
      if (allowNegative && name.startsWith("no-") && options[name.slice(3)]?.type === "boolean" && value === undefined) {
        tokens.push({ kind: "option", name: name.slice(3), rawName, index, value: undefined, inlineValue: undefined });
        store(name.slice(3), false);
        return;
      }
      if (strict) {
        const hint = rawName.startsWith("--") ? "" : ` To specify a positional argument starting with a '-', place it at the end of the command after '--', as in '-- ${JSON.stringify(rawName)}'`;
        throw argError("ERR_PARSE_ARGS_UNKNOWN_OPTION", `Unknown option '${rawName}'.${hint}`);
      }
      tokens.push({ kind: "option", name, rawName, index, value, inlineValue });
      store(name, value ?? true);
      return;
    }
    if (known.type === "boolean" && value !== undefined && strict) {
      throw argError("ERR_PARSE_ARGS_INVALID_OPTION_VALUE", `Option '${short.has(name) ? `-${known.short}, ` : ""}--${name}' does not take an argument`);
    }
    if (known.type === "string" && value === undefined && strict) {
      throw argError("ERR_PARSE_ARGS_INVALID_OPTION_VALUE", `Option '${known.short ? `-${known.short}, ` : ""}--${name} <value>' argument missing`);
    }
    tokens.push({ kind: "option", name, rawName, index, value, inlineValue });
    store(name, known.type === "boolean" ? (value === undefined ? true : value) : value);
  };
  for (let i = 0; i < args.length; i++) {
    const arg = args[i];
    if (arg === "--") {
      tokens.push({ kind: "option-terminator", index: i });
      for (let j = i + 1; j < args.length; j++) {
        if (!allowPositionals && strict) throw argError("ERR_PARSE_ARGS_UNEXPECTED_POSITIONAL", `Unexpected argument '${args[j]}'. This command does not take positional arguments`);
        positionals.push(args[j]);
        tokens.push({ kind: "positional", index: j, value: args[j] });
      }
      break;
    }
    const takesValue = (name) => options[name]?.type === "string";
    const next = () => {
      const value = args[i + 1];
      if (value !== undefined && strict && value.startsWith("-")) return undefined;
      if (value !== undefined) i++;
      return value;
    };
    if (arg.startsWith("--") && arg.length > 2) {
      const eq = arg.indexOf("=");
      if (eq >= 0) option(arg.slice(2, eq), arg.slice(0, eq), i, arg.slice(eq + 1), true);
      else {
        const name = arg.slice(2);
        const index = i;
        option(name, arg, index, takesValue(name) ? next() : undefined, takesValue(name) ? false : undefined);
      }
    } else if (arg.startsWith("-") && arg.length > 1) {
      const letters = arg.slice(1);
      for (let k = 0; k < letters.length; k++) {
        const letter = letters[k];
        const name = short.get(letter) ?? letter;
        if (takesValue(name)) {
          const rest = letters.slice(k + 1);
          const index = i;
          option(name, `-${letter}`, index, rest || next(), rest ? true : false);
          break;
        }
        option(name, `-${letter}`, i, undefined, undefined);
      }
    } else {
      if (!allowPositionals && strict) throw argError("ERR_PARSE_ARGS_UNEXPECTED_POSITIONAL", `Unexpected argument '${arg}'. This command does not take positional arguments`);
      positionals.push(arg);
      tokens.push({ kind: "positional", index: i, value: arg });
    }
  }
  for (const [name, known] of Object.entries(options)) {
    if (known.default !== undefined && values[name] === undefined) values[name] = known.default;
  }
  return wantTokens ? { values, positionals, tokens } : { values, positionals };
}

const STYLES = {
  reset: [0, 0], bold: [1, 22], dim: [2, 22], italic: [3, 23], underline: [4, 24], inverse: [7, 27], hidden: [8, 28],
  strikethrough: [9, 29], black: [30, 39], red: [31, 39], green: [32, 39], yellow: [33, 39], blue: [34, 39],
  magenta: [35, 39], cyan: [36, 39], white: [37, 39], gray: [90, 39], grey: [90, 39], bgRed: [41, 49],
  bgGreen: [42, 49], bgYellow: [43, 49], bgBlue: [44, 49], bgWhite: [47, 49],
};

// Node writes no colours where the stream is not a terminal, and a sandboxed server's never is.
export function styleText(format, text, { validateStream = true } = {}) {
  const formats = Array.isArray(format) ? format : [format];
  for (const f of formats) {
    if (!STYLES[f]) throw argError("ERR_INVALID_ARG_VALUE", `The argument 'format' must be one of: ${Object.keys(STYLES).join(", ")}. Received ${JSON.stringify(f)}`);
  }
  if (validateStream) return String(text);
  return formats.reduce((out, f) => `\u001b[${STYLES[f][0]}m${out}\u001b[${STYLES[f][1]}m`, String(text));
}

export const stripVTControlCharacters = (text) =>
  String(text).replace(/[\u001B\u009B][[\]()#;?]*(?:(?:(?:;[-a-zA-Z\d/#&.:=?%@~_]+)*|[a-zA-Z\d]+(?:;[-a-zA-Z\d/#&.:=?%@~_]*)*)?\u0007|(?:\d{1,4}(?:;\d{0,4})*)?[\dA-PR-TZcf-ntqry=><~])/g, "");

export function isDeepStrictEqual(a, b) {
  try {
    assert.deepStrictEqual(a, b);
    return true;
  } catch {
    return false;
  }
}

const ERRNO = { [-2]: "ENOENT", [-13]: "EACCES", [-17]: "EEXIST", [-20]: "ENOTDIR", [-21]: "EISDIR", [-22]: "EINVAL", [-1]: "EPERM", [-9]: "EBADF", [-39]: "ENOTEMPTY" };
export const getSystemErrorName = (code) => ERRNO[code] ?? `Unknown system error ${code}`;
export const toUSVString = (text) => String(text).toWellFormed?.() ?? String(text);
export const aborted = (signal) => new Promise((resolve) => {
  if (signal.aborted) resolve();
  else signal.addEventListener("abort", () => resolve(), { once: true });
});

const util = {
  ...base, parseArgs, styleText, stripVTControlCharacters, isDeepStrictEqual, getSystemErrorName, toUSVString, aborted,
  TextEncoder: globalThis.TextEncoder, TextDecoder: globalThis.TextDecoder,
};
export default util;
