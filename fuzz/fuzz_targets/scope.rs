//! Scopes (`oauth::scope`): RFC 6749 §3.3 parsing, `domain:resource:action` patterns with `*`,
//! and the grant rule.
//!
//! Checks: no panic; a parsed set holds only valid tokens (at most 100, each 1-200 scope-token
//! characters) and re-parses to itself from its printed form; every scope covers itself and `*`
//! covers everything; covering is transitive; a grant is never wider than what was asked for
//! (or, when nothing was, what the resource supports) and every granted scope is covered by
//! something the person may have.

#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use portcullis::oauth::scope::{Scopes, grant, pattern_covers};

#[derive(Arbitrary, Debug)]
struct Input {
    requested: String,
    may_have: Vec<String>,
    supported: Vec<String>,
    a: String,
    b: String,
    c: String,
}

fn is_scope_token(token: &str) -> bool {
    (1..=200).contains(&token.len())
        && token
            .bytes()
            .all(|b| b == 0x21 || (0x23..=0x5b).contains(&b) || (0x5d..=0x7e).contains(&b))
}

fuzz_target!(|input: Input| {
    if let Ok(scopes) = Scopes::parse(&input.requested) {
        assert!(scopes.iter().count() <= 100);
        for token in scopes.iter() {
            assert!(is_scope_token(token), "{token:?} is not a scope token");
            assert!(
                input.requested.split(' ').any(|t| t == token),
                "{token:?} was invented"
            );
            assert!(pattern_covers(token, token));
            assert!(pattern_covers("*", token));
            assert!(scopes.covers(token));
        }
        let printed = scopes.to_string();
        assert_eq!(
            Scopes::parse(&printed).as_ref(),
            Ok(&scopes),
            "{printed:?} re-parses differently"
        );
        assert_eq!(Scopes::from_items(scopes.iter()), scopes);

        let granted = grant(&scopes, &input.may_have, &input.supported);
        let universe = if scopes.is_empty() {
            Scopes::from_items(input.supported.iter().cloned())
        } else {
            scopes.clone()
        };
        assert!(
            granted.is_subset(&universe),
            "the grant is wider than asked for"
        );
        for scope in granted.iter() {
            assert!(
                input.may_have.iter().any(|p| pattern_covers(p, scope)),
                "{scope:?} was granted without being allowed"
            );
        }
        // Whatever was granted is still granted when asked for explicitly.
        if !granted.is_empty() {
            assert_eq!(grant(&granted, &input.may_have, &input.supported), granted);
        }
    }

    let (a, b, c) = (&input.a, &input.b, &input.c);
    assert!(pattern_covers(a, a));
    if pattern_covers(a, b) && pattern_covers(b, c) {
        assert!(
            pattern_covers(a, c),
            "covering is not transitive: {a:?} {b:?} {c:?}"
        );
    }
});
