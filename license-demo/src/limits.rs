//! The server's connection limits and shutdown deadline on the command line (flags and
//! `LICENSE_DEMO_*` environment variables), turned into a [`ServeConfig`].

use clap::Args;
use realtime_layer::serve::ServeConfig;
use std::time::Duration;

/// Timeouts, the connection cap and the shutdown deadline (see OPERATIONS.md, "Limits").
#[derive(Debug, Clone, Args)]
pub struct LimitArgs {
    /// Longest time to receive a request's headers (e.g. `10s`, `500ms`; a slow client is cut).
    #[arg(long, env = "LICENSE_DEMO_HEADER_READ_TIMEOUT", default_value = "10s", value_parser = parse_duration, value_name = "DURATION")]
    pub header_read_timeout: Duration,
    /// Longest time to receive a request's body once its headers are in.
    #[arg(long, env = "LICENSE_DEMO_BODY_TIMEOUT", default_value = "30s", value_parser = parse_duration, value_name = "DURATION")]
    pub body_timeout: Duration,
    /// How long a keep-alive connection may wait for its next request.
    #[arg(long, env = "LICENSE_DEMO_IDLE_TIMEOUT", default_value = "60s", value_parser = parse_duration, value_name = "DURATION")]
    pub idle_timeout: Duration,
    /// How long a client may accept no bytes of a response (a stalled stream reader) before it
    /// is disconnected.
    #[arg(long, env = "LICENSE_DEMO_WRITE_TIMEOUT", default_value = "10s", value_parser = parse_duration, value_name = "DURATION")]
    pub write_timeout: Duration,
    /// Most connections open at once (default: the descriptor limit minus 128); more wait in
    /// the listen backlog.
    #[arg(long, env = "LICENSE_DEMO_MAX_CONNECTIONS", value_name = "N")]
    pub max_connections: Option<usize>,
    /// On SIGTERM/SIGINT, how long in-flight requests may take before the process exits anyway
    /// (a second signal exits at once).
    #[arg(long, env = "LICENSE_DEMO_SHUTDOWN_DEADLINE", default_value = "10s", value_parser = parse_duration, value_name = "DURATION")]
    pub shutdown_deadline: Duration,
}

impl Default for LimitArgs {
    fn default() -> Self {
        LimitArgs::from(&ServeConfig::default())
    }
}

impl From<&ServeConfig> for LimitArgs {
    fn from(c: &ServeConfig) -> Self {
        LimitArgs {
            header_read_timeout: c.header_read_timeout,
            body_timeout: c.request_body_timeout,
            idle_timeout: c.idle_timeout,
            write_timeout: c.write_timeout,
            max_connections: c.max_connections,
            shutdown_deadline: c.shutdown_deadline,
        }
    }
}

impl LimitArgs {
    /// The server configuration these flags describe.
    pub fn to_serve_config(&self) -> ServeConfig {
        ServeConfig {
            header_read_timeout: self.header_read_timeout,
            request_body_timeout: self.body_timeout,
            idle_timeout: self.idle_timeout,
            write_timeout: self.write_timeout,
            max_connections: self.max_connections,
            shutdown_deadline: self.shutdown_deadline,
            ..ServeConfig::default()
        }
    }
}

/// `10s`, `500ms`, `2m`, or a bare number of seconds (`1.5`); above zero.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    let (number, scale) = if let Some(n) = t.strip_suffix("ms") {
        (n, 0.001)
    } else if let Some(n) = t.strip_suffix('s') {
        (n, 1.0)
    } else if let Some(n) = t.strip_suffix('m') {
        (n, 60.0)
    } else {
        (t, 1.0)
    };
    match number.trim().parse::<f64>() {
        Ok(v) if v.is_finite() && v > 0.0 && v * scale < 1e9 => {
            Ok(Duration::from_secs_f64(v * scale))
        }
        _ => Err(format!(
            "{text:?} is not a duration above zero (examples: 10s, 500ms, 2m)"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("1.5"), Ok(Duration::from_millis(1500)));
        assert!(parse_duration("0s").is_err());
        assert!(parse_duration("-1").is_err());
        assert!(parse_duration("soon").is_err());
    }

    #[test]
    fn defaults_are_the_library_defaults() {
        assert_eq!(
            LimitArgs::default().to_serve_config(),
            ServeConfig::default()
        );
    }
}
