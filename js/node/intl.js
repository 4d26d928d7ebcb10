// Intl for packed servers: en-US, as Node 24 (ICU) formats it. QuickJS has no Intl, and a full ICU with its
// data would be tens of megabytes per artifact; what servers use is English dates, numbers and plurals in
// any IANA time zone, collation and grapheme counting. Every locale resolves to en-US (resolvedOptions says
// so). Time zones (jiff's copy of the tz database) and Unicode segmentation (UAX #29) come from catwalk-js
// (`js/runtime/src/intl.rs`); the default time zone is UTC, as QuickJS's Date has it.
const host = globalThis.__catwalk;
const LOCALE = "en-US";

// ---- options ----

function localeOf(requested) {
  if (requested === undefined) return LOCALE;
  const list = typeof requested === "string" ? [requested] : Array.from(Object(requested));
  for (const tag of list) {
    if (typeof tag !== "string" && (typeof tag !== "object" || tag === null)) {
      throw new TypeError("Language ID should be string or object.");
    }
    if (!/^[A-Za-z]{2,8}(?:[-_][A-Za-z0-9]{1,8})*$/.test(String(tag))) {
      throw new RangeError(`Incorrect locale information provided`);
    }
  }
  return LOCALE;
}

function supportedLocalesOf(requested) {
  localeOf(requested);
  if (requested === undefined) return [];
  const list = typeof requested === "string" ? [requested] : Array.from(Object(requested));
  return list.filter((tag) => /^en(?:[-_]|$)/i.test(String(tag))).map(String);
}

function optionsOf(options) {
  if (options === undefined) return Object.create(null);
  if (options === null) throw new TypeError("Cannot convert undefined or null to object");
  return Object(options);
}

function pick(owner, options, name, allowed, fallback) {
  const value = options[name];
  if (value === undefined) return fallback;
  if (allowed === Boolean) return Boolean(value);
  const text = String(value);
  if (allowed && !allowed.includes(text)) {
    throw new RangeError(`Value ${text} out of range for Intl.${owner} options property ${name}`);
  }
  return text;
}

function digits(options, name, min, max, fallback) {
  const value = options[name];
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isFinite(n) || n < min || n > max) throw new RangeError(`${name} value is out of range.`);
  return Math.floor(n);
}

function boundGetter(proto, name) {
  const method = proto[name];
  const cache = new WeakMap();
  Object.defineProperty(proto, name, {
    configurable: true,
    get() {
      let bound = cache.get(this);
      if (!bound) cache.set(this, (bound = method.bind(this)));
      return bound;
    },
  });
}

// ---- numbers ----

// A finite, non-negative number as its shortest decimal digits and where the point goes:
// value = 0.<digits> × 10^point.
function decimalOf(x) {
  if (typeof x === "bigint") {
    const s = (x < 0n ? -x : x).toString();
    return { digits: s, point: s.length };
  }
  if (x === 0) return { digits: "0", point: 1 };
  const [mantissa, exponent] = x.toExponential().split("e");
  return { digits: mantissa.replace(".", ""), point: Number(exponent) + 1 };
}

// Rounds half away from zero to `keep` digits of `d` (those before the point count as `point`).
function roundTo({ digits: ds, point }, keep) {
  if (keep >= ds.length) return { digits: ds, point };
  if (keep < 0) return { digits: "0", point: 1 };
  const kept = ds.slice(0, keep);
  if (ds.charCodeAt(keep) < 53) return { digits: kept || "0", point: kept ? point : 1 };
  if (kept === "") return { digits: "1", point: point + 1 };
  const up = (BigInt(kept) + 1n).toString().padStart(kept.length, "0");
  // 999 rounds up to 1000: one more digit before the point.
  if (up.length > kept.length) return { digits: up.slice(0, kept.length), point: point + 1 };
  return { digits: up, point };
}

// `d` as integer and fraction strings, the fraction padded to `minFraction`.
function split({ digits: ds, point }, minFraction) {
  let integer;
  let fraction;
  if (point <= 0) {
    integer = "0";
    fraction = "0".repeat(-point) + ds;
  } else if (point >= ds.length) {
    integer = ds + "0".repeat(point - ds.length);
    fraction = "";
  } else {
    integer = ds.slice(0, point);
    fraction = ds.slice(point);
  }
  integer = integer.replace(/^0+(?=\d)/, "");
  fraction = fraction.replace(/0+$/, "");
  if (fraction.length < minFraction) fraction = fraction.padEnd(minFraction, "0");
  return { integer, fraction };
}

const CURRENCIES = {
  USD: ["$", "$", "US dollar", "US dollars"],
  EUR: ["€", "€", "euro", "euros"],
  GBP: ["£", "£", "British pound", "British pounds"],
  JPY: ["¥", "¥", "Japanese yen", "Japanese yen"],
  CNY: ["CN¥", "¥", "Chinese yuan", "Chinese yuan"],
  INR: ["₹", "₹", "Indian rupee", "Indian rupees"],
  KRW: ["₩", "₩", "South Korean won", "South Korean won"],
  CAD: ["CA$", "$", "Canadian dollar", "Canadian dollars"],
  AUD: ["A$", "$", "Australian dollar", "Australian dollars"],
  NZD: ["NZ$", "$", "New Zealand dollar", "New Zealand dollars"],
  HKD: ["HK$", "$", "Hong Kong dollar", "Hong Kong dollars"],
  MXN: ["MX$", "$", "Mexican peso", "Mexican pesos"],
  BRL: ["R$", "R$", "Brazilian real", "Brazilian reals"],
  TWD: ["NT$", "$", "New Taiwan dollar", "New Taiwan dollars"],
  ILS: ["₪", "₪", "Israeli new shekel", "Israeli new shekels"],
  VND: ["₫", "₫", "Vietnamese dong", "Vietnamese dong"],
  PHP: ["₱", "₱", "Philippine peso", "Philippine pesos"],
  CHF: ["CHF", "CHF", "Swiss franc", "Swiss francs"],
};
const NO_MINOR_UNITS = ["JPY", "KRW", "VND", "CLP", "ISK", "PYG", "UGX", "XAF", "XOF", "HUF", "TWD"];

