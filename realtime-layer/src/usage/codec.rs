//! The on-disk form of records: one blob per (period, shard of 64 resource ids), records sorted
//! by id, every number a LEB128 varint. A record costs ~4 bytes when a resource sat idle at one
//! level and ~15–30 bytes in a minute with activity (see `docs/OPERATIONS.md`, "Usage tier").
//!
//! ```text
//! blob   = FORMAT record*
//! record = len id_delta flags min (peak-min) (end-min)
//!          [borrows overage returns]            flags & COUNTS
//!          [n (reason_delta count)*n]           flags & FAILURES
//!          [(ms starts refusals)*(peak-min+1)]  flags & HIST    (else: the whole period at `min`)
//!          [commit] [total] [overage_cents]     flags & COMMIT, TOTAL, COST
//!          [at_commit_ms exhausted_ms]          flags & CAPACITY
//! ```
//!
//! `len` (the bytes after it) lets a reader skip records it does not want.

use super::record::{Cell, LevelHist, Usage};

/// Version byte at the start of every blob.
pub(crate) const FORMAT: u8 = 1;

const COUNTS: u8 = 1;
const FAILURES: u8 = 2;
const HIST: u8 = 4;
const COMMIT: u8 = 8;
const TOTAL: u8 = 16;
const COST: u8 = 32;
const CAPACITY: u8 = 64;

/// A blob that does not decode: written by another format, or damaged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Corrupt;

fn put(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// A cursor over a blob's bytes.
struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl Reader<'_> {
    fn get(&mut self) -> Result<u64, Corrupt> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = *self.bytes.get(self.at).ok_or(Corrupt)?;
            self.at += 1;
            v |= u64::from(b & 0x7f) << shift;
            if b < 0x80 {
                return Ok(v);
            }
        }
        Err(Corrupt)
    }

    fn get32(&mut self) -> Result<u32, Corrupt> {
        u32::try_from(self.get()?).map_err(|_| Corrupt)
    }

    fn byte(&mut self) -> Result<u8, Corrupt> {
        let b = *self.bytes.get(self.at).ok_or(Corrupt)?;
        self.at += 1;
        Ok(b)
    }
}

/// The histogram is implied: the whole period at one level, nothing started or refused there.
fn implied(u: &Usage, period_ms: u64) -> bool {
    u.min == u.peak
        && u.hist.cells.len() == 1
        && u.hist.base == u.min
        && u.hist.cells[0]
            == Cell {
                ms: period_ms,
                starts: 0,
                refusals: 0,
            }
}

fn encode_one(out: &mut Vec<u8>, delta: u16, u: &Usage, period_ms: u64) {
    let mut body = Vec::with_capacity(32);
    put(&mut body, u64::from(delta));
    let hist = !u.hist.cells.is_empty() && !implied(u, period_ms);
    let mut flags = 0u8;
    if u.borrows | u.overage | u.returns != 0 {
        flags |= COUNTS;
    }
    if !u.failures.is_empty() {
        flags |= FAILURES;
    }
    if hist {
        flags |= HIST;
    }
    if u.commit.is_some() {
        flags |= COMMIT;
    }
    if u.total.is_some() {
        flags |= TOTAL;
    }
    if u.overage_cents != 0 {
        flags |= COST;
    }
    if u.at_commit_ms | u.exhausted_ms != 0 {
        flags |= CAPACITY;
    }
    body.push(flags);
    put(&mut body, u64::from(u.min));
    put(&mut body, u64::from(u.peak - u.min));
    put(&mut body, u64::from(u.end - u.min));
    if flags & COUNTS != 0 {
        put(&mut body, u.borrows);
        put(&mut body, u.overage);
        put(&mut body, u.returns);
    }
    if flags & FAILURES != 0 {
        put(&mut body, u.failures.len() as u64);
        let mut prev = 0u32;
        for &(r, n) in &u.failures {
            put(&mut body, u64::from(r - prev));
            put(&mut body, n);
            prev = r;
        }
    }
    if hist {
        // Cells from `min` to `peak`: a level is only ever reached between the two.
        for level in u.min..=u.peak {
            let c = u.hist.get(level);
            put(&mut body, c.ms);
            put(&mut body, c.starts);
            put(&mut body, c.refusals);
        }
    }
    for (flag, v) in [
        (COMMIT, u.commit.map(u64::from)),
        (TOTAL, u.total.map(u64::from)),
        (COST, Some(u.overage_cents)),
    ] {
        if flags & flag != 0 {
            put(&mut body, v.unwrap_or(0));
        }
    }
    if flags & CAPACITY != 0 {
        put(&mut body, u.at_commit_ms);
        put(&mut body, u.exhausted_ms);
    }
    put(out, body.len() as u64);
    out.extend_from_slice(&body);
}

/// The blob of `records` (ids ascending, all in one shard) for periods of `period_ms`.
pub(crate) fn encode(records: &[(u16, &Usage)], period_ms: u64) -> Vec<u8> {
    let mut out = Vec::with_capacity(1 + records.len() * 24);
    out.push(FORMAT);
    let mut prev = 0u16;
    for &(id, u) in records {
        encode_one(&mut out, id - prev, u, period_ms);
        prev = id;
    }
    out
}

