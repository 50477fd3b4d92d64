//! Access control for the license server: what is on by default (Host, Origin and Content-Type
//! checks against DNS rebinding and cross-site requests) and what an operator turns on (API keys,
//! signed requests, leases, dashboard credentials).
//!
//! Everything here is configured once at start-up into a [`SecurityConfig`]; the pieces are
//! composed into the router in one place, [`crate::server::build_app`].

pub mod guard;
pub mod keys;
pub mod replay;
pub mod signature;

pub use guard::RequestGuard;
pub use keys::{ApiKeys, Tenant};
/// Dashboard credentials: the library's [`realtime_layer::access::DashboardAuth`].
pub use realtime_layer::access::DashboardAuth;
pub use replay::RedisReplays;
pub use signature::{
    new_nonce, sign, sign_with_nonce, NonceSigner, SignatureError, SignatureForm,
    SignatureVerifier, Signed, SIGNATURE_WINDOW,
};

use std::sync::Arc;
use std::time::Duration;

/// The security settings of a server. The default is the zero-configuration loopback server:
/// Host/Origin/Content-Type checks on, everything else off. The command line builds one with
/// [`SecurityConfig::from_args`], defined with the flags in [`crate::cli`].
#[derive(Debug, Clone, Default)]
pub struct SecurityConfig {
    /// Accepted `Host` names (`name` or `name:port`, `*` for any); empty: `localhost` and IP
    /// literals on the bound port.
    pub allowed_hosts: Vec<String>,
    /// Origins allowed to make state-changing requests besides the server's own (`*`: any).
    pub allowed_origins: Vec<String>,
    /// Reverse proxies (addresses or networks) whose forwarding headers name the client, for the
    /// live stream's per-client limits.
    pub trusted_proxies: Vec<String>,
    /// API keys: when set, every route that names or touches a borrow or a charge (borrow,
    /// return, heartbeat, `/borrows`, `/overage-charges`) needs `Authorization: Bearer <key>`.
    pub api_keys: Option<Arc<ApiKeys>>,
    /// When set, borrows must be signed (`X-Signature`, `X-Timestamp`, `X-Vendor-ID`, and
    /// `X-Nonce` in the recommended form); `--strict-replay` is its
    /// [`SignatureVerifier::strict_replay`].
    pub signatures: Option<Arc<SignatureVerifier>>,
    /// Lease length: borrows not renewed by a heartbeat within it expire.
    pub lease_ttl: Option<Duration>,
    /// Credentials for `/realtime*` and `/metrics`.
    pub dashboard_auth: Option<DashboardAuth>,
}