// unit: [short, long singular, long plural]; short units with no space are written on the number.
const UNITS = {
  bit: ["bit", "bit", "bits"], byte: ["byte", "byte", "bytes"],
  kilobit: ["kb", "kilobit", "kilobits"], kilobyte: ["kB", "kilobyte", "kilobytes"],
  megabit: ["Mb", "megabit", "megabits"], megabyte: ["MB", "megabyte", "megabytes"],
  gigabit: ["Gb", "gigabit", "gigabits"], gigabyte: ["GB", "gigabyte", "gigabytes"],
  terabit: ["Tb", "terabit", "terabits"], terabyte: ["TB", "terabyte", "terabytes"],
  petabyte: ["PB", "petabyte", "petabytes"],
  nanosecond: ["ns", "nanosecond", "nanoseconds"], microsecond: ["μs", "microsecond", "microseconds"],
  millisecond: ["ms", "millisecond", "milliseconds"], second: ["sec", "second", "seconds"],
  minute: ["min", "minute", "minutes"], hour: ["hr", "hour", "hours"], day: ["day", "day", "days"],
  week: ["wk", "week", "weeks"], month: ["mth", "month", "months"], year: ["yr", "year", "years"],
  millimeter: ["mm", "millimeter", "millimeters"], centimeter: ["cm", "centimeter", "centimeters"],
  meter: ["m", "meter", "meters"], kilometer: ["km", "kilometer", "kilometers"],
  inch: ["in", "inch", "inches"], foot: ["ft", "foot", "feet"], yard: ["yd", "yard", "yards"],
  mile: ["mi", "mile", "miles"], gram: ["g", "gram", "grams"], kilogram: ["kg", "kilogram", "kilograms"],
  ounce: ["oz", "ounce", "ounces"], pound: ["lb", "pound", "pounds"], stone: ["st", "stone", "stones"],
  milliliter: ["mL", "milliliter", "milliliters"], liter: ["L", "liter", "liters"],
  "fluid-ounce": ["fl oz", "fluid ounce", "fluid ounces"], gallon: ["gal", "gallon", "gallons"],
  celsius: ["°C", "degree Celsius", "degrees Celsius"], fahrenheit: ["°F", "degree Fahrenheit", "degrees Fahrenheit"],
  degree: ["deg", "degree", "degrees"], percent: ["%", "percent", "percent"],
  acre: ["ac", "acre", "acres"], hectare: ["ha", "hectare", "hectares"],
};
const UNIT_JOINED = ["%", "°C", "°F"];

function unitName(unit, long, plural) {
  const per = unit.split("-per-");
  if (per.length === 2 && UNITS[per[0]] && UNITS[per[1]]) {
    if (long) return `${unitName(per[0], true, plural)} per ${UNITS[per[1]][1]}`;
    if (unit === "kilometer-per-hour") return "km/h";
    if (unit === "mile-per-hour") return "mph";
    return `${UNITS[per[0]][0]}/${UNITS[per[1]][0]}`;
  }
  const names = UNITS[unit];
  return long ? names[plural ? 2 : 1] : names[0];
}

const COMPACT = [
  [12, "T", "trillion"],
  [9, "B", "billion"],
  [6, "M", "million"],
  [3, "K", "thousand"],
];

class NumberFormat {
  #o;
  #compactRounding;

  constructor(locales, options) {
    const o = optionsOf(options);
    const N = "NumberFormat";
    const style = pick(N, o, "style", ["decimal", "percent", "currency", "unit"], "decimal");
    let currency = o.currency === undefined ? undefined : String(o.currency);
    if (currency !== undefined && !/^[A-Za-z]{3}$/.test(currency)) {
      throw new RangeError(`Invalid currency code : ${currency}`);
    }
    currency = currency?.toUpperCase();
    if (style === "currency" && currency === undefined) {
      throw new TypeError("Currency code is required with currency style.");
    }
    const unit = o.unit === undefined ? undefined : String(o.unit);
    if (style === "unit") {
      if (unit === undefined) throw new TypeError("Unit is required with unit style.");
      const known = (u) => u in UNITS;
      const parts = unit.split("-per-");
      if (!(parts.length <= 2 && parts.every(known))) throw new RangeError(`Invalid unit argument for Intl.NumberFormat() '${unit}'`);
    }
    const r = {
      locale: localeOf(locales),
      numberingSystem: "latn",
      style,
    };
    if (style === "currency") {
      r.currency = currency;
      r.currencyDisplay = pick(N, o, "currencyDisplay", ["code", "symbol", "narrowSymbol", "name"], "symbol");
      r.currencySign = pick(N, o, "currencySign", ["standard", "accounting"], "standard");
    }
    if (style === "unit") {
      r.unit = unit;
      r.unitDisplay = pick(N, o, "unitDisplay", ["short", "narrow", "long"], "short");
    }
    const notation = pick(N, o, "notation", ["standard", "scientific", "engineering", "compact"], "standard");
    const currencyDigits = style === "currency" ? (NO_MINOR_UNITS.includes(currency) ? 0 : 2) : 0;
    const [minDefault, maxDefault] =
      style === "currency" && notation !== "compact" ? [currencyDigits, currencyDigits]
        : style === "percent" ? [0, 0]
          : [0, notation === "compact" ? 0 : 3];
    r.minimumIntegerDigits = digits(o, "minimumIntegerDigits", 1, 21, 1);
    const minSig = digits(o, "minimumSignificantDigits", 1, 21, undefined);
    const maxSig = digits(o, "maximumSignificantDigits", minSig ?? 1, 21, undefined);
    const minFrac = digits(o, "minimumFractionDigits", 0, 100, undefined);
    const maxFrac = digits(o, "maximumFractionDigits", 0, 100, undefined);
    this.#compactRounding = notation === "compact" && minSig === undefined && maxSig === undefined
      && minFrac === undefined && maxFrac === undefined;
    if (minSig !== undefined || maxSig !== undefined) {
      r.minimumSignificantDigits = minSig ?? 1;
      r.maximumSignificantDigits = maxSig ?? 21;
    }
    const fracMin = minFrac ?? Math.min(minDefault, maxFrac ?? minDefault);
    const fracMax = maxFrac ?? Math.max(maxDefault, fracMin);
    if (fracMin > fracMax) throw new RangeError("maximumFractionDigits value is out of range.");
    r.minimumFractionDigits = fracMin;
    r.maximumFractionDigits = fracMax;
    const grouping = o.useGrouping;
    r.useGrouping = grouping === undefined ? (notation === "compact" ? "min2" : "auto")
      : grouping === false ? false : grouping === true ? "always" : String(grouping);
    r.notation = notation;
    if (notation === "compact") r.compactDisplay = pick(N, o, "compactDisplay", ["short", "long"], "short");
    r.signDisplay = pick(N, o, "signDisplay", ["auto", "never", "always", "exceptZero", "negative"], "auto");
    r.roundingIncrement = 1;
    r.roundingMode = "halfExpand";
    r.roundingPriority = "auto";
    r.trailingZeroDisplay = pick(N, o, "trailingZeroDisplay", ["auto", "stripIfInteger"], "auto");
    this.#o = r;
  }

