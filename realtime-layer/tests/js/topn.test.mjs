// Which resources a per-resource panel shows (static/js/topn.js).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { resourceMetrics, selectRows, TOP_N } from '../../../static/js/topn.js';

const live = Array.from({ length: 300 }, (_, i) => ({ name: 'Tool ' + String(i).padStart(3, '0'), total: 10, borrowed: i % 11 === 0 ? 10 : i % 7 }));
const answers = {
  resources: live.map((r, i) => ({ name: r.name, borrows: i, returns: 0, failures: i % 50 === 3 ? 100 + i : 0 })),
  capacity: live.map((r, i) => ({ resource: r.name, seconds_exhausted: i === 42 ? 600 : 0, seconds_at_commit: i })),
};
const metrics = resourceMetrics(live, answers);
const name = (r) => r.name;

test('top N by each measure', () => {
  const util = selectRows(live, { name, metrics, sort: 'utilization' });
  assert.equal(util.rows.length, TOP_N);
  assert.equal(util.total, 300);
  assert.ok(util.rows.every((r) => r.borrowed === 10), 'full pools first');
  assert.deepEqual(util.rows.slice(0, 2).map(name), ['Tool 000', 'Tool 011'], 'ties keep the list order');
  // activity = borrows + returns + failures: Tool 253's refusals put it above Tool 299
  assert.deepEqual(selectRows(live, { name, metrics, sort: 'activity', limit: 2 }).rows.map(name), ['Tool 253', 'Tool 203']);
  assert.deepEqual(selectRows(live, { name, metrics, sort: 'refusals', limit: 3 }).rows.map(name), ['Tool 253', 'Tool 203', 'Tool 153']);
  const cap = selectRows(answers.capacity, { name: (c) => c.resource, metrics, sort: 'exhausted' });
  assert.equal(cap.rows[0].resource, 'Tool 042');
  assert.equal(cap.rows[1].resource, 'Tool 299', 'then time at commit');
  assert.equal(selectRows(live.slice().reverse(), { name, metrics, sort: 'name' }).rows[0].name, 'Tool 000');
});

test('filter and show all', () => {
  const g = selectRows(live, { name, metrics, sort: 'activity', filter: ' TOOL 1 ' });
  assert.equal(g.matched, 100, 'case-insensitive, surrounding spaces ignored');
  assert.equal(g.rows.length, TOP_N);
  assert.deepEqual(g.rows.slice(0, 2).map(name), ['Tool 153', 'Tool 103']);
  assert.equal(selectRows(live, { name, metrics, sort: 'activity', filter: 'nothing like it' }).matched, 0);
  const all = selectRows(live, { name, metrics, sort: 'name', showAll: true });
  assert.equal(all.rows.length, 300);
  assert.equal(selectRows(live, { name, metrics, sort: 'unknown', limit: 2 }).rows[1].name, 'Tool 001', 'unknown sort keeps the order');
});

test('resources without pool sizes or stats count as zero', () => {
  const m = resourceMetrics([{ name: 'A', total: null, borrowed: 5 }], null);
  assert.deepEqual(m.get('A'), { utilization: 0, borrowed: 5, activity: 0, refusals: 0, exhausted: 0, atCommit: 0 });
});
