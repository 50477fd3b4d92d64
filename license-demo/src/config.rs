//! Configuration files: the tool catalogue (built-in seed or `--tools FILE`), API keys
//! (`--api-keys FILE`) and vendor signing secrets (`--vendor-secrets FILE`).

use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashSet};
use std::path::Path;

/// Longest accepted tool or user name, in characters.
pub const MAX_NAME_CHARS: usize = 128;

/// One licensed tool and its contract terms.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ToolSpec {
    /// Display name; also the key clients borrow by.
    pub name: String,
    /// Hard cap of concurrently borrowed licenses.
    pub total: u32,
    /// Licenses included in the contract (borrows beyond this are overage).
    pub commit: u32,
    /// Extra licenses allowed above `commit`, each billed at `overage_price_per_license`.
    pub max_overage: u32,
    /// Price of the committed block.
    pub commit_price: f64,
    /// Charge recorded for every overage borrow.
    pub overage_price_per_license: f64,
}

/// The shape of a `--tools` TOML file: a list of `[[tools]]` tables.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ToolsFile {
    tools: Vec<ToolSpec>,
}

/// Why a tool catalogue was rejected.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read tools file {path}: {source}")]
    Read {
        /// The path given.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is not valid TOML of the expected shape.
    #[error("invalid tools file {path}: {source}")]
    Parse {
        /// The path given.
        path: String,
        /// The TOML error.
        source: toml::de::Error,
    },
    /// The catalogue parsed but breaks a rule (names, counts, prices).
    #[error("invalid tool catalogue: {0}")]
    Invalid(String),
    /// A command-line option (or its environment variable) is invalid or misses another one.
    #[error("{0}")]
    Option(String),
    /// An API keys or vendor secrets file is unreadable, not TOML of its shape, or breaks a rule.
    /// The message never contains a key or a secret.
    #[error("invalid {what} file {path}: {why}")]
    Secrets {
        /// Which kind of file (`API keys`, `vendor secrets`).
        what: &'static str,
        /// The path given.
        path: String,
        /// What is wrong.
        why: String,
    },
}

/// Shortest accepted API key or vendor secret, in bytes (guessing must stay hopeless).
pub const MIN_SECRET_BYTES: usize = 16;

/// One API key as written in the keys file: its tenant and the users it may act as.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiKeySpec {
    /// Tenant name: borrows made with the key belong to it.
    pub tenant: String,
    /// Users the key may borrow as; `"*"` allows any user name.
    pub users: Vec<String>,
}

/// The shape of an `--api-keys` file: `[keys."<key>"]` tables.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct KeysFile {
    keys: BTreeMap<String, ApiKeySpec>,
}

/// The shape of a `--vendor-secrets` file: a `[vendors]` table of `"<vendor id>" = "<secret>"`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct VendorsFile {
    vendors: BTreeMap<String, String>,
}

fn read_secrets_file(path: &Path, what: &'static str) -> Result<String, ConfigError> {
    std::fs::read_to_string(path).map_err(|e| ConfigError::Secrets {
        what,
        path: path.display().to_string(),
        why: e.to_string(),
    })
}

/// Reads and validates an API keys file (`key -> tenant + users`).
pub fn load_api_keys_file(path: &Path) -> Result<Vec<(String, ApiKeySpec)>, ConfigError> {
    let text = read_secrets_file(path, "API keys")?;
    parse_api_keys_toml(&text).map_err(|why| ConfigError::Secrets {
        what: "API keys",
        path: path.display().to_string(),
        why,
    })
}

/// Parses and validates API keys from TOML text; the error is a sentence without any key.
pub fn parse_api_keys_toml(text: &str) -> Result<Vec<(String, ApiKeySpec)>, String> {
    // TOML errors quote the offending line, which may hold a key: report the position only.
    let file: KeysFile = toml::from_str(text).map_err(|e| toml_error_without_text(&e))?;
    if file.keys.is_empty() {
        return Err("at least one key is required under [keys]".into());
    }
    for (n, (key, spec)) in file.keys.iter().enumerate() {
        let which = format!("key #{} (tenant {:?})", n + 1, spec.tenant);
        if key.len() < MIN_SECRET_BYTES || !key.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(format!(
                "{which}: a key must be at least {MIN_SECRET_BYTES} printable ASCII characters without spaces"
            ));
        }
        validate_name(&spec.tenant).map_err(|why| format!("{which}: tenant {why}"))?;
        if spec.users.is_empty() {
            return Err(format!(
                "{which}: `users` must list at least one user (or \"*\")"
            ));
        }
        for user in &spec.users {
            validate_name(user).map_err(|why| format!("{which}: user {user:?} {why}"))?;
        }
    }
    Ok(file.keys.into_iter().collect())
}

