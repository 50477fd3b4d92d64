//! The app's own counters ([`RealtimeBuilder::counter`](crate::RealtimeBuilder::counter)): a
//! name, a description and a function read at collection time, exported beside the built-in
//! instruments and listed under `counters` in `/realtime/stats`.

use crate::buffer::ConfigError;
use std::collections::BTreeMap;

/// Most app counters one instance takes.
pub const MAX_APP_COUNTERS: usize = 32;

/// One app counter.
pub(crate) struct AppCounter {
    pub(crate) name: String,
    pub(crate) description: String,
    pub(crate) read: Box<dyn Fn() -> u64 + Send + Sync>,
}

/// Checks the names: OpenTelemetry instrument names (`[a-z][a-z0-9_.]*`, at most 63 bytes), none
/// in the `realtime.` namespace of the built-in ones, no duplicates, at most
/// [`MAX_APP_COUNTERS`].
pub(crate) fn validate(counters: &[AppCounter]) -> Result<(), ConfigError> {
    if counters.len() > MAX_APP_COUNTERS {
        return Err(ConfigError(format!(
            "at most {MAX_APP_COUNTERS} app counters"
        )));
    }
    for (i, c) in counters.iter().enumerate() {
        let name = c.name.as_str();
        let shaped = name.len() <= 63
            && name.starts_with(|ch: char| ch.is_ascii_lowercase())
            && name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'.');
        if !shaped {
            return Err(ConfigError(format!(
                "counter name {name:?}: use lowercase letters, digits, `_` and `.` (at most 63 bytes, starting with a letter)"
            )));
        }
        if name.starts_with("realtime.") || name.starts_with("http.") {
            return Err(ConfigError(format!(
                "counter name {name:?}: the `realtime.` and `http.` names are the layer's own"
            )));
        }
        if counters[..i].iter().any(|other| other.name == c.name) {
            return Err(ConfigError(format!("counter {name:?} is declared twice")));
        }
    }
    Ok(())
}

/// Every counter's value now, by name.
pub(crate) fn read_all(counters: &[AppCounter]) -> BTreeMap<String, u64> {
    counters
        .iter()
        .map(|c| (c.name.clone(), (c.read)()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counter(name: &str) -> AppCounter {
        AppCounter {
            name: name.into(),
            description: String::new(),
            read: Box::new(|| 7),
        }
    }

    #[test]
    fn names_are_checked() {
        assert!(validate(&[counter("app.signature.repeats")]).is_ok());
        for bad in [
            "",
            "Upper",
            "9lives",
            "has space",
            "realtime.borrows",
            "http.x",
        ] {
            assert!(validate(&[counter(bad)]).is_err(), "{bad:?}");
        }
        assert!(validate(&[counter("a"), counter("a")]).is_err());
        let many: Vec<_> = (0..=MAX_APP_COUNTERS)
            .map(|i| counter(&format!("c{i}")))
            .collect();
        assert!(validate(&many).is_err());
        assert_eq!(read_all(&[counter("a")])["a"], 7);
    }
}
