//! The whole sign-in, as an MCP client that knows only a URL would go through it, against the
//! real test IdP, on SQLite and on Postgres.

use reqwest::StatusCode;
use serde_json::json;

use crate::support::app::{AuthRequest, Db, Options, browser, pkce, query_param, rpc_body, spawn};

/// `resource_metadata="…"` from a `WWW-Authenticate` challenge.
fn resource_metadata(challenge: &str) -> String {
    let start = challenge
        .find("resource_metadata=\"")
        .expect("resource_metadata in the challenge")
        + "resource_metadata=\"".len();
    challenge[start..].split('"').next().unwrap().to_owned()
}

async fn whole_flow(db: Db) {
    let app = spawn(Options {
        db,
        ..Options::default()
    })
    .await;

    // Discovery from the 401, as an MCP client does it.
    let unauthenticated = app
        .mcp(
            &app.mcp_url(),
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
        !challenge.contains("error="),
        "no error code when no token was sent: {challenge}"
    );
    let prm_url = resource_metadata(&challenge);
    assert_eq!(
        prm_url,
        app.url("/.well-known/oauth-protected-resource/mcp")
    );
    let prm = app.get_json(&prm_url).await;
    assert_eq!(prm["resource"], app.mcp_url());
    let issuer = prm["authorization_servers"][0].as_str().unwrap().to_owned();
    assert_eq!(issuer, app.base);
    let metadata = app
        .get_json(&format!("{issuer}/.well-known/oauth-authorization-server"))
        .await;
    assert_eq!(metadata["issuer"], app.base.as_str());
    assert_eq!(
        metadata["code_challenge_methods_supported"],
        json!(["S256"])
    );
    assert_eq!(
        app.get_json(&format!("{issuer}/.well-known/openid-configuration"))
            .await,
        metadata
    );

    // Registration, authorization, provider choice, consent, upstream sign-in, callback.
    let (status, registered) = app
        .register(json!({
            "client_name": "Flow Client",
            "redirect_uris": ["http://127.0.0.1/callback"],
            "token_endpoint_auth_method": "none",
            "grant_types": ["authorization_code", "refresh_token"],
        }))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{registered}");
    let client = crate::support::app::TestClient {
        client_id: registered["client_id"].as_str().unwrap().to_owned(),
        client_secret: None,
        // RFC 8252: a loopback redirect may use any port.
        redirect_uri: "http://127.0.0.1:51234/callback".into(),
    };
    let (verifier, challenge_value) = pkce();
    let browser = browser();
    let url = app.authorize_url(&AuthRequest {
        client: &client,
        challenge: &challenge_value,
        state: "client-state-1",
        scope: Some("demo:notes:read demo:notes:write"),
        resource: Some(format!("{}/", app.mcp_url())),
    });
    let back = app.sign_in(&browser, &url, "alice").await;
    assert!(
        back.starts_with("http://127.0.0.1:51234/callback?"),
        "{back}"
    );
    assert_eq!(
        query_param(&back, "state").as_deref(),
        Some("client-state-1")
    );
    assert_eq!(
        query_param(&back, "iss").as_deref(),
        Some(app.base.as_str())
    );
    let code = query_param(&back, "code").unwrap();

    // Token: the grant is the intersection of what was asked and what the provider allows.
    let (status, tokens) = app.exchange_code(&client, &code, &verifier).await;
    assert_eq!(status, StatusCode::OK, "{tokens}");
    assert_eq!(tokens["token_type"], "Bearer");
    assert_eq!(tokens["scope"], "demo:notes:read");
    let access = tokens["access_token"].as_str().unwrap().to_owned();
    let refresh = tokens["refresh_token"].as_str().unwrap().to_owned();

    // MCP with the token.
    let init = app
        .mcp(
            &app.mcp_url(),
            Some(&access),
            json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
                "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "it", "version": "1"}}}),
        )
        .await;
    assert_eq!(init.status(), StatusCode::OK);
    let init = rpc_body(init).await;
    assert_eq!(init["result"]["serverInfo"]["name"], "portcullis", "{init}");
    let list = rpc_body(
        app.mcp(
            &app.mcp_url(),
            Some(&access),
            json!({"jsonrpc": "2.0", "id": 2, "method": "tools/list"}),
        )
        .await,
    )
    .await;
    let names: Vec<&str> = list["result"]["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert!(names.contains(&"whoami"), "{list}");
    let whoami = app.call_tool(&access, "whoami").await;
    let me = &whoami["result"]["structuredContent"];
    assert_eq!(me["email"], "alice@example.com", "{whoami}");
    assert_eq!(me["client_id"], client.client_id.as_str());
    assert_eq!(me["scopes"], json!(["demo:notes:read"]));
    assert_eq!(me["audience"], app.mcp_url());
    let user_id = me["user"].as_str().unwrap().to_owned();

    // Refresh rotates; the new access token works and names the same user.
    let (status, refreshed) = app.refresh(&client, &refresh).await;
    assert_eq!(status, StatusCode::OK, "{refreshed}");
    let new_refresh = refreshed["refresh_token"].as_str().unwrap().to_owned();
    assert_ne!(new_refresh, refresh);
    let new_access = refreshed["access_token"].as_str().unwrap().to_owned();
    assert_eq!(
        app.call_tool(&new_access, "whoami").await["result"]["structuredContent"]["user"],
        user_id.as_str()
    );

    // Introspection: the new access token is active, the rotated refresh token is not.
    let (status, _, active) = app
        .post_form("/introspect", &client, &[("token", &new_access)])
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(active["active"], true, "{active}");
    assert_eq!(active["sub"], user_id.as_str());
    let (_, _, rotated) = app
        .post_form("/introspect", &client, &[("token", &refresh)])
        .await;
    assert_eq!(rotated, json!({"active": false}));

    // Revoking the refresh token ends the grant: its access tokens stop working at once.
    let (status, _, _) = app
        .post_form(
            "/revoke",
            &client,
            &[
                ("token", &new_refresh),
                ("token_type_hint", "refresh_token"),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let after = app
        .mcp(
            &app.mcp_url(),
            Some(&new_access),
            json!({"jsonrpc": "2.0", "id": 9, "method": "tools/list"}),
        )
        .await;
    assert_eq!(after.status(), StatusCode::UNAUTHORIZED);
    assert!(
        after.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .contains("error=\"invalid_token\"")
    );
    let (_, _, inactive) = app
        .post_form("/introspect", &client, &[("token", &new_access)])
        .await;
    assert_eq!(inactive, json!({"active": false}));
    let (status, body) = app.refresh(&client, &new_refresh).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_grant"))
    );

    // Sign-in, token issue, refresh and revocation are in the audit trail.
    use portcullis::store::{AuditFilter, AuditKind, Decision};
    app.state.auditor.flush().await;
    let rows = app
        .state
        .store
        .audit_events(&AuditFilter {
            user: Some(user_id.clone()),
            limit: 50,
            ..Default::default()
        })
        .await
        .unwrap();
    let kinds: Vec<AuditKind> = rows.iter().rev().map(|r| r.kind).collect();
    // The last: the revoked access token presented at /mcp.
    let expected = [
        AuditKind::SignIn,
        AuditKind::TokenIssued,
        AuditKind::TokenRefreshed,
        AuditKind::RequestDenied,
    ];
    assert_eq!(kinds, expected, "{rows:#?}");
    assert!(
        rows.iter()
            .all(|r| r.client_id.as_deref() == Some(client.client_id.as_str()))
    );
    assert_eq!(rows[0].decision, Decision::Denied);
    assert!(rows[1..].iter().all(|r| r.decision == Decision::Allowed));
    let revoked = app
        .state
        .store
        .audit_events(&AuditFilter {
            kind: Some(AuditKind::TokenRevoked),
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(revoked.len(), 1);
    assert_eq!(
        revoked[0].client_id.as_deref(),
        Some(client.client_id.as_str())
    );
}

#[tokio::test]
async fn the_whole_flow_works_on_sqlite() {
    whole_flow(Db::Sqlite).await;
}

#[tokio::test]
async fn the_whole_flow_works_on_postgres() {
    whole_flow(Db::Postgres).await;
}

#[tokio::test]
async fn denying_consent_returns_access_denied_with_state_and_iss() {
    let app = spawn(Options::default()).await;
    let client = app.register_public_client().await;
    let (_, challenge) = pkce();
    let browser = browser();
    let url = app.authorize_url(&AuthRequest {
        client: &client,
        challenge: &challenge,
        state: "s-deny",
        scope: None,
        resource: None,
    });
    let consent = app.reach_consent(&browser, &url).await;
    assert!(
        consent.contains("Test MCP Client") && consent.contains("127.0.0.1:33418"),
        "the consent page names the client and redirect host"
    );
    let denied = app.submit_consent(&browser, &consent, "deny").await;
    assert_eq!(denied.status(), StatusCode::SEE_OTHER);
    let back = crate::support::app::location(&denied);
    assert!(back.starts_with(&client.redirect_uri));
    assert_eq!(
        query_param(&back, "error").as_deref(),
        Some("access_denied")
    );
    assert_eq!(query_param(&back, "state").as_deref(), Some("s-deny"));
    assert_eq!(
        query_param(&back, "iss").as_deref(),
        Some(app.base.as_str())
    );
    // The decision is single-use: submitting the form again changes nothing.
    let again = app.submit_consent(&browser, &consent, "approve").await;
    assert_eq!(again.status(), StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn with_one_provider_the_provider_page_is_skipped() {
    let app = spawn(Options {
        second_provider: false,
        ..Options::default()
    })
    .await;
    let client = app.register_public_client().await;
    let (_, challenge) = pkce();
    let url = app.authorize_url(&AuthRequest {
        client: &client,
        challenge: &challenge,
        state: "s",
        scope: None,
        resource: None,
    });
    let response = browser().get(&url).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert!(crate::support::app::location(&response).contains("/authorize/consent?flow="));
}

#[tokio::test]
async fn every_advertised_endpoint_answers() {
    let app = spawn(Options::default()).await;
    let metadata = app
        .get_json(&app.url("/.well-known/oauth-authorization-server"))
        .await;
    assert_eq!(
        app.get_json(metadata["jwks_uri"].as_str().unwrap()).await["keys"][0]["alg"],
        "ES256"
    );
    for (key, expect) in [
        ("authorization_endpoint", StatusCode::BAD_REQUEST),
        ("token_endpoint", StatusCode::BAD_REQUEST),
        ("registration_endpoint", StatusCode::BAD_REQUEST),
        ("revocation_endpoint", StatusCode::BAD_REQUEST),
        ("introspection_endpoint", StatusCode::BAD_REQUEST),
    ] {
        let url = metadata[key].as_str().unwrap();
        assert!(
            url.starts_with(&app.base),
            "{key} is built from the public URL"
        );
        let response = if key == "authorization_endpoint" {
            app.http.get(url).send().await.unwrap()
        } else {
            app.http
                .post(url)
                .header("content-type", "application/x-www-form-urlencoded")
                .body("")
                .send()
                .await
                .unwrap()
        };
        assert_eq!(response.status(), expect, "{key}");
    }
    assert_eq!(
        app.http
            .get(app.url("/health/live"))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );
    assert_eq!(
        app.http
            .get(app.url("/health/ready"))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );
    let root_prm = app
        .get_json(&app.url("/.well-known/oauth-protected-resource"))
        .await;
    assert_eq!(root_prm["resource"], app.mcp_url());
}

#[tokio::test]
async fn a_token_issued_before_a_restart_verifies_after_it() {
    let (_, db_url, tmp) = crate::support::db::fresh_sqlite().await;
    let key = portcullis::crypto::Secrets::generate_key();
    let port = {
        let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        probe.local_addr().unwrap().port()
    };
    let idp = crate::support::idp::TestIdp::from_env();
    let toml = format!(
        r#"bind = "127.0.0.1:{port}"
database_url = "{db_url}"
fernet_keys = ["{key}"]
[[providers]]
id = "corp"
kind = "oidc"
issuer = "{}"
client_id = "{}"
client_secret = "{}"
grant_scopes = ["demo:*:read"]
"#,
        idp.issuer, idp.client_id, idp.client_secret
    );
    let settings = portcullis::config::Settings::from_toml(&toml).unwrap();
    let first = crate::support::app::spawn_with_settings(settings.clone(), None).await;
    let (_, tokens) = first
        .tokens_for("restart-user", Some("demo:notes:read"))
        .await;
    let access = tokens["access_token"].as_str().unwrap().to_owned();
    let before = first.call_tool(&access, "whoami").await;
    let first_base = first.base.clone();
    first.stop().await;

    let second = crate::support::app::spawn_with_settings(settings, Some(tmp)).await;
    assert_eq!(second.base, first_base);
    let after = second.call_tool(&access, "whoami").await;
    assert_eq!(
        after["result"]["structuredContent"],
        before["result"]["structuredContent"]
    );
}
