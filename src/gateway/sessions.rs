//! Backend sessions bound to the person who opened them. A Streamable HTTP backend's
//! `Mcp-Session-Id` reaches the client with a tag: `{session}.{tag}`, the tag an HMAC over the
//! backend, the session and the person. A request that presents a session id is forwarded only
//! when the tag is the caller's own; anyone else's token with that id, or an id the gateway never
//! handed out, gets 404 as an unknown session (clients then start a new one). Nothing is kept:
//! the binding holds on every instance and across restarts, until the first Fernet key is
//! rotated (then clients start new sessions).

use axum::http::HeaderValue;

use crate::crypto::{Secrets, constant_time_eq};

/// The session id the client sees for the backend's `session`, opened by `owner`.
pub fn bind(secrets: &Secrets, backend: &str, owner: &str, session: &str) -> Option<HeaderValue> {
    let tag = secrets.tag(&[backend, session, owner]);
    HeaderValue::from_str(&format!("{session}.{tag}")).ok()
}

/// The backend's session id behind `presented`, when `owner` is the one it was bound to.
pub fn unbind(secrets: &Secrets, backend: &str, owner: &str, presented: &[u8]) -> Option<String> {
    let presented = std::str::from_utf8(presented).ok()?;
    let (session, tag) = presented.rsplit_once('.')?;
    let expected = secrets.tag(&[backend, session, owner]);
    constant_time_eq(tag, &expected).then(|| session.to_owned())
}

/// A session returned only to its owner at its backend.
#[cfg(test)]
mod tests {
    use super::*;

    fn secrets(key: &str) -> Secrets {
        Secrets::from_keys(&[key.to_owned()]).unwrap()
    }

    #[test]
    fn a_session_is_returned_only_to_its_owner_at_its_backend() {
        let key = Secrets::generate_key();
        let secrets = secrets(&key);
        let bound = bind(&secrets, "ev", "user-a", "4f2a.b-c").unwrap();
        let bytes = bound.as_bytes();
        assert!(bound.to_str().unwrap().starts_with("4f2a.b-c."));
        assert_eq!(
            unbind(&secrets, "ev", "user-a", bytes).as_deref(),
            Some("4f2a.b-c")
        );
        assert_eq!(unbind(&secrets, "ev", "user-b", bytes), None);
        assert_eq!(unbind(&secrets, "other", "user-a", bytes), None);
        assert_eq!(unbind(&secrets, "ev", "user-a", b"4f2a.b-c"), None);
        assert_eq!(unbind(&secrets, "ev", "user-a", b"4f2a"), None);
        assert_eq!(unbind(&secrets, "ev", "user-a", b"\xff.x"), None);
        // Another instance with the same keys agrees; other keys do not.
        assert!(unbind(&self::secrets(&key), "ev", "user-a", bytes).is_some());
        let other = self::secrets(&Secrets::generate_key());
        assert_eq!(unbind(&other, "ev", "user-a", bytes), None);
    }
}