  static supportedLocalesOf(locales) {
    return supportedLocalesOf(locales);
  }

  resolvedOptions() {
    return { ...this.#o };
  }

  format(value) {
    return this.formatToParts(value).map((p) => p.value).join("");
  }

  formatRange(a, b) {
    return `${this.format(a)}–${this.format(b)}`;
  }

  formatToParts(value) {
    const o = this.#o;
    let x = typeof value === "bigint" ? value : Number(value);
    if (typeof value === "string" && /^-?\d+$/.test(value.trim()) && value.trim().length > 15) x = BigInt(value.trim());
    const parts = [];
    const negative = typeof x === "bigint" ? x < 0n : x < 0 || Object.is(x, -0);
    const finite = typeof x === "bigint" || Number.isFinite(x);
    let number;
    if (finite) number = this.#digits(typeof x === "bigint" ? (x < 0n ? -x : x) : Math.abs(x));
    const zeroish = !finite ? false : /^[0.]*$/.test(number.integer + number.fraction);
    const sign = {
      auto: negative ? "-" : "",
      always: negative ? "-" : "+",
      exceptZero: zeroish || Number.isNaN(x) ? "" : negative ? "-" : "+",
      negative: negative && !zeroish ? "-" : "",
      never: "",
    }[o.signDisplay];
    const accounting = o.currencySign === "accounting" && sign === "-";
    if (accounting) parts.push({ type: "literal", value: "(" });
    else if (sign) parts.push({ type: sign === "-" ? "minusSign" : "plusSign", value: sign });

    if (o.style === "currency" && o.currencyDisplay !== "name") {
      const names = CURRENCIES[o.currency];
      const code = o.currencyDisplay === "code" || !names;
      parts.push({ type: "currency", value: code ? o.currency : names[o.currencyDisplay === "narrowSymbol" ? 1 : 0] });
      if (finite && (code || /^[A-Z]+$/.test(names[0]))) parts.push({ type: "literal", value: "\u00a0" });
    }

    let numberText = "";
    if (!finite) {
      numberText = Number.isNaN(x) ? "NaN" : "∞";
      parts.push({ type: Number.isNaN(x) ? "nan" : "infinity", value: numberText });
    } else {
      let { integer, fraction } = number;
      integer = integer.padStart(o.minimumIntegerDigits, "0");
      const group = o.useGrouping === "always" || o.useGrouping === "auto" ? 4 : o.useGrouping === "min2" ? 5 : Infinity;
      if (integer.length >= group) {
        const first = integer.length % 3 || 3;
        parts.push({ type: "integer", value: integer.slice(0, first) });
        for (let at = first; at < integer.length; at += 3) {
          parts.push({ type: "group", value: "," }, { type: "integer", value: integer.slice(at, at + 3) });
        }
      } else {
        parts.push({ type: "integer", value: integer });
      }
      if (fraction) parts.push({ type: "decimal", value: "." }, { type: "fraction", value: fraction });
      numberText = integer + (fraction ? "." + fraction : "");
      if (number.exponent !== undefined) {
        parts.push({ type: "exponentSeparator", value: "E" });
        if (number.exponent < 0) parts.push({ type: "exponentMinusSign", value: "-" });
        parts.push({ type: "exponentInteger", value: String(Math.abs(number.exponent)) });
      }
      if (number.compact) {
        if (o.compactDisplay === "long") parts.push({ type: "literal", value: " " }, { type: "compact", value: number.compact[2] });
        else parts.push({ type: "compact", value: number.compact[1] });
      }
    }

    if (o.style === "percent") parts.push({ type: "percentSign", value: "%" });
    if (o.style === "currency" && o.currencyDisplay === "name") {
      const names = CURRENCIES[o.currency];
      const one = numberText === "1" && !negative;
      parts.push({ type: "literal", value: " " }, { type: "currency", value: names ? names[one ? 2 : 3] : o.currency });
    }
    if (o.style === "unit") {
      const long = o.unitDisplay === "long";
      const one = numberText === "1";
      const name = unitName(o.unit, long, !one);
      if (!long && (UNIT_JOINED.includes(name) || o.unitDisplay === "narrow")) parts.push({ type: "unit", value: name });
      else parts.push({ type: "literal", value: " " }, { type: "unit", value: name });
    }
    if (accounting) parts.push({ type: "literal", value: ")" });
    return parts;
  }

  // A finite magnitude as rounded integer and fraction digits, and its exponent or compact unit.
  #digits(magnitude) {
    const o = this.#o;
    let whole = decimalOf(magnitude);
    // Percent moves the point rather than multiplying: 1.005 is 100.5%, as in Node, not 100.49999…%.
    if (o.style === "percent" && whole.digits !== "0") whole = { digits: whole.digits, point: whole.point + 2 };
    const out = {};
    let d;
    if (o.notation === "scientific" || o.notation === "engineering") {
      const step = o.notation === "engineering" ? 3 : 1;
      let exponent = whole.digits === "0" ? 0 : Math.floor((whole.point - 1) / step) * step;
      d = this.#round({ digits: whole.digits, point: whole.point - exponent });
      if (d.point > step) {
        exponent += step;
        d = this.#round({ digits: whole.digits, point: whole.point - exponent });
      }
      out.exponent = exponent;
    } else if (o.notation === "compact") {
      let power = whole.digits === "0" ? 0 : Math.min(12, Math.max(0, Math.floor((whole.point - 1) / 3) * 3));
      d = this.#round({ digits: whole.digits, point: whole.point - power });
      // 999,999 rounds to 1,000K: that is 1M.
      if (d.point > 3 && power < 12) {
        power += 3;
        d = this.#round({ digits: whole.digits, point: whole.point - power });
      }
      out.compact = COMPACT.find(([p]) => p === power);
    } else {
      d = this.#round(whole);
    }
    let { integer, fraction } = split(d, o.minimumSignificantDigits ? 0 : o.minimumFractionDigits);
    if (o.minimumSignificantDigits) {
      const significant = (integer + fraction).replace(/^0+/, "").length || 1;
      if (significant < o.minimumSignificantDigits) fraction += "0".repeat(o.minimumSignificantDigits - significant);
    }
    if (o.trailingZeroDisplay === "stripIfInteger" && /^0*$/.test(fraction)) fraction = "";
    return { integer, fraction, ...out };
  }

