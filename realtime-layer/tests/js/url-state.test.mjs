// View state in the page URL and the data URLs that follow it (static/js/url-state.js).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { csvFileName, dataUrl, readView, writeView } from '../../../static/js/url-state.js';

test('reads the view from the query', () => {
  assert.deepEqual(readView('?range=300&resource=HIL%20Simulator&user=+ann+&scope=local&instance=web-2'), {
    range: 300, resource: 'HIL Simulator', user: 'ann', scope: 'local', instance: 'web-2',
  });
  assert.deepEqual(readView(''), { range: 0, resource: '', user: '', scope: '', instance: '' });
  // junk is ignored, not trusted
  assert.equal(readView('?range=abc').range, 0);
  assert.equal(readView('?range=-5').range, 0);
  assert.equal(readView('?range=30x').range, 0);
  assert.equal(readView('?scope=everything').scope, '');
  assert.equal(readView('?resource=%E0%A4%A').resource, '%E0%A4%A', 'bad escapes kept as typed');
  assert.equal(readView('?resource=a%26b%3Dc').resource, 'a&b=c');
});

test('writes the view: defaults left out, foreign parameters kept', () => {
  const view = { range: 300, resource: 'HIL Simulator', user: '', scope: '', instance: '' };
  assert.equal(writeView('', view, { range: 1800 }), '?range=300&resource=HIL%20Simulator');
  assert.equal(writeView('?range=300&theme=x', { ...view, range: 1800, resource: '' }, { range: 1800 }), '?theme=x');
  assert.equal(writeView('', { range: 1800, resource: '<b>&', user: 'a b', scope: 'local', instance: 'i/1' }, { range: 1800 }),
    '?resource=%3Cb%3E%26&user=a%20b&scope=local&instance=i%2F1');
  // round trip
  const v = { range: 600, resource: 'ä & ö', user: '=x', scope: '', instance: 'east' };
  assert.deepEqual(readView(writeView('', v, { range: 1800 })), v);
});

test('data URLs carry what each route takes, relative to the page', () => {
  const view = { range: 1800, resource: 'HIL Simulator', user: 'ann', scope: 'local', instance: '' };
  assert.equal(dataUrl('stream', view), 'realtime/stream?resource=HIL%20Simulator&user=ann&scope=local');
  assert.equal(dataUrl('stream', view, [['last_event_id', 42]]), 'realtime/stream?resource=HIL%20Simulator&user=ann&scope=local&last_event_id=42');
  assert.equal(dataUrl('stream', { range: 60, resource: '', user: '', scope: '', instance: '' }), 'realtime/stream');
  assert.equal(dataUrl('history', view), 'realtime/history?window=1800&resource=HIL%20Simulator&scope=local');
  // Stats and CSV stop at the live buffer; history reaches as far as the usage tier keeps.
  const month = Object.assign({}, view, { range: 2592000 });
  assert.equal(dataUrl('stats', month, null, 21600), 'realtime/stats?window=21600&resource=HIL%20Simulator&user=ann&scope=local');
  assert.equal(dataUrl('history', month, null, 21600), 'realtime/history?window=2592000&resource=HIL%20Simulator&scope=local');
  assert.equal(dataUrl('stats', { ...view, scope: '', instance: 'alpha' }), 'realtime/stats?window=1800&resource=HIL%20Simulator&user=ann&instance=alpha');
  assert.equal(dataUrl('events.csv', { ...view, user: '', scope: '' }), 'realtime/events.csv?window=1800&resource=HIL%20Simulator');
  assert.equal(csvFileName({ range: 300, resource: 'GPU A100', user: 'ann' }), 'events-300s-GPU_A100-ann.csv');
});
