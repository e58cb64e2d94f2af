use std::collections::HashMap;

use chrono::Utc;

use super::*;
use crate::crypto::{pkce_s256, random_token};
use crate::upstream::fake_idp::{CLIENT_ID, FakeIdp, Grant};
use crate::upstream::http_client;

/// The RFC 7636 Appendix B verifier.
const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";

fn redirect_uri() -> Url {
    Url::parse("https://portcullis.example.com/auth/callback/fake").unwrap()
}

async fn provider(idp: &FakeIdp) -> OidcProvider {
    OidcProvider::discover("fake", "Fake IdP", &idp.settings(), http_client().unwrap())
        .await
        .unwrap()
}

async fn exchange(
    provider: &OidcProvider,
    code: &str,
    nonce: &str,
) -> Result<Identity, UpstreamError> {
    provider
        .exchange(code, VERIFIER, nonce, &redirect_uri(), Utc::now())
        .await
}

#[tokio::test]
async fn the_authorization_url_carries_our_state_nonce_challenge_scopes_and_redirect_uri() {
    let idp = FakeIdp::start().await;
    let provider = provider(&idp).await;
    let challenge = pkce_s256(VERIFIER);
    let redirect_uri = redirect_uri();
    let request = AuthorizationRequest {
        state: "our-state",
        nonce: "our-nonce",
        pkce_challenge: &challenge,
        redirect_uri: &redirect_uri,
    };

    let url = provider.authorization_url(&request).unwrap();

    assert_eq!(
        url.as_str().split('?').next(),
        Some(format!("{}/authorize", idp.issuer).as_str())
    );
    let query: HashMap<String, String> = url.query_pairs().into_owned().collect();
    assert_eq!(query["response_type"], "code");
    assert_eq!(query["client_id"], CLIENT_ID);
    assert_eq!(query["state"], "our-state");
    assert_eq!(query["nonce"], "our-nonce");
    assert_eq!(query["code_challenge"], challenge);
    assert_eq!(query["code_challenge_method"], "S256");
    assert_eq!(query["redirect_uri"], redirect_uri.as_str());
    let scopes: Vec<&str> = query["scope"].split(' ').collect();
    assert_eq!(scopes, ["openid", "email", "profile"]);
}

#[tokio::test]
async fn a_presets_extra_parameters_go_with_the_authorization_request() {
    let idp = FakeIdp::start().await;
    let settings = OidcSettings {
        quirks: crate::config::Quirks {
            extra_params: vec![("hd".into(), "corp.com".into())],
            ..Default::default()
        },
        ..idp.settings()
    };
    let provider = OidcProvider::discover("fake", "Fake IdP", &settings, http_client().unwrap())
        .await
        .unwrap();
    let challenge = pkce_s256(VERIFIER);
    let redirect_uri = redirect_uri();
    let url = provider
        .authorization_url(&AuthorizationRequest {
            state: "s",
            nonce: "n",
            pkce_challenge: &challenge,
            redirect_uri: &redirect_uri,
        })
        .unwrap();
    let query: HashMap<String, String> = url.query_pairs().into_owned().collect();
    assert_eq!(query["hd"], "corp.com");
}

#[tokio::test]
async fn a_challenge_that_is_not_s256_is_refused() {
    let idp = FakeIdp::start().await;
    let provider = provider(&idp).await;
    let redirect_uri = redirect_uri();
    let request = AuthorizationRequest {
        state: "s",
        nonce: "n",
        pkce_challenge: "plain",
        redirect_uri: &redirect_uri,
    };
    assert!(matches!(
        provider.authorization_url(&request),
        Err(UpstreamError::Invalid(_))
    ));
}

#[tokio::test]
async fn the_exchange_verifies_the_id_token_and_yields_the_identity() {
    let idp = FakeIdp::start().await;
    let provider = provider(&idp).await;
    let code = idp.issue_code(Grant::new("nonce-1"));
    let now = Utc::now();

    let identity = provider
        .exchange(&code, VERIFIER, "nonce-1", &redirect_uri(), now)
        .await
        .unwrap();

    assert_eq!(identity.subject, "user-123");
    assert_eq!(identity.email.as_deref(), Some("Ada@Example.com"));
    assert!(identity.email_verified);
    assert_eq!(identity.name.as_deref(), Some("Ada Lovelace"));
    assert!(
        identity
            .tokens
            .access_token
            .as_deref()
            .is_some_and(|t| t.starts_with("at-"))
    );
    assert!(
        identity
            .tokens
            .refresh_token
            .as_deref()
            .is_some_and(|t| t.starts_with("rt-"))
    );
    assert!(identity.tokens.id_token.is_some());
    assert_eq!(
        identity.tokens.expires_at,
        Some(now + chrono::Duration::seconds(3600))
    );
    let sent = &idp.token_requests()[0];
    assert_eq!(sent["grant_type"], "authorization_code");
    assert_eq!(sent["code_verifier"], VERIFIER);
    assert_eq!(sent["redirect_uri"], redirect_uri().as_str());
}

