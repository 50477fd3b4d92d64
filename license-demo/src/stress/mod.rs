//! The stress tester (`license-demo stress`): drives a license server over HTTP with concurrent
//! workers and reports what happened.
//!
//! Call [`run`] with a [`StressConfig`]; render the result with [`report::render`].

pub mod interactive;
pub mod report;
mod runner;

pub use runner::{list_tools, run};

use crate::secret::Secret;
use serde::{Serialize, Serializer};
use std::time::Duration;

/// What the stress tool authenticates with: every borrow signed in the nonce form (with a vendor)
/// and/or `Authorization: Bearer` on every borrow and return (with an API key).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Credentials {
    /// `X-Vendor-ID` and that vendor's signing secret.
    pub vendor: Option<(String, Secret)>,
    /// The API key.
    pub api_key: Option<Secret>,
}

/// Reports name the vendor and whether a key was sent, never the secrets.
impl Serialize for Credentials {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut st = s.serialize_struct("Credentials", 2)?;
        st.serialize_field("vendor_id", &self.vendor.as_ref().map(|(id, _)| id))?;
        st.serialize_field("api_key", &self.api_key.is_some())?;
        st.end()
    }
}

impl Credentials {
    /// How the report describes them: `none`, `signed (vendor v)`, `API key`, or both.
    pub fn describe(&self) -> String {
        match (&self.vendor, &self.api_key) {
            (None, None) => "none".into(),
            (Some((id, _)), None) => format!("signed (vendor {id}, nonces)"),
            (None, Some(_)) => "API key".into(),
            (Some((id, _)), Some(_)) => format!("signed (vendor {id}, nonces) + API key"),
        }
    }
}

/// A preset load shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Profile {
    /// 5 workers x 20 ops, no ramp-up.
    Light,
    /// 10 workers x 50 ops, 2 s ramp-up.
    Medium,
    /// 20 workers x 100 ops, 5 s ramp-up.
    Heavy,
    /// 50 workers x 200 ops, 10 s ramp-up.
    Extreme,
    /// Workers, ops and ramp-up given explicitly.
    Custom,
}

impl Profile {
    /// All profiles, in menu order.
    pub const ALL: [Profile; 5] = [
        Profile::Light,
        Profile::Medium,
        Profile::Heavy,
        Profile::Extreme,
        Profile::Custom,
    ];

    /// `(workers, ops per worker, ramp-up)`; `None` for `Custom`.
    pub fn shape(self) -> Option<(usize, usize, Duration)> {
        match self {
            Profile::Light => Some((5, 20, Duration::ZERO)),
            Profile::Medium => Some((10, 50, Duration::from_secs(2))),
            Profile::Heavy => Some((20, 100, Duration::from_secs(5))),
            Profile::Extreme => Some((50, 200, Duration::from_secs(10))),
            Profile::Custom => None,
        }
    }

    /// Lower-case name as on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Profile::Light => "light",
            Profile::Medium => "medium",
            Profile::Heavy => "heavy",
            Profile::Extreme => "extreme",
            Profile::Custom => "custom",
        }
    }
}

/// What one operation does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    /// Borrow, hold for `hold`, return.
    FullCycle,
    /// Borrow only; licenses stay out (fills the pool to show overage and exhaustion).
    CheckoutOnly,
}

impl Mode {
    /// Lower-case name as on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Mode::FullCycle => "full-cycle",
            Mode::CheckoutOnly => "checkout-only",
        }
    }
}

/// A complete, validated stress run description.
#[derive(Debug, Clone, Serialize)]
pub struct StressConfig {
    /// Server base URL, e.g. `http://127.0.0.1:8000`.
    pub target: String,
    /// The profile the shape came from (for the report).
    pub profile: Profile,
    /// Concurrent workers.
    pub workers: usize,
    /// Operations per worker.
    pub ops_per_worker: usize,
    /// Worker starts are spread evenly over this time.
    pub ramp_up: Duration,
    /// Full cycle or checkout only.
    pub mode: Mode,
    /// Hold time between borrow and return (full cycle).
    pub hold: Duration,
    /// A single tool, or `None` for a random tool per operation.
    pub tool: Option<String>,
    /// Cap on total operations started per second.
    pub rate: Option<f64>,
    /// Users are named `{user_prefix}-{worker}`.
    pub user_prefix: String,
    /// Show a progress bar (on stderr).
    pub progress: bool,
    /// Signing and API key (none by default).
    pub credentials: Credentials,
}

impl StressConfig {
    /// A config from a preset profile with defaults for the rest (full cycle, 20 ms hold,
    /// random tools, no rate cap, no progress bar). Panics never; `Custom` gets 10 x 10.
    pub fn from_profile(target: impl Into<String>, profile: Profile) -> Self {
        let (workers, ops_per_worker, ramp_up) =
            profile.shape().unwrap_or((10, 10, Duration::ZERO));
        StressConfig {
            target: target.into(),
            profile,
            workers,
            ops_per_worker,
            ramp_up,
            mode: Mode::FullCycle,
            hold: Duration::from_millis(20),
            tool: None,
            rate: None,
            user_prefix: "stress".into(),
            progress: false,
            credentials: Credentials::default(),
        }
    }

    /// Total operations planned.
    pub fn total_ops(&self) -> usize {
        self.workers * self.ops_per_worker
    }
}

/// Why a stress run could not be done.
#[derive(Debug, thiserror::Error)]
pub enum StressError {
    /// The configuration is unusable.
    #[error("invalid stress configuration: {0}")]
    Config(String),
    /// The server could not be reached or answered something unexpected.
    #[error("cannot talk to {target}: {detail}")]
    Server {
        /// The target URL.
        target: String,
        /// What went wrong.
        detail: String,
    },
}
