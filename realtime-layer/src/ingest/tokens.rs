//! Sender tokens (`--tokens FILE`): bearer tokens kept as SHA-256 digests, compared in constant
//! time, each optionally restricted to some resources and with its own rate.
//!
//! ```toml
//! [[token]]
//! name = "billing"                 # shown in logs and answers, never the token itself
//! sha256 = "9f86d081884c7d65..."   # hex digest of the token (`printf %s TOKEN | sha256sum`)
//! # token = "plain-text"           # or the token itself: hashed at load, the text dropped
//! resources = ["GPU A100"]         # optional: events for other resources are refused (403)
//! rate = 20000                     # optional: events per second (default: --rate-limit)
//! ```

use serde::Deserialize;
use sha2::{Digest, Sha256};
use std::collections::HashSet;
use subtle::ConstantTimeEq;

/// One sender's credentials and limits.
#[derive(Debug, Clone)]
pub struct SenderToken {
    /// A name for logs and answers.
    pub name: String,
    digest: [u8; 32],
    /// Resources it may send events for (`None`: any).
    pub resources: Option<HashSet<String>>,
    /// Its own rate, events per second (`None`: the default).
    pub rate: Option<u32>,
}

/// The token table (loaded once).
#[derive(Debug, Clone, Default)]
pub struct Tokens {
    tokens: Vec<SenderToken>,
}

/// A token file that cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("token file: {0}")]
pub struct TokenFileError(pub String);

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileEntry {
    name: String,
    #[serde(default)]
    sha256: Option<String>,
    #[serde(default)]
    token: Option<String>,
    #[serde(default)]
    resources: Option<Vec<String>>,
    #[serde(default)]
    rate: Option<u32>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    token: Vec<FileEntry>,
}

fn digest(token: &[u8]) -> [u8; 32] {
    Sha256::digest(token).into()
}

fn parse_hex(hex: &str) -> Option<[u8; 32]> {
    let hex = hex.trim();
    if hex.len() != 64 || !hex.is_ascii() {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(out)
}

impl Tokens {
    /// Parses a token file (TOML, see the module documentation).
    pub fn parse(text: &str) -> Result<Self, TokenFileError> {
        let file: File = toml::from_str(text).map_err(|e| TokenFileError(e.to_string()))?;
        if file.token.is_empty() {
            return Err(TokenFileError("no [[token]] entries".into()));
        }
        let mut names = HashSet::new();
        let mut tokens = Vec::new();
        for entry in file.token {
            if !names.insert(entry.name.clone()) {
                return Err(TokenFileError(format!(
                    "token name {:?} used twice",
                    entry.name
                )));
            }
            let digest = match (&entry.sha256, &entry.token) {
                (Some(hex), None) => parse_hex(hex).ok_or_else(|| {
                    TokenFileError(format!("{}: sha256 must be 64 hex digits", entry.name))
                })?,
                (None, Some(token)) if token.len() >= 16 => digest(token.as_bytes()),
                (None, Some(_)) => {
                    return Err(TokenFileError(format!(
                        "{}: a token must be at least 16 characters",
                        entry.name
                    )))
                }
                _ => {
                    return Err(TokenFileError(format!(
                        "{}: give exactly one of sha256 or token",
                        entry.name
                    )))
                }
            };
            if entry.rate == Some(0) {
                return Err(TokenFileError(format!(
                    "{}: rate must be above 0",
                    entry.name
                )));
            }
            tokens.push(SenderToken {
                name: entry.name,
                digest,
                resources: entry.resources.map(|r| r.into_iter().collect()),
                rate: entry.rate,
            });
        }
        Ok(Tokens { tokens })
    }

    /// The tokens, in file order.
    pub fn iter(&self) -> impl Iterator<Item = &SenderToken> {
        self.tokens.iter()
    }

    /// How many tokens there are.
    pub fn len(&self) -> usize {
        self.tokens.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.tokens.is_empty()
    }

    /// The index of the token `presented` (the text after `Bearer `): its digest is compared
    /// with every entry's in constant time, without stopping at a match.
    pub fn find(&self, presented: &[u8]) -> Option<usize> {
        let d = digest(presented);
        let mut found = None;
        for (i, t) in self.tokens.iter().enumerate() {
            if bool::from(t.digest.ct_eq(&d)) {
                found = Some(i);
            }
        }
        found
    }

    /// The token at `index`.
    pub fn get(&self, index: usize) -> Option<&SenderToken> {
        self.tokens.get(index)
    }
}

impl SenderToken {
    /// Whether it may send events for `resource`.
    pub fn allows(&self, resource: &str) -> bool {
        self.resources.as_ref().is_none_or(|r| r.contains(resource))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_find_and_restrict() {
        let hex = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"; // "test"
        let file = format!(
            "[[token]]\nname = \"a\"\nsha256 = \"{hex}\"\nresources = [\"GPU A100\"]\n\
             [[token]]\nname = \"b\"\ntoken = \"0123456789abcdef\"\nrate = 5\n"
        );
        let tokens = Tokens::parse(&file).unwrap();
        assert_eq!(tokens.find(b"test"), Some(0));
        assert_eq!(tokens.find(b"0123456789abcdef"), Some(1));
        assert_eq!(tokens.find(b"0123456789abcdeF"), None);
        assert!(tokens.get(0).unwrap().allows("GPU A100"));
        assert!(!tokens.get(0).unwrap().allows("GPU H100"));
        assert!(tokens.get(1).unwrap().allows("anything"));
        assert_eq!(tokens.get(1).unwrap().rate, Some(5));
        for bad in [
            "",
            "[[token]]\nname = \"a\"\n",
            "[[token]]\nname = \"a\"\ntoken = \"short\"\n",
            "[[token]]\nname = \"a\"\nsha256 = \"zz\"\n",
            "[[token]]\nname = \"a\"\ntoken = \"0123456789abcdef\"\nsha256 = \"x\"\n",
            "[[token]]\nname = \"a\"\ntoken = \"0123456789abcdef\"\n[[token]]\nname = \"a\"\ntoken = \"0123456789abcdeX\"\n",
            "[[token]]\nname = \"a\"\ntoken = \"0123456789abcdef\"\nrole = \"x\"\n",
        ] {
            assert!(Tokens::parse(bad).is_err(), "{bad}");
        }
    }
}
