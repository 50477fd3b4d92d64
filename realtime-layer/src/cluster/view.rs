//! Which events and pools a route answers from: this instance, the cluster, or one instance.
//!
//! Without cluster mode every view is the local one. With it, routes default to the cluster view
//! while it is healthy and fall back to this instance's own view while Redis is unreachable (or
//! before the backfill finished), saying so in `cluster.state`.

use crate::buffer::{EventBuffer, EventFilter};
use crate::handle::Realtime;
use crate::status::ResourceStatus;
use std::sync::Arc;

/// The view a client asked for (`?scope=` / `?instance=`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub(crate) enum Scope {
    /// The cluster when cluster mode is on and healthy, else this instance.
    #[default]
    Default,
    /// This instance only (`?scope=local`).
    Local,
    /// One other instance's events, from the cluster view (`?instance=ID`).
    Instance(Arc<str>),
}

impl Scope {
    /// The name routes report: `local`, `cluster` or `instance`.
    pub(crate) fn name(&self, realtime: &Realtime) -> &'static str {
        match self.source(realtime) {
            Source::Local => "local",
            Source::Cluster if matches!(self, Scope::Instance(_)) => "instance",
            Source::Cluster => "cluster",
        }
    }

    /// Which buffer answers now.
    pub(crate) fn source(&self, realtime: &Realtime) -> Source {
        let Some(cluster) = realtime.shared.cluster.as_deref() else {
            return Source::Local;
        };
        match self {
            Scope::Local => Source::Local,
            Scope::Instance(id) if **id == *cluster.id => Source::Local,
            Scope::Instance(_) => Source::Cluster,
            Scope::Default if cluster.healthy() => Source::Cluster,
            Scope::Default => Source::Local,
        }
    }

    /// The buffer that answers now. Readers call [`feed`] once first (each route on entry, the
    /// stream once per frame build), so the cluster view never lags this instance's requests.
    pub(crate) fn buffer<'a>(&self, realtime: &'a Realtime) -> &'a EventBuffer {
        Self::buffer_of(self.source(realtime), realtime)
    }

    /// The buffer of `source`: for callers that decided the source once and must not see it
    /// change between two reads.
    pub(crate) fn buffer_of(source: Source, realtime: &Realtime) -> &EventBuffer {
        match (source, realtime.shared.cluster.as_deref()) {
            (Source::Cluster, Some(cluster)) => &cluster.buffer,
            _ => &realtime.shared.buffer,
        }
    }

    /// `filter` narrowed to this view's instance.
    pub(crate) fn filter(&self, realtime: &Realtime, filter: &EventFilter) -> EventFilter {
        match (self, self.source(realtime)) {
            (Scope::Instance(id), Source::Cluster) => EventFilter {
                instance: Some(id.to_string()),
                ..filter.clone()
            },
            _ => filter.clone(),
        }
    }

    /// The pools this view covers: this instance's status source, the cluster's rows (summed or
    /// freshest, see [`PoolScope`](crate::cluster::PoolScope)), or one instance's heartbeat rows.
    pub(crate) fn status(&self, realtime: &Realtime) -> Option<Vec<ResourceStatus>> {
        let own = || realtime.shared.status_source.as_ref().map(|s| s.status());
        let cluster = realtime.shared.cluster.as_deref();
        match (self.source(realtime), cluster) {
            (Source::Local, _) | (_, None) => own(),
            (Source::Cluster, Some(cluster)) => match self {
                Scope::Instance(id) => cluster.peer_status(id),
                _ => cluster.status_rows(own(), realtime.shared.buffer.clock().now_ms()),
            },
        }
    }

    /// Levels are kept per resource for the whole buffer: only the local and cluster views can
    /// take the status rows as levels (an instance's rows would overwrite the cluster's).
    pub(crate) fn syncs_levels(&self, realtime: &Realtime) -> bool {
        !matches!(
            (self, self.source(realtime)),
            (Scope::Instance(_), Source::Cluster)
        )
    }
}

/// Moves this instance's newest events into the cluster view (a no-op without cluster mode or
/// before the backfill). Once per read, not per buffer access: it takes the local buffer's lock,
/// which the request path also takes.
pub(crate) fn feed(realtime: &Realtime) {
    if let Some(cluster) = realtime.shared.cluster.as_deref() {
        cluster.feed_local(&realtime.shared.buffer);
    }
}

/// The buffer a view reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Source {
    Local,
    Cluster,
}