  #round(d) {
    const o = this.#o;
    if (this.#compactRounding) {
      // Compact notation: two significant digits below 100, else whole numbers.
      return d.point >= 2 ? roundTo(d, d.point) : roundTo(d, 2);
    }
    if (o.maximumSignificantDigits) return roundTo(d, o.maximumSignificantDigits);
    return roundTo(d, d.point + o.maximumFractionDigits);
  }
}
boundGetter(NumberFormat.prototype, "format");

// ---- plurals ----

class PluralRules {
  #o;
  #format;

  constructor(locales, options) {
    const o = optionsOf(options);
    const type = pick("PluralRules", o, "type", ["cardinal", "ordinal"], "cardinal");
    this.#format = new NumberFormat(locales, { ...pickDigits(o), useGrouping: false });
    const n = this.#format.resolvedOptions();
    this.#o = {
      locale: localeOf(locales),
      type,
      minimumIntegerDigits: n.minimumIntegerDigits,
      minimumFractionDigits: n.minimumFractionDigits,
      maximumFractionDigits: n.maximumFractionDigits,
      ...(n.maximumSignificantDigits ? {
        minimumSignificantDigits: n.minimumSignificantDigits,
        maximumSignificantDigits: n.maximumSignificantDigits,
      } : {}),
      pluralCategories: type === "cardinal" ? ["one", "other"] : ["few", "one", "two", "other"],
      roundingIncrement: 1,
      roundingMode: "halfExpand",
      roundingPriority: "auto",
      trailingZeroDisplay: "auto",
    };
  }

  static supportedLocalesOf(locales) {
    return supportedLocalesOf(locales);
  }

  resolvedOptions() {
    return { ...this.#o, pluralCategories: [...this.#o.pluralCategories] };
  }

  select(value) {
    const text = this.#format.format(Math.abs(Number(value)));
    if (this.#o.type === "cardinal") return text === "1" ? "one" : "other";
    if (text.includes(".")) return "other";
    const n = Number(text);
    if (n % 10 === 1 && n % 100 !== 11) return "one";
    if (n % 10 === 2 && n % 100 !== 12) return "two";
    if (n % 10 === 3 && n % 100 !== 13) return "few";
    return "other";
  }

  selectRange(_start, end) {
    return this.select(end);
  }
}

function pickDigits(o) {
  const out = {};
  for (const name of ["minimumIntegerDigits", "minimumFractionDigits", "maximumFractionDigits",
    "minimumSignificantDigits", "maximumSignificantDigits"]) {
    if (o[name] !== undefined) out[name] = o[name];
  }
  return out;
}

// ---- dates ----

const MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August", "September",
  "October", "November", "December"];
const DAYS = ["Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"];
const FIELDS = {
  weekday: ["narrow", "short", "long"],
  era: ["narrow", "short", "long"],
  year: ["2-digit", "numeric"],
  month: ["2-digit", "numeric", "narrow", "short", "long"],
  day: ["2-digit", "numeric"],
  dayPeriod: ["narrow", "short", "long"],
  hour: ["2-digit", "numeric"],
  minute: ["2-digit", "numeric"],
  second: ["2-digit", "numeric"],
};
const ZONE_NAMES = ["short", "long", "shortOffset", "longOffset", "shortGeneric", "longGeneric"];
const STYLES = ["full", "long", "medium", "short"];
// The time zones whose names en-US spells out, by abbreviation: US and Canadian zones, then others.
const AMERICAN = { E: "Eastern", C: "Central", M: "Mountain", P: "Pacific", AK: "Alaska", H: "Hawaii-Aleutian", A: "Atlantic" };
const ZONE_LONG = {
  GMT: "Greenwich Mean Time", BST: "British Summer Time",
  CET: "Central European Standard Time", CEST: "Central European Summer Time",
  EET: "Eastern European Standard Time", EEST: "Eastern European Summer Time",
  WET: "Western European Standard Time", WEST: "Western European Summer Time",
  IST: "India Standard Time", JST: "Japan Standard Time", KST: "Korean Standard Time",
  AEST: "Australian Eastern Standard Time", AEDT: "Australian Eastern Daylight Time",
  ACST: "Australian Central Standard Time", ACDT: "Australian Central Daylight Time",
  AWST: "Australian Western Standard Time", NZST: "New Zealand Standard Time",
  NZDT: "New Zealand Daylight Time", HKT: "Hong Kong Standard Time", MSK: "Moscow Standard Time",
  SAST: "South Africa Standard Time",
};
// Zones whose tzdb abbreviation is only an offset, by name.
const ZONE_LONG_BY_NAME = {
  "Asia/Katmandu": "Nepal Time", "Asia/Singapore": "Singapore Standard Time", "Asia/Dubai": "Gulf Standard Time",
  "America/Sao_Paulo": "Brasilia Standard Time", "Asia/Bangkok": "Indochina Time", "Asia/Saigon": "Indochina Time",
  "Asia/Dhaka": "Bangladesh Standard Time", "Asia/Jakarta": "Western Indonesia Time",
};

function defaultTimeZone() {
  return "UTC";
}

