// The advisor's cards: per resource the recommendation in one sentence and its cost curve (cost
// per commit level, today's and the recommended level marked), or for pools without prices the
// refusals per pool size. Text goes in as text; one small chart per card, rebuilt per answer.

import { $, clear } from './dom.js';
import { baseOptions, chartLib, countTicks } from './chart-kit.js';
import { fmtCount, fmtMoney } from './format.js';
import { alpha, theme } from './theme.js';

let charts = [];

function el(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text != null) e.textContent = text;
  return e;
}

function curveChart(canvas, card, th) {
  const Chart = chartLib();
  if (!Chart) return null;
  const money = !!card.currency;
  const color = money ? th.commit : th.failure;
  const mark = (p) => (p.commit === card.recommended ? 5 : p.commit === card.current ? 4 : 0);
  return new Chart(canvas, {
    type: 'line',
    data: {
      labels: card.curve.map((p) => String(p.commit)),
      datasets: [{
        label: money ? 'cost' : 'refusals',
        data: card.curve.map((p) => p.cost),
        borderColor: color, backgroundColor: alpha(color, 0.12), fill: 'origin',
        borderWidth: 2, tension: 0,
        pointRadius: card.curve.map(mark),
        pointBackgroundColor: card.curve.map((p) => (p.commit === card.recommended ? th.returns : th.warn)),
      }],
    },
    options: baseOptions({
      plugins: {
        legend: { display: false },
        tooltip: { callbacks: {
          title: (items) => (money ? 'commit ' : 'size ') + items[0].label,
          label: (item) => (money ? fmtMoney(item.parsed.y, card.currency) : item.parsed.y + ' refused'),
        } },
      },
      scales: {
        x: { grid: { display: false }, ticks: { color: th.muted, maxTicksLimit: 8, maxRotation: 0 },
          title: { display: true, text: money ? 'commit' : 'pool size', color: th.muted, font: { size: 11 } } },
        y: { beginAtZero: true, grid: { color: th.grid },
          ticks: money ? { color: th.muted, callback: (v) => fmtCount(v) } : countTicks(th) },
      },
    }),
  });
}

/** Replaces the cards with `cards` (usage-model.js `adviceCards`). */
export function renderAdvice(cards) {
  for (const c of charts) c.destroy();
  charts = [];
  const box = $('advice-cards');
  clear(box);
  $('advice-empty').hidden = cards.length > 0;
  const th = theme();
  for (const card of cards) {
    const art = el('article', 'advice-card' + (card.saving > 0 ? ' saves' : ''));
    art.appendChild(el('h3', 'advice-resource', card.resource));
    art.appendChild(el('p', 'advice-headline', card.headline));
    art.appendChild(el('p', 'advice-detail', card.detail));
    const wrap = el('div', 'advice-chart');
    const canvas = el('canvas');
    canvas.setAttribute('role', 'img');
    canvas.setAttribute('aria-label', 'Cost curve of ' + card.resource);
    wrap.appendChild(canvas);
    art.appendChild(wrap);
    box.appendChild(art);
    const chart = curveChart(canvas, card, th);
    if (chart) charts.push(chart);
  }
  box.dataset.cards = String(cards.length);
}
