// The stream protocol decoder (docs/PROTOCOL.md): frames in, page state out. Pure: no DOM, no
// timers, no globals; each call takes the previous state and returns a new one, so the unit tests
// (realtime-layer/tests/js) replay frame sequences without a browser.
//
// A snapshot replaces everything; a delta carries only what changed: an absent field keeps its
// value, `res` entries patch resources by position `i` (older servers: by `name`), `ev` holds new
// events as compact arrays whose resource is a position in the list *after* this frame's
// `resources`/`res` are applied.

export const KINDS = ['borrow', 'return', 'failure'];

/** The state before the first frame (and after a filter change). */
export function initialLive() {
  return {
    seq: null, // the last frame's seq: the Last-Event-ID to resume from
    tsMs: null,
    instance: null, // the instance that built the last frame
    cluster: null, // {state, scope, live_instances}, merged across frames
    rates: null,
    resources: [],
    buffer: null,
  };
}

/** Parses one SSE `data:` payload; null when it is not a JSON object. */
export function parseFrame(text) {
  try {
    const f = JSON.parse(text);
    return f && typeof f === 'object' && !Array.isArray(f) ? f : null;
  } catch (err) {
    return null;
  }
}

/**
 * A delta's `res` merged into `list` (a new array; untouched entries are shared). Each change is
 * `{i: position, ...changed fields}`; servers before positions sent `{name, ...}`: still
 * understood (replicas of two versions behind one load balancer). Unknown positions are ignored.
 */
export function applyResourceChanges(list, changes) {
  const out = list.slice();
  for (const c of changes || []) {
    if (!c || typeof c !== 'object') continue;
    let i = c.i;
    if (typeof i !== 'number') i = out.findIndex((r) => r.name === c.name);
    if (i < 0 || !out[i]) continue;
    const merged = Object.assign({}, out[i], c);
    delete merged.i;
    out[i] = merged;
  }
  return out;
}

/**
 * A compact event `[dt, kind, resource, user, borrow_id?, extra?, instance?]` as an event object
 * (the shape of a snapshot's `events`). `resource` is a position in `resources` or a name.
 */
export function expandEvent(c, frameTs, resources) {
  const kind = KINDS[c[1]] || String(c[1]);
  let resource = c[2];
  if (typeof resource === 'number') resource = resources[resource] ? resources[resource].name : '?';
  const extra = c[5];
  return {
    ts_ms: (frameTs || 0) + (c[0] || 0),
    kind,
    resource,
    user: c[3],
    borrow_id: c[4] == null ? null : c[4],
    overage: kind === 'borrow' && extra === 1,
    reason: typeof extra === 'string' ? extra : null,
    instance: c[6] == null ? undefined : c[6],
  };
}

/**
 * Applies one frame. Returns `{state, changes}`: the new state, and what the frame brought:
 * `snapshot`, `rates`/`resources`/`buffer`/`cluster` (true when that part changed), `events`
 * (objects, in frame order), `omitted` (events left out of a burst), `point` (or null),
 * `instanceChanged` (another replica answered: its history may differ).
 */
export function decodeFrame(prev, f) {
  const state = Object.assign({}, prev);
  const snapshot = f.kind === 'snapshot';
  const changes = {
    snapshot, rates: false, resources: false, buffer: false, cluster: false,
    events: [], omitted: 0, point: null, instanceChanged: false,
  };
  if (f.seq != null) state.seq = f.seq;
  if (f.ts_ms != null) state.tsMs = f.ts_ms;
  if (f.instance) {
    changes.instanceChanged = prev.instance != null && prev.instance !== f.instance;
    state.instance = String(f.instance);
  }
  if (f.cluster && typeof f.cluster === 'object') {
    state.cluster = Object.assign({}, prev.cluster || {}, f.cluster);
    changes.cluster = true;
  }
  if (f.rates) {
    state.rates = f.rates;
    changes.rates = true;
  }
  if (Array.isArray(f.resources)) {
    state.resources = f.resources;
    changes.resources = true;
  }
  if (Array.isArray(f.res) && f.res.length) {
    state.resources = applyResourceChanges(state.resources, f.res);
    changes.resources = true;
  }
  if (f.buffer) {
    state.buffer = f.buffer;
    changes.buffer = true;
  }
  if (Array.isArray(f.events)) changes.events = f.events.slice();
  if (Array.isArray(f.ev)) {
    for (const c of f.ev) {
      if (Array.isArray(c)) changes.events.push(expandEvent(c, f.ts_ms, state.resources));
    }
  }
  if (f.events_omitted) changes.omitted = Number(f.events_omitted) || 0;
  if (f.point && f.point.t != null) changes.point = f.point;
  return { state, changes };
}