// The names ICU keeps for zones that tzdb has renamed (Node reports these), and the links to them.
const LEGACY_NAMES = {
  "Asia/Kolkata": "Asia/Calcutta", "Asia/Kathmandu": "Asia/Katmandu", "Asia/Ho_Chi_Minh": "Asia/Saigon",
  "Europe/Kyiv": "Europe/Kiev", "Asia/Yangon": "Asia/Rangoon", "America/Nuuk": "America/Godthab",
  "Atlantic/Faroe": "Atlantic/Faeroe", "Africa/Asmara": "Africa/Asmera", "Pacific/Chuuk": "Pacific/Truk",
  "Pacific/Pohnpei": "Pacific/Ponape", "Pacific/Kanton": "Pacific/Enderbury",
  "America/Argentina/Buenos_Aires": "America/Buenos_Aires", "America/Indiana/Indianapolis": "America/Indianapolis",
  "America/Kentucky/Louisville": "America/Louisville", "America/Atikokan": "America/Coral_Harbour",
  "US/Eastern": "America/New_York", "US/Central": "America/Chicago", "US/Mountain": "America/Denver",
  "US/Pacific": "America/Los_Angeles", "US/Alaska": "America/Anchorage", "US/Hawaii": "Pacific/Honolulu",
  "US/Arizona": "America/Phoenix",
};
const UTC_NAMES = ["Etc/UTC", "Etc/UCT", "UCT", "Etc/Universal", "Universal", "Etc/Zulu", "Zulu", "GMT", "Etc/GMT",
  "GMT0", "Etc/GMT0", "GMT+0", "Etc/GMT+0", "GMT-0", "Etc/GMT-0", "Greenwich", "Etc/Greenwich"];

function timeZoneOf(value) {
  if (value === undefined) return defaultTimeZone();
  const name = host.tzName(String(value));
  if (name == null) throw new RangeError(`Invalid time zone specified: ${value}`);
  if (UTC_NAMES.includes(name)) return "UTC";
  return LEGACY_NAMES[name] ?? name;
}

function isUtc(zone) {
  return zone === "UTC";
}

function offsetName(seconds, long) {
  const sign = seconds < 0 ? "-" : "+";
  const minutes = Math.round(Math.abs(seconds) / 60);
  const h = Math.floor(minutes / 60);
  const m = minutes % 60;
  if (long) return `GMT${sign}${String(h).padStart(2, "0")}:${String(m).padStart(2, "0")}`;
  return `GMT${sign}${h}${m ? ":" + String(m).padStart(2, "0") : ""}`;
}

function zoneName(zone, at, style) {
  const { offset, abbreviation, dst } = at;
  if (style === "shortOffset") return offsetName(offset, false);
  if (style === "longOffset") return offsetName(offset, true);
  const long = style === "long" || style === "longGeneric";
  if (isUtc(zone)) return long ? "Coordinated Universal Time" : "UTC";
  const american = /^(America|US|Canada)\//.test(zone) || zone === "Pacific/Honolulu";
  const region = american && /^(AK|[ECMPHA])[SD]T$/.test(abbreviation) ? AMERICAN[abbreviation.slice(0, -2)] : undefined;
  if (region) {
    if (style === "shortGeneric") return `${abbreviation.slice(0, -2)}T`;
    if (style === "longGeneric") return `${region} Time`;
    return long ? `${region} ${dst ? "Daylight" : "Standard"} Time` : abbreviation;
  }
  if (long && ZONE_LONG_BY_NAME[zone]) return ZONE_LONG_BY_NAME[zone];
  if (long && ZONE_LONG[abbreviation] && !(abbreviation === "IST" && zone !== "Asia/Calcutta")) {
    return ZONE_LONG[abbreviation];
  }
  if (long && abbreviation === "CST" && /^Asia\/(Shanghai|Chongqing|Harbin|Macau|Taipei)$/.test(zone)) {
    return zone === "Asia/Taipei" ? "Taipei Standard Time" : "China Standard Time";
  }
  if (!long && abbreviation === "GMT" && offset === 0) return "GMT";
  return offsetName(offset, long);
}

// The wall-clock fields of `ms` in `zone`.
function fieldsOf(ms, zone) {
  const at = host.tzAt(zone, ms);
  if (!at) throw new RangeError("Invalid time value");
  const local = new Date(ms + at.offset * 1000);
  return {
    at,
    year: local.getUTCFullYear(),
    month: local.getUTCMonth(),
    day: local.getUTCDate(),
    weekday: local.getUTCDay(),
    hour: local.getUTCHours(),
    minute: local.getUTCMinutes(),
    second: local.getUTCSeconds(),
    millisecond: local.getUTCMilliseconds(),
  };
}

function resolveDateOptions(locales, options, required, defaults) {
  const o = optionsOf(options);
  const D = "DateTimeFormat";
  const r = { locale: localeOf(locales), calendar: "gregory", numberingSystem: "latn" };
  const hour12 = o.hour12 === undefined ? undefined : Boolean(o.hour12);
  const hourCycle = pick(D, o, "hourCycle", ["h11", "h12", "h23", "h24"], undefined);
  r.timeZone = timeZoneOf(o.timeZone);
  const fields = {};
  for (const [name, allowed] of Object.entries(FIELDS)) fields[name] = pick(D, o, name, allowed, undefined);
  fields.fractionalSecondDigits = digits(o, "fractionalSecondDigits", 1, 3, undefined);
  fields.timeZoneName = pick(D, o, "timeZoneName", ZONE_NAMES, undefined);
  const dateStyle = pick(D, o, "dateStyle", STYLES, undefined);
  const timeStyle = pick(D, o, "timeStyle", STYLES, undefined);
  if (dateStyle || timeStyle) {
    for (const [name, value] of Object.entries(fields)) {
      if (value !== undefined) throw new TypeError(`Can't set option ${name} when ${dateStyle ? "dateStyle" : "timeStyle"} is used`);
    }
    if (required === "date" && !dateStyle) throw new TypeError("Invalid option : timeStyle");
    if (required === "time" && !timeStyle) throw new TypeError("Invalid option : dateStyle");
  } else {
    const hasDate = ["weekday", "year", "month", "day"].some((n) => fields[n] !== undefined);
    const hasTime = ["dayPeriod", "hour", "minute", "second", "fractionalSecondDigits"].some((n) => fields[n] !== undefined);
    const needed = required === "date" ? !hasDate : required === "time" ? !hasTime : !hasDate && !hasTime;
    if (needed && (defaults === "date" || defaults === "all")) fields.year = fields.month = fields.day = "numeric";
    if (needed && (defaults === "time" || defaults === "all")) fields.hour = fields.minute = fields.second = "numeric";
  }
  const hasHour = fields.hour !== undefined || (timeStyle !== undefined);
  if (hasHour) {
    let cycle = hourCycle ?? "h12";
    if (hour12 !== undefined) cycle = hour12 ? "h12" : "h23";
    r.hourCycle = cycle;
    r.hour12 = cycle === "h11" || cycle === "h12";
  }
  if (!dateStyle && !timeStyle) {
    const twelve = r.hour12;
    if (fields.hour !== undefined && !twelve) fields.hour = "2-digit";
    if (fields.hour !== undefined && fields.minute !== undefined) fields.minute = "2-digit";
    if (fields.minute !== undefined && fields.second !== undefined) fields.second = "2-digit";
    for (const name of ["weekday", "era", "year", "month", "day", "dayPeriod", "hour", "minute", "second"]) {
      if (fields[name] !== undefined) r[name] = fields[name];
    }
    if (fields.fractionalSecondDigits !== undefined) r.fractionalSecondDigits = fields.fractionalSecondDigits;
    if (fields.timeZoneName !== undefined) r.timeZoneName = fields.timeZoneName;
  } else {
    if (dateStyle) r.dateStyle = dateStyle;
    if (timeStyle) r.timeStyle = timeStyle;
  }
  return r;
}

