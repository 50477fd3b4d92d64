// Owner of the usage section (only with a usage tier, `config.usage`): the report table and the
// advisor's cards over the chosen window (24 h, 7 d, 30 d), from `realtime/report` and
// `realtime/advice`, reloaded every minute (the tier closes a minute at a time) and on a window
// change. An answer for an older window is dropped; a failed load says so and keeps the last.

import { $, cell, clear, getJson, option } from './dom.js';
import { fmtRange } from './format.js';
import { adviceCards, reportCsvUrl, reportRows } from './usage-model.js';
import { renderAdvice } from './advisor.js';

const POLL_MS = 60000;

let windowSeconds = 0;
let gen = 0;
let timer = null;
let loads = 0;

function renderReport(report) {
  const body = $('usage-body');
  clear(body);
  const frag = document.createDocumentFragment();
  for (const row of reportRows(report)) {
    const tr = document.createElement('tr');
    cell(tr, 'resource', row.resource);
    for (const c of row.cells) cell(tr, 'num', c);
    frag.appendChild(tr);
  }
  body.appendChild(frag);
}

async function load() {
  const mine = ++gen;
  if (timer) clearTimeout(timer);
  timer = setTimeout(load, POLL_MS);
  const w = windowSeconds;
  try {
    const [report, advice] = await Promise.all([
      getJson('realtime/report?window=' + w),
      getJson('realtime/advice?window=' + w),
    ]);
    if (mine !== gen) return;
    renderReport(report);
    renderAdvice(adviceCards(advice));
    const ends = new Date(report.end_ms);
    $('usage-note').textContent = 'last ' + fmtRange(w) + ' · whole minutes to ' +
      ends.toLocaleString() + ' · ' + report.resources.length + ' resources';
  } catch (err) {
    if (mine !== gen) return;
    $('usage-note').textContent = 'Usage unavailable (' + err.message + ')';
  }
  loads++;
  const panel = $('panel-usage');
  panel.dataset.window = String(w);
  panel.dataset.loads = String(loads);
}

/** Shows the section and starts loading (`usage`: config.js `normalizeUsage`). */
export function startUsage(usage) {
  if (!usage) return;
  const panel = $('panel-usage');
  panel.hidden = false;
  const sel = $('usage-window');
  clear(sel);
  for (const w of usage.windows) sel.appendChild(option(w, fmtRange(w)));
  windowSeconds = usage.defaultWindow;
  sel.value = String(windowSeconds);
  $('usage-csv').href = reportCsvUrl(windowSeconds);
  sel.addEventListener('change', () => {
    const v = parseInt(sel.value, 10);
    if (!v) return;
    windowSeconds = v;
    $('usage-csv').href = reportCsvUrl(v);
    load();
  });
  load();
}
