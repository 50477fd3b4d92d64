// The usage report and the advisor's answers shaped for the page: table rows and advice cards
// with their cost curves. Pure: no DOM (unit tests: realtime-layer/tests/js).
//
// Wire contract: `realtime/report` and `realtime/advice` (docs/API.md, "Usage tier").

import { fmtDuration, fmtInt, fmtMoney, fmtPercent, fmtRange } from './format.js';

/** Most advice cards shown (the biggest savings first; every resource stays in the table). */
export const MAX_CARDS = 12;

function money(v, currency) {
  return v == null || !currency ? '–' : fmtMoney(v, currency);
}

/** One table row of strings per resource of a `realtime/report` answer, in its order. */
export function reportRows(report) {
  const rows = [];
  for (const r of (report && report.resources) || []) {
    const reasons = Object.keys(r.refusals_by_reason || {}).sort()
      .map((k) => k + ' ' + fmtInt(r.refusals_by_reason[k])).join(', ');
    rows.push({
      resource: String(r.resource),
      cells: [
        fmtInt(r.peak_borrowed),
        fmtInt(r.p95_borrowed),
        (Math.round(r.seat_hours * 10) / 10).toLocaleString(),
        fmtInt(r.borrows),
        fmtInt(r.refusals) + (reasons ? ' (' + reasons + ')' : ''),
        fmtPercent(100 * (r.denial_rate || 0)),
        fmtDuration(r.seconds_at_commit || 0) + ' / ' + fmtDuration(r.seconds_exhausted || 0),
        fmtInt(r.overage_borrows) + ' · ' + money(r.overage_cost, r.currency),
        money(r.commit_cost, r.currency),
        money(r.total_cost, r.currency),
      ],
    });
  }
  return rows;
}

/**
 * The advice cards: priced resources whose recommended commit differs from today's (biggest
 * saving first), then unpriced ones with their 1 % size, at most MAX_CARDS.
 * Each: `{resource, headline, detail, curve: [{commit, cost}], current, recommended, censored}`.
 */
export function adviceCards(advice) {
  const win = advice && advice.window_seconds ? fmtRange(advice.window_seconds) : '';
  const cards = [];
  for (const a of (advice && advice.resources) || []) {
    const censored = a.censored ? 'demand above ' + fmtInt(a.capacity) + ' is censored by ' +
      fmtInt(a.refusals) + ' refusals (each counted once)' : '';
    if (a.priced && a.recommended_commit != null) {
      const saving = +a.saving || 0;
      const changes = a.recommended_commit !== a.commit && saving > 0;
      cards.push({
        resource: String(a.resource),
        saving: changes ? saving : 0,
        headline: changes
          ? 'commit ' + a.commit + ' → ' + a.recommended_commit + ' would have saved ' +
            fmtMoney(saving, a.currency) + ' over ' + win
          : 'commit ' + a.commit + ' was the cheapest for this demand',
        detail: 'today ' + money(a.current_cost, a.currency) + ' · at ' + a.recommended_commit +
          ' ' + money(a.recommended_cost, a.currency) + (a.recommended_max_overage != null
          ? ' (max overage ' + a.recommended_max_overage + ')' : '') +
          (censored ? ' · ' + censored : ''),
        curve: (a.levels || []).filter((l) => l.cost != null)
          .map((l) => ({ commit: l.commit, cost: l.cost })),
        current: a.commit,
        recommended: a.recommended_commit,
        currency: a.currency,
        censored: !!a.censored,
      });
    } else {
      cards.push({
        resource: String(a.resource),
        saving: -1,
        headline: 'size ' + a.recommended_size + ' would have refused at most 1 % of ' +
          fmtInt(a.attempts) + ' attempts',
        detail: 'pool today ' + fmtInt(a.total) + (censored ? ' · ' + censored : ''),
        curve: (a.refusals_at_capacity || []).map((n, k) => ({ commit: k, cost: n })),
        current: a.total,
        recommended: a.recommended_size,
        currency: null,
        censored: !!a.censored,
      });
    }
  }
  cards.sort((x, y) => y.saving - x.saving || x.resource.localeCompare(y.resource));
  return cards.slice(0, MAX_CARDS);
}

/** The report's CSV link for a window. */
export function reportCsvUrl(window) {
  return 'realtime/report?window=' + encodeURIComponent(window) + '&format=csv';
}
