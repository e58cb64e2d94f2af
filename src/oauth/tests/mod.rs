//! The OAuth outcomes as plain function calls with a fixed `now`: no HTTP, no IdP, no network.
//! The upstream provider is scripted in-process; the store is a fresh SQLite file.

/// Authorize, consent and callback.
mod flow;
/// The code and refresh grants.
mod grants;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use chrono::{DateTime, TimeZone, Utc};
use url::Url;

use super::access::AccessPolicy;
use super::authorize::{self, AuthorizeOutcome};
use super::cimd::Clients;
use super::params::Params;
use super::resource::{GrantMode, ResourceSpec, Resources};
use super::revocation::RevocationView;
use super::server::{AuthorizationServer, Lifetimes};
use super::tokens::{KeySet, install_crypto_provider};
use super::upstream_tokens::UpstreamTokenKeeper;
use super::{callback, consent, grants as token_endpoint, registration};
use crate::audit::Auditor;
use crate::crypto::{Secrets, pkce_s256};
use crate::paths::PublicUrl;
use crate::upstream::{
    AuthorizationRequest, Identity, Provider, ProviderTokens, Providers, UpstreamError,
};

const BASE: &str = "https://as.example.com";
const REDIRECT: &str = "https://app.example.com/cb";
const VERIFIER: &str = "a-code-verifier-that-is-long-enough-for-rfc-7636-0123456789";
const BROWSER: &str = "browser-secret-0123456789abcdef0123456789";
/// The scripted provider as configured: it may grant `orders:*:*`.
const CORP: &str = r#"
[[providers]]
id = "corp"
kind = "oidc"
issuer = "https://id.example.com"
client_id = "portcullis"
client_secret = "secret"
grant_scopes = ["orders:*:*"]
"#;

/// A fixed instant, and offsets from it.
fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 30, 12, 0, 0)
        .single()
        .unwrap()
}

/// An upstream provider that answers as scripted.
#[derive(Default)]
struct Scripted {
    /// What `exchange` answers.
    exchange: Mutex<Option<Result<Identity, UpstreamError>>>,
    /// What the next `refresh` answers, and how often it was asked.
    refresh: Mutex<Option<Result<ProviderTokens, UpstreamError>>>,
    refreshes: Mutex<u32>,
    /// The last authorization request, as seen.
    asked: Mutex<HashMap<&'static str, String>>,
}

#[async_trait]
impl Provider for Scripted {
    fn id(&self) -> &str {
        "corp"
    }
    fn display_name(&self) -> &str {
        "Corp"
    }
    fn authorization_url(&self, request: &AuthorizationRequest<'_>) -> Result<Url, UpstreamError> {
        let mut asked = self.asked.lock().unwrap();
        asked.insert("state", request.state.to_owned());
        asked.insert("nonce", request.nonce.to_owned());
        asked.insert("challenge", request.pkce_challenge.to_owned());
        asked.insert("redirect_uri", request.redirect_uri.to_string());
        Ok(Url::parse(&format!(
            "https://idp.example.com/authorize?state={}",
            request.state
        ))
        .unwrap())
    }
    async fn exchange(
        &self,
        _code: &str,
        _verifier: &str,
        _nonce: &str,
        _redirect_uri: &Url,
        _now: DateTime<Utc>,
    ) -> Result<Identity, UpstreamError> {
        self.exchange
            .lock()
            .unwrap()
            .take()
            .unwrap_or_else(|| Err(UpstreamError::Refused("no code was scripted".into())))
    }
    async fn refresh(
        &self,
        _token: &str,
        _now: DateTime<Utc>,
    ) -> Result<ProviderTokens, UpstreamError> {
        *self.refreshes.lock().unwrap() += 1;
        self.refresh
            .lock()
            .unwrap()
            .take()
            .unwrap_or_else(|| Err(UpstreamError::Transport("unreachable".into())))
    }
}

/// One person's identity at the scripted provider, with tokens that expire at `expires_at`.
fn identity(email: &str, expires_at: DateTime<Utc>) -> Identity {
    Identity {
        subject: format!("sub-{email}"),
        email: Some(email.to_owned()),
        email_verified: true,
        name: None,
        claims: serde_json::json!({}),
        tokens: ProviderTokens {
            access_token: Some("upstream-access".into()),
            refresh_token: Some("upstream-refresh".into()),
            id_token: None,
            expires_at: Some(expires_at),
        },
    }
}

/// An authorization server over a fresh database, a scripted provider that may grant
/// `orders:*:*`, and one resource at `/mcp`.
struct Fixture {
    server: AuthorizationServer,
    provider: Arc<Scripted>,
    _dir: tempfile::TempDir,
}

impl Fixture {
    async fn new() -> Self {
        Self::with("").await
    }

