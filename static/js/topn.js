// Which resources a per-resource panel shows: the top N by a chosen measure, narrowed by a filter
// text, or all of them. Pure (unit tests: realtime-layer/tests/js).

/** Rows a panel shows before "show all". */
export const TOP_N = 8;

/** The measures a panel can sort by, in menu order. */
export const SORTS = [
  ['utilization', 'utilization now'],
  ['activity', 'activity in range'],
  ['refusals', 'refusals in range'],
  ['exhausted', 'time exhausted'],
  ['name', 'name'],
];

function blank() {
  return { utilization: 0, borrowed: 0, activity: 0, refusals: 0, exhausted: 0, atCommit: 0 };
}

/**
 * Per-resource measures, by name: `utilization` (borrowed / pool size now, 0 when the size is
 * unknown) and `borrowed` from the live resource list; `activity` (borrows + returns + failures),
 * `refusals` (failures) and `exhausted` / `atCommit` (seconds) over the range from the polled stats.
 */
export function resourceMetrics(live, answers) {
  const m = new Map();
  const get = (name) => {
    let x = m.get(name);
    if (!x) m.set(name, (x = blank()));
    return x;
  };
  for (const r of live || []) {
    const x = get(r.name);
    x.borrowed = +r.borrowed || 0;
    x.utilization = r.total ? x.borrowed / r.total : 0;
  }
  for (const r of (answers && answers.resources) || []) {
    const x = get(r.name);
    x.activity = (+r.borrows || 0) + (+r.returns || 0) + (+r.failures || 0);
    x.refusals = +r.failures || 0;
  }
  for (const c of (answers && answers.capacity) || []) {
    const x = get(c.resource);
    x.exhausted = +c.seconds_exhausted || 0;
    x.atCommit = +c.seconds_at_commit || 0;
  }
  return m;
}

// Larger first; ties keep the next measure, then the rows' own order (the sort is stable).
const ORDER = {
  utilization: ['utilization', 'borrowed'],
  activity: ['activity', 'borrowed'],
  refusals: ['refusals', 'exhausted'],
  exhausted: ['exhausted', 'atCommit'],
};

/**
 * The rows to draw: `{rows, matched, total}`. `opts`: `name(row)` → the resource name,
 * `metrics` (from `resourceMetrics`), `sort` (a key of SORTS), `filter` (case-insensitive
 * substring of the name), `limit` (default TOP_N) and `showAll`.
 */
export function selectRows(rows, opts) {
  const name = opts.name;
  const needle = String(opts.filter || '').trim().toLowerCase();
  let out = needle ? rows.filter((r) => String(name(r)).toLowerCase().indexOf(needle) >= 0) : rows.slice();
  const matched = out.length;
  if (opts.sort === 'name') {
    out.sort((a, b) => String(name(a)).localeCompare(String(name(b))));
  } else if (ORDER[opts.sort]) {
    const keys = ORDER[opts.sort];
    const metrics = opts.metrics || new Map();
    const of = (r) => metrics.get(name(r)) || blank();
    out.sort((a, b) => {
      const ma = of(a), mb = of(b);
      for (const k of keys) if (mb[k] !== ma[k]) return mb[k] - ma[k];
      return 0;
    });
  }
  const limit = opts.limit || TOP_N;
  if (!opts.showAll && out.length > limit) out = out.slice(0, limit);
  return { rows: out, matched, total: rows.length };
}
