//! The zero-configuration development sign-in, the upstream refresh, and a public URL with a
//! path prefix.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::app::{
    AuthRequest, Options, TestApp, browser, form_fields, location, pkce, query_param, spawn,
    spawn_dev, spawn_with_settings,
};

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Signs in through the development form as `email` (picking `role`, if any) for `resource`
/// (the default one when `None`); returns the token response.
async fn dev_sign_in(
    app: &TestApp,
    email: &str,
    role: Option<&str>,
    resource: Option<String>,
) -> Value {
    let client = app.register_public_client().await;
    let (verifier, challenge) = pkce();
    let browser = browser();
    let url = app.authorize_url(&AuthRequest {
        client: &client,
        challenge: &challenge,
        state: "dev",
        scope: None,
        resource: resource.clone(),
    });
    let first = browser.get(&url).send().await.unwrap();
    let consent_url = location(&first);
    assert!(
        consent_url.contains("/authorize/consent"),
        "one provider: no provider page"
    );
    let consent = browser
        .get(&consent_url)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let approved = app.submit_consent(&browser, &consent, "approve").await;
    let sign_in_url = location(&approved);
    assert!(
        sign_in_url.starts_with(&app.url("/dev/sign-in")),
        "{sign_in_url}"
    );
    let page = browser
        .get(&sign_in_url)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let (action, mut fields) = form_fields(&page);
    let action = if action.starts_with("http") {
        action
    } else {
        app.url(&action)
    };
    fields.push(("email".into(), email.into()));
    if let Some(role) = role {
        fields.push(("role".into(), role.into()));
    }
    let signed_in = browser.post(&action).form(&fields).send().await.unwrap();
    assert_eq!(signed_in.status(), StatusCode::SEE_OTHER);
    let callback = location(&signed_in);
    let done = browser.get(&callback).send().await.unwrap();
    let back = location(&done);
    let resource = resource.unwrap_or_else(|| app.mcp_url());
    let (status, tokens) = app
        .exchange_code_for(
            &client,
            &query_param(&back, "code").unwrap(),
            &verifier,
            &resource,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{tokens}");
    tokens
}

#[tokio::test]
async fn the_development_provider_signs_in_with_just_an_email() {
    let app = spawn_dev("").await;
    assert!(
        app.state.settings.dev_key_file.is_file(),
        "the generated Fernet key is kept in a local file"
    );
    let tokens = dev_sign_in(&app, "Dev.User@Example.com", None, None).await;
    let whoami = app
        .call_tool(tokens["access_token"].as_str().unwrap(), "whoami")
        .await;
    assert_eq!(
        whoami["result"]["structuredContent"]["email"],
        "dev.user@example.com"
    );
}

#[tokio::test]
async fn the_development_form_tries_the_roles_out() {
    let backend = crate::support::recorder::spawn().await;
    let config = format!(
        "default_role = \"reader\"\n{}",
        crate::people::rec_config(&backend.url)
    );
    let app = spawn_dev(&config).await;
    let rec = Some(app.url("/mcp/rec"));
    let reader = dev_sign_in(&app, "ann@example.com", None, rec.clone()).await;
    assert_eq!(reader["scope"], "rec:tools:call");
    let engineer = dev_sign_in(&app, "ann@example.com", Some("engineer"), rec).await;
    assert_eq!(engineer["scope"], "rec:echo:call rec:tools:call");
}

#[tokio::test]
async fn an_expired_upstream_token_is_refreshed_upstream_before_portcullis_refreshes() {
    let app = spawn(Options::default()).await;
    let (client, tokens) = app.tokens_for("upstream-refresh", None).await;
    let grant_id = {
        use base64::Engine;
        let payload = tokens["access_token"]
            .as_str()
            .unwrap()
            .split('.')
            .nth(1)
            .unwrap();
        let claims: Value = serde_json::from_slice(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(payload)
                .unwrap(),
        )
        .unwrap();
        claims["sid"].as_str().unwrap().to_owned()
    };
    let before = app.upstream_access_token(&grant_id).await;
    let grant = app.state.store.get_grant(&grant_id).await.unwrap().unwrap();
    assert!(
        grant.upstream.refresh_token_enc.is_some(),
        "the IdP issued an upstream refresh token"
    );

    // Still fresh upstream: a refresh does not touch the upstream token.
    let (status, refreshed) = app
        .refresh(&client, tokens["refresh_token"].as_str().unwrap())
        .await;
    assert_eq!(status, StatusCode::OK, "{refreshed}");
    assert_eq!(app.upstream_access_token(&grant_id).await, before);

    // Past the upstream expiry (arranged in the store, since the IdP keeps real time): the
    // upstream token is refreshed first.
    app.expire_upstream_token(&grant_id).await;
    let (status, again) = app
        .refresh(&client, refreshed["refresh_token"].as_str().unwrap())
        .await;
    assert_eq!(status, StatusCode::OK, "{again}");
    assert_ne!(app.upstream_access_token(&grant_id).await, before);
}

#[tokio::test]
async fn a_public_url_with_a_path_prefix_is_used_for_every_advertised_url() {
    let (_, db_url, tmp) = crate::support::db::fresh_sqlite().await;
    let port = free_port();
    let toml = format!(
        "bind = \"127.0.0.1:{port}\"\npublic_base_url = \"http://127.0.0.1:{port}/auth\"\ndatabase_url = \"{db_url}\"\ndev_key_file = \"{}\"\n",
        tmp.path().join("k").display()
    );
    let app = spawn_with_settings(
        portcullis::config::Settings::from_toml(&toml).unwrap(),
        Some(tmp),
    )
    .await;
    let origin = format!("http://127.0.0.1:{port}");
    let issuer = format!("{origin}/auth");

    let unauthenticated = app
        .mcp(
            &format!("{issuer}/mcp"),
            None,
            json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"}),
        )
        .await;
    assert_eq!(unauthenticated.status(), StatusCode::UNAUTHORIZED);
    let challenge = unauthenticated.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        challenge.contains(&format!(
            "{origin}/.well-known/oauth-protected-resource/auth/mcp"
        )),
        "{challenge}"
    );
    let prm: Value = app
        .http
        .get(format!(
            "{origin}/.well-known/oauth-protected-resource/auth/mcp"
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(prm["resource"], format!("{issuer}/mcp"));
    assert_eq!(prm["authorization_servers"], json!([issuer]));
    // The trailing-slash and root forms name the same resource.
    for url in [
        format!("{origin}/.well-known/oauth-protected-resource/auth/mcp/"),
        format!("{origin}/.well-known/oauth-protected-resource"),
    ] {
        let same = app.get_json(&url).await;
        assert_eq!(same, prm, "{url}");
    }
    // Path-inserted (RFC 8414 §3.1), path-appended (OpenID Discovery) and bare root: clients
    // probe all three.
    for url in [
        format!("{origin}/.well-known/oauth-authorization-server/auth"),
        format!("{origin}/.well-known/openid-configuration/auth"),
        format!("{issuer}/.well-known/openid-configuration"),
        format!("{issuer}/.well-known/oauth-authorization-server"),
        format!("{origin}/.well-known/oauth-authorization-server"),
        format!("{origin}/.well-known/openid-configuration"),
    ] {
        let metadata = app.get_json(&url).await;
        assert_eq!(metadata["issuer"], issuer.as_str(), "{url}");
        assert_eq!(metadata["token_endpoint"], format!("{issuer}/token"));
    }
    let token = app
        .http
        .post(format!("{issuer}/token"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("")
        .send()
        .await
        .unwrap();
    assert_eq!(token.status(), StatusCode::BAD_REQUEST);
    let css = app
        .http
        .get(format!("{issuer}/static/portcullis.css"))
        .send()
        .await
        .unwrap();
    assert_eq!(css.status(), StatusCode::OK);
}
