//! Pool status pushed by the service (`PUT /status`): per resource total, commit, maximum
//! overage and prices, so utilization, time at capacity and cost work as with an in-process
//! status source. A row not refreshed within the TTL is dropped from the answers (the pool then
//! shows as unknown, never with stale numbers).

use crate::clock::Clock;
use crate::core::Core;
use crate::status::{Pricing, ResourceStatus, StatusSource};
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::{Arc, OnceLock, Weak};
use std::time::Duration;

/// One resource as pushed.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PushedPool {
    /// Resource name (as in the events).
    pub name: String,
    /// Units included in the contract.
    pub commit: u32,
    /// Units allowed above commit (`total = commit + max_overage` when `total` is absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_overage: Option<u32>,
    /// Pool size; default `commit + max_overage`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total: Option<u32>,
    /// Units out now, when the service knows (authoritative: corrects the level the events
    /// imply); default: the level from the events.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub borrowed: Option<u32>,
    /// Prices (cost on the page, in stats and `/metrics`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pricing: Option<Pricing>,
}

/// The body of `PUT /status`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StatusPush {
    /// The pools (other pools pushed before keep their own age).
    pub resources: Vec<PushedPool>,
}

impl PushedPool {
    /// The pool's size, or why the row does not add up.
    pub(crate) fn total(&self) -> Result<u32, String> {
        let implied = self.commit.checked_add(self.max_overage.unwrap_or(0));
        match (self.total, self.max_overage, implied) {
            (_, _, None) => Err(format!("{}: commit + max_overage overflows", self.name)),
            (Some(t), Some(_), Some(i)) if t != i => Err(format!(
                "{}: total {t} is not commit + max_overage ({i})",
                self.name
            )),
            (Some(t), _, _) if t < self.commit => Err(format!(
                "{}: total {t} is below commit {}",
                self.name, self.commit
            )),
            (Some(t), _, _) => Ok(t),
            (None, _, Some(i)) => Ok(i),
        }
    }
}

/// A pushed row and when it came (Unix ms).
struct Row {
    pool: PushedPool,
    total: u32,
    at_ms: u64,
}

/// The pushed statuses of one sidecar: a [`StatusSource`] whose rows expire.
pub struct PushedStatus {
    rows: Mutex<HashMap<String, Row>>,
    ttl: Duration,
    max_rows: usize,
    clock: Arc<dyn Clock>,
    /// The instance, for levels of rows pushed without `borrowed` (set once it is built).
    core: OnceLock<Weak<Core>>,
}

impl std::fmt::Debug for PushedStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PushedStatus")
            .field("ttl", &self.ttl)
            .finish_non_exhaustive()
    }
}

/// One row as `GET /status` shows it.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct RowView {
    #[serde(flatten)]
    pool: PushedPool,
    age_ms: u64,
    fresh: bool,
}

impl PushedStatus {
    /// Rows live `ttl` after their last push; at most `max_rows` resources.
    pub(crate) fn new(ttl: Duration, max_rows: usize, clock: Arc<dyn Clock>) -> Self {
        PushedStatus {
            rows: Mutex::new(HashMap::new()),
            ttl,
            max_rows,
            clock,
            core: OnceLock::new(),
        }
    }

    pub(crate) fn attach(&self, core: &Arc<Core>) {
        let _ = self.core.set(Arc::downgrade(core));
    }

    /// Stores a push (all rows or none). `Err` names the first row that does not add up.
    pub(crate) fn push(&self, push: StatusPush) -> Result<usize, String> {
        let now = self.clock.now_ms();
        let mut checked = Vec::with_capacity(push.resources.len());
        for pool in push.resources {
            if pool.name.is_empty() || pool.name.len() > super::lease::MAX_NAME_BYTES {
                return Err("a resource name must be 1 to 256 bytes".into());
            }
            let total = pool.total()?;
            checked.push(Row {
                pool,
                total,
                at_ms: now,
            });
        }
        let mut rows = self.rows.lock();
        let ttl = self.ttl.as_millis() as u64;
        rows.retain(|_, r| now.saturating_sub(r.at_ms) <= ttl);
        let new = checked
            .iter()
            .filter(|r| !rows.contains_key(&r.pool.name))
            .count();
        if rows.len() + new > self.max_rows {
            return Err(format!(
                "at most {} resources can have a status",
                self.max_rows
            ));
        }
        let n = checked.len();
        for row in checked {
            rows.insert(row.pool.name.clone(), row);
        }
        Ok(n)
    }

