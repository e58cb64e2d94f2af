//! Scopes: RFC 6749 §3.3 syntax, `domain:resource:action` patterns with `*` wildcards, and the
//! rule that a grant is never wider than what the person may have.

use std::collections::BTreeSet;

use super::error::{ErrorCode, OAuthError};

/// A set of scope tokens, kept sorted so it prints the same way every time.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Scopes(BTreeSet<String>);

impl Scopes {
    /// Parses a space-separated scope string (RFC 6749 §3.3 `scope-token` characters only).
    pub fn parse(raw: &str) -> Result<Self, OAuthError> {
        let mut set = BTreeSet::new();
        for token in raw.split(' ').filter(|t| !t.is_empty()) {
            let valid = token.len() <= 200
                && token
                    .bytes()
                    .all(|b| b == 0x21 || (0x23..=0x5b).contains(&b) || (0x5d..=0x7e).contains(&b));
            if !valid {
                return Err(OAuthError::new(
                    ErrorCode::InvalidScope,
                    "a scope contains characters RFC 6749 does not allow",
                ));
            }
            set.insert(token.to_owned());
        }
        if set.len() > 100 {
            return Err(OAuthError::new(ErrorCode::InvalidScope, "too many scopes"));
        }
        Ok(Self(set))
    }

    pub fn from_items<I: IntoIterator<Item = S>, S: Into<String>>(items: I) -> Self {
        Self(items.into_iter().map(Into::into).collect())
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(String::as_str)
    }

    pub fn contains(&self, scope: &str) -> bool {
        self.0.contains(scope)
    }

    pub fn is_subset(&self, other: &Scopes) -> bool {
        self.0.is_subset(&other.0)
    }

    /// The scopes of `self` that some pattern in `allowed` covers.
    pub fn restricted_to(&self, allowed: &[String]) -> Scopes {
        Scopes(
            self.0
                .iter()
                .filter(|s| allowed.iter().any(|p| pattern_covers(p, s)))
                .cloned()
                .collect(),
        )
    }

    /// True when one of these (possibly wildcard) scopes covers `required`.
    pub fn covers(&self, required: &str) -> bool {
        self.0.iter().any(|held| pattern_covers(held, required))
    }
}

impl std::fmt::Display for Scopes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut first = true;
        for scope in &self.0 {
            if !first {
                f.write_str(" ")?;
            }
            f.write_str(scope)?;
            first = false;
        }
        Ok(())
    }
}

/// `pattern` covers `scope` when they have the same number of `:`-separated segments and each
/// pattern segment is `*` or equal. A lone `*` covers everything.
pub fn pattern_covers(pattern: &str, scope: &str) -> bool {
    if pattern == "*" || pattern == scope {
        return true;
    }
    let mut p = pattern.split(':');
    let mut s = scope.split(':');
    loop {
        match (p.next(), s.next()) {
            (None, None) => return true,
            (Some(ps), Some(ss)) if ps == "*" || ps == ss => {}
            _ => return false,
        }
    }
}

/// What a sign-in grants: the requested scopes the person may have, or, when the client asked
/// for none, what the resource advertises that the person may have.
pub fn grant(requested: &Scopes, may_have: &[String], resource_supports: &[String]) -> Scopes {
    if requested.is_empty() {
        Scopes::from_items(resource_supports.iter().cloned()).restricted_to(may_have)
    } else {
        requested.restricted_to(may_have)
    }
}

/// Scope patterns, wildcards and grants as intersections.
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards_match_whole_segments_only() {
        assert!(pattern_covers("orders:*:read", "orders:invoices:read"));
        assert!(pattern_covers("orders:*:*", "orders:invoices:write"));
        assert!(pattern_covers("*", "anything:at:all"));
        assert!(!pattern_covers("orders:*:read", "orders:invoices:write"));
        assert!(!pattern_covers("orders:*", "orders:invoices:read"));
        assert!(!pattern_covers("orders:inv*:read", "orders:invoices:read"));
        assert!(!pattern_covers(
            "orders:invoices:read",
            "orders:invoices:read:extra"
        ));
    }

    #[test]
    fn a_grant_is_the_intersection_and_never_wider() {
        let may_have = vec!["demo:*:read".to_owned()];
        let requested = Scopes::parse("demo:notes:read demo:notes:write other:x:read").unwrap();
        assert_eq!(
            grant(&requested, &may_have, &[]).to_string(),
            "demo:notes:read"
        );
    }

    #[test]
    fn asking_for_nothing_gets_what_the_resource_supports_and_the_person_may_have() {
        let may_have = vec!["demo:*:read".to_owned()];
        let supported = vec!["demo:notes:read".to_owned(), "demo:notes:write".to_owned()];
        assert_eq!(
            grant(&Scopes::default(), &may_have, &supported).to_string(),
            "demo:notes:read"
        );
    }

    #[test]
    fn scope_syntax_follows_rfc_6749() {
        assert!(Scopes::parse("a:b:c  d").is_ok());
        assert_eq!(
            Scopes::parse("a\"b").unwrap_err().code,
            ErrorCode::InvalidScope
        );
        assert_eq!(
            Scopes::parse("a\\b").unwrap_err().code,
            ErrorCode::InvalidScope
        );
        assert_eq!(
            Scopes::parse("caf\u{e9}").unwrap_err().code,
            ErrorCode::InvalidScope
        );
    }
}
