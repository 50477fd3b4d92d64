//! Reading a window: which rows cover it (whole days from `days`, whole hours from `hours`, the
//! edges from `minutes`), and their records merged per resource or listed per period.
//!
//! A 30-day window reads at most 30 day rows, 2 × 23 hour rows and 2 × 59 minute rows per shard,
//! whatever the traffic: that is what keeps the report and the advisor within milliseconds.

use super::codec;
use super::record::{Usage, MINUTE_MS};
use super::store::{self, Tier, SHARD};
use super::UsageError;
use rusqlite::Connection;
use std::collections::BTreeMap;
use std::path::Path;

/// What the store holds: minutes before `closed` are final; hours before `rolled_hours` and
/// days before `rolled_days` have their rollups.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Coverage {
    pub(crate) closed: u64,
    pub(crate) rolled_hours: u64,
    pub(crate) rolled_days: u64,
    /// The first minute with a row (`None`: no minute rows).
    pub(crate) first_minute: Option<u64>,
}

pub(crate) fn coverage(conn: &Connection, path: &Path) -> Result<Coverage, UsageError> {
    let err = store::sql_error(path);
    Ok(Coverage {
        closed: store::meta(conn, "closed").map_err(&err)?.unwrap_or(0),
        rolled_hours: store::meta(conn, "rolled_hours")
            .map_err(&err)?
            .unwrap_or(0),
        rolled_days: store::meta(conn, "rolled_days").map_err(&err)?.unwrap_or(0),
        first_minute: store::first_period(conn, Tier::Minute).map_err(&err)?,
    })
}

/// Runs of periods `(tier, from, to)` covering the minutes `start..end`, in time order: a day
/// where a whole rolled-up day fits, else an hour where a whole rolled-up hour fits, else a
/// minute. `max_tier` caps the coarsest tier used (history buckets shorter than a day).
pub(crate) fn pieces(
    start: u64,
    end: u64,
    cov: &Coverage,
    max_tier: Tier,
) -> Vec<(Tier, u64, u64)> {
    let mut out: Vec<(Tier, u64, u64)> = Vec::new();
    let mut t = start;
    while t < end {
        let (tier, len) = if max_tier == Tier::Day
            && t.is_multiple_of(1440)
            && t + 1440 <= end
            && t / 1440 < cov.rolled_days
        {
            (Tier::Day, 1440)
        } else if max_tier != Tier::Minute
            && t.is_multiple_of(60)
            && t + 60 <= end
            && t / 60 < cov.rolled_hours
        {
            (Tier::Hour, 60)
        } else {
            (Tier::Minute, 1)
        };
        let period = t / len;
        match out.last_mut() {
            Some((last, _, to)) if *last == tier && *to == period => *to += 1,
            _ => out.push((tier, period, period + 1)),
        }
        t += len;
    }
    out
}

/// Per id, the merge of every record of a run of periods.
pub(crate) type Slots = Vec<Option<Usage>>;

/// The records of one run of periods merged per id.
pub(crate) fn piece(
    conn: &Connection,
    path: &Path,
    tier: Tier,
    from: u64,
    to: u64,
) -> Result<Slots, UsageError> {
    let mut slots: Slots = Vec::new();
    store::for_each_row(conn, path, tier, from, to, None, |_, blob| {
        codec::decode_merged(blob, tier.ms(), &mut slots).map_err(store::corrupt(path))
    })?;
    Ok(slots)
}

/// Every record of the minutes `start..end`, merged per id; resources (not the total) filled to
/// the whole window at level 0 where they have no record. Runs of hours and days (final once
/// rolled up) come through `rolled`, which may answer from a cache.
pub(crate) fn merged(
    conn: &Connection,
    path: &Path,
    start: u64,
    end: u64,
    cov: &Coverage,
    mut rolled: impl FnMut(Tier, u64, u64) -> Result<std::sync::Arc<Slots>, UsageError>,
) -> Result<BTreeMap<u16, Usage>, UsageError> {
    let mut slots: Slots = Vec::new();
    for (tier, from, to) in pieces(start, end, cov, Tier::Day) {
        if tier == Tier::Minute {
            store::for_each_row(conn, path, tier, from, to, None, |_, blob| {
                codec::decode_merged(blob, tier.ms(), &mut slots).map_err(store::corrupt(path))
            })?;
            continue;
        }
        let part = rolled(tier, from, to)?;
        if slots.len() < part.len() {
            slots.resize(part.len(), None);
        }
        for (slot, u) in slots.iter_mut().zip(part.iter()) {
            let Some(u) = u else { continue };
            match slot {
                Some(acc) => acc.merge(u),
                None => *slot = Some(u.clone()),
            }
        }
    }
    let window = (end - start) * MINUTE_MS;
    let mut out = BTreeMap::new();
    for (id, slot) in slots.into_iter().enumerate() {
        if let Some(mut u) = slot {
            if id != 0 {
                u.fill_to(window);
            }
            out.insert(id as u16, u);
        }
    }
    Ok(out)
}

/// The records of id `id` (0: the total) in the minutes `start..end`, each with its period's
/// start and length (ms), oldest first, from tiers no coarser than `max_tier`.
pub(crate) fn series(
    conn: &Connection,
    path: &Path,
    start: u64,
    end: u64,
    cov: &Coverage,
    max_tier: Tier,
    id: u16,
) -> Result<Vec<(u64, u64, Usage)>, UsageError> {
    let mut out = Vec::new();
    for (tier, from, to) in pieces(start, end, cov, max_tier) {
        store::for_each_row(
            conn,
            path,
            tier,
            from,
            to,
            Some(id / SHARD),
            |period, blob| {
                codec::decode(
                    blob,
                    tier.ms(),
                    |i| i == id,
                    |_, u| {
                        out.push((period * tier.ms(), tier.ms(), u));
                        false
                    },
                )
                .map_err(store::corrupt(path))
            },
        )?;
    }
    Ok(out)
}

/// What the report and the advisor start from.
pub(crate) struct Merged {
    pub(crate) usage: BTreeMap<u16, Usage>,
    pub(crate) resources: BTreeMap<u32, String>,
    pub(crate) reasons: BTreeMap<u32, String>,
    pub(crate) start_ms: u64,
    pub(crate) end_ms: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_split_into_days_hours_and_minutes() {
        let cov = Coverage {
            closed: 10 * 1440,
            rolled_hours: 10 * 24,
            rolled_days: 10,
            first_minute: Some(0),
        };
        // From 1 day 1 h 30 min to 4 days 2 h 10 min.
        let start = 1440 + 90;
        let end = 4 * 1440 + 130;
        let p = pieces(start, end, &cov, Tier::Day);
        assert_eq!(
            p,
            vec![
                (Tier::Minute, 1530, 1560),
                (Tier::Hour, 26, 48),
                (Tier::Day, 2, 4),
                (Tier::Hour, 96, 98),
                (Tier::Minute, 5880, 5890),
            ]
        );
        let covered: u64 = p
            .iter()
            .map(|(t, f, to)| (to - f) * t.ms() / MINUTE_MS)
            .sum();
        assert_eq!(covered, end - start);
        // Without rollups everything is minutes; hours only where rolled up.
        let bare = Coverage {
            rolled_hours: 27,
            rolled_days: 0,
            ..cov
        };
        assert_eq!(
            pieces(start, end, &bare, Tier::Day)[..2],
            [(Tier::Minute, 1530, 1560), (Tier::Hour, 26, 27)]
        );
        assert_eq!(pieces(start, end, &cov, Tier::Minute).len(), 1);
    }
}
