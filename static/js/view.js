// The view: which range, resource, user, scope and instance the page shows. This module owns it;
// it lives in the page URL too (`history.replaceState`), so a link shares it and a reload keeps
// it. Controls change it through `updateView`; listeners react (reload history, reconnect...).

import { emptyView, readView, writeView } from './url-state.js';

let view = emptyView();
let defaults = { range: 1800 };
const listeners = [];

/** The current view (a copy). */
export function currentView() { return Object.assign({}, view); }

/**
 * Takes the view from the page URL, checked against the configured ranges (an unknown range is
 * the default one), and writes the URL back in its canonical form.
 */
export function initView(search, cfg) {
  const v = readView(search);
  defaults = { range: cfg.defaultRange };
  if (cfg.ranges.indexOf(v.range) < 0) v.range = cfg.defaultRange;
  view = v;
  syncUrl();
  return currentView();
}

/** Applies `patch`; when something changed, updates the URL and tells the listeners. */
export function updateView(patch) {
  const changed = [];
  for (const k of Object.keys(patch)) {
    if (k in view && view[k] !== patch[k]) {
      view[k] = patch[k];
      changed.push(k);
    }
  }
  if (!changed.length) return false;
  syncUrl();
  for (const fn of listeners) fn(currentView(), changed);
  return true;
}

/** `fn(view, changedKeys)` after every change. */
export function onViewChange(fn) { listeners.push(fn); }

function syncUrl() {
  const q = writeView(location.search, view, defaults);
  if (q === location.search) return;
  history.replaceState(history.state, '', location.pathname + q + location.hash);
}
