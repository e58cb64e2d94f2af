//! The rows the cases store, at fixed times.

use chrono::{DateTime, Duration, TimeZone, Utc};
use portcullis::store::{
    Attach, AuthorizationCode, Client, Flow, FlowData, Grant, RefreshToken, Retention, SignedIn,
    SigningKeyRecord, Store, UpstreamTokens,
};
use serde_json::json;

/// A fixed instant carrying microseconds, which both databases keep exactly.
/// A purge's retention: an hour for redeemed codes, a minute of refresh grace, two of step-up.
pub(super) const KEEP: Retention = Retention {
    redeemed_codes: Duration::hours(1),
    refresh_grace: Duration::minutes(1),
    step_up: Duration::minutes(2),
    audit: None,
    dead_grants: None,
    unused_clients: None,
};

pub(super) fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 22, 10, 0, 0).unwrap() + Duration::microseconds(123_456)
}

pub(super) fn at(seconds: i64) -> DateTime<Utc> {
    t0() + Duration::seconds(seconds)
}

pub(super) fn client(client_id: &str) -> Client {
    Client {
        client_id: client_id.to_owned(),
        secret_hash: Some("a3f1".repeat(16)),
        token_endpoint_auth_method: "client_secret_basic".to_owned(),
        client_name: Some("Zoë's “Inspector”".to_owned()),
        redirect_uris: vec![
            "http://127.0.0.1/callback".to_owned(),
            "https://app.example/cb?x=1".to_owned(),
        ],
        grant_types: vec!["authorization_code".to_owned(), "refresh_token".to_owned()],
        response_types: vec!["code".to_owned()],
        scope: Some("orders:*:read tools:call".to_owned()),
        metadata: json!({"logo_uri": "https://app.example/logo.png", "contacts": ["a@example.com"], "n": 1}),
        created_at: t0(),
    }
}

/// A sign-in of `subject` at `provider` with a verified `email`.
pub(super) fn signed_in(provider: &str, subject: &str, email: Option<&str>) -> SignedIn {
    SignedIn {
        provider: provider.to_owned(),
        subject: subject.to_owned(),
        email: email.map(str::to_owned),
        name: Some("Ada".to_owned()),
        claims: json!({"groups": ["eng"]}),
    }
}

pub(super) fn flow(id: &str, expires_at: DateTime<Utc>) -> Flow {
    Flow {
        id: id.to_owned(),
        expires_at,
        data: FlowData {
            client_id: "client-1".to_owned(),
            redirect_uri: "http://127.0.0.1:8976/callback".to_owned(),
            state: Some("xyz".to_owned()),
            code_challenge: "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM".to_owned(),
            scope: None,
            resource: "https://mcp.example/mcp".to_owned(),
            browser_hash: "b".repeat(64),
            csrf: "csrf-1".to_owned(),
            provider: None,
            upstream: None,
            remembered_user: None,
        },
    }
}

pub(super) fn upstream_tokens() -> UpstreamTokens {
    UpstreamTokens {
        access_token_enc: Some("gAAAAA-access".to_owned()),
        refresh_token_enc: Some("gAAAAA-refresh".to_owned()),
        id_token_enc: None,
        expires_at: Some(at(3600)),
    }
}

/// Signs a user in and inserts a grant for them (grants need their user).
pub(super) async fn seeded_grant(store: &dyn Store, id: &str) -> Grant {
    let user = store
        .record_sign_in(
            &signed_in("dev", id, Some("ada@example.com")),
            &Attach::NewUser,
            t0(),
        )
        .await
        .unwrap();
    let grant = Grant {
        id: id.to_owned(),
        user_id: user.id,
        client_id: "client-1".to_owned(),
        provider: "dev".to_owned(),
        scope: "tools:call".to_owned(),
        resource: "https://mcp.example/mcp".to_owned(),
        redirect_uri: Some("http://127.0.0.1/cb".to_owned()),
        upstream: upstream_tokens(),
        created_at: t0(),
        revoked_at: None,
    };
    store.insert_grant(&grant).await.unwrap();
    grant
}

pub(super) fn code(
    code_hash: &str,
    grant_id: &str,
    expires_at: DateTime<Utc>,
) -> AuthorizationCode {
    AuthorizationCode {
        code_hash: code_hash.to_owned(),
        grant_id: grant_id.to_owned(),
        client_id: "client-1".to_owned(),
        redirect_uri: "http://127.0.0.1:8976/callback".to_owned(),
        code_challenge: "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM".to_owned(),
        expires_at,
        redeemed_at: None,
    }
}

pub(super) fn refresh_token(
    token_hash: &str,
    grant_id: &str,
    expires_at: DateTime<Utc>,
) -> RefreshToken {
    RefreshToken {
        token_hash: token_hash.to_owned(),
        grant_id: grant_id.to_owned(),
        client_id: "client-1".to_owned(),
        created_at: t0(),
        expires_at,
        rotated_at: None,
        successor_enc: None,
    }
}

pub(super) fn signing_key(kid: &str, created_at: DateTime<Utc>) -> SigningKeyRecord {
    SigningKeyRecord {
        kid: kid.to_owned(),
        alg: "ES256".to_owned(),
        private_key_enc: format!("gAAAAA-{kid}"),
        public_jwk: format!(r#"{{"kty":"EC","crv":"P-256","kid":"{kid}"}}"#),
        created_at,
    }
}

/// The jtis of every revoked access token still stored, in revocation order.
pub(super) async fn revoked_jtis(store: &dyn Store) -> Vec<String> {
    let revoked = store.access_tokens_revoked_since(t0()).await.unwrap();
    revoked.into_iter().map(|(jti, _)| jti).collect()
}