fn decode_body(r: &mut Reader<'_>, period_ms: u64) -> Result<Usage, Corrupt> {
    let flags = r.byte()?;
    let min = r.get32()?;
    let peak = min.checked_add(r.get32()?).ok_or(Corrupt)?;
    let end = min.checked_add(r.get32()?).ok_or(Corrupt)?;
    if end > peak {
        return Err(Corrupt);
    }
    let mut u = Usage {
        min,
        peak,
        end,
        ..Usage::default()
    };
    if flags & COUNTS != 0 {
        u.borrows = r.get()?;
        u.overage = r.get()?;
        u.returns = r.get()?;
    }
    if flags & FAILURES != 0 {
        let n = r.get()?;
        let mut reason = 0u32;
        for _ in 0..n.min(1 << 16) {
            reason = reason.checked_add(r.get32()?).ok_or(Corrupt)?;
            u.failures.push((reason, r.get()?));
        }
    }
    if flags & HIST != 0 {
        if peak - min > 1 << 24 {
            return Err(Corrupt);
        }
        u.hist = LevelHist {
            base: min,
            cells: Vec::with_capacity((peak - min + 1) as usize),
        };
        for _ in min..=peak {
            u.hist.cells.push(Cell {
                ms: r.get()?,
                starts: r.get()?,
                refusals: r.get()?,
            });
        }
    } else if min == peak {
        u.hist.cell(min).ms = period_ms;
    }
    if flags & COMMIT != 0 {
        u.commit = Some(r.get32()?);
    }
    if flags & TOTAL != 0 {
        u.total = Some(r.get32()?);
    }
    if flags & COST != 0 {
        u.overage_cents = r.get()?;
    }
    if flags & CAPACITY != 0 {
        u.at_commit_ms = r.get()?;
        u.exhausted_ms = r.get()?;
    }
    Ok(u)
}

/// Adds a record's body into `acc` (a merge of earlier periods): what `acc.merge(&decoded)`
/// does, without building the decoded record (the report's and the advisor's hot loop).
fn merge_body(r: &mut Reader<'_>, period_ms: u64, acc: &mut Usage) -> Result<(), Corrupt> {
    let flags = r.byte()?;
    let min = r.get32()?;
    let peak = min.checked_add(r.get32()?).ok_or(Corrupt)?;
    let end = min.checked_add(r.get32()?).ok_or(Corrupt)?;
    if end > peak || peak - min > 1 << 24 {
        return Err(Corrupt);
    }
    acc.min = acc.min.min(min);
    acc.peak = acc.peak.max(peak);
    acc.end = end;
    if flags & COUNTS != 0 {
        acc.borrows += r.get()?;
        acc.overage += r.get()?;
        acc.returns += r.get()?;
    }
    if flags & FAILURES != 0 {
        let n = r.get()?;
        let mut reason = 0u32;
        for _ in 0..n.min(1 << 16) {
            reason = reason.checked_add(r.get32()?).ok_or(Corrupt)?;
            let count = r.get()?;
            acc.add_failures(reason, count);
        }
    }
    if flags & HIST != 0 {
        acc.hist.cell(min);
        acc.hist.cell(peak);
        let off = (min - acc.hist.base) as usize;
        for i in 0..=(peak - min) as usize {
            let c = &mut acc.hist.cells[off + i];
            c.ms += r.get()?;
            c.starts += r.get()?;
            c.refusals += r.get()?;
        }
    } else if min == peak {
        acc.hist.cell(min).ms += period_ms;
    }
    if flags & COMMIT != 0 {
        acc.commit = Some(r.get32()?);
    }
    if flags & TOTAL != 0 {
        acc.total = Some(r.get32()?);
    }
    if flags & COST != 0 {
        acc.overage_cents += r.get()?;
    }
    if flags & CAPACITY != 0 {
        acc.at_commit_ms += r.get()?;
        acc.exhausted_ms += r.get()?;
    }
    Ok(())
}

/// Merges every record of `blob` into `slots[id]` (in time order: the caller passes periods
/// oldest first).
pub(crate) fn decode_merged(
    blob: &[u8],
    period_ms: u64,
    slots: &mut Vec<Option<Usage>>,
) -> Result<(), Corrupt> {
    let mut r = Reader { bytes: blob, at: 0 };
    if r.byte()? != FORMAT {
        return Err(Corrupt);
    }
    let mut id = 0u16;
    while r.at < blob.len() {
        let len = r.get()? as usize;
        let end = r.at.checked_add(len).filter(|e| *e <= blob.len());
        let end = end.ok_or(Corrupt)?;
        let delta = u16::try_from(r.get()?).map_err(|_| Corrupt)?;
        id = id.checked_add(delta).ok_or(Corrupt)?;
        let i = usize::from(id);
        if slots.len() <= i {
            slots.resize(i + 1, None);
        }
        let mut body = Reader {
            bytes: &blob[..end],
            at: r.at,
        };
        match &mut slots[i] {
            Some(acc) => merge_body(&mut body, period_ms, acc)?,
            slot @ None => *slot = Some(decode_body(&mut body, period_ms)?),
        }
        r.at = end;
    }
    Ok(())
}

