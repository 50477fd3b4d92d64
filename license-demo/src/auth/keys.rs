//! API keys (`--api-keys FILE`): which tenant a `Bearer` key belongs to and which users it may
//! borrow as.
//!
//! Keys are kept only as SHA-256 digests. A presented key is hashed and compared with every
//! stored digest in constant time (no early exit), so neither the comparison nor the position of
//! a match leaks through timing. Neither keys nor digests appear in `Debug` output or logs.

use crate::config::ApiKeySpec;
use sha2::{Digest, Sha256};
use std::collections::HashSet;
use std::sync::Arc;
use subtle::ConstantTimeEq;

/// The tenant an API key authenticates, and the users it may act as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tenant {
    /// Tenant name (borrows made with its keys belong to it).
    pub name: Arc<str>,
    users: Arc<Users>,
}

#[derive(Debug, PartialEq, Eq)]
enum Users {
    Any,
    Only(HashSet<String>),
}

impl Tenant {
    /// Whether this key may act as `user` (borrow, return, renew, list).
    pub fn may_act_as(&self, user: &str) -> bool {
        match &*self.users {
            Users::Any => true,
            Users::Only(users) => users.contains(user),
        }
    }

    /// The users this key may act as, sorted; `None` when it may act as any user.
    pub fn users(&self) -> Option<Vec<String>> {
        match &*self.users {
            Users::Any => None,
            Users::Only(users) => {
                let mut list: Vec<String> = users.iter().cloned().collect();
                list.sort();
                Some(list)
            }
        }
    }
}

struct StoredKey {
    digest: [u8; 32],
    tenant: Tenant,
}

/// The configured API keys, hashed.
pub struct ApiKeys {
    keys: Vec<StoredKey>,
}

impl std::fmt::Debug for ApiKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiKeys")
            .field("keys", &self.keys.len())
            .finish()
    }
}

fn digest(key: &str) -> [u8; 32] {
    Sha256::digest(key.as_bytes()).into()
}

impl ApiKeys {
    /// Hashes validated keys (from [`crate::config::load_api_keys_file`]); the plain keys are
    /// dropped when this returns.
    pub fn new(specs: Vec<(String, ApiKeySpec)>) -> Self {
        let keys = specs
            .into_iter()
            .map(|(key, spec)| {
                let users = if spec.users.iter().any(|u| u == "*") {
                    Users::Any
                } else {
                    Users::Only(spec.users.into_iter().collect())
                };
                StoredKey {
                    digest: digest(&key),
                    tenant: Tenant {
                        name: spec.tenant.into(),
                        users: Arc::new(users),
                    },
                }
            })
            .collect();
        ApiKeys { keys }
    }

    /// The tenant of `presented`, or `None` when it is not a configured key.
    pub fn authenticate(&self, presented: &str) -> Option<&Tenant> {
        let wanted = digest(presented);
        let mut found = None;
        // Visit every key whatever matched, and select without branching on secret bytes.
        for key in &self.keys {
            let equal: bool = key.digest.ct_eq(&wanted).into();
            if equal {
                found = Some(&key.tenant);
            }
        }
        found
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn authenticates_by_digest_and_scopes_users() {
        let keys = ApiKeys::new(vec![
            (
                "key-acme-0123456789".into(),
                ApiKeySpec {
                    tenant: "acme".into(),
                    users: vec!["alice".into()],
                },
            ),
            (
                "key-globex-0123456789".into(),
                ApiKeySpec {
                    tenant: "globex".into(),
                    users: vec!["*".into()],
                },
            ),
        ]);
        let acme = keys.authenticate("key-acme-0123456789").unwrap();
        assert_eq!(&*acme.name, "acme");
        assert!(acme.may_act_as("alice") && !acme.may_act_as("bob"));
        assert_eq!(acme.users(), Some(vec!["alice".to_string()]));
        assert!(keys
            .authenticate("key-globex-0123456789")
            .unwrap()
            .may_act_as("anyone"));
        assert!(keys.authenticate("key-acme-012345678").is_none());
        assert!(keys.authenticate("").is_none());
        let shown = format!("{keys:?}");
        assert!(
            !shown.contains("acme") && !shown.contains("0123456789"),
            "{shown}"
        );
    }
}