#[tokio::test]
async fn a_wrong_nonce_is_invalid() {
    let idp = FakeIdp::start().await;
    let provider = provider(&idp).await;
    let code = idp.issue_code(Grant::new("nonce-1"));

    let err = exchange(&provider, &code, "another-nonce")
        .await
        .unwrap_err();

    assert!(
        matches!(&err, UpstreamError::Invalid(msg) if msg.contains("nonce")),
        "{err}"
    );
}

#[tokio::test]
async fn an_id_token_signed_by_another_key_is_invalid() {
    let idp = FakeIdp::start().await;
    let provider = provider(&idp).await;
    let code = idp.issue_code(Grant {
        rogue_signature: true,
        ..Grant::new("nonce-1")
    });

    let err = exchange(&provider, &code, "nonce-1").await.unwrap_err();

    assert!(
        matches!(&err, UpstreamError::Invalid(msg) if msg.contains("signature does not verify")),
        "{err}"
    );
    // A key rotation would explain an unknown key, not a wrong signature: no second fetch.
    assert_eq!(idp.jwks_fetches(), 1);
}

#[tokio::test]
async fn an_id_token_signed_with_an_algorithm_the_provider_does_not_advertise_is_invalid() {
    let idp = FakeIdp::start().await;
    let provider = provider(&idp).await;
    // HS256 with the client secret: a signature the client could check, and forge.
    let code = idp.issue_code(Grant {
        signed_with_client_secret: true,
        ..Grant::new("nonce-1")
    });

    let err = exchange(&provider, &code, "nonce-1").await.unwrap_err();

    assert!(
        matches!(&err, UpstreamError::Invalid(msg) if msg.contains("HS256")),
        "{err}"
    );
}

#[tokio::test]
async fn a_rotated_signing_key_is_fetched_once_and_accepted() {
    let idp = FakeIdp::start().await;
    let provider = provider(&idp).await;
    idp.rotate_key();
    let code = idp.issue_code(Grant::new("nonce-1"));

    let identity = exchange(&provider, &code, "nonce-1").await.unwrap();

    assert_eq!(identity.subject, "user-123");
    assert_eq!(idp.jwks_fetches(), 2);
}

#[tokio::test]
async fn a_token_endpoint_error_is_refused_without_echoing_the_code() {
    let idp = FakeIdp::start().await;
    let provider = provider(&idp).await;
    let code = random_token(16);

    let err = exchange(&provider, &code, "nonce-1").await.unwrap_err();

    assert!(matches!(&err, UpstreamError::InvalidGrant), "{err}");
    assert!(!err.to_string().contains(&code));
}

#[tokio::test]
async fn refresh_returns_new_tokens() {
    let idp = FakeIdp::start().await;
    let provider = provider(&idp).await;
    let code = idp.issue_code(Grant::new("nonce-1"));
    let first = exchange(&provider, &code, "nonce-1").await.unwrap().tokens;
    let now = Utc::now();

    let refreshed = provider
        .refresh(first.refresh_token.as_deref().unwrap(), now)
        .await
        .unwrap();

    assert!(refreshed.access_token.is_some() && refreshed.access_token != first.access_token);
    assert!(refreshed.refresh_token.is_some() && refreshed.refresh_token != first.refresh_token);
    assert_eq!(
        refreshed.expires_at,
        Some(now + chrono::Duration::seconds(3600))
    );
    let sent = idp.token_requests();
    assert_eq!(sent[1]["grant_type"], "refresh_token");
    // The old refresh token was rotated away by the fake: using it again is refused.
    let err = provider
        .refresh(first.refresh_token.as_deref().unwrap(), now)
        .await
        .unwrap_err();
    assert!(matches!(err, UpstreamError::InvalidGrant), "{err}");
}

#[tokio::test]
async fn a_missing_email_falls_back_to_userinfo() {
    let idp = FakeIdp::start().await;
    let provider = provider(&idp).await;
    let code = idp.issue_code(Grant {
        email_in_id_token: false,
        ..Grant::new("nonce-1")
    });

    let identity = exchange(&provider, &code, "nonce-1").await.unwrap();

    assert_eq!(identity.email.as_deref(), Some("Ada@Example.com"));
    assert!(identity.email_verified);
}

#[tokio::test]
async fn discovery_of_an_unreachable_issuer_fails() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let issuer = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    let idp = FakeIdp::start().await;
    let settings = OidcSettings {
        issuer: Url::parse(&issuer).unwrap(),
        ..idp.settings()
    };

    let err = OidcProvider::discover("fake", "Fake IdP", &settings, http_client().unwrap())
        .await
        .unwrap_err();

    assert!(matches!(err, UpstreamError::Discovery(_)), "{err}");
}
