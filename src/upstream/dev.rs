//! The development provider (`kind = "dev"`): signs anyone in with just an email address,
//! through a form Portcullis serves itself, so the zero-configuration demo works with no IdP.
//!
//! Configuration refuses it on a non-loopback bind. It still behaves like a real provider
//! where that matters to the rest of Portcullis: its code is bound to the PKCE challenge and
//! nonce of the flow, expires after two minutes and is only ever delivered to Portcullis' own
//! callback. The code is a Fernet token, so no state is kept; within its two minutes it could
//! be presented twice, which the callback's single-use flow record already prevents.

use async_trait::async_trait;
use axum::Router;
use axum::extract::rejection::{FormRejection, QueryRejection};
use axum::extract::{Form, Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tower_http::set_header::SetResponseHeaderLayer;
use url::Url;

use super::{AuthorizationRequest, Identity, Provider, ProviderTokens, UpstreamError};
use crate::clock::Clock;
use crate::config::ProviderSettings;
use crate::crypto::{Secrets, constant_time_eq, pkce_s256, random_token};

/// The claim carrying the role picked on the form; the access policy gives that role.
pub const DEV_ROLE_CLAIM: &str = "role";
/// Where the sign-in form is served, relative to the public base URL.
pub const SIGN_IN_PATH: &str = "/dev/sign-in";
/// How long a code from the form stays usable.
const CODE_TTL_SECS: i64 = 120;
/// How long the upstream access token is said to live.
const TOKEN_TTL_SECS: i64 = 3600;
/// RFC 5321 §4.5.3.1.3 caps a forward path at 256 octets, so an address at 254.
const MAX_EMAIL_LEN: usize = 254;

/// The development provider.
#[derive(Debug, Clone)]
pub struct DevProvider {
    id: String,
    display_name: String,
    /// The public base URL, possibly with a path prefix.
    base: Url,
    secrets: Secrets,
}

impl DevProvider {
    pub fn new(
        settings: &ProviderSettings,
        public_base_url: &Url,
        secrets: Secrets,
    ) -> DevProvider {
        DevProvider {
            id: settings.id.clone(),
            display_name: settings.display_name.clone(),
            base: public_base_url.clone(),
            secrets,
        }
    }
}

/// What the code carries from the form to `exchange`, encrypted.
#[derive(Debug, Serialize, Deserialize)]
struct DevCode {
    /// Binds the code to the provider whose callback received it.
    provider: String,
    email: String,
    nonce: String,
    code_challenge: String,
    /// Unix seconds.
    issued_at: i64,
    /// The role picked on the form, if any: the identity's `role` claim.
    #[serde(default)]
    role: Option<String>,
}

#[async_trait]
impl Provider for DevProvider {
    fn id(&self) -> &str {
        &self.id
    }

    fn display_name(&self) -> &str {
        &self.display_name
    }

    fn authorization_url(&self, request: &AuthorizationRequest<'_>) -> Result<Url, UpstreamError> {
        let mut url = join_public(&self.base, SIGN_IN_PATH);
        url.query_pairs_mut()
            .append_pair("provider", &self.id)
            .append_pair("state", request.state)
            .append_pair("nonce", request.nonce)
            .append_pair("code_challenge", request.pkce_challenge)
            .append_pair("redirect_uri", request.redirect_uri.as_str());
        Ok(url)
    }

    async fn exchange(
        &self,
        code: &str,
        pkce_verifier: &str,
        nonce: &str,
        _redirect_uri: &Url,
        now: DateTime<Utc>,
    ) -> Result<Identity, UpstreamError> {
        let refused = |why: &str| UpstreamError::Refused(format!("development code {why}"));
        let plaintext = self
            .secrets
            .decrypt(code)
            .map_err(|_| refused("does not decrypt"))?;
        let code: DevCode =
            serde_json::from_str(&plaintext).map_err(|_| refused("is malformed"))?;
        if code.provider != self.id {
            return Err(refused("was issued for another provider"));
        }
        let age = now.timestamp() - code.issued_at;
        // A little tolerance for a code minted a moment "after" the caller read its clock.
        if !(-5..=CODE_TTL_SECS).contains(&age) {
            return Err(refused("has expired"));
        }
        if !constant_time_eq(&pkce_s256(pkce_verifier), &code.code_challenge) {
            return Err(refused("does not match the PKCE verifier"));
        }
        if !constant_time_eq(nonce, &code.nonce) {
            return Err(UpstreamError::Invalid(
                "development code nonce mismatch".into(),
            ));
        }
        Ok(Identity {
            subject: code.email.to_lowercase(),
            email: Some(code.email),
            email_verified: true,
            name: None,
            claims: match code.role {
                Some(role) => serde_json::json!({ DEV_ROLE_CLAIM: role }),
                None => serde_json::Value::Object(serde_json::Map::new()),
            },
            tokens: fresh_tokens(now),
        })
    }

    async fn refresh(
        &self,
        _refresh_token: &str,
        now: DateTime<Utc>,
    ) -> Result<ProviderTokens, UpstreamError> {
        Ok(fresh_tokens(now))
    }
}

fn fresh_tokens(now: DateTime<Utc>) -> ProviderTokens {
    ProviderTokens {
        access_token: Some(random_token(32)),
        refresh_token: Some(random_token(32)),
        id_token: None,
        expires_at: Some(now + chrono::Duration::seconds(TOKEN_TTL_SECS)),
    }
}

/// `base` followed by `path`, keeping a path prefix in `base` (`https://example.com/auth` +
/// `/dev/sign-in` is `https://example.com/auth/dev/sign-in`, which `Url::join` would not give).
fn join_public(base: &Url, path: &str) -> Url {
    let mut url = base.clone();
    let joined = format!(
        "{}/{}",
        base.path().trim_end_matches('/'),
        path.trim_start_matches('/')
    );
    url.set_path(&joined);
    url.set_query(None);
    url.set_fragment(None);
    url
}

/// The path prefix of the public base URL (`""` or `/auth`), for links in pages.
fn base_path(base: &Url) -> String {
    base.path().trim_end_matches('/').to_owned()
}

#[derive(Clone)]
struct DevState {
    secrets: Secrets,
    base: Url,
    clock: Clock,
    roles: Vec<String>,
}

/// The sign-in page: GET shows the form, POST mints the code and redirects to the callback.
///
/// Merge it at the root of the application router (it serves [`SIGN_IN_PATH`]); it carries its
/// own state, so it fits a router of any state type. Use the same `Secrets` and public base URL
/// as the [`DevProvider`]. `roles` are the configured roles the form offers.
pub fn router<S: Clone + Send + Sync + 'static>(
    secrets: Secrets,
    base: Url,
    clock: Clock,
    roles: Vec<String>,
) -> Router<S> {
    Router::new()
        .route(SIGN_IN_PATH, get(show_sign_in).post(submit_sign_in))
        // The page carries the flow's state: keep it out of frames, caches and referrers.
        .layer(SetResponseHeaderLayer::overriding(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(
                "default-src 'none'; style-src 'self'; frame-ancestors 'none'; base-uri 'none'",
            ),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::X_FRAME_OPTIONS,
            HeaderValue::from_static("DENY"),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::CACHE_CONTROL,
            HeaderValue::from_static("no-store"),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        ))
        .with_state(DevState {
            secrets,
            base,
            clock,
            roles,
        })
}

