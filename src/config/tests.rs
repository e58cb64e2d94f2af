use super::*;

/// `top` keys, a Fernet key, an OpenID Connect provider `corp`, then `after`.
fn with_corp(top: &str, after: &str) -> String {
    format!(
        r#"{top}
        fernet_keys = ["{}"]
        [[providers]]
        id = "corp"
        kind = "oidc"
        issuer = "https://id.example.com"
        client_id = "c"
        client_secret = "s"
        {after}"#,
        crate::crypto::Secrets::generate_key()
    )
}

#[test]
fn embedded_defaults_are_sqlite_loopback_and_the_dev_provider() {
    let settings = Settings::from_toml("").unwrap();
    assert_eq!(settings.bind.to_string(), "127.0.0.1:8080");
    assert_eq!(settings.public_url(), "http://127.0.0.1:8080/");
    assert_eq!(settings.database_url, "sqlite:portcullis.db");
    assert_eq!(settings.providers.len(), 1);
    assert!(matches!(settings.providers[0].kind, ProviderKind::Dev));
    assert_eq!(settings.providers[0].grant_scopes, None);
    assert_eq!(
        settings.tokens.access_ttl,
        std::time::Duration::from_secs(3600)
    );
    assert!(settings.dev_only());
}

#[test]
fn unknown_keys_are_refused_by_name() {
    let err = Settings::from_toml("bnid = \"127.0.0.1:1\"")
        .unwrap_err()
        .to_string();
    assert!(err.contains("bnid"), "{err}");
    let err = Settings::from_toml("[tokens]\naccess_ttl = 5")
        .unwrap_err()
        .to_string();
    assert!(err.contains("access_ttl"), "{err}");
}

#[test]
fn an_oidc_provider_without_a_secret_names_the_key() {
    let toml = r#"
        fernet_keys = ["x"]
        [[providers]]
        id = "corp"
        kind = "oidc"
        issuer = "https://idp.example.com"
        client_id = "abc"
    "#;
    let err = Settings::from_toml(toml).unwrap_err().to_string();
    assert!(err.contains("providers[0].client_secret"), "{err}");
}

#[test]
fn a_real_provider_requires_fernet_keys() {
    let toml = r#"
        [[providers]]
        id = "corp"
        kind = "oidc"
        issuer = "https://idp.example.com"
        client_id = "abc"
        client_secret = "s"
    "#;
    let err = Settings::from_toml(toml).unwrap_err().to_string();
    assert!(
        err.contains("fernet_keys") && err.contains("PORTCULLIS_FERNET_KEYS"),
        "{err}"
    );
}

#[test]
fn malformed_urls_are_refused_by_name() {
    let err = Settings::from_toml("public_base_url = \"not a url\"")
        .unwrap_err()
        .to_string();
    assert!(err.contains("public_base_url"), "{err}");
    let err = Settings::from_toml("public_base_url = \"http://example.com\"")
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("public_base_url") && err.contains("https"),
        "{err}"
    );
}

#[test]
fn the_dev_provider_refuses_a_non_loopback_bind() {
    let err = Settings::from_toml("bind = \"0.0.0.0:8080\"")
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("providers[0].kind") && err.contains("loopback"),
        "{err}"
    );
}

#[test]
fn the_dev_provider_refuses_a_public_url_and_company() {
    // Behind a reverse proxy on loopback, with a public address: anyone could sign in.
    let err = Settings::from_toml("public_base_url = \"https://mcp.example.com\"")
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("providers[0].kind") && err.contains("public_base_url"),
        "{err}"
    );
    assert!(Settings::from_toml("public_base_url = \"http://localhost:8080/auth\"").is_ok());
    let err = Settings::from_toml(&with_corp(
        "",
        "[[providers]]\nid = \"dev\"\nkind = \"dev\"",
    ))
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("providers[1].kind") && err.contains("others are configured"),
        "{err}"
    );
}

#[test]
fn fernet_keys_accept_a_comma_separated_string() {
    let settings = Settings::from_toml("fernet_keys = \"a, b,\"").unwrap();
    assert_eq!(settings.fernet_keys.len(), 2);
}

#[test]
fn a_public_url_with_a_path_prefix_is_kept() {
    let settings = Settings::from_toml(&with_corp(
        "public_base_url = \"https://example.com/auth\"",
        "",
    ))
    .unwrap();
    assert_eq!(settings.public_url(), "https://example.com/auth");
}

#[test]
fn a_zero_lifetime_is_refused_by_name() {
    let err = Settings::from_toml("[tokens]\ncode_ttl_secs = 0")
        .unwrap_err()
        .to_string();
    assert!(err.contains("tokens.code_ttl_secs"), "{err}");
}

