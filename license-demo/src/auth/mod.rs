//! Access control for the license server: what is on by default (Host, Origin and Content-Type
//! checks against DNS rebinding and cross-site requests) and what an operator turns on (API keys,
//! signed requests, leases, dashboard credentials).
//!
//! Everything here is configured once at start-up into a [`SecurityConfig`]; the pieces are
//! composed into the router in one place, [`crate::server::build_app`].

pub mod dashboard;
pub mod guard;
pub mod keys;
pub mod signature;

pub use dashboard::DashboardAuth;
pub use guard::RequestGuard;
pub use keys::{ApiKeys, Tenant};
pub use signature::{sign, SignatureError, SignatureVerifier, SIGNATURE_WINDOW};

use crate::cli::ServeArgs;
use crate::config::{load_api_keys_file, load_vendor_secrets_file, ConfigError};
use realtime_layer::SystemClock;
use std::sync::Arc;
use std::time::Duration;

/// The security settings of a server. The default is the zero-configuration loopback server:
/// Host/Origin/Content-Type checks on, everything else off.
#[derive(Debug, Clone, Default)]
pub struct SecurityConfig {
    /// Accepted `Host` names (`name` or `name:port`, `*` for any); empty: `localhost` and IP
    /// literals on the bound port.
    pub allowed_hosts: Vec<String>,
    /// Origins allowed to make state-changing requests besides the server's own (`*`: any).
    pub allowed_origins: Vec<String>,
    /// API keys: when set, borrow/return/heartbeat/list need `Authorization: Bearer <key>`.
    pub api_keys: Option<Arc<ApiKeys>>,
    /// When set, borrows must be signed (`X-Signature`, `X-Timestamp`, `X-Vendor-ID`).
    pub signatures: Option<Arc<SignatureVerifier>>,
    /// Lease length: borrows not renewed by a heartbeat within it expire.
    pub lease_ttl: Option<Duration>,
    /// Credentials for `/realtime*` and `/metrics`.
    pub dashboard_auth: Option<DashboardAuth>,
}

impl SecurityConfig {
    /// Builds the settings from the command line, reading the keys and secrets files.
    pub fn from_args(args: &ServeArgs) -> Result<Self, ConfigError> {
        let api_keys = match &args.api_keys {
            Some(path) => Some(Arc::new(ApiKeys::new(load_api_keys_file(path)?))),
            None => None,
        };
        let vendors = match &args.vendor_secrets {
            Some(path) => Some(load_vendor_secrets_file(path)?),
            None => None,
        };
        let signatures = match (args.require_signature, vendors) {
            (true, Some(vendors)) => Some(Arc::new(SignatureVerifier::new(
                vendors,
                Arc::new(SystemClock::new()),
            ))),
            (true, None) => {
                return Err(ConfigError::Invalid(
                    "--require-signature needs --vendor-secrets FILE".into(),
                ))
            }
            (false, Some(_)) => {
                tracing::warn!("--vendor-secrets is loaded but unused without --require-signature");
                None
            }
            (false, None) => None,
        };
        let dashboard_auth = match (&args.dashboard_auth, &args.dashboard_token) {
            (Some(pair), _) => Some(DashboardAuth::basic(pair).ok_or_else(|| {
                ConfigError::Invalid(
                    "--dashboard-auth must be USER:PASSWORD, both non-empty".into(),
                )
            })?),
            (None, Some(token)) => Some(DashboardAuth::bearer(token).ok_or_else(|| {
                ConfigError::Invalid(
                    "--dashboard-token must be non-empty printable ASCII without spaces".into(),
                )
            })?),
            (None, None) => None,
        };
        let lease_ttl = match args.lease_ttl {
            Some(0) => {
                return Err(ConfigError::Invalid(
                    "--lease-ttl must be at least 1 second".into(),
                ))
            }
            Some(secs) => Some(Duration::from_secs(secs)),
            None => None,
        };
        Ok(SecurityConfig {
            allowed_hosts: args.allowed_hosts.clone(),
            allowed_origins: args.allowed_origins.clone(),
            api_keys,
            signatures,
            lease_ttl,
            dashboard_auth,
        })
    }
}
