// Cluster mode: the header badge ("cluster · N instances"), the answering instance, the
// degraded banner, and the instance selector (from realtime/config, refreshed while open).

import { $, getJson } from './dom.js';

let polling = null;

/** The answering instance and the cluster facts of a frame (or of the config). */
export function renderCluster(instance, c) {
  if (instance) $('instance-id').textContent = String(instance);
  if (!c) return;
  const badge = $('cluster-badge');
  const n = Number(c.live_instances) || 1;
  badge.hidden = false;
  badge.dataset.state = String(c.state);
  if (c.state === 'degraded') badge.textContent = 'cluster unreachable';
  else if (c.state === 'backfilling') badge.textContent = 'cluster · loading history';
  else badge.textContent = 'cluster · ' + n + (n === 1 ? ' instance' : ' instances');
  $('cluster-banner').hidden = c.state !== 'degraded';
}

/** The instance selector: '' is the whole cluster, then each known instance. */
export function renderInstances(cluster, self) {
  if (!cluster || !Array.isArray(cluster.instances)) return;
  $('instance-field').hidden = false;
  const sel = $('instance-filter');
  const have = new Set(Array.from(sel.options, (o) => o.value));
  for (let id of cluster.instances) {
    id = String(id);
    if (have.has(id)) continue;
    const o = document.createElement('option');
    o.value = id;
    o.textContent = id + (id === self ? ' (this instance)' : '');
    sel.appendChild(o);
    have.add(id);
  }
  renderCluster(self, { state: cluster.state, live_instances: cluster.live_instances });
}

/** Refreshes the instance list every 10 s (instances come and go). */
export function pollInstances() {
  if (polling) return;
  polling = setInterval(async () => {
    let cfg = null;
    try { cfg = await getJson('realtime/config'); } catch (err) { return; }
    if (cfg) renderInstances(cfg.cluster, cfg.instance);
  }, 10000);
}