/// The flow parameters the page carries from the authorization URL through the form.
#[derive(Debug, Deserialize)]
struct FlowParams {
    provider: String,
    state: String,
    nonce: String,
    code_challenge: String,
    redirect_uri: String,
}

#[derive(Debug, Deserialize)]
struct SignInForm {
    #[serde(flatten)]
    flow: FlowParams,
    #[serde(default)]
    email: String,
    /// Empty for the default role.
    #[serde(default)]
    role: String,
}

#[derive(askama::Template, askama_web::WebTemplate)]
#[template(path = "dev_sign_in.html")]
struct SignInPage {
    base_path: String,
    /// `None` when the link itself is unusable: only the error is shown.
    flow: Option<FlowFields>,
    email: String,
    error: Option<String>,
    /// The roles to pick from (none: no choice shown), and the one picked.
    roles: Vec<String>,
    role: String,
}

struct FlowFields {
    provider: String,
    state: String,
    nonce: String,
    code_challenge: String,
    redirect_uri: String,
}

impl FlowParams {
    /// The callback to redirect to, if the parameters are ones Portcullis could have produced.
    /// The redirect target must be Portcullis' own callback for that provider: anything else
    /// would make this page an open redirector.
    fn validate(&self, base: &Url) -> Option<Url> {
        let id_ok = !self.provider.is_empty()
            && self.provider.len() <= 64
            && self
                .provider
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
        let expected = join_public(base, &format!("callback/{}", self.provider));
        let challenge_ok = self.code_challenge.len() == 43
            && self
                .code_challenge
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        let bounded = |value: &str| !value.is_empty() && value.len() <= 512;
        (id_ok
            && challenge_ok
            && bounded(&self.state)
            && bounded(&self.nonce)
            && self.redirect_uri == expected.as_str())
        .then_some(expected)
    }

