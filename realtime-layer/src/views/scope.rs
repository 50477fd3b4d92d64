//! Which events and pools a route answers from: this instance, the cluster, or one instance.
//!
//! Without cluster mode every view is the local one. With it, routes default to the cluster view
//! while it is healthy and fall back to this instance's own view while Redis is unreachable (or
//! before the backfill finished), saying so in `cluster.state`.

use crate::buffer::{EventBuffer, EventFilter};
use crate::core::Core;
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
    pub(crate) fn name(&self, core: &Core) -> &'static str {
        match self.source(core) {
            Source::Local => "local",
            Source::Cluster if matches!(self, Scope::Instance(_)) => "instance",
            Source::Cluster => "cluster",
        }
    }

    /// Which buffer answers now.
    pub(crate) fn source(&self, core: &Core) -> Source {
        let Some(cluster) = core.cluster.as_deref() else {
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

    /// The buffer that answers now. Readers call [`Core::feed_cluster`] once first (each route on entry, the
    /// stream once per frame build), so the cluster view never lags this instance's requests.
    pub(crate) fn buffer<'a>(&self, core: &'a Core) -> &'a EventBuffer {
        Self::buffer_of(self.source(core), core)
    }

    /// The buffer of `source`: for callers that decided the source once and must not see it
    /// change between two reads.
    pub(crate) fn buffer_of(source: Source, core: &Core) -> &EventBuffer {
        match (source, core.cluster.as_deref()) {
            (Source::Cluster, Some(cluster)) => &cluster.buffer,
            _ => &core.buffer,
        }
    }

    /// `filter` narrowed to this view's instance.
    pub(crate) fn filter(&self, core: &Core, filter: &EventFilter) -> EventFilter {
        match (self, self.source(core)) {
            (Scope::Instance(id), Source::Cluster) => EventFilter {
                instance: Some(id.to_string()),
                ..filter.clone()
            },
            _ => filter.clone(),
        }
    }

    /// The pools this view covers: this instance's status source, the cluster's rows (summed or
    /// freshest, see [`PoolScope`](crate::PoolScope)), or one instance's heartbeat rows.
    pub(crate) fn status(&self, core: &Core) -> Option<Vec<ResourceStatus>> {
        let own = || core.own_status();
        let cluster = core.cluster.as_deref();
        match (self.source(core), cluster) {
            (Source::Local, _) | (_, None) => own(),
            (Source::Cluster, Some(cluster)) => match self {
                Scope::Instance(id) => cluster.peer_status(id),
                _ => cluster.status_rows(own(), core.buffer.clock().now_ms()),
            },
        }
    }

    /// Levels are kept per resource for the whole buffer: only the local and cluster views can
    /// take the status rows as levels (an instance's rows would overwrite the cluster's).
    pub(crate) fn syncs_levels(&self, core: &Core) -> bool {
        !matches!(
            (self, self.source(core)),
            (Scope::Instance(_), Source::Cluster)
        )
    }
}

/// The buffer a view reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Source {
    Local,
    Cluster,
}
