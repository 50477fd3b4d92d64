//! [`Secret`]: a string that never shows itself (passwords, tokens, URLs with credentials).

/// A secret string from the command line or the environment (a Redis URL with its password,
/// dashboard credentials): `Debug` prints `Secret("***")`, there is no `Display`, and the value
/// is read only through [`Secret::expose`], so a `{:?}` of the parsed options, an error or a log
/// line cannot carry it by accident.
///
/// ```
/// use license_demo::secret::Secret;
///
/// let s = Secret::from("redis://:hunter2@db:6379".to_string());
/// assert_eq!(format!("{s:?}"), r#"Secret("***")"#);
/// assert_eq!(s.expose(), "redis://:hunter2@db:6379");
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// The value itself: pass it where it is used, never to a log or a message.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl From<String> for Secret {
    fn from(value: String) -> Self {
        Secret(value)
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(r#"Secret("***")"#)
    }
}
