use std::collections::BTreeSet;

use serde_json::json;

use super::*;
use crate::config::Settings;

fn policy(toml: &str) -> AccessPolicy {
    let settings = Settings::from_toml(&format!(
        r#"
        fernet_keys = ["{key}"]
        {toml}
        "#,
        key = crate::crypto::Secrets::generate_key(),
    ))
    .unwrap();
    AccessPolicy::new(&settings.access, &settings.providers)
}

const PROVIDER: &str = r#"
    [[providers]]
    id = "corp"
    kind = "oidc"
    issuer = "https://id.example.com"
    client_id = "portcullis"
    client_secret = "secret"
"#;

fn admits(policy: &AccessPolicy, email: Option<&str>, claims: Value, known: bool) -> bool {
    policy
        .admit(
            "corp",
            Candidate {
                email,
                claims: &claims,
                known,
            },
        )
        .is_ok()
}

fn roles(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|n| (*n).to_owned()).collect()
}

#[test]
fn without_rules_everyone_the_provider_signs_in_is_admitted() {
    let policy = policy(PROVIDER);
    assert!(admits(
        &policy,
        Some("anyone@anywhere.org"),
        json!({}),
        false
    ));
    assert!(admits(&policy, None, json!({}), false));
}

#[test]
fn email_rules_admit_exact_addresses_and_whole_domains_only() {
    let policy = policy(&format!(
        "{PROVIDER}\n[providers.allow]\nemails = [\"Ada@Partner.org\", \"*@corp.com\"]\n"
    ));
    assert!(admits(&policy, Some("ada@partner.org"), json!({}), false));
    assert!(admits(&policy, Some("bob@corp.com"), json!({}), false));
    assert!(!admits(&policy, Some("eve@partner.org"), json!({}), false));
    assert!(!admits(&policy, Some("bob@evilcorp.com"), json!({}), false));
    assert!(!admits(
        &policy,
        Some("bob@corp.com.evil.org"),
        json!({}),
        false
    ));
    assert!(
        !admits(&policy, None, json!({}), false),
        "no verified email"
    );
}

#[test]
fn domain_rules_need_a_verified_email_at_that_domain() {
    let policy = policy(&format!(
        "{PROVIDER}\n[providers.allow]\ndomains = [\"corp.com\"]\n"
    ));
    assert!(admits(&policy, Some("Bob@CORP.com"), json!({}), false));
    assert!(!admits(&policy, Some("bob@sub.corp.com"), json!({}), false));
    assert!(!admits(&policy, None, json!({"hd": "corp.com"}), false));
}

#[test]
fn claim_rules_match_strings_and_lists_at_dotted_paths() {
    let policy = policy(&format!(
        "{PROVIDER}\n[providers.allow.claims]\ngroups = [\"mcp-users\"]\n\"realm_access.roles\" = [\"mcp\"]\n"
    ));
    assert!(admits(
        &policy,
        None,
        json!({"groups": ["x", "mcp-users"]}),
        false
    ));
    assert!(admits(&policy, None, json!({"groups": "mcp-users"}), false));
    assert!(admits(
        &policy,
        None,
        json!({"realm_access": {"roles": ["mcp"]}}),
        false
    ));
    assert!(!admits(
        &policy,
        None,
        json!({"groups": ["mcp-users-not"]}),
        false
    ));
    assert!(!admits(
        &policy,
        None,
        json!({"realm_access": {"roles": "other"}}),
        false
    ));
    assert!(!admits(&policy, None, json!({"roles": ["mcp"]}), false));
    // The projection kept with an identity reads the same.
    let kept = policy.claims_kept(
        "corp",
        &json!({"realm_access": {"roles": ["mcp"]}, "other": 1}),
    );
    assert_eq!(kept, json!({"realm_access.roles": ["mcp"]}));
    assert!(admits(&policy, None, kept, false));
}

#[test]
fn known_users_only_refuses_strangers_even_when_a_rule_matches() {
    let policy = policy(&format!(
        "{PROVIDER}users = \"known\"\n[providers.allow]\ndomains = [\"corp.com\"]\n"
    ));
    assert!(admits(&policy, Some("bob@corp.com"), json!({}), true));
    assert_eq!(
        policy.admit(
            "corp",
            Candidate {
                email: Some("bob@corp.com"),
                claims: &json!({}),
                known: false
            }
        ),
        Err(Refusal::Unknown("corp".into()))
    );
    assert!(!admits(&policy, Some("bob@other.com"), json!({}), true));
}

const ROLES: &str = r#"
    default_role = "reader"
    [roles.reader]
    scopes = ["tickets:*:read"]
    [roles.engineer]
    scopes = ["tickets:*:*", "deploys:*:read"]
    [roles.admin]
    scopes = ["*"]
"#;

#[test]
fn roles_come_from_the_default_the_operator_and_the_claims() {
    let policy = policy(&format!(
        "{ROLES}{PROVIDER}\n[providers.claim_roles.groups]\nplatform = \"engineer\"\n"
    ));
    assert_eq!(policy.roles("corp", &[], &json!({})), roles(&["reader"]));
    assert_eq!(
        policy.roles("corp", &[], &json!({"groups": ["platform", "other"]})),
        roles(&["engineer", "reader"])
    );
    assert_eq!(
        policy.roles("corp", &["admin".into(), "gone".into()], &json!({})),
        roles(&["admin", "reader"]),
        "a role no longer configured is ignored"
    );
}

