// The metric cards: rates (60 s window) and buffer from the stream, the active level summed over
// the live resources, the overage cost over the range from the polled stats.

import { $, setText } from './dom.js';
import { fmtClock, fmtInt, fmtMoney, fmtPercent, fmtRange, fmtRate } from './format.js';
import { CRIT_PCT, WARN_PCT } from './series.js';

/** `live`: the decoder state; `expired`: expired returns in the rates' window; `retention` (s). */
export function renderCards(live, expired, retention) {
  const r = live.rates;
  if (r) {
    setText('m-borrows', fmtRate(r.borrows_per_min));
    setText('m-returns', fmtRate(r.returns_per_min));
    setText('m-failures', fmtRate(r.failures_per_min));
    const pct = +r.overage_percent || 0;
    setText('m-overage', fmtPercent(pct));
    const card = $('card-overage');
    card.classList.toggle('warn', pct > WARN_PCT && pct <= CRIT_PCT);
    card.classList.toggle('crit', pct > CRIT_PCT);
    const win = r.window_seconds ? 'last ' + fmtRange(r.window_seconds) : '';
    setText('m-borrows-sub', win);
    setText('m-returns-sub', expired ? win + ' · ' + fmtInt(expired) + ' expired' : win);
    setText('m-failures-sub', 'denial rate ' + (r.denial_rate != null ? fmtPercent(100 * r.denial_rate) : '–'));
  }
  const res = live.resources || [];
  let active = 0, total = 0, over = 0, totalKnown = res.length > 0;
  for (const x of res) {
    active += x.borrowed || 0;
    over += x.overage || 0;
    if (x.total == null) totalKnown = false; else total += x.total;
  }
  setText('m-active', fmtInt(active));
  const sub = (totalKnown ? 'of ' + fmtInt(total) + ' · ' : '') + fmtInt(over) + ' over commit';
  setText('m-active-sub', res.length ? sub : 'borrowed now');
  const b = live.buffer;
  if (b) {
    setText('m-buffer', fmtInt(b.total_events));
    let bs = b.oldest_event_ms ? 'events since ' + fmtClock(b.oldest_event_ms, false) : 'events retained';
    bs += ' · ' + fmtRange(retention) + ' kept';
    if (b.folded_names) bs += ' · ' + fmtInt(b.folded_names) + ' folded';
    setText('m-buffer-sub', bs);
  }
}

/** The overage-cost card (only when the app gives prices): accrued in range, and the rate now. */
export function renderCostCard(a) {
  const card = $('card-cost');
  const cur = a && a.cost && a.cost.currencies;
  card.hidden = !(cur && cur.length);
  if (card.hidden) return;
  setText('m-cost', cur.map((c) => fmtMoney(c.overage_in_window, c.currency, true)).join(' + '));
  setText('m-cost-sub', 'last ' + fmtRange(a.window_seconds) + ' · now ' +
    cur.map((c) => fmtMoney(c.overage_now, c.currency, true)).join(' + ') + ' over commit');
}

/** The Borrows card flashes when a live frame brings a borrow. */
export function pulseBorrows() {
  const el = $('card-borrows');
  el.classList.remove('pulse');
  void el.offsetWidth; // restart the animation
  el.classList.add('pulse');
}
