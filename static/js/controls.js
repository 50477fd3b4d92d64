// The toolbar: range, resource, user and instance controls in step with the view (view.js), and
// the CSV link that follows it. Controls only ask for view changes; the listeners of view.js
// reload what depends on them.

import { $, option } from './dom.js';
import { config } from './config.js';
import { fmtRange } from './format.js';
import { noteResource } from './names.js';
import { csvFileName, dataUrl } from './url-state.js';
import { updateView } from './view.js';

// The instance selector's entry for `scope=local` (only listed while the URL asks for it).
const LOCAL = '@local';

export function fillRanges(ranges, selected) {
  const sel = $('range');
  while (sel.firstChild) sel.removeChild(sel.firstChild);
  for (const r of ranges) {
    const o = option(r, fmtRange(r));
    if (r === selected) o.selected = true;
    sel.appendChild(o);
  }
}

function ensureOption(sel, value, text) {
  if (!value || Array.from(sel.options).some((o) => o.value === value)) return;
  sel.appendChild(option(value, text));
}

/** Shows `view` in the controls (at start-up, from the URL). */
export function showView(view) {
  $('range').value = String(view.range);
  // A resource from the URL may not be listed yet (no event seen so far): list it now.
  noteResource(view.resource);
  $('resource-filter').value = view.resource;
  $('user-filter').value = view.user;
  const inst = $('instance-filter');
  if (view.scope === 'local' && !view.instance) {
    ensureOption(inst, LOCAL, 'This instance only (scope=local)');
    inst.value = LOCAL;
  } else {
    ensureOption(inst, view.instance, view.instance);
    inst.value = view.instance;
  }
  updateCsv(view);
}

export function updateCsv(view) {
  const a = $('csv');
  a.href = dataUrl('events.csv', view, null, config().liveRetention);
  a.setAttribute('download', csvFileName(view));
}

function applyFilters() {
  const inst = $('instance-filter').value;
  updateView({
    resource: $('resource-filter').value,
    user: $('user-filter').value.trim(),
    scope: inst === LOCAL ? 'local' : '',
    instance: inst === LOCAL ? '' : inst,
  });
}

export function bindControls() {
  $('range').addEventListener('change', (ev) => {
    const v = parseInt(ev.target.value, 10);
    if (v) updateView({ range: v });
  });
  $('resource-filter').addEventListener('change', applyFilters);
  $('instance-filter').addEventListener('change', applyFilters);
  const user = $('user-filter');
  let debounce = null;
  user.addEventListener('change', applyFilters);
  user.addEventListener('keydown', (ev) => { if (ev.key === 'Enter') applyFilters(); });
  user.addEventListener('input', () => {
    clearTimeout(debounce);
    // clearing the field (or picking from the list) applies quickly; typing waits a little
    debounce = setTimeout(applyFilters, user.value === '' ? 50 : 600);
  });
}
