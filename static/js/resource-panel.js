// A per-resource panel (utilization, hold times, time at capacity) stays one fixed height whatever
// the number of resources: it draws the top N (topn.js) by a measure the viewer picks, narrowed
// by a filter box; "show all" draws every row in a taller chart that scrolls inside the panel.
// The controls appear once there are more resources than fit, or while a filter is typed.

import { option } from './dom.js';
import { selectRows, SORTS, TOP_N } from './topn.js';

const ROW_PX = 26; // one resource row when showing all
const EXTRA_PX = 80; // legend and axis

/**
 * `panel`: the panel element (holds a `.chart-scroll > .chart-box > canvas`); `sort`: the
 * default measure; `onChange()`: redraw after the viewer changed something.
 */
export function resourcePanel(panel, sort, onChange) {
  const st = { filter: '', sort, showAll: false, total: 0, matched: 0, shown: 0 };
  const box = panel.querySelector('.chart-box');
  const controls = document.createElement('div');
  controls.className = 'res-controls';
  controls.hidden = true;
  const filter = document.createElement('input');
  filter.type = 'search';
  filter.className = 'res-filter';
  filter.autocomplete = 'off';
  filter.spellcheck = false;
  const select = document.createElement('select');
  select.className = 'res-sort';
  select.setAttribute('aria-label', 'Sort by');
  for (const [key, label] of SORTS) select.appendChild(option(key, 'by ' + label));
  select.value = sort;
  const all = document.createElement('button');
  all.type = 'button';
  all.className = 'btn btn-small res-all';
  all.setAttribute('aria-pressed', 'false');
  controls.append(filter, select, all);
  panel.querySelector('.chart-scroll').before(controls);

  let debounce = null;
  filter.addEventListener('input', () => {
    clearTimeout(debounce);
    debounce = setTimeout(() => { st.filter = filter.value; onChange(); }, 150);
  });
  select.addEventListener('change', () => { st.sort = select.value; onChange(); });
  all.addEventListener('click', () => {
    st.showAll = !st.showAll;
    all.setAttribute('aria-pressed', String(st.showAll));
    onChange();
  });

  return {
    /** Names the resources in the filter box's placeholder (`Filter tools`). */
    setNoun(plural) {
      filter.placeholder = 'Filter ' + String(plural).toLowerCase();
      filter.setAttribute('aria-label', filter.placeholder);
    },
    get sort() { return st.sort; },
    /** The rows to draw (see topn.selectRows); sizes the chart and updates the controls. */
    select(rows, name, metrics) {
      const sel = selectRows(rows, { name, metrics, sort: st.sort, filter: st.filter, showAll: st.showAll, limit: TOP_N });
      st.total = sel.total;
      st.matched = sel.matched;
      st.shown = sel.rows.length;
      controls.hidden = sel.total <= TOP_N && !st.filter;
      all.textContent = st.showAll ? 'Top ' + TOP_N : 'Show all ' + sel.matched;
      all.disabled = !st.showAll && sel.matched <= TOP_N;
      const h = st.showAll && sel.rows.length > TOP_N ? sel.rows.length * ROW_PX + EXTRA_PX + 'px' : '';
      if (box.style.height !== h) box.style.height = h;
      panel.dataset.resources = String(sel.total);
      panel.dataset.shown = String(sel.rows.length);
      return sel.rows;
    },
    /** `top 8 of 300`, `8 of 12 matching` (nothing when every row shows). */
    countNote() {
      if (st.filter) return (st.shown < st.matched ? st.shown + ' of ' : '') + st.matched + ' matching';
      return st.shown < st.total ? 'top ' + st.shown + ' of ' + st.total : '';
    },
  };
}