    /// Every row with its age, sorted by name.
    pub(crate) fn rows(&self) -> Vec<RowView> {
        let now = self.clock.now_ms();
        let ttl = self.ttl.as_millis() as u64;
        let mut out: Vec<RowView> = self
            .rows
            .lock()
            .values()
            .map(|r| RowView {
                pool: r.pool.clone(),
                age_ms: now.saturating_sub(r.at_ms),
                fresh: now.saturating_sub(r.at_ms) <= ttl,
            })
            .collect();
        out.sort_by(|a, b| a.pool.name.cmp(&b.pool.name));
        out
    }
}

impl StatusSource for Arc<PushedStatus> {
    fn status(&self) -> Vec<ResourceStatus> {
        let now = self.clock.now_ms();
        let ttl = self.ttl.as_millis() as u64;
        let fresh: Vec<(PushedPool, u32)> = self
            .rows
            .lock()
            .values()
            .filter(|r| now.saturating_sub(r.at_ms) <= ttl)
            .map(|r| (r.pool.clone(), r.total))
            .collect();
        if fresh.is_empty() {
            return Vec::new();
        }
        let levels: HashMap<Arc<str>, u32> = if fresh.iter().any(|(p, _)| p.borrowed.is_none()) {
            self.core
                .get()
                .and_then(Weak::upgrade)
                .map(|core| core.buffer.levels().into_iter().collect())
                .unwrap_or_default()
        } else {
            HashMap::new()
        };
        fresh
            .into_iter()
            .map(|(pool, total)| {
                let borrowed = pool
                    .borrowed
                    .unwrap_or_else(|| levels.get(pool.name.as_str()).copied().unwrap_or(0));
                let status = ResourceStatus::new(pool.name, total, pool.commit, borrowed);
                match pool.pricing {
                    Some(p) => status.with_pricing(p),
                    None => status,
                }
            })
            .collect()
    }

    fn lists_every_resource(&self) -> bool {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;

    fn pool(name: &str, commit: u32, max_overage: Option<u32>, total: Option<u32>) -> PushedPool {
        PushedPool {
            name: name.into(),
            commit,
            max_overage,
            total,
            borrowed: Some(1),
            pricing: None,
        }
    }

    #[test]
    fn rows_expire_after_the_ttl() {
        let clock = ManualClock::new(1_000_000);
        let status = Arc::new(PushedStatus::new(
            Duration::from_secs(30),
            2,
            Arc::new(clock.clone()),
        ));
        let push = |p: Vec<PushedPool>| status.push(StatusPush { resources: p });
        assert_eq!(push(vec![pool("a", 4, Some(2), None)]), Ok(1));
        assert_eq!(status.status()[0].total, 6);
        assert!(push(vec![pool("b", 4, Some(2), Some(7))]).is_err());
        assert!(push(vec![pool("b", 4, None, Some(3))]).is_err());
        assert_eq!(push(vec![pool("b", 4, None, Some(5))]), Ok(1));
        assert!(
            push(vec![pool("c", 1, None, None)]).is_err(),
            "over max_rows"
        );
        clock.advance(Duration::from_secs(20));
        push(vec![pool("b", 4, None, Some(5))]).unwrap();
        clock.advance(Duration::from_secs(15));
        let names: Vec<String> = status.status().into_iter().map(|s| s.name).collect();
        assert_eq!(names, vec!["b"], "a is 35 s old: unknown, not stale");
        assert!(!status.lists_every_resource());
        // Expired rows make room.
        assert_eq!(push(vec![pool("c", 1, None, None)]), Ok(1));
    }
}
