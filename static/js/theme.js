// Colours from the stylesheet's custom properties (light or dark, per prefers-color-scheme), for
// the charts, which draw on canvas and cannot use CSS themselves.

function cssVar(name) {
  return getComputedStyle(document.documentElement).getPropertyValue(name).trim();
}

/** `#rrggbb` with alpha as `rgba(...)`; other colour syntaxes pass through. */
export function alpha(color, a) {
  const m = /^#([0-9a-f]{6})$/i.exec(color);
  if (!m) return color;
  const n = parseInt(m[1], 16);
  return 'rgba(' + ((n >> 16) & 255) + ',' + ((n >> 8) & 255) + ',' + (n & 255) + ',' + a + ')';
}

export function theme() {
  const t = {};
  for (const k of ['text', 'muted', 'grid', 'panel', 'commit', 'overage', 'available', 'returns',
    'failure', 'peak', 'warn', 'crit', 'border']) t[k] = cssVar('--' + k);
  return t;
}

export function fontFamily() {
  return getComputedStyle(document.body).fontFamily;
}
