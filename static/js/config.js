// Static facts from `realtime/config` (docs/PROTOCOL.md): labels, ranges, retention, cluster.
// Read once at start-up; the defaults stand in until it answers (or when it fails).

export const DEFAULT_RANGES = [60, 300, 600, 1800, 3600, 10800, 21600];
export const DEFAULT_LABELS = { title: 'Realtime', resource: 'Resource', resources: 'Resources', user: 'User' };

let current = normalizeConfig(null);

export function config() { return current; }

/** A `realtime/config` answer (or null) as `{labels, retention, ranges, defaultRange, ...}`. */
export function normalizeConfig(raw) {
  const src = (raw && raw.labels) || {};
  const labels = {};
  for (const k of Object.keys(DEFAULT_LABELS)) {
    labels[k] = typeof src[k] === 'string' && src[k] !== '' ? src[k] : DEFAULT_LABELS[k];
  }
  const retention = (raw && raw.retention_seconds) || 21600;
  // The live buffer's own retention (stats and CSV stop there; history may reach further).
  const liveRetention = Math.min(retention, (raw && raw.live_retention_seconds) || retention);
  let ranges = (raw && Array.isArray(raw.ranges) && raw.ranges.length ? raw.ranges : DEFAULT_RANGES)
    .filter((r) => r > 0 && r <= retention);
  if (!ranges.length) ranges = [Math.min(1800, retention)];
  const def = raw && raw.default_range;
  const defaultRange = ranges.indexOf(def) >= 0 ? def
    : ranges.indexOf(1800) >= 0 ? 1800 : ranges[Math.floor(ranges.length / 2)];
  return {
    labels, retention, liveRetention, ranges, defaultRange,
    resources: (raw && Array.isArray(raw.resources) && raw.resources) || [],
    instance: (raw && raw.instance) || null,
    cluster: (raw && raw.cluster) || null,
    usage: normalizeUsage(raw && raw.usage),
  };
}

export function setConfig(raw) {
  current = normalizeConfig(raw);
  return current;
}

/** The usage tier's facts (`null` without a tier): report windows, billing period. */
export function normalizeUsage(u) {
  if (!u || typeof u !== 'object') return null;
  const windows = (Array.isArray(u.report_windows) ? u.report_windows : [])
    .filter((w) => Number.isInteger(w) && w > 0);
  if (!windows.length) return null;
  return {
    windows,
    defaultWindow: windows[windows.length - 1],
    billingPeriod: +u.billing_period_seconds || 2592000,
  };
}
