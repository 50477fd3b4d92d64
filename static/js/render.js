// When the charts redraw: at most once per animation frame (a timer when the tab is hidden, where
// animation frames stop), never while paused unless forced (a history load, a theme change).
// Cards and the event log do not wait for this: they update as frames arrive.

import { $ } from './dom.js';

let paused = false;
let queued = false;
let queuedForce = false;
let draw = () => {};

/** `fn(force)` draws what changed. */
export function setRenderer(fn) { draw = fn; }

export function scheduleRender(force) {
  if (paused && !force) return;
  if (force) queuedForce = true;
  if (queued) return;
  queued = true;
  const run = () => {
    queued = false;
    const f = queuedForce;
    queuedForce = false;
    draw(f);
  };
  if (document.hidden) setTimeout(run, 250); else requestAnimationFrame(run);
}

export function initPause() {
  const btn = $('pause');
  btn.addEventListener('click', () => {
    paused = !paused;
    btn.setAttribute('aria-pressed', String(paused));
    btn.textContent = paused ? 'Resume charts' : 'Pause charts';
    if (!paused) scheduleRender();
  });
}
