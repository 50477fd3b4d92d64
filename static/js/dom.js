// DOM helpers. Every string from the server goes in as text (`textContent`, `value`), never as
// HTML: no module parses strings as markup (tests/page_js.rs checks).

export function $(id) { return document.getElementById(id); }

/** Sets an element's text (by id or element) only when it changed (no needless layout). */
export function setText(target, text) {
  const el = typeof target === 'string' ? $(target) : target;
  const s = String(text);
  if (el && el.textContent !== s) el.textContent = s;
}

export function clear(el) {
  while (el.firstChild) el.removeChild(el.firstChild);
}

/** A `<td>` with optional class and text, appended to `tr`. */
export function cell(tr, cls, text) {
  const td = document.createElement('td');
  if (cls) td.className = cls;
  if (text != null) td.textContent = text;
  tr.appendChild(td);
  return td;
}

/** A `<span>` with class and text, appended to `parent`. */
export function span(parent, cls, text) {
  const el = document.createElement('span');
  el.className = cls;
  el.textContent = text;
  parent.appendChild(el);
  return el;
}

/** An `<option>`. */
export function option(value, text) {
  const o = document.createElement('option');
  o.value = String(value);
  o.textContent = String(text);
  return o;
}

export function lower(s) { return String(s).toLowerCase(); }

/**
 * GET a JSON document (no cache). Rejects on HTTP errors with `HTTP <status>`, plus the server's
 * `detail` when the body is the API's error shape (`{"error", "detail"}`).
 */
export async function getJson(url) {
  const res = await fetch(url, { cache: 'no-store', headers: { Accept: 'application/json' } });
  if (!res.ok) {
    let detail = '';
    try { detail = (await res.json()).detail || ''; } catch (err) { /* not JSON */ }
    throw new Error('HTTP ' + res.status + (detail ? ': ' + detail : ''));
  }
  return res.json();
}
