import { test } from 'node:test';
import assert from 'node:assert/strict';
import { adviceCards, MAX_CARDS, reportCsvUrl, reportRows } from '../../../static/js/usage-model.js';
import { setLocale } from '../../../static/js/format.js';

setLocale('en-US');

const advice = {
  window_seconds: 2592000,
  resources: [
    { resource: 'AUTOSAR', priced: true, currency: 'EUR', commit: 8, recommended_commit: 5,
      recommended_max_overage: 7, saving: 1500, current_cost: 4000, recommended_cost: 2500,
      capacity: 12, refusals: 0, censored: false, total: 12, attempts: 300,
      levels: [{ commit: 0, cost: 9000 }, { commit: 5, cost: 2500 }, { commit: 8, cost: 4000 }] },
    { resource: 'CAN', priced: true, currency: 'EUR', commit: 10, recommended_commit: 10,
      saving: 0, current_cost: 2000, recommended_cost: 2000, capacity: 10, refusals: 3,
      censored: true, total: 10, attempts: 50, levels: [] },
    { resource: 'GPU <b>', priced: false, recommended_size: 4, attempts: 200, total: 6,
      refusals: 0, censored: false, refusals_at_capacity: [200, 120, 40, 9, 1, 0, 0] },
  ],
};

test('advice cards: biggest saving first, the headline says it, unpriced get the 1 % size', () => {
  const cards = adviceCards(advice);
  assert.equal(cards.length, 3);
  assert.equal(cards[0].resource, 'AUTOSAR');
  assert.equal(cards[0].headline, 'commit 8 → 5 would have saved €1,500.00 over 30 d');
  assert.deepEqual(cards[0].curve.map((p) => p.commit), [0, 5, 8]);
  assert.equal(cards[1].headline, 'commit 10 was the cheapest for this demand');
  assert.match(cards[1].detail, /censored by 3 refusals/);
  assert.equal(cards[2].headline, 'size 4 would have refused at most 1 % of 200 attempts');
  assert.equal(cards[2].resource, 'GPU <b>');
  assert.deepEqual(cards[2].curve[3], { commit: 3, cost: 9 });
});

test('at most MAX_CARDS cards; no answer, no cards', () => {
  const many = { window_seconds: 86400, resources: [] };
  for (let i = 0; i < 40; i++) many.resources.push(Object.assign({}, advice.resources[0], { resource: 'r' + i, saving: i }));
  const cards = adviceCards(many);
  assert.equal(cards.length, MAX_CARDS);
  assert.equal(cards[0].resource, 'r39');
  assert.match(cards[0].headline, /over 24 h$/);
  assert.deepEqual(adviceCards(null), []);
});

test('report rows: counts, refusals by reason, money in the currency', () => {
  const rows = reportRows({ resources: [{
    resource: 'CAD', peak_borrowed: 7, p95_borrowed: 5, seat_hours: 1234.56, borrows: 4200,
    refusals: 12, refusals_by_reason: { max_overage: 2, exhausted: 10 }, denial_rate: 0.0028,
    seconds_at_commit: 7200, seconds_exhausted: 90, overage_borrows: 30, overage_cost: 1500,
    currency: 'EUR', commit_cost: 5000, total_cost: 6500,
  }] });
  assert.equal(rows[0].resource, 'CAD');
  assert.deepEqual(rows[0].cells, ['7', '5', '1,234.6', '4,200', '12 (exhausted 10, max_overage 2)',
    '0.3 %', '2 h / 1.5 min', '30 · €1,500.00', '€5,000.00', '€6,500.00']);
  assert.equal(reportCsvUrl(604800), 'realtime/report?window=604800&format=csv');
});
