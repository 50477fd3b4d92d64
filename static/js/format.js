// Numbers and units for people. Pure: no DOM, no page state (unit tests: realtime-layer/tests/js).
//
// Durations pick their unit by magnitude (µs, ms, s, min, h); an axis picks one unit for all its
// ticks (`durationAxis`) so that tick steps stay round in that unit. Counts are grouped
// (1,234) or, on axes, compact (1.2k). Money goes through Intl with the server's currency code.

let locale; // undefined: the browser's own

/** Tests pin a locale; the page never calls this. */
export function setLocale(l) { locale = l; }

export function pad(n, width = 2) { return String(n).padStart(width, '0'); }

/** `HH:MM[:SS[.mmm]]` in local time. */
export function fmtClock(ms, withSeconds = true, withMs = false) {
  const d = new Date(ms);
  let s = pad(d.getHours()) + ':' + pad(d.getMinutes());
  if (withSeconds) s += ':' + pad(d.getSeconds());
  if (withMs) s += '.' + pad(d.getMilliseconds(), 3);
  return s;
}

/** A number with at most `digits` decimals, trailing zeros dropped (`2.50` → `2.5`, `3.0` → `3`). */
export function trimNum(v, digits) {
  const s = Number(v).toFixed(digits);
  return s.indexOf('.') < 0 ? s : s.replace(/\.?0+$/, '');
}

/** A window length: `45 s`, `5 min`, `1 h`, `1.5 h`, `24 h`, `7 d`, `30 d`. */
export function fmtRange(s) {
  if (s < 60) return s + ' s';
  if (s < 3600) return trimNum(s / 60, 1) + ' min';
  if (s <= 86400 || s % 86400 !== 0) return trimNum(s / 3600, 1) + ' h';
  return trimNum(s / 86400, 1) + ' d';
}

/** A time with its day, for ranges longer than a day: `11-28 14:05` (local time). */
export function fmtDayClock(ms) {
  const d = new Date(ms);
  return pad(d.getMonth() + 1) + '-' + pad(d.getDate()) + ' ' + fmtClock(ms, false);
}

/** An x-axis label for a bucket starting at `t` (Unix s): with the day when the range spans days. */
export function fmtBucketTime(t, bucket, range) {
  if (range >= 86400) return fmtDayClock(t * 1000);
  return fmtClock(t * 1000, bucket < 60);
}

export function fmtInt(v) {
  if (v == null || !isFinite(v)) return '–';
  return Math.round(Number(v)).toLocaleString(locale);
}

/** Compact counts for axis ticks: `950`, `1.2k`, `12k`, `3.4M`. */
export function fmtCount(v) {
  if (v == null || !isFinite(v)) return '–';
  const a = Math.abs(v);
  if (a < 1000) return trimNum(v, a < 10 ? 2 : 1);
  if (a < 1e6) return trimNum(v / 1e3, a < 1e4 ? 1 : 0) + 'k';
  if (a < 1e9) return trimNum(v / 1e6, a < 1e7 ? 1 : 0) + 'M';
  return trimNum(v / 1e9, 1) + 'G';
}

/** A per-minute rate on a card: one decimal, grouped whole numbers from 100 up. */
export function fmtRate(v) {
  if (v == null || !isFinite(v)) return '–';
  return v >= 100 ? Math.round(v).toLocaleString(locale) : Number(v).toFixed(1);
}

/** `12.5 %` from a percentage. */
export function fmtPercent(v, digits = 1) {
  if (v == null || !isFinite(v)) return '–';
  return Number(v).toFixed(digits) + ' %';
}

// Duration units, smallest first: [name, seconds per unit, where the next unit takes over].
const DURATION_UNITS = [
  ['µs', 1e-6, 1e-3],
  ['ms', 1e-3, 1],
  ['s', 1, 60],
  ['min', 60, 3600],
  ['h', 3600, Infinity],
];

function durationUnitFor(seconds) {
  const a = Math.abs(seconds);
  for (const u of DURATION_UNITS) if (a < u[2]) return u;
  return DURATION_UNITS[DURATION_UNITS.length - 1];
}

/** A duration in the unit its magnitude calls for: `50 µs`, `1.5 ms`, `12 s`, `2.5 min`, `1.3 h`. */
export function fmtDuration(seconds) {
  if (seconds == null || !isFinite(seconds)) return '–';
  if (seconds === 0) return '0 s';
  let u = durationUnitFor(seconds);
  let v = seconds / u[1];
  // 0.99996 s is "1 s", not "1000 ms": round first, then move up a unit when rounding crossed it.
  const digits = Math.abs(v) < 10 ? 1 : 0;
  if (Math.abs(Number(v.toFixed(digits)) * u[1]) >= u[2]) {
    u = DURATION_UNITS[DURATION_UNITS.indexOf(u) + 1];
    v = seconds / u[1];
  }
  return trimNum(v, Math.abs(v) < 10 ? 1 : 0) + ' ' + u[0];
}

/**
 * One unit for an axis whose largest value is `maxSeconds`: `{unit, factor}`; plot `seconds /
 * factor` and label ticks with `fmtAxisDuration(tick, unit)`.
 */
export function durationAxis(maxSeconds) {
  const u = durationUnitFor(maxSeconds > 0 ? maxSeconds : 1);
  return { unit: u[0], factor: u[1] };
}

/** A tick value already in `unit`: `0 min`, `2.5 min`, `400 µs`. */
export function fmtAxisDuration(v, unit) {
  return trimNum(v, Math.abs(v) < 10 ? 2 : Math.abs(v) < 100 ? 1 : 0) + ' ' + unit;
}

/**
 * Money in `currency` (ISO code). `compact` shortens large amounts for tight places (€82,500,
 * €1.2M); small amounts keep their cents.
 */
export function fmtMoney(v, currency, compact = false) {
  if (v == null || !isFinite(v)) return '–';
  const a = Math.abs(v);
  const opts = { style: 'currency', currency: String(currency) };
  if (compact && a >= 1e6) {
    opts.notation = 'compact';
    opts.maximumFractionDigits = 1;
  } else if (compact && a >= 1000) {
    opts.maximumFractionDigits = 0;
    opts.minimumFractionDigits = 0;
  }
  try {
    return new Intl.NumberFormat(locale, opts).format(v);
  } catch (err) {
    // An unknown currency code: the amount and the code as given.
    return Number(v).toFixed(compact && a >= 1000 ? 0 : 2) + ' ' + String(currency);
  }
}

/** A latency bucket bound from the HTTP histogram: `≤ 5 ms`, `≤ 2.5 s`; null is the overflow. */
export function fmtLatency(seconds) {
  if (seconds == null) return '> 10 s';
  return '≤ ' + fmtDuration(seconds);
}

/** At most `max` characters, with an ellipsis when shortened (chart axis labels only). */
export function ellipsize(text, max) {
  const s = String(text);
  return s.length <= max ? s : s.slice(0, Math.max(1, max - 1)) + '…';
}
