//! Tool catalogue: the built-in seed and the optional `--tools FILE` TOML override.

use serde::{Deserialize, Serialize};
use std::collections::HashSet;
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
        t("GreenHills Multi IDE", 15, 10, 5, 8000.0, 800.0),
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
    fn names() {
        assert!(validate_name("alice").is_ok());
        assert!(validate_name("").is_err());
        assert!(validate_name("a\nb").is_err());
        assert!(validate_name(&"x".repeat(128)).is_ok());
        assert!(validate_name(&"é".repeat(129)).is_err());
    }
}
