// Owner of the answers: hold times, time at capacity, overage cost and HTTP routes over the
// selected range, from `realtime/stats` (docs/PROTOCOL.md), polled every POLL_MS and at once on
// every view change. An answer for an older view is dropped; a failed poll keeps the last one.
// A hidden tab does not poll.

import { getJson } from './dom.js';
import { config } from './config.js';
import { dataUrl } from './url-state.js';

const POLL_MS = 5000;

let answers = null;
let gen = 0;
let timer = null;
let dirty = false;
let getView = null;
let onAnswers = () => {};

export function currentAnswers() { return answers; }

/** True once after each new answer. */
export function takeAnswersDirty() {
  const d = dirty;
  dirty = false;
  return d;
}

export function markAnswersDirty() { dirty = true; }

/** Starts polling: `view()` gives the view to ask for, `fn(stats)` hears each answer. */
export function startAnswers(view, fn) {
  getView = view;
  onAnswers = fn;
  loadAnswers();
}

/** Asks now (a view change), and every POLL_MS from now on. */
export async function loadAnswers() {
  const mine = ++gen;
  if (timer) clearTimeout(timer);
  timer = setTimeout(loadAnswers, POLL_MS);
  // Nobody looks at a hidden tab: ask again when it is visible (the page calls us then).
  if (document.hidden) return;
  let st;
  try {
    st = await getJson(dataUrl('stats', getView(), null, config().liveRetention));
  } catch (err) {
    return; // keep the last answers; the next poll tries again
  }
  if (mine !== gen) return;
  answers = st;
  dirty = true;
  onAnswers(st);
}
