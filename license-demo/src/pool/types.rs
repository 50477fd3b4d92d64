//! The pool's public vocabulary: options, borrows and their outcomes, owners, statuses and
//! errors. Plain data only; nothing here touches SQLite or the writer thread.

use realtime_layer::Clock;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// How long an idempotency key keeps answering with its first borrow.
pub const IDEMPOTENCY_WINDOW: Duration = Duration::from_secs(24 * 3600);

/// Most signed borrows remembered for replay detection (about: each process counts its own
/// writes); beyond it new signed borrows are refused until old ones leave the timestamp window.
pub const MAX_REMEMBERED_SIGNATURES: i64 = 1_000_000;

/// Options of [`LicensePool::open_with`](super::LicensePool::open_with); the default is the
/// original's semantics (no leases, system clock).
#[derive(Clone, Default)]
pub struct PoolOptions {
    /// Borrows not renewed (borrow or heartbeat) within this are returned by the pool with reason
    /// `expired`. `None`: a borrow is held until it is returned.
    pub lease_ttl: Option<Duration>,
    /// Time source for leases and idempotency windows (Unix ms); `None`: the system clock.
    pub clock: Option<Arc<dyn Clock>>,
}

impl std::fmt::Debug for PoolOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PoolOptions")
            .field("lease_ttl", &self.lease_ttl)
            .field("custom_clock", &self.clock.is_some())
            .finish()
    }
}

/// Who a borrow is taken for, beyond tool and user.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BorrowOptions {
    /// Tenant of the API key that asked (stored with the borrow; scopes returns and lists).
    pub tenant: Option<String>,
    /// Client-chosen key: a second borrow with the same key (and tenant) within
    /// [`IDEMPOTENCY_WINDOW`] answers with the first borrow.
    pub idempotency_key: Option<String>,
    /// A signed borrow: its replay key, remembered in the same transaction as the borrow (or the
    /// refusal) it leads to.
    pub replay: Option<ReplayClaim>,
}

/// What the replay memory must check and remember of a signed borrow.
///
/// A key seen before is a replay (refused, [`BorrowOutcome::SignatureReplayed`]) unless it came
/// with the same idempotency key (a retry: answered from the stored outcome, or tried afresh
/// where the first attempt failed) or repeats are allowed (nonce-less signatures by default:
/// accepted and counted).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReplayClaim {
    /// The replay key: a digest of the vendor and nonce, or of a nonce-less signature.
    pub key: [u8; 16],
    /// Unix second after which the row may be forgotten.
    pub expires_at: i64,
    /// Whether a repeat is accepted (and counted) instead of refused.
    pub repeat_allowed: bool,
    /// Another memory (Redis, in cluster mode) saw it already: a repeat even if this database
    /// did not.
    pub seen_elsewhere: bool,
}

/// Who asks to return, renew or list borrows (or charges): each given field must match the
/// borrow's.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Owner {
    /// The borrowing user.
    pub user: Option<String>,
    /// The tenant of the borrow (API keys on).
    pub tenant: Option<String>,
    /// The users the caller may act for (an API key limited to some users): the borrow's user
    /// must be one of them. `None`: any user.
    pub users: Option<Vec<String>>,
}

impl Owner {
    /// Whether a borrow of `user` for `tenant` matches every given field.
    pub fn matches(&self, user: &str, tenant: Option<&str>) -> bool {
        self.user.as_deref().is_none_or(|u| u == user)
            && self.tenant.as_deref().is_none_or(|t| Some(t) == tenant)
            && self
                .users
                .as_ref()
                .is_none_or(|allowed| allowed.iter().any(|u| u == user))
    }
}

/// Most charges one page of [`LicensePool::overage_charges`](super::LicensePool::overage_charges)
/// holds.
pub const MAX_CHARGES_PAGE: usize = 1_000;

/// Which overage charges to list, newest first, one page at a time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChargesQuery {
    /// Only this tool's.
    pub tool: Option<String>,
    /// Only the charges of borrows `owner` matches (tenant, user, allowed users).
    pub owner: Owner,
    /// Most charges in the page, 1..=[`MAX_CHARGES_PAGE`] (larger values are lowered to it).
    pub limit: usize,
    /// Only charges older than this cursor: the `next` of the previous page.
    pub before: Option<i64>,
}

impl Default for ChargesQuery {
    fn default() -> Self {
        ChargesQuery {
            tool: None,
            owner: Owner::default(),
            limit: 100,
            before: None,
        }
    }
}

/// One page of overage charges.
#[derive(Debug, Clone, PartialEq)]
pub struct ChargesPage {
    /// The charges, newest first.
    pub charges: Vec<OverageCharge>,
    /// The cursor of the next (older) page; `None` on the last page.
    pub next: Option<i64>,
}

/// Result of an operation on one existing borrow (return, heartbeat).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Owned<T> {
    /// Done.
    Done(T),
    /// No open borrow has that id.
    NotFound,
    /// The borrow belongs to another user or tenant; nothing changed.
    NotOwner,
}

/// A borrow the pool returned itself because its lease ran out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expired {
    /// Borrow id.
    pub id: String,
    /// Tool of the borrow.
    pub tool: String,
    /// User of the borrow.
    pub user: String,
}

/// How hard SQLite works to make commits durable (`PRAGMA synchronous`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Durability {
    /// `synchronous=NORMAL`: survives process crashes and `kill -9`; an OS crash may lose the
    /// last transactions.
    #[default]
    Normal,
    /// `synchronous=FULL`: every commit is fsynced; survives power loss too.
    Full,
}

/// Where the database lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DbLocation {
    /// A file path (created if missing).
    File(PathBuf),
    /// A private in-memory database (`:memory:`), gone when the pool closes.
    Memory,
}