/// Reads and validates a vendor secrets file (`vendor id -> secret`).
pub fn load_vendor_secrets_file(path: &Path) -> Result<Vec<(String, String)>, ConfigError> {
    let text = read_secrets_file(path, "vendor secrets")?;
    parse_vendor_secrets_toml(&text).map_err(|why| ConfigError::Secrets {
        what: "vendor secrets",
        path: path.display().to_string(),
        why,
    })
}

/// Parses and validates vendor secrets from TOML text; the error never contains a secret.
pub fn parse_vendor_secrets_toml(text: &str) -> Result<Vec<(String, String)>, String> {
    let file: VendorsFile = toml::from_str(text).map_err(|e| toml_error_without_text(&e))?;
    if file.vendors.is_empty() {
        return Err("at least one vendor is required under [vendors]".into());
    }
    for (vendor, secret) in &file.vendors {
        validate_name(vendor).map_err(|why| format!("vendor id {vendor:?} {why}"))?;
        if secret.len() < MIN_SECRET_BYTES {
            return Err(format!(
                "vendor {vendor:?}: the secret must be at least {MIN_SECRET_BYTES} bytes"
            ));
        }
    }
    Ok(file.vendors.into_iter().collect())
}

fn toml_error_without_text(e: &toml::de::Error) -> String {
    match e.span() {
        Some(span) => format!("not TOML of the expected shape (at byte {})", span.start),
        None => "not TOML of the expected shape".to_string(),
    }
}

/// The catalogue used when no `--tools` file is given (the original demo's automotive tools).
pub fn default_tools() -> Vec<ToolSpec> {
    let t = |name: &str, total, commit, max_overage, commit_price, overage_price_per_license| {
        ToolSpec {
            name: name.to_string(),
            total,
            commit,
            max_overage,
            commit_price,
            overage_price_per_license,
        }
    };
    vec![
        t("ECU Development Suite", 20, 5, 15, 5000.0, 500.0),
        // commit + max_overage (13) below total (15): the overage ceiling refuses borrows
        // (`max_overage`) while licenses are still free, as a capped overage contract does.
        t("GreenHills Multi IDE", 15, 10, 3, 8000.0, 800.0),
        t("AUTOSAR Configuration Tool", 12, 8, 4, 4000.0, 400.0),
        t("CAN Bus Analyzer Pro", 10, 10, 0, 2000.0, 0.0),
        t("Model-Based Design Studio", 18, 6, 12, 6000.0, 600.0),
        t("Vector - DaVinci Configurator SE", 20, 5, 15, 5000.0, 500.0),
    ]
}

/// Reads and validates a tools TOML file.
pub fn load_tools_file(path: &Path) -> Result<Vec<ToolSpec>, ConfigError> {
    let shown = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: shown.clone(),
        source,
    })?;
    parse_tools_toml(&text).map_err(|e| match e {
        ConfigError::Parse { source, .. } => ConfigError::Parse {
            path: shown,
            source,
        },
        other => other,
    })
}

/// Parses and validates a tools catalogue from TOML text.
pub fn parse_tools_toml(text: &str) -> Result<Vec<ToolSpec>, ConfigError> {
    let file: ToolsFile = toml::from_str(text).map_err(|source| ConfigError::Parse {
        path: "<text>".to_string(),
        source,
    })?;
    validate_tools(&file.tools)?;
    Ok(file.tools)
}

