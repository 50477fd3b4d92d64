// The view (what the page looks at) as URL query parameters, and the data URLs that follow it.
// Pure: strings in, strings out (unit tests: realtime-layer/tests/js).
//
// Page URL: `realtime?range=300&resource=GPU%20A100&user=ann&scope=local&instance=web-2`; keys at
// their default are left out, parameters the page does not know are kept. Data URLs are relative
// (`realtime/stream?...`), so the page works under any mount prefix.

/** The view's fields, in URL order. `range` is seconds; the others are strings ('' = none). */
export const VIEW_KEYS = ['range', 'resource', 'user', 'scope', 'instance'];

export function emptyView() {
  return { range: 0, resource: '', user: '', scope: '', instance: '' };
}

function decode(s) {
  try {
    return decodeURIComponent(s.replace(/\+/g, ' '));
  } catch (err) {
    return s;
  }
}

/** `?a=1&b=x` as ordered `[key, value]` pairs (decoded). */
export function parseQuery(search) {
  const q = String(search || '').replace(/^\?/, '');
  if (!q) return [];
  return q.split('&').filter(Boolean).map((part) => {
    const eq = part.indexOf('=');
    return eq < 0 ? [decode(part), ''] : [decode(part.slice(0, eq)), decode(part.slice(eq + 1))];
  });
}

/** The view a URL asks for (fields it leaves out are at their empty value). */
export function readView(search) {
  const v = emptyView();
  for (const [k, val] of parseQuery(search)) {
    if (k === 'range') {
      const n = parseInt(val, 10);
      v.range = n > 0 && String(n) === val.trim() ? n : 0;
    } else if (k === 'scope') {
      v.scope = val === 'local' ? 'local' : '';
    } else if (VIEW_KEYS.indexOf(k) >= 0) {
      v[k] = k === 'user' ? val.trim() : val;
    }
  }
  return v;
}

function pair(k, v) { return encodeURIComponent(k) + '=' + encodeURIComponent(v); }

/**
 * The page's query string for `view` (`''` or `?...`): the view's keys that differ from
 * `defaults` (range at the server's default is left out), then `search`'s other parameters.
 */
export function writeView(search, view, defaults) {
  const out = [];
  for (const k of VIEW_KEYS) {
    const v = view[k];
    if (v === '' || v == null || v === 0) continue;
    if (defaults && defaults[k] === v) continue;
    out.push(pair(k, v));
  }
  for (const [k, v] of parseQuery(search)) {
    if (VIEW_KEYS.indexOf(k) < 0) out.push(pair(k, v));
  }
  return out.length ? '?' + out.join('&') : '';
}

// Which view fields each data route takes (history is per resource only: the server keeps no
// per-user aggregates; the stream's window is fixed at 60 s). `live`: the route reads the live
// buffer only, so its window stops at the buffer's retention (history reaches further with a
// usage tier).
const ROUTES = {
  stream: { window: false, keys: ['resource', 'user', 'scope', 'instance'] },
  history: { window: true, keys: ['resource', 'scope', 'instance'] },
  stats: { window: true, live: true, keys: ['resource', 'user', 'scope', 'instance'] },
  'events.csv': { window: true, live: true, keys: ['resource', 'user', 'scope', 'instance'] },
};

/**
 * The relative URL of a data route for `view`: `realtime/history?window=1800&resource=GPU`.
 * `extra` pairs are appended (e.g. `[['last_event_id', 42]]`); `liveMax` (seconds) caps the
 * window of the routes that read the live buffer only.
 */
export function dataUrl(route, view, extra, liveMax) {
  const spec = ROUTES[route];
  const q = [];
  let win = view.range;
  if (spec.live && liveMax > 0 && win > liveMax) win = liveMax;
  if (spec.window && win) q.push(pair('window', win));
  for (const k of spec.keys) if (view[k]) q.push(pair(k, view[k]));
  for (const [k, v] of extra || []) if (v != null && v !== '') q.push(pair(k, v));
  return 'realtime/' + route + (q.length ? '?' + q.join('&') : '');
}

/** The CSV download's file name: `events-1800s-GPU_A100-ann.csv`. */
export function csvFileName(view) {
  const name = 'events-' + view.range + 's' + (view.resource ? '-' + view.resource : '') +
    (view.user ? '-' + view.user : '');
  return name.replace(/[^A-Za-z0-9._-]+/g, '_') + '.csv';
}