#[test]
fn a_trusted_issuer_takes_asymmetric_algorithms_only() {
    let issuer = |extra: &str| {
        with_corp(
            "",
            &format!(
                "[[trusted_issuers]]\nid = \"svc\"\nissuer = \"https://idp.corp.example\"\naudience = \"urn:mcp\"\n{extra}"
            ),
        )
    };
    let settings = Settings::from_toml(&issuer("")).unwrap();
    assert_eq!(
        settings.trusted_issuers[0].algorithms,
        [
            jsonwebtoken::Algorithm::RS256,
            jsonwebtoken::Algorithm::ES256
        ]
    );
    for refused in ["HS256", "none", "rs256"] {
        let err = Settings::from_toml(&issuer(&format!("algorithms = [\"{refused}\"]")))
            .unwrap_err()
            .to_string();
        assert!(err.contains("trusted_issuers[0].algorithms"), "{err}");
    }
    let err = Settings::from_toml(&with_corp(
        "",
        "[[trusted_issuers]]\nid = \"svc\"\nissuer = \"http://idp.corp.example\"\naudience = \"urn:mcp\"",
    ))
    .unwrap_err()
    .to_string();
    assert!(err.contains("trusted_issuers[0].issuer"), "{err}");
}

#[test]
fn presets_find_their_issuer_and_name_what_they_miss() {
    let preset = |kind: &str, fields: &str| {
        Settings::from_toml(&format!(
            "fernet_keys = [\"{}\"]\n[[providers]]\nid = \"p\"\nkind = \"{kind}\"\nclient_id = \"c\"\nclient_secret = \"s\"\n{fields}",
            crate::crypto::Secrets::generate_key()
        ))
    };
    let issuer_of =
        |kind: &str, fields: &str| match preset(kind, fields).unwrap().providers.remove(0).kind {
            ProviderKind::Oidc(oidc) => (oidc.issuer.to_string(), oidc.quirks),
            ProviderKind::Dev | ProviderKind::Github(_) => unreachable!(),
        };
    let (issuer, quirks) = issuer_of("google", "hosted_domain = \"Corp.com\"");
    assert_eq!(issuer, "https://accounts.google.com/");
    assert_eq!(quirks.hosted_domain.as_deref(), Some("corp.com"));
    assert_eq!(
        quirks.extra_params,
        [("hd".to_owned(), "corp.com".to_owned())]
    );
    let (issuer, quirks) = issuer_of("microsoft", "tenant = \"contoso.onmicrosoft.com\"");
    assert_eq!(
        issuer,
        "https://login.microsoftonline.com/contoso.onmicrosoft.com/v2.0"
    );
    assert_eq!(quirks.subject, SubjectFrom::TenantObject);
    assert!(!quirks.trust_email_verified);
    assert_eq!(
        issuer_of("okta", "domain = \"acme.okta.com\"").0,
        "https://acme.okta.com/"
    );
    assert_eq!(
        issuer_of(
            "okta",
            "domain = \"acme.okta.com\"\nauthorization_server = \"default\""
        )
        .0,
        "https://acme.okta.com/oauth2/default"
    );
    let (issuer, quirks) = issuer_of(
        "auth0",
        "domain = \"acme.eu.auth0.com\"\naudience = \"https://api\"",
    );
    assert_eq!(issuer, "https://acme.eu.auth0.com/");
    assert_eq!(
        quirks.extra_params,
        [("audience".to_owned(), "https://api".to_owned())]
    );
    assert_eq!(
        issuer_of(
            "keycloak",
            "base_url = \"https://sso.acme.com/\"\nrealm = \"staff\""
        )
        .0,
        "https://sso.acme.com/realms/staff"
    );
    assert_eq!(issuer_of("gitlab", "").0, "https://gitlab.com/");
    assert_eq!(
        issuer_of(
            "cognito",
            "region = \"eu-west-1\"\nuser_pool_id = \"eu-west-1_AbC\""
        )
        .0,
        "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_AbC"
    );
    // The preset names the display, the configuration may too.
    assert_eq!(
        preset("gitlab", "").unwrap().providers[0].display_name,
        "GitLab"
    );
    for (kind, missing) in [
        ("microsoft", "tenant"),
        ("okta", "domain"),
        ("keycloak", "base_url"),
        ("cognito", "region"),
    ] {
        let err = preset(kind, "").unwrap_err().to_string();
        assert!(
            err.contains(&format!("providers[0].{missing}")),
            "{kind}: {err}"
        );
    }
}

#[test]
fn audit_events_are_kept_a_year_unless_told_otherwise() {
    let day = std::time::Duration::from_secs(24 * 3600);
    let retention = |toml: &str| Settings::from_toml(toml).map(|s| s.audit.retention);
    assert_eq!(retention("").unwrap(), Some(365 * day));
    assert_eq!(
        retention("[audit]\nretention_days = 30").unwrap(),
        Some(30 * day)
    );
    assert_eq!(retention("[audit]\nretention_days = 0").unwrap(), None);
    let err = retention("[audit]\nretention_days = 100000")
        .unwrap_err()
        .to_string();
    assert!(err.contains("audit.retention_days"), "{err}");
}
