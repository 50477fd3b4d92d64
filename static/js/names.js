// Names the page has seen: the resource filter's options (sorted by name, after "All") and the
// user box's suggestions (bounded). Added as option values and text, never as markup.

import { $, option } from './dom.js';

const MAX_USERS_LISTED = 500;
const users = new Set();
const resources = new Set();

export function noteUser(u) {
  if (u == null || u === '' || users.has(u) || users.size >= MAX_USERS_LISTED) return;
  users.add(u);
  const opt = document.createElement('option');
  opt.value = String(u);
  $('user-list').appendChild(opt);
}

export function noteResource(name) {
  if (name == null || name === '' || resources.has(name)) return;
  resources.add(name);
  const sel = $('resource-filter');
  const opt = option(name, name);
  let before = null;
  for (let i = 1; i < sel.options.length; i++) {
    if (sel.options[i].value.localeCompare(name) > 0) { before = sel.options[i]; break; }
  }
  sel.insertBefore(opt, before);
}