impl DbLocation {
    /// `":memory:"` means in-memory, anything else is a file path.
    pub fn parse(s: &str) -> Self {
        if s == ":memory:" {
            DbLocation::Memory
        } else {
            DbLocation::File(PathBuf::from(s))
        }
    }
}

/// A successful borrow, as stored.
#[derive(Debug, Clone, Serialize)]
pub struct Borrow {
    /// Borrow id (UUID v4), used to return it.
    pub id: String,
    /// Tool name.
    pub tool: String,
    /// Borrowing user.
    pub user: String,
    /// RFC 3339 UTC timestamp with microseconds.
    pub borrowed_at: String,
    /// True when this borrow went above the tool's commit and was charged.
    pub overage: bool,
    /// When the lease ends unless renewed (leases on), RFC 3339 UTC.
    pub lease_expires_at: Option<String>,
}

/// Why a borrow was refused although the tool exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Denial {
    /// All `total` licenses are out.
    Exhausted,
    /// `commit + max_overage` licenses are out.
    MaxOverage,
}

impl Denial {
    /// Every reason a borrow can be refused for.
    pub const ALL: [Denial; 2] = [Denial::Exhausted, Denial::MaxOverage];

    /// Short machine reason (`exhausted`, `max_overage`) used on the wire and in events.
    pub fn code(self) -> &'static str {
        match self {
            Denial::Exhausted => "exhausted",
            Denial::MaxOverage => "max_overage",
        }
    }
}

/// Result of a borrow attempt on a known tool.
#[derive(Debug, Clone)]
pub enum BorrowOutcome {
    /// The license is borrowed.
    Granted(Borrow),
    /// No license could be given.
    Denied(Denial),
    /// The idempotency key was used before with the same request: this is that first borrow,
    /// still held; nothing new was borrowed.
    Replayed(Borrow),
    /// The idempotency key was used before with the same request, and that borrow has been
    /// returned or has expired since: nothing is held and nothing new was borrowed.
    ReplayedClosed(ClosedBorrow),
    /// The idempotency key was used before with a different tool or user; nothing was borrowed.
    KeyConflict,
    /// The signature was used before (see [`ReplayClaim`]); nothing was borrowed.
    SignatureReplayed,
    /// The replay memory holds [`MAX_REMEMBERED_SIGNATURES`] rows; nothing was borrowed.
    ReplayMemoryFull,
}

/// How a borrow ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Closed {
    /// A client returned it.
    Returned,
    /// Its lease ran out and the pool returned it.
    Expired,
}

impl Closed {
    /// `returned` or `expired`.
    pub fn as_str(self) -> &'static str {
        match self {
            Closed::Returned => "returned",
            Closed::Expired => "expired",
        }
    }
}

/// A borrow that is no longer held, as an idempotent replay finds it.
#[derive(Debug, Clone)]
pub struct ClosedBorrow {
    /// The borrow as it was granted.
    pub borrow: Borrow,
    /// How it ended.
    pub closed: Closed,
    /// When it ended, RFC 3339 UTC (`None` for a borrow closed before the server recorded it).
    pub returned_at: Option<String>,
}

/// A return that closed an open borrow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Returned {
    /// Tool of the borrow.
    pub tool: String,
    /// User of the borrow.
    pub user: String,
}

/// One recorded overage charge (kept after the license is returned).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct OverageCharge {
    /// Charge id (UUID v4).
    pub id: String,
    /// Tool charged.
    pub tool: String,
    /// The borrow that caused it.
    pub borrow_id: String,
    /// The borrowing user.
    pub user: String,
    /// When it was charged (the borrow time), RFC 3339 UTC.
    pub charged_at: String,
    /// Amount charged (the tool's overage price at that time).
    pub amount: f64,
}

/// An open borrow as listed by `GET /borrows`.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct OpenBorrow {
    /// Borrow id.
    pub id: String,
    /// Tool name.
    pub tool: String,
    /// Borrowing user.
    pub user: String,
    /// RFC 3339 UTC timestamp.
    pub borrowed_at: String,
}

/// Per-tool status, the body of `GET /licenses/{tool}/status`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ToolStatus {
    /// Tool name.
    pub tool: String,
    /// Hard cap.
    pub total: u32,
    /// Licenses out now.
    pub borrowed: u32,
    /// `total - borrowed`.
    pub available: u32,
    /// Licenses in the contract.
    pub commit: u32,
    /// Extra licenses allowed above commit.
    pub max_overage: u32,
    /// Licenses out above commit now: `max(0, borrowed - commit)`.
    pub overage: u32,
    /// `borrowed <= commit` (a boolean, as in the original API).
    pub in_commit: bool,
    /// Price of the committed block.
    pub commit_price: f64,
    /// Price charged per overage borrow.
    pub overage_price_per_license: f64,
    /// Sum of all overage charges recorded for this tool (they persist after return).
    pub current_overage_cost: f64,
    /// `commit_price + current_overage_cost`.
    pub total_cost: f64,
    /// Number of overage borrows ever charged for this tool (an addition to the original API;
    /// 0 when read from a server that does not send it).
    #[serde(default)]
    pub overage_borrows: u64,
}

/// Failures of the pool itself (not business refusals).
#[derive(Debug, Clone, thiserror::Error)]
pub enum PoolError {
    /// The tool is not in the catalogue.
    #[error("unknown tool")]
    UnknownTool,
    /// SQLite failed; the batch was rolled back.
    #[error("storage error: {0}")]
    Storage(String),
    /// The pool was closed.
    #[error("the license pool is shut down")]
    Closed,
}

impl From<rusqlite::Error> for PoolError {
    fn from(e: rusqlite::Error) -> Self {
        PoolError::Storage(e.to_string())
    }
}