    /// With `corp_toml` added to the scripted provider's configuration.
    async fn with(corp_toml: &str) -> Self {
        install_crypto_provider();
        let settings = crate::config::Settings::from_toml(&format!(
            "fernet_keys = [\"{}\"]\n{CORP}{corp_toml}",
            Secrets::generate_key()
        ))
        .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("oauth.db").display());
        let store = crate::store::connect(&url).await.unwrap();
        store.migrate().await.unwrap();
        let secrets = Secrets::from_keys(&[Secrets::generate_key()]).unwrap();
        let keys = Arc::new(
            KeySet::load_or_create(store.as_ref(), &secrets, t0())
                .await
                .unwrap(),
        );
        let provider = Arc::new(Scripted::default());
        let providers = Providers::from_list(vec![provider.clone()], false);
        let revocations = Arc::new(RevocationView::default());
        let public = PublicUrl::new(Url::parse(BASE).unwrap());
        let resources = Arc::new(Resources::new(
            public.base(),
            [ResourceSpec {
                path: "/mcp".to_owned(),
                scopes_supported: vec![
                    "orders:invoices:read".to_owned(),
                    "orders:invoices:write".to_owned(),
                ],
                basic_scopes: vec!["orders:invoices:read".to_owned()],
                grant: GrantMode::Requested,
            }],
        ));
        let upstream = UpstreamTokenKeeper::new(
            store.clone(),
            secrets.clone(),
            providers.clone(),
            revocations.clone(),
            settings.session_bound_providers(),
        );
        let server = AuthorizationServer {
            public,
            clients: Arc::new(Clients::new(store.clone(), &settings.cimd).unwrap()),
            remember_consent: chrono::Duration::zero(),
            store,
            secrets,
            keys,
            providers,
            access: Arc::new(AccessPolicy::new(&settings.access, &settings.providers)),
            logos: HashMap::new(),
            resources,
            revocations,
            auditor: Auditor::start(vec![]),
            lifetimes: Lifetimes::from(&settings.tokens),
            upstream,
        };
        Self {
            server,
            provider,
            _dir: dir,
        }
    }

    /// Registers a public client with `REDIRECT`; returns its id.
    async fn register(&self) -> String {
        let body = serde_json::json!({
            "redirect_uris": [REDIRECT],
            "token_endpoint_auth_method": "none",
            "grant_types": ["authorization_code", "refresh_token"],
            "client_name": "Test client",
        });
        let response = registration::register(
            self.server.store.as_ref(),
            body.to_string().as_bytes(),
            t0(),
        )
        .await
        .unwrap();
        response["client_id"].as_str().unwrap().to_owned()
    }

    /// The query of an authorization request by `client_id` with `extra` parameters.
    fn authorize_query(client_id: &str, extra: &str) -> String {
        format!(
            "response_type=code&client_id={client_id}&redirect_uri={}&state=xyz&code_challenge={}&code_challenge_method=S256{extra}",
            urlencode(REDIRECT),
            pkce_s256(VERIFIER)
        )
    }

    /// Starts an authorization request by `client_id` (with `extra` parameters) in `BROWSER` and
    /// returns its flow, waiting at the consent page.
    async fn consent_flow(
        &self,
        client_id: &str,
        extra: &str,
        now: DateTime<Utc>,
    ) -> crate::store::Flow {
        let query = Self::authorize_query(client_id, extra);
        let outcome = authorize::start(&self.server, &query, BROWSER, now)
            .await
            .unwrap();
        let AuthorizeOutcome::Consent { flow_id } = outcome else {
            panic!("one provider: straight to consent, got {outcome:?}");
        };
        consent::flow_for_browser(&self.server, &flow_id, Some(BROWSER), now)
            .await
            .unwrap()
    }

    /// Runs authorize and consent (approved) for `client_id`; returns the upstream `state`.
    async fn approve(&self, client_id: &str, scope: &str, now: DateTime<Utc>) -> String {
        let flow = self
            .consent_flow(client_id, &format!("&scope={}", urlencode(scope)), now)
            .await;
        let flow_id = &flow.id;
        let form = Params::parse(&format!(
            "flow={flow_id}&csrf={}&decision=approve",
            flow.data.csrf
        ))
        .unwrap();
        consent::decide(&self.server, &form, Some(BROWSER), now)
            .await
            .unwrap();
        self.provider.asked.lock().unwrap()["state"].clone()
    }

    /// The provider's redirect back to `/callback/corp` with `query`, in `browser`.
    async fn callback(
        &self,
        query: &str,
        browser: &str,
        now: DateTime<Utc>,
    ) -> Result<Url, super::error::FlowError> {
        callback::finish(&self.server, "corp", query, Some(browser), now).await
    }

    /// The whole browser leg for `client_id`: authorize, consent, callback. Returns the code.
    async fn sign_in(&self, client_id: &str, scope: &str, now: DateTime<Utc>) -> String {
        let ada = identity("ada@example.com", now + chrono::Duration::hours(1));
        self.sign_in_as(client_id, scope, ada, now).await
    }

    /// [`Self::sign_in`] with the provider vouching for `who`.
    async fn sign_in_as(
        &self,
        client_id: &str,
        scope: &str,
        who: Identity,
        now: DateTime<Utc>,
    ) -> String {
        let state = self.approve(client_id, scope, now).await;
        *self.provider.exchange.lock().unwrap() = Some(Ok(who));
        let back = self
            .callback(&format!("code=upstream-code&state={state}"), BROWSER, now)
            .await
            .unwrap();
        query_param(&back, "code").unwrap()
    }

    /// A token request by a public client.
    async fn token(
        &self,
        body: &str,
        now: DateTime<Utc>,
    ) -> Result<serde_json::Value, super::error::OAuthError> {
        token_endpoint::token(&self.server, None, body, now).await
    }

    fn code_body(client_id: &str, code: &str, verifier: &str) -> String {
        format!(
            "grant_type=authorization_code&client_id={client_id}&code={code}&redirect_uri={}&code_verifier={verifier}",
            urlencode(REDIRECT)
        )
    }
}

fn urlencode(value: &str) -> String {
    url::form_urlencoded::byte_serialize(value.as_bytes()).collect()
}

fn query_param(url: &Url, name: &str) -> Option<String> {
    url.query_pairs()
        .find(|(key, _)| key == name)
        .map(|(_, value)| value.into_owned())
}