/// Checks the rules every catalogue must satisfy, whatever its source.
pub fn validate_tools(tools: &[ToolSpec]) -> Result<(), ConfigError> {
    if tools.is_empty() {
        return Err(ConfigError::Invalid("at least one tool is required".into()));
    }
    let mut seen = HashSet::new();
    for tool in tools {
        if let Err(why) = validate_name(&tool.name) {
            return Err(ConfigError::Invalid(format!(
                "tool name {:?}: {why}",
                tool.name
            )));
        }
        if !seen.insert(tool.name.as_str()) {
            return Err(ConfigError::Invalid(format!(
                "tool {:?} is listed twice",
                tool.name
            )));
        }
        if tool.total == 0 {
            return Err(ConfigError::Invalid(format!(
                "tool {:?}: total must be at least 1",
                tool.name
            )));
        }
        if tool.commit > tool.total {
            return Err(ConfigError::Invalid(format!(
                "tool {:?}: commit ({}) exceeds total ({})",
                tool.name, tool.commit, tool.total
            )));
        }
        for (field, price) in [
            ("commit_price", tool.commit_price),
            ("overage_price_per_license", tool.overage_price_per_license),
        ] {
            if !price.is_finite() || price < 0.0 {
                return Err(ConfigError::Invalid(format!(
                    "tool {:?}: {field} must be a finite number >= 0",
                    tool.name
                )));
            }
        }
    }
    Ok(())
}

/// Checks a tool or user name: 1..=128 characters, no control characters.
///
/// Returns a short human reason on failure (used in error `detail`s).
pub fn validate_name(name: &str) -> Result<(), &'static str> {
    let chars = name.chars().count();
    if chars == 0 {
        return Err("must not be empty");
    }
    if chars > MAX_NAME_CHARS {
        return Err("must be at most 128 characters");
    }
    if name.chars().any(char::is_control) {
        return Err("must not contain control characters");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_catalogue_is_valid() {
        validate_tools(&default_tools()).unwrap();
    }

    #[test]
    fn some_default_tool_reaches_max_overage_before_exhausted() {
        // Otherwise OverageLimitReached (docs/grafana/alerts.yml) could never fire for the demo.
        assert!(default_tools()
            .iter()
            .any(|t| t.commit + t.max_overage < t.total));
    }

    #[test]
    fn example_file_parses() {
        let text = include_str!("../tools.example.toml");
        let tools = parse_tools_toml(text).unwrap();
        assert!(tools.len() >= 2);
    }

    #[test]
    fn integer_prices_and_rules() {
        let ok = "[[tools]]\nname = \"A\"\ntotal = 3\ncommit = 1\nmax_overage = 2\ncommit_price = 10\noverage_price_per_license = 2.5\n";
        let tools = parse_tools_toml(ok).unwrap();
        assert_eq!(tools[0].commit_price, 10.0);
        let bad = ok.replace("commit = 1", "commit = 4");
        assert!(matches!(
            parse_tools_toml(&bad),
            Err(ConfigError::Invalid(_))
        ));
        let dup = format!("{ok}{ok}");
        assert!(parse_tools_toml(&dup).is_err());
        assert!(parse_tools_toml("tools = []").is_err());
        assert!(parse_tools_toml(&ok.replace("total", "totl")).is_err());
    }

    #[test]
    fn secrets_files_parse_and_errors_hide_secrets() {
        let keys = "[keys.\"k-0123456789abcdef\"]\ntenant = \"acme\"\nusers = [\"alice\", \"*\"]\n";
        let parsed = parse_api_keys_toml(keys).unwrap();
        assert_eq!(parsed[0].0, "k-0123456789abcdef");
        assert_eq!(parsed[0].1.tenant, "acme");
        let short = keys.replace("k-0123456789abcdef", "short");
        let err = parse_api_keys_toml(&short).unwrap_err();
        assert!(!err.contains("short"), "{err}");
        let broken = keys.replace("tenant", "tenat");
        assert!(!parse_api_keys_toml(&broken)
            .unwrap_err()
            .contains("k-0123456789abcdef"));
        let vendors = "[vendors]\nvendor-42 = \"0123456789abcdef-secret\"\n";
        assert_eq!(
            parse_vendor_secrets_toml(vendors).unwrap()[0].0,
            "vendor-42"
        );
        let weak = vendors.replace("0123456789abcdef-secret", "weak");
        assert!(!parse_vendor_secrets_toml(&weak)
            .unwrap_err()
            .contains("weak\""));
    }

    #[test]
    fn names() {
        assert!(validate_name("alice").is_ok());
        assert!(validate_name("").is_err());
        assert!(validate_name("a\nb").is_err());
        assert!(validate_name(&"x".repeat(128)).is_ok());
        assert!(validate_name(&"é".repeat(129)).is_err());
    }
}
