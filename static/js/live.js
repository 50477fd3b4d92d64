// Owner of the live state the stream builds (rates, resources, buffer, cluster): the decoder's
// state between frames. Reset when the filter changes (the new stream starts with a snapshot).

import { decodeFrame, initialLive } from './decoder.js';

let state = initialLive();

export function live() { return state; }

export function resetLive() { state = initialLive(); }

/** Decodes one frame into the live state; returns what it changed (see decoder.js). */
export function applyFrame(frame) {
  const out = decodeFrame(state, frame);
  state = out.state;
  return out.changes;
}