/// Calls `f(id, usage)` for every record of `blob` that `want(id)` accepts (others are skipped
/// without decoding). Stops early when `f` returns false.
pub(crate) fn decode(
    blob: &[u8],
    period_ms: u64,
    mut want: impl FnMut(u16) -> bool,
    mut f: impl FnMut(u16, Usage) -> bool,
) -> Result<(), Corrupt> {
    let mut r = Reader { bytes: blob, at: 0 };
    if r.byte()? != FORMAT {
        return Err(Corrupt);
    }
    let mut id = 0u16;
    while r.at < blob.len() {
        let len = r.get()? as usize;
        let end = r.at.checked_add(len).filter(|e| *e <= blob.len());
        let end = end.ok_or(Corrupt)?;
        let delta = u16::try_from(r.get()?).map_err(|_| Corrupt)?;
        id = id.checked_add(delta).ok_or(Corrupt)?;
        if want(id) {
            let mut body = Reader {
                bytes: &blob[..end],
                at: r.at,
            };
            if !f(id, decode_body(&mut body, period_ms)?) {
                return Ok(());
            }
        }
        r.at = end;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::usage::record::MINUTE_MS;

    fn busy() -> Usage {
        let mut u = Usage::starting_at(3);
        u.borrows = 4;
        u.overage = 2;
        u.returns = 5;
        u.add_failures(2, 3);
        u.add_failures(7, 1);
        u.peak = 6;
        u.min = 2;
        u.end = 2;
        u.commit = Some(4);
        u.total = Some(6);
        u.overage_cents = 100_000;
        u.at_commit_ms = 20_000;
        u.exhausted_ms = 1_500;
        for (level, ms) in [
            (2, 10_000),
            (3, 20_000),
            (4, 18_500),
            (5, 10_000),
            (6, 1_500),
        ] {
            u.hist.cell(level).ms = ms;
        }
        u.hist.cell(6).refusals = 4;
        u.hist.cell(3).starts = 4;
        u
    }

    #[test]
    fn records_round_trip_and_idle_ones_are_small() {
        let a = busy();
        let mut idle = Usage::starting_at(5);
        idle.hist.cell(5).ms = MINUTE_MS;
        let zero = Usage::starting_at(0);
        let blob = encode(&[(1, &zero), (3, &a), (4000, &idle)], MINUTE_MS);
        let mut seen = Vec::new();
        decode(
            &blob,
            MINUTE_MS,
            |_| true,
            |id, u| {
                seen.push((id, u));
                true
            },
        )
        .unwrap();
        assert_eq!(seen.len(), 3);
        assert_eq!(seen[1], (3, a.clone()));
        assert_eq!(seen[2], (4000, idle));
        // An idle record: length, id delta (2 bytes), flags, three levels.
        let one = encode(&[(10, &seen[2].1)], MINUTE_MS);
        assert_eq!(one.len(), 1 + 6);
        // Skipping: only id 4000 is decoded.
        let mut only = Vec::new();
        decode(
            &blob,
            MINUTE_MS,
            |id| id == 4000,
            |id, _| {
                only.push(id);
                true
            },
        )
        .unwrap();
        assert_eq!(only, [4000]);
    }

    #[test]
    fn merging_while_decoding_equals_decoding_then_merging() {
        let a = busy();
        let mut b = busy();
        b.min = 0;
        b.end = 0;
        b.hist.cell(0).ms = 100;
        b.commit = Some(9);
        let blob_a = encode(&[(3, &a)], MINUTE_MS);
        let blob_b = encode(&[(3, &b), (7, &a)], MINUTE_MS);
        let mut slots = Vec::new();
        decode_merged(&blob_a, MINUTE_MS, &mut slots).unwrap();
        decode_merged(&blob_b, MINUTE_MS, &mut slots).unwrap();
        let mut want = a.clone();
        want.merge(&b);
        assert_eq!(slots[3].as_ref(), Some(&want));
        assert_eq!(slots[7].as_ref(), Some(&a));
        assert!(slots[4].is_none());
    }

    #[test]
    fn damaged_blobs_are_errors_not_panics() {
        let blob = encode(&[(3, &busy())], MINUTE_MS);
        for cut in 0..blob.len() {
            let r = decode(&blob[..cut], MINUTE_MS, |_| true, |_, _| true);
            assert!(cut == 1 || r.is_err(), "cut at {cut}");
        }
        let mut other = blob.clone();
        other[0] = 99;
        assert_eq!(
            decode(&other, MINUTE_MS, |_| true, |_, _| true),
            Err(Corrupt)
        );
        let mut flipped = blob;
        let last = flipped.len() - 1;
        flipped[3] = 0xff;
        flipped[last] = 0xff;
        let _ = decode(&flipped, MINUTE_MS, |_| true, |_, _| true);
    }
}
