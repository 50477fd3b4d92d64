// The stream decoder (static/js/decoder.js) against docs/PROTOCOL.md: snapshot then deltas,
// resources by position, absent fields keep their values, compact events, resume.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { applyResourceChanges, decodeFrame, expandEvent, initialLive, parseFrame } from '../../../static/js/decoder.js';

const SNAPSHOT = {
  seq: 1764342000042, kind: 'snapshot', ts_ms: 1764342000123, instance: 'web-1-4242',
  rates: { window_seconds: 60, borrows_per_min: 12.0, returns_per_min: 11.0, failures_per_min: 1.0, overage_percent: 25.0, denial_rate: 0.0769 },
  resources: [
    { name: 'ECU Development Suite', total: 20, commit: 5, borrowed: 7, overage: 2, in_commit: 5, available: 13, peak_borrowed: 9 },
    { name: 'GPU A100', total: 4, commit: 2, borrowed: 1, overage: 0, in_commit: 1, available: 3, peak_borrowed: 2 },
  ],
  buffer: { total_events: 1234, borrow_count: 600, return_count: 590, failure_count: 44, oldest_event_ms: 1764320400000, folded_names: 0 },
  events: [{ ts_ms: 1764342000100, kind: 'borrow', resource: 'ECU Development Suite', user: 'alice', borrow_id: null, overage: true, reason: null }],
  events_omitted: 0,
  point: { t: 1764341999, borrows: 3, overage_borrows: 1, returns: 2, failures: 0, peak_borrowed: 17 },
};

// The delta of PROTOCOL.md's example.
const DELTA = {
  seq: 1764342000043, kind: 'delta', ts_ms: 1764342000224, instance: 'web-1-4242',
  res: [{ i: 0, borrowed: 8, overage: 3, available: 12 }],
  ev: [[-61, 0, 0, 'alice', '550e8400-e29b-41d4'], [-12, 2, 1, 'bob', null, 'exhausted']],
};

function replay(frames) {
  let state = initialLive();
  const all = [];
  for (const f of frames) {
    const out = decodeFrame(state, f);
    state = out.state;
    all.push(out.changes);
  }
  return { state, all };
}

test('a snapshot sets everything', () => {
  const { state, all } = replay([SNAPSHOT]);
  const c = all[0];
  assert.equal(c.snapshot, true);
  assert.equal(state.seq, SNAPSHOT.seq);
  assert.equal(state.instance, 'web-1-4242');
  assert.deepEqual(state.rates, SNAPSHOT.rates);
  assert.deepEqual(state.resources, SNAPSHOT.resources);
  assert.deepEqual(state.buffer, SNAPSHOT.buffer);
  assert.equal(c.rates && c.resources && c.buffer, true);
  assert.deepEqual(c.events, SNAPSHOT.events);
  assert.deepEqual(c.point, SNAPSHOT.point);
  assert.equal(c.omitted, 0);
  assert.equal(c.instanceChanged, false);
});

test('a delta patches resources by position and keeps absent fields', () => {
  const { state, all } = replay([SNAPSHOT, DELTA]);
  const c = all[1];
  assert.equal(c.snapshot, false);
  assert.equal(state.seq, DELTA.seq);
  // absent in the delta: unchanged, and not reported as changed
  assert.deepEqual(state.rates, SNAPSHOT.rates);
  assert.deepEqual(state.buffer, SNAPSHOT.buffer);
  assert.equal(c.rates, false);
  assert.equal(c.buffer, false);
  assert.equal(c.point, null);
  // res: only the listed fields of resource 0 change
  assert.equal(c.resources, true);
  assert.deepEqual(state.resources[0], { ...SNAPSHOT.resources[0], borrowed: 8, overage: 3, available: 12 });
  assert.equal(state.resources[1], SNAPSHOT.resources[1], 'untouched entries are shared');
  assert.equal('i' in state.resources[0], false);
});

