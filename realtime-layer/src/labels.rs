//! Words the dashboard uses, so each app speaks its own domain ("Tools", "Seats", "GPUs").

use serde::Serialize;

/// Dashboard wording.
///
/// ```
/// use realtime_layer::Labels;
///
/// let labels = Labels::default().title("License Server").resource("Tool", "Tools");
/// assert_eq!(labels.resources, "Tools");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Labels {
    /// Page title.
    pub title: String,
    /// One resource ("Tool").
    pub resource: String,
    /// Several resources ("Tools").
    pub resources: String,
    /// One user ("User").
    pub user: String,
}

impl Default for Labels {
    fn default() -> Self {
        Labels {
            title: "Realtime".into(),
            resource: "Resource".into(),
            resources: "Resources".into(),
            user: "User".into(),
        }
    }
}

impl Labels {
    /// Sets the page title.
    pub fn title(mut self, title: impl Into<String>) -> Self {
        self.title = title.into();
        self
    }

    /// Sets the singular and plural resource words.
    pub fn resource(mut self, one: impl Into<String>, many: impl Into<String>) -> Self {
        self.resource = one.into();
        self.resources = many.into();
        self
    }

    /// Sets the user word.
    pub fn user(mut self, user: impl Into<String>) -> Self {
        self.user = user.into();
        self
    }
}