function two(n) {
  return String(n).padStart(2, "0");
}

// en-US's patterns for the fields `r` asks for, as parts.
function dateParts(r, f) {
  let fields = r;
  let joiner = ", ";
  if (r.dateStyle || r.timeStyle) {
    fields = { hourCycle: r.hourCycle };
    if (r.dateStyle === "full") Object.assign(fields, { weekday: "long", month: "long", day: "numeric", year: "numeric" });
    if (r.dateStyle === "long") Object.assign(fields, { month: "long", day: "numeric", year: "numeric" });
    if (r.dateStyle === "medium") Object.assign(fields, { month: "short", day: "numeric", year: "numeric" });
    if (r.dateStyle === "short") Object.assign(fields, { month: "numeric", day: "numeric", year: "2-digit" });
    if (r.timeStyle) {
      Object.assign(fields, { hour: "numeric", minute: "2-digit" });
      if (r.timeStyle !== "short") fields.second = "2-digit";
      if (r.timeStyle === "full") fields.timeZoneName = "long";
      if (r.timeStyle === "long") fields.timeZoneName = "short";
      if (fields.hourCycle === "h23" || fields.hourCycle === "h24") fields.hour = "2-digit";
    }
    if (r.dateStyle === "full" || r.dateStyle === "long") joiner = " at ";
  }
  const date = [];
  const lit = (value) => ({ type: "literal", value });
  const weekday = fields.weekday && { type: "weekday", value: fields.weekday === "long" ? DAYS[f.weekday] : fields.weekday === "short" ? DAYS[f.weekday].slice(0, 3) : DAYS[f.weekday][0] };
  const year = fields.year && { type: "year", value: fields.year === "2-digit" ? two(f.year % 100) : String(f.year) };
  const day = fields.day && { type: "day", value: fields.day === "2-digit" ? two(f.day) : String(f.day) };
  const textMonth = ["narrow", "short", "long"].includes(fields.month);
  const month = fields.month && {
    type: "month",
    value: fields.month === "long" ? MONTHS[f.month] : fields.month === "short" ? MONTHS[f.month].slice(0, 3)
      : fields.month === "narrow" ? MONTHS[f.month][0] : fields.month === "2-digit" ? two(f.month + 1) : String(f.month + 1),
  };
  if (textMonth) {
    if (weekday) date.push(weekday, lit(", "));
    date.push(month);
    if (day) date.push(lit(" "), day);
    if (year) date.push(lit(day ? ", " : " "), year);
  } else if (month || day || year) {
    if (weekday) date.push(weekday, lit(", "));
    const numeric = [month, day, year].filter(Boolean);
    numeric.forEach((part, i) => {
      if (i) date.push(lit("/"));
      date.push(part);
    });
  } else if (weekday) {
    date.push(weekday);
  }

  const time = [];
  const cycle = fields.hourCycle;
  if (fields.hour) {
    let hour = f.hour;
    if (cycle === "h12") hour = hour % 12 || 12;
    if (cycle === "h11") hour %= 12;
    if (cycle === "h24") hour = hour || 24;
    time.push({ type: "hour", value: fields.hour === "2-digit" ? two(hour) : String(hour) });
  }
  if (fields.minute) {
    if (time.length) time.push(lit(":"));
    time.push({ type: "minute", value: fields.hour || fields.minute === "2-digit" || fields.second ? two(f.minute) : String(f.minute) });
  }
  if (fields.second) {
    if (time.length) time.push(lit(":"));
    time.push({ type: "second", value: fields.minute || fields.second === "2-digit" ? two(f.second) : String(f.second) });
  }
  if (fields.fractionalSecondDigits) {
    if (time.length) time.push(lit("."));
    time.push({ type: "fractionalSecond", value: String(f.millisecond).padStart(3, "0").slice(0, fields.fractionalSecondDigits) });
  }
  if (fields.hour && (cycle === "h12" || cycle === "h11")) {
    time.push(lit(" "), { type: "dayPeriod", value: f.hour < 12 ? "AM" : "PM" });
  }
  const parts = [...date];
  if (time.length) {
    if (parts.length) parts.push(lit(joiner));
    parts.push(...time);
  }
  if (fields.timeZoneName) {
    if (parts.length) parts.push(lit(time.length ? " " : ", "));
    parts.push({ type: "timeZoneName", value: zoneName(r.timeZone, f.at, fields.timeZoneName) });
  }
  return parts;
}

function timeOf(date) {
  const ms = date === undefined ? Date.now() : typeof date === "object" && date !== null ? Number(date.valueOf()) : Number(date);
  if (!Number.isFinite(ms) || Math.abs(ms) > 8.64e15) throw new RangeError("Invalid time value");
  return ms;
}