    fn into_fields(self) -> FlowFields {
        FlowFields {
            provider: self.provider,
            state: self.state,
            nonce: self.nonce,
            code_challenge: self.code_challenge,
            redirect_uri: self.redirect_uri,
        }
    }
}

fn invalid_link(base: &Url) -> Response {
    let page = SignInPage {
        base_path: base_path(base),
        flow: None,
        email: String::new(),
        error: Some("This sign-in link is not valid. Start again from your application.".into()),
        roles: Vec::new(),
        role: String::new(),
    };
    (StatusCode::BAD_REQUEST, page).into_response()
}

async fn show_sign_in(
    State(state): State<DevState>,
    params: Result<Query<FlowParams>, QueryRejection>,
) -> Response {
    let Ok(Query(params)) = params else {
        return invalid_link(&state.base);
    };
    if params.validate(&state.base).is_none() {
        return invalid_link(&state.base);
    }
    SignInPage {
        base_path: base_path(&state.base),
        flow: Some(params.into_fields()),
        email: String::new(),
        error: None,
        roles: state.roles.clone(),
        role: String::new(),
    }
    .into_response()
}

async fn submit_sign_in(
    State(state): State<DevState>,
    form: Result<Form<SignInForm>, FormRejection>,
) -> Response {
    let Ok(Form(form)) = form else {
        return invalid_link(&state.base);
    };
    let Some(mut callback) = form.flow.validate(&state.base) else {
        return invalid_link(&state.base);
    };
    let email = form.email.trim();
    let role_ok = form.role.is_empty() || state.roles.contains(&form.role);
    let checked = check_email(email).and_then(|()| {
        role_ok
            .then_some(())
            .ok_or("Choose one of the listed roles.")
    });
    if let Err(message) = checked {
        let page = SignInPage {
            base_path: base_path(&state.base),
            email: email.to_owned(),
            flow: Some(form.flow.into_fields()),
            error: Some(message.into()),
            roles: state.roles.clone(),
            role: form.role,
        };
        return (StatusCode::BAD_REQUEST, page).into_response();
    }
    let code = DevCode {
        provider: form.flow.provider,
        email: email.to_owned(),
        nonce: form.flow.nonce,
        code_challenge: form.flow.code_challenge,
        issued_at: state.clock.now().timestamp(),
        role: (!form.role.is_empty()).then_some(form.role),
    };
    let Ok(plaintext) = serde_json::to_string(&code) else {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    };
    callback
        .query_pairs_mut()
        .append_pair("code", &state.secrets.encrypt(&plaintext))
        .append_pair("state", &form.flow.state);
    Redirect::to(callback.as_str()).into_response()
}

/// A sanity check, not RFC 5322: one `@`, something on both sides, no spaces, not too long.
fn check_email(email: &str) -> Result<(), &'static str> {
    if email.is_empty() {
        return Err("Enter an email address.");
    }
    if email.len() > MAX_EMAIL_LEN {
        return Err("That email address is too long.");
    }
    let mut parts = email.split('@');
    let valid = matches!(
        (parts.next(), parts.next(), parts.next()),
        (Some(local), Some(domain), None) if !local.is_empty() && !domain.is_empty()
    ) && !email.chars().any(|c| c.is_whitespace() || c.is_control());
    if valid {
        Ok(())
    } else {
        Err("Enter an email address like name@example.com.")
    }
}

/// The development provider end to end.
#[cfg(test)]
mod tests;
