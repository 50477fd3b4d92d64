// The live stream: one EventSource at a time, our own reconnects (exponential backoff with jitter,
// at most MAX_ATTEMPTS, a countdown in the status pill, a Retry button after giving up), and
// resumes: a reconnect asks for `last_event_id` (the SSE id of the last frame), so the server's
// snapshot carries exactly the missed events when it still remembers them (docs/PROTOCOL.md).
// While the tab is hidden (Page Visibility) the page holds a `hidden=1` stream instead: the
// server sends it keep-alives only, no frames; back in view the page resumes with its last id
// and gets a catch-up snapshot.

import { $ } from './dom.js';
import { parseFrame } from './decoder.js';

const MAX_ATTEMPTS = 10;
const BASE_DELAY_MS = 1000;
const MAX_DELAY_MS = 30000;

let es = null;
let gen = 0;
let attempt = 0;
let timer = null;
let countdown = null;
let status = 'connecting';
let lastId = null; // resume point; null after a filter change
let handlers = null;
let hiddenMode = false; // following a `hidden=1` stream (the tab is not visible)
let leaving = false; // the page is being unloaded

/**
 * `opts.url(lastEventId, hidden)` → the stream URL; `opts.onFrame(frame)`; `opts.onLost()` when
 * a connection broke or the tab was hidden (the page reloads history on the next snapshot to
 * fill the gap).
 */
export function initConnection(opts) {
  handlers = opts;
  $('retry').addEventListener('click', () => reconnectNow(false));
  // Leaving the page also fires `visibilitychange` (hidden): no new stream may open then.
  const leave = () => { leaving = true; close(); };
  window.addEventListener('beforeunload', leave);
  window.addEventListener('pagehide', leave);
  // Back from the back/forward cache: the page lives again, resume.
  window.addEventListener('pageshow', (ev) => {
    if (!ev.persisted) return;
    leaving = false;
    hiddenMode = document.hidden;
    handlers.onLost();
    reconnectNow(false);
  });
}

function setStatus(s, text) {
  status = s;
  const el = $('status');
  el.dataset.state = s;
  el.dataset.attempt = String(attempt);
  $('status-text').textContent = text;
  $('retry').hidden = s !== 'failed';
}

function close() {
  if (timer) { clearTimeout(timer); timer = null; }
  if (countdown) { clearInterval(countdown); countdown = null; }
  if (es) {
    es.onopen = es.onmessage = es.onerror = null;
    es.close();
    es = null;
  }
}

function connect() {
  close();
  const mine = ++gen;
  if (attempt === 0) setStatus('connecting', 'Connecting…');
  else setStatus('reconnecting', 'Reconnecting (attempt ' + attempt + '/' + MAX_ATTEMPTS + ')…');
  const url = handlers.url(lastId, hiddenMode);
  // Which stream the page reads (tests and curious people: the filter it follows).
  $('status').dataset.stream = url;
  es = new EventSource(url);
  es.onopen = () => {
    if (mine !== gen) return;
    attempt = 0;
    if (hiddenMode) setStatus('paused', 'Paused while the tab is hidden');
    else setStatus('connected', 'Connected');
  };
  es.onmessage = (ev) => {
    if (mine !== gen) return;
    const f = parseFrame(ev.data);
    if (!f) return;
    if (ev.lastEventId) lastId = ev.lastEventId;
    if (status !== 'connected') { attempt = 0; setStatus('connected', 'Connected'); }
    handlers.onFrame(f);
  };
  es.onerror = () => {
    if (mine !== gen) return;
    // Take over reconnection from the browser so that backoff and the attempt limit are ours,
    // and never leave two connections open.
    close();
    handlers.onLost();
    scheduleReconnect();
  };
}

function scheduleReconnect() {
  if (attempt >= MAX_ATTEMPTS) {
    setStatus('failed', 'Disconnected: gave up after ' + MAX_ATTEMPTS + ' attempts');
    return;
  }
  attempt++;
  let delay = Math.min(MAX_DELAY_MS, BASE_DELAY_MS * Math.pow(2, attempt - 1));
  delay = Math.round(delay * (0.85 + Math.random() * 0.3));
  const at = Date.now() + delay;
  const show = () => {
    const left = Math.max(0, Math.ceil((at - Date.now()) / 1000));
    setStatus('reconnecting', 'Reconnecting (attempt ' + attempt + '/' + MAX_ATTEMPTS + ')' + (left ? ' in ' + left + ' s…' : '…'));
  };
  show();
  countdown = setInterval(show, 1000);
  timer = setTimeout(() => { timer = null; connect(); }, delay);
}

/**
 * Connects now, dropping any connection or pending retry. `fresh` (a filter change) forgets the
 * resume point: the new filter's stream starts over with a snapshot.
 */
export function reconnectNow(fresh) {
  if (fresh) lastId = null;
  attempt = 0;
  connect();
}

/**
 * The tab became hidden (`true`) or visible again: swap the stream for a keep-alive-only one, or
 * back to the live one resuming after the last frame seen (the catch-up snapshot).
 */
export function setHidden(hidden) {
  if (hidden === hiddenMode || leaving) return;
  hiddenMode = hidden;
  if (!hidden) handlers.onLost();
  attempt = 0;
  connect();
}