class DateTimeFormat {
  #r;

  constructor(locales, options, required = "any", defaults = "date") {
    this.#r = resolveDateOptions(locales, options, required, defaults);
  }

  static supportedLocalesOf(locales) {
    return supportedLocalesOf(locales);
  }

  resolvedOptions() {
    return { ...this.#r };
  }

  format(date) {
    return this.formatToParts(date).map((p) => p.value).join("");
  }

  formatToParts(date) {
    return dateParts(this.#r, fieldsOf(timeOf(date), this.#r.timeZone));
  }

  formatRange(start, end) {
    const a = this.format(start);
    const b = this.format(end);
    return a === b ? a : `${a} – ${b}`;
  }
}
boundGetter(DateTimeFormat.prototype, "format");

// ---- collation ----

function primaryClass(c) {
  if (/\s/u.test(c)) return 0;
  if (/[\p{P}\p{S}]/u.test(c)) return 1;
  if (/\p{N}/u.test(c)) return 2;
  if (/\p{L}/u.test(c)) return 3;
  return 4;
}

class Collator {
  #o;

  constructor(locales, options) {
    const o = optionsOf(options);
    const C = "Collator";
    const usage = pick(C, o, "usage", ["sort", "search"], "sort");
    this.#o = {
      locale: localeOf(locales),
      usage,
      sensitivity: pick(C, o, "sensitivity", ["base", "accent", "case", "variant"], "variant"),
      ignorePunctuation: pick(C, o, "ignorePunctuation", Boolean, false),
      collation: "default",
      numeric: pick(C, o, "numeric", Boolean, false),
      caseFirst: pick(C, o, "caseFirst", ["upper", "lower", "false"], "false"),
    };
  }

  static supportedLocalesOf(locales) {
    return supportedLocalesOf(locales);
  }

  resolvedOptions() {
    return { ...this.#o };
  }

  compare(x, y) {
    const o = this.#o;
    const keys = (s) => {
      let text = String(s).normalize("NFD");
      if (o.ignorePunctuation) text = text.replace(/[\s\p{P}]/gu, "");
      const chars = [];
      for (const c of text) {
        if (/\p{M}/u.test(c)) {
          if (chars.length) chars[chars.length - 1].accent += c;
          continue;
        }
        chars.push({ base: c.toLowerCase(), upper: c !== c.toLowerCase(), accent: "" });
      }
      return chars;
    };
    const a = keys(x);
    const b = keys(y);
    // Primary: the letters, digits (whole numbers when `numeric`) and punctuation, without accents or case.
    let i = 0;
    let j = 0;
    while (i < a.length && j < b.length) {
      if (o.numeric && /\d/.test(a[i].base) && /\d/.test(b[j].base)) {
        let m = i;
        let n = j;
        while (m < a.length && /\d/.test(a[m].base)) m++;
        while (n < b.length && /\d/.test(b[n].base)) n++;
        const p = BigInt(a.slice(i, m).map((k) => k.base).join(""));
        const q = BigInt(b.slice(j, n).map((k) => k.base).join(""));
        if (p !== q) return p < q ? -1 : 1;
        i = m;
        j = n;
        continue;
      }
      const ca = primaryClass(a[i].base);
      const cb = primaryClass(b[j].base);
      if (ca !== cb) return ca < cb ? -1 : 1;
      if (a[i].base !== b[j].base) return a[i].base < b[j].base ? -1 : 1;
      i++;
      j++;
    }
    if (i < a.length || j < b.length) return i < a.length ? 1 : -1;
    if (a.length !== b.length) return a.length < b.length ? -1 : 1;
    if (o.sensitivity === "accent" || o.sensitivity === "variant") {
      for (let k = 0; k < a.length; k++) {
        if (a[k].accent !== b[k].accent) return a[k].accent < b[k].accent ? -1 : 1;
      }
    }
    if (o.sensitivity === "case" || o.sensitivity === "variant") {
      const upperFirst = o.caseFirst === "upper";
      for (let k = 0; k < a.length; k++) {
        if (a[k].upper !== b[k].upper) return a[k].upper !== upperFirst ? 1 : -1;
      }
    }
    return 0;
  }
}
boundGetter(Collator.prototype, "compare");

// ---- segmentation ----

class Segmenter {
  #o;

  constructor(locales, options) {
    const o = optionsOf(options);
    this.#o = {
      locale: localeOf(locales),
      granularity: pick("Segmenter", o, "granularity", ["grapheme", "word", "sentence"], "grapheme"),
    };
  }

  static supportedLocalesOf(locales) {
    return supportedLocalesOf(locales);
  }

  resolvedOptions() {
    return { ...this.#o };
  }

  segment(input) {
    const text = String(input);
    const granularity = this.#o.granularity;
    const bounds = host.segment(text, granularity);
    const at = (k) => {
      const segment = text.slice(bounds[k], bounds[k + 1]);
      const data = { segment, index: bounds[k], input: text };
      if (granularity === "word") data.isWordLike = /[\p{L}\p{N}]/u.test(segment);
      return data;
    };
    return {
      containing(index = 0) {
        const n = Math.trunc(Number(index)) || 0;
        if (n < 0 || n >= text.length) return undefined;
        let k = 0;
        while (bounds[k + 1] <= n) k++;
        return at(k);
      },
      *[Symbol.iterator]() {
        for (let k = 0; k + 1 < bounds.length; k++) yield at(k);
      },
    };
  }
}

// ---- relative times and lists ----

const RELATIVE = {
  year: ["yr.", "last year", "this year", "next year"],
  quarter: ["qtr.", "last quarter", "this quarter", "next quarter"],
  month: ["mo.", "last month", "this month", "next month"],
  week: ["wk.", "last week", "this week", "next week"],
  day: ["day", "yesterday", "today", "tomorrow"],
  hour: ["hr.", undefined, "this hour", undefined],
  minute: ["min.", undefined, "this minute", undefined],
  second: ["sec.", undefined, "now", undefined],
};

class RelativeTimeFormat {
  #o;
  #number;

  constructor(locales, options) {
    const o = optionsOf(options);
    this.#o = {
      locale: localeOf(locales),
      style: pick("RelativeTimeFormat", o, "style", ["long", "short", "narrow"], "long"),
      numeric: pick("RelativeTimeFormat", o, "numeric", ["always", "auto"], "always"),
      numberingSystem: "latn",
    };
    this.#number = new NumberFormat(locales);
  }

  static supportedLocalesOf(locales) {
    return supportedLocalesOf(locales);
  }

  resolvedOptions() {
    return { ...this.#o };
  }

  format(value, unit) {
    return this.formatToParts(value, unit).map((p) => p.value).join("");
  }

  formatToParts(value, unit) {
    const n = Number(value);
    if (!Number.isFinite(n)) throw new RangeError("Invalid value");
    const singular = String(unit).replace(/s$/, "");
    const names = RELATIVE[singular];
    if (!names) throw new RangeError(`Invalid unit argument for format() '${unit}'`);
    if (this.#o.numeric === "auto" && [-1, 0, 1].includes(n) && !Object.is(n, -0)) {
      const word = names[n + 2];
      if (word) return [{ type: "literal", value: word }];
    }
    const past = n < 0 || Object.is(n, -0);
    const amount = this.#number.formatToParts(Math.abs(n)).map((p) => ({ ...p, unit: singular }));
    const text = amount.map((p) => p.value).join("");
    const name = this.#o.style === "long" ? (text === "1" ? singular : `${singular}s`)
      : singular === "day" ? (text === "1" ? "day" : "days") : names[0];
    return past
      ? [...amount, { type: "literal", value: ` ${name} ago` }]
      : [{ type: "literal", value: "in " }, ...amount, { type: "literal", value: ` ${name}` }];
  }
}

class ListFormat {
  #o;

  constructor(locales, options) {
    const o = optionsOf(options);
    this.#o = {
      locale: localeOf(locales),
      type: pick("ListFormat", o, "type", ["conjunction", "disjunction", "unit"], "conjunction"),
      style: pick("ListFormat", o, "style", ["long", "short", "narrow"], "long"),
    };
  }

  static supportedLocalesOf(locales) {
    return supportedLocalesOf(locales);
  }

  resolvedOptions() {
    return { ...this.#o };
  }

  format(list) {
    return this.formatToParts(list).map((p) => p.value).join("");
  }

  formatToParts(list) {
    const items = Array.from(list ?? [], (item) => {
      if (typeof item !== "string") throw new TypeError("Iterable yielded a value which is not a string");
      return item;
    });
    const { type, style } = this.#o;
    const word = type === "disjunction" ? "or" : type === "unit" ? "" : style === "long" ? "and" : style === "short" ? "&" : "";
    const sep = type === "unit" && style === "narrow" ? " " : ", ";
    const parts = [];
    items.forEach((item, i) => {
      if (i > 0) {
        const last = i === items.length - 1;
        let literal = sep;
        if (last && word) literal = items.length === 2 ? ` ${word} ` : `, ${word} `;
        parts.push({ type: "literal", value: literal });
      }
      parts.push({ type: "element", value: item });
    });
    return parts;
  }
}

// DateTimeFormat, NumberFormat and Collator may be called without `new`, as ECMA-402 allows for them.
function callable(Class) {
  function Constructor(...args) {
    return Reflect.construct(Class, args, new.target ?? Constructor);
  }
  Constructor.prototype = Class.prototype;
  Object.defineProperty(Class.prototype, "constructor", { value: Constructor, writable: true, configurable: true });
  Object.defineProperty(Constructor, "name", { value: Class.name });
  Constructor.supportedLocalesOf = Class.supportedLocalesOf;
  return Constructor;
}

const Intl = {
  DateTimeFormat: callable(DateTimeFormat),
  NumberFormat: callable(NumberFormat),
  PluralRules,
  Collator: callable(Collator),
  Segmenter,
  RelativeTimeFormat,
  ListFormat,
  getCanonicalLocales(locales) {
    localeOf(locales);
    if (locales === undefined) return [];
    return [...new Set(typeof locales === "string" ? [locales] : Array.from(locales, String))];
  },
  supportedValuesOf(key) {
    const values = {
      calendar: ["gregory"],
      collation: ["default"],
      currency: Object.keys(CURRENCIES).sort(),
      numberingSystem: ["latn"],
      unit: Object.keys(UNITS).sort(),
    }[key];
    if (!values) throw new RangeError(`Invalid key : ${key}`);
    return [...values];
  },
};
for (const [name, value] of Object.entries(Intl)) {
  Object.defineProperty(Intl, name, { value, writable: true, configurable: true, enumerable: false });
}
Object.defineProperty(Intl, Symbol.toStringTag, { value: "Intl", configurable: true });

// The built-ins' locale methods, through Intl, as in Node.
function installLocaleMethods() {
  const define = (proto, name, fn) => Object.defineProperty(proto, name, { value: fn, writable: true, configurable: true });
  const dateMethod = (required, defaults) => function (locales, options) {
    const ms = Number(this.valueOf());
    if (Number.isNaN(ms)) return "Invalid Date";
    return new DateTimeFormat(locales, options, required, defaults).format(ms);
  };
  define(Date.prototype, "toLocaleString", dateMethod("any", "all"));
  define(Date.prototype, "toLocaleDateString", dateMethod("date", "date"));
  define(Date.prototype, "toLocaleTimeString", dateMethod("time", "time"));
  let plain;
  define(Number.prototype, "toLocaleString", function (locales, options) {
    const format = locales === undefined && options === undefined ? (plain ??= new NumberFormat()) : new NumberFormat(locales, options);
    return format.format(Number(this));
  });
  define(BigInt.prototype, "toLocaleString", function (locales, options) {
    return new NumberFormat(locales, options).format(BigInt.prototype.valueOf.call(this));
  });
  let collator;
  define(String.prototype, "localeCompare", function (that, locales, options) {
    if (this == null) throw new TypeError("String.prototype.localeCompare called on null or undefined");
    const compare = locales === undefined && options === undefined ? (collator ??= new Collator()) : new Collator(locales, options);
    return compare.compare(String(this), String(that));
  });
}

if (typeof globalThis.Intl === "undefined" && host?.tzName) {
  globalThis.Intl = Intl;
  Object.defineProperty(globalThis, "Intl", { enumerable: false });
  installLocaleMethods();
}

export { Intl };
