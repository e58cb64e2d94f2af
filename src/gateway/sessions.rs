//! Backend sessions bound to the person who opened them. A relayed backend's `Mcp-Session-Id` is
//! a bearer secret at the backend, which cannot tell the gateway's callers apart: the gateway
//! learns each id from the backend's answer and lets only the person it was issued to use it.
//! Anyone else, and any id the gateway did not see issued (after a restart, or on another
//! instance), gets 404, on which MCP clients start a new session (MCP 2025-11-25 transports
//! §Session Management).

use std::time::Duration;

/// A binding unused this long is forgotten; the session then answers 404 and the client starts
/// another, as it would after the backend expired it.
const IDLE: Duration = Duration::from_secs(24 * 3600);
const CAPACITY: u64 = 100_000;

/// Who opened each backend session: by (backend id, session id), the user's `sub`.
pub struct SessionOwners {
    owners: moka::sync::Cache<(String, String), String>,
}

impl Default for SessionOwners {
    fn default() -> Self {
        Self {
            owners: moka::sync::Cache::builder()
                .time_to_idle(IDLE)
                .max_capacity(CAPACITY)
                .build(),
        }
    }
}

impl SessionOwners {
    /// True when `user` opened `session` at `backend`.
    pub fn admits(&self, backend: &str, session: &str, user: &str) -> bool {
        self.owners
            .get(&(backend.to_owned(), session.to_owned()))
            .is_some_and(|owner| owner == user)
    }

    /// Records that the backend issued `session` to `user`. A session already bound stays
    /// with whoever opened it.
    pub fn bind(&self, backend: &str, session: &str, user: &str) {
        self.owners
            .entry((backend.to_owned(), session.to_owned()))
            .or_insert_with(|| user.to_owned());
    }

    /// The session ended (deleted, or forgotten by the backend).
    pub fn end(&self, backend: &str, session: &str) {
        self.owners
            .invalidate(&(backend.to_owned(), session.to_owned()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_session_serves_only_the_person_it_was_issued_to() {
        let owners = SessionOwners::default();
        assert!(
            !owners.admits("rec", "s1", "alice"),
            "unseen ids are nobody's"
        );
        owners.bind("rec", "s1", "alice");
        owners.bind("rec", "s1", "mallory");
        assert!(owners.admits("rec", "s1", "alice"));
        assert!(!owners.admits("rec", "s1", "mallory"));
        assert!(!owners.admits("other", "s1", "alice"), "per backend");
        owners.end("rec", "s1");
        assert!(!owners.admits("rec", "s1", "alice"));
    }
}