test('compact events expand against the resource list after the frame', () => {
  const { all } = replay([SNAPSHOT, DELTA]);
  assert.deepEqual(all[1].events, [
    { ts_ms: 1764342000163, kind: 'borrow', resource: 'ECU Development Suite', user: 'alice', borrow_id: '550e8400-e29b-41d4', overage: false, reason: null, instance: undefined },
    { ts_ms: 1764342000212, kind: 'failure', resource: 'GPU A100', user: 'bob', borrow_id: null, overage: false, reason: 'exhausted', instance: undefined },
  ]);
  // a delta that replaces the list: positions refer to the new list
  const next = {
    seq: 1764342000044, kind: 'delta', ts_ms: 1764342001000,
    resources: [{ name: 'Alpha', borrowed: 0 }, ...SNAPSHOT.resources],
    ev: [[0, 0, 0, 'carol', null, 1], [-5, 1, 'Gone Tool', 'dave', '7', 'expired', 'web-2']],
  };
  const { state, all: more } = replay([SNAPSHOT, DELTA, next]);
  assert.equal(state.resources[0].name, 'Alpha');
  assert.equal(more[2].events[0].resource, 'Alpha');
  assert.equal(more[2].events[0].overage, true);
  assert.deepEqual(more[2].events[1], { ts_ms: 1764342000995, kind: 'return', resource: 'Gone Tool', user: 'dave', borrow_id: '7', overage: false, reason: 'expired', instance: 'web-2' });
});

test('res entries by name (servers before positions) and unknown positions', () => {
  const list = SNAPSHOT.resources;
  const out = applyResourceChanges(list, [{ name: 'GPU A100', borrowed: 4, available: null }, { i: 7, borrowed: 1 }, { name: 'nope', borrowed: 2 }]);
  assert.equal(out[1].borrowed, 4);
  assert.equal(out[1].available, null, 'a field may change to null');
  assert.equal(out[0], list[0]);
  assert.equal(out.length, 2);
  assert.equal(list[1].borrowed, 1, 'the input list is not modified');
});

test('later deltas bring rates, buffer, points and omitted counts', () => {
  const rates = { ...SNAPSHOT.rates, borrows_per_min: 30 };
  const { state, all } = replay([SNAPSHOT, DELTA, { seq: 1764342000050, kind: 'delta', ts_ms: 1764342001100, rates, buffer: { ...SNAPSHOT.buffer, total_events: 1240 }, point: { t: 1764342000, borrows: 2 }, events_omitted: 7 }]);
  assert.deepEqual(state.rates, rates);
  assert.equal(state.buffer.total_events, 1240);
  assert.equal(state.resources[0].borrowed, 8, 'resources stay as the earlier delta left them');
  assert.equal(all[2].rates, true);
  assert.equal(all[2].omitted, 7);
  assert.deepEqual(all[2].point, { t: 1764342000, borrows: 2 });
});

test('resume: a reconnect snapshot replaces the state; another instance is noticed', () => {
  const { state } = replay([SNAPSHOT, DELTA]);
  assert.equal(state.seq, DELTA.seq, 'the Last-Event-ID to resume from');
  // The server remembered the seq: the snapshot carries exactly the missed events.
  const missed = [{ ts_ms: 1764342002000, kind: 'return', resource: 'GPU A100', user: 'bob', borrow_id: null, overage: false, reason: null }];
  const resumed = { ...SNAPSHOT, seq: 1764342000100, ts_ms: 1764342002100, events: missed, resources: [{ ...SNAPSHOT.resources[0], borrowed: 5 }] };
  let out = decodeFrame(state, resumed);
  assert.equal(out.changes.snapshot, true);
  assert.deepEqual(out.changes.events, missed);
  assert.deepEqual(out.state.resources.map((r) => r.borrowed), [5], 'the list is replaced, not merged');
  assert.equal(out.state.seq, 1764342000100);
  assert.equal(out.changes.instanceChanged, false);
  // Through a load balancer another replica answers: a snapshot from it, flagged.
  out = decodeFrame(out.state, { ...resumed, seq: 5, instance: 'web-2-77' });
  assert.equal(out.changes.instanceChanged, true);
  assert.equal(out.state.instance, 'web-2-77');
});

test('cluster facts merge across frames', () => {
  let out = decodeFrame(initialLive(), { ...SNAPSHOT, cluster: { state: 'ok', scope: 'cluster', live_instances: 2 } });
  out = decodeFrame(out.state, { seq: 1, kind: 'delta', ts_ms: 1, cluster: { state: 'degraded' } });
  assert.deepEqual(out.state.cluster, { state: 'degraded', scope: 'cluster', live_instances: 2 });
  assert.equal(out.changes.cluster, true);
});

test('expandEvent without a resource list and parseFrame on junk', () => {
  assert.equal(expandEvent([0, 0, 3, 'u'], 10, []).resource, '?');
  assert.equal(expandEvent([0, 9, 'x', 'u'], 10, []).kind, '9');
  assert.equal(parseFrame('{"seq":1}').seq, 1);
  assert.equal(parseFrame('nope'), null);
  assert.equal(parseFrame('[1,2]'), null);
  assert.equal(parseFrame('null'), null);
});