#[test]
fn the_entitlement_is_the_union_of_the_roles_within_the_providers_cap() {
    let uncapped = policy(&format!("{ROLES}{PROVIDER}"));
    let engineer = uncapped.entitlement("corp", &roles(&["reader", "engineer"]));
    assert!(engineer.covers("tickets:queue:write"));
    assert!(engineer.covers("deploys:prod:read"));
    assert!(!engineer.covers("deploys:prod:write"));
    let reader = uncapped.entitlement("corp", &roles(&["reader"]));
    assert!(!reader.covers("tickets:queue:write"));

    let capped = policy(&format!(
        "{ROLES}{PROVIDER}grant_scopes = [\"tickets:*:*\"]\n"
    ));
    let admin = capped.entitlement("corp", &roles(&["admin"]));
    assert!(admin.covers("tickets:queue:write"));
    assert!(!admin.covers("deploys:prod:read"), "capped by grant_scopes");
    assert_eq!(
        capped.roles_granting("deploys:prod:read"),
        ["admin", "engineer"]
    );
    assert!(capped.roles_granting("nothing:at:all").contains(&"admin"));
}

#[test]
fn without_roles_the_providers_grant_scopes_are_the_entitlement() {
    let real = policy(&format!("{PROVIDER}grant_scopes = [\"demo:*:read\"]\n"));
    let entitlement = real.entitlement("corp", &BTreeSet::new());
    assert!(entitlement.covers("demo:notes:read"));
    assert!(!entitlement.covers("demo:notes:write"));
    let nothing = policy(PROVIDER).entitlement("corp", &BTreeSet::new());
    assert!(
        !nothing.covers("demo:notes:read"),
        "a real provider grants nothing unset"
    );
    let dev = policy("").entitlement("dev", &BTreeSet::new());
    assert!(
        dev.covers("anything:at:all"),
        "the development provider grants all"
    );
}

#[test]
fn a_grant_is_the_entitlement_unless_the_client_asks_for_less() {
    let policy = policy(&format!("{ROLES}{PROVIDER}"));
    let reader = policy.entitlement("corp", &roles(&["reader"]));
    let supported = vec![
        "tickets:queue:read".to_owned(),
        "tickets:queue:write".to_owned(),
        "deploys:prod:read".to_owned(),
    ];
    let ask = |raw: &str| Scopes::parse(raw).unwrap();
    let entitlement = GrantMode::Entitlement;
    assert_eq!(
        reader.grant(entitlement, &ask(""), &supported).to_string(),
        "tickets:queue:read"
    );
    assert_eq!(
        reader
            .grant(entitlement, &ask("offline_access"), &supported)
            .to_string(),
        "tickets:queue:read",
        "scopes that are not the resource's do not count as asking for less"
    );
    let engineer = policy.entitlement("corp", &roles(&["engineer"]));
    assert_eq!(
        engineer
            .grant(entitlement, &ask("tickets:queue:read"), &supported)
            .to_string(),
        "tickets:queue:read",
        "a client that asks for less gets less"
    );
    assert_eq!(
        engineer
            .grant(GrantMode::Requested, &ask("offline_access"), &supported)
            .to_string(),
        "deploys:prod:read tickets:queue:read tickets:queue:write",
        "asking for none of the resource's scopes is asking for nothing"
    );
    assert_eq!(
        engineer
            .grant(
                GrantMode::Requested,
                &ask("openid tickets:*:read offline_access"),
                &supported
            )
            .to_string(),
        "tickets:*:read",
        "least privilege: only what was asked of the resource, patterns included"
    );
    assert_eq!(
        engineer
            .grant(GrantMode::Requested, &ask(""), &supported)
            .to_string(),
        "deploys:prod:read tickets:queue:read tickets:queue:write"
    );
}

#[test]
fn configuration_errors_name_the_key() {
    let error = |toml: &str| {
        Settings::from_toml(&format!(
            "fernet_keys = [\"{}\"]\n{toml}",
            crate::crypto::Secrets::generate_key()
        ))
        .unwrap_err()
        .to_string()
    };
    assert!(error("default_role = \"ghost\"").contains("default_role"));
    assert!(
        error(&format!(
            "{ROLES}{PROVIDER}\n[providers.claim_roles.groups]\nx = \"ghost\"\n"
        ))
        .contains("claim_roles")
    );
    assert!(
        error(&format!(
            "{PROVIDER}\n[providers.allow]\nemails = [\"not-an-email\"]\n"
        ))
        .contains("providers[0].allow.emails")
    );
    assert!(error("[roles.Bad]\nscopes = [\"a\"]").contains("roles.Bad"));
    assert!(error("[roles.ok]\nscopes = [\"has space\"]").contains("roles.ok.scopes"));
}

#[test]
fn the_role_picked_on_the_development_form_counts_only_there() {
    let dev = policy(ROLES);
    assert_eq!(
        dev.roles("dev", &[], &json!({"role": "admin"})),
        roles(&["admin", "reader"])
    );
    assert_eq!(
        dev.roles("dev", &[], &json!({"role": "owner"})),
        roles(&["reader"]),
        "only a configured role"
    );
    assert_eq!(
        dev.claims_kept("dev", &json!({"role": "admin", "x": 1})),
        json!({"role": "admin"})
    );
    let real = policy(&format!("{ROLES}{PROVIDER}"));
    assert_eq!(
        real.roles("corp", &[], &json!({"role": "admin"})),
        roles(&["reader"]),
        "a real provider's `role` claim is not a pick"
    );
}
