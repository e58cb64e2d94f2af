//! The browser side of the flow: `/authorize`, the provider and consent pages, the upstream
//! callback. Server-rendered (askama), framed by nobody, cached by nobody.

use std::borrow::Cow;

use askama::Template;
use axum::body::Body;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::crypto::random_token;
use crate::oauth::authorize::{self, AuthorizeError, AuthorizeOutcome};
use crate::oauth::callback;
use crate::oauth::consent::{self, ConsentStep, ConsentView, ProviderView};
use crate::oauth::error::FlowError;
use crate::oauth::params::Params;
use crate::paths;
use crate::state::AppState;

/// The largest form the pages accept.
const MAX_FORM_BYTES: usize = 16 * 1024;

#[derive(Template)]
#[template(path = "consent.html")]
struct ConsentPage<'a> {
    base_path: &'a str,
    action: String,
    view: ConsentView,
}

#[derive(Template)]
#[template(path = "provider.html")]
struct ProviderPage<'a> {
    base_path: &'a str,
    action: String,
    view: ProviderView,
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage<'a> {
    base_path: &'a str,
    title: &'a str,
    message: &'a str,
}

/// The path prefix of the public URL, for links in pages (`""` at the root).
fn base_path(state: &AppState) -> &str {
    state.public.prefix()
}

/// Headers every page carries: no framing (clickjacking on consent), no caching, no referrer
/// (the URL holds the flow id), and a CSP that allows only our stylesheet.
fn harden(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'none'; style-src 'self'; img-src 'self' data:; base-uri 'none'; frame-ancestors 'none'"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    response
}

fn html(status: StatusCode, rendered: Result<String, askama::Error>) -> Response {
    match rendered {
        Ok(body) => harden(
            (
                status,
                [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
                body,
            )
                .into_response(),
        ),
        Err(error) => {
            tracing::error!(%error, "rendering a page failed");
            harden((StatusCode::INTERNAL_SERVER_ERROR, "internal error").into_response())
        }
    }
}

/// How a step that cannot go on is shown to the person: status, title and explanation.
fn page_copy(error: &FlowError) -> (StatusCode, &'static str, Cow<'static, str>) {
    let bad = StatusCode::BAD_REQUEST;
    let again = "Go back to your application and connect again.";
    match error {
        FlowError::InvalidRequest(why) => (bad, "Invalid authorization request", why.clone()),
        FlowError::MissingClientId => (
            bad,
            "Invalid authorization request",
            "The request does not name a client (client_id).".into(),
        ),
        FlowError::UnknownClient => (
            bad,
            "Unknown application",
            "The application asking you to sign in is not registered here.".into(),
        ),
        FlowError::ClientRefused(why) => (
            bad,
            "This application is not accepted here",
            format!("The application identifies itself by an address whose description cannot be used: {}. You have not been signed in.", why).into(),
        ),
        FlowError::ClientUnavailable(why) => (
            StatusCode::SERVICE_UNAVAILABLE,
            "The application could not be checked",
            format!("Portcullis could not read the application's description ({why}). {again}").into(),
        ),
        FlowError::MissingRedirectUri => (
            bad,
            "Invalid authorization request",
            "The request names no redirect_uri.".into(),
        ),
        FlowError::UnregisteredRedirectUri => (
            bad,
            "Invalid redirect address",
            "The application asked to return you to an address it did not register. You have not been signed in.".into(),
        ),
        FlowError::MalformedRedirectUri => (
            bad,
            "Invalid redirect address",
            "The redirect address is malformed.".into(),
        ),
        FlowError::FlowGone => (
            bad,
            "This sign-in link has expired",
            format!("The sign-in request is unknown, already finished, or too old. {again}").into(),
        ),
        FlowError::ForeignBrowser => (
            StatusCode::FORBIDDEN,
            "Use the browser you started from",
            "This sign-in was started in another browser. Go back to your application and connect again from here.".into(),
        ),
        FlowError::FormExpired => (
            StatusCode::FORBIDDEN,
            "This form has expired",
            format!("The form could not be verified. {again}").into(),
        ),
        FlowError::InvalidForm(why) => (bad, "Invalid form", Cow::Owned(capitalized(why))),
        FlowError::UnknownProvider => (
            bad,
            "Unknown sign-in provider",
            "Choose one of the listed providers.".into(),
        ),
        FlowError::NotAdmitted { provider_name } => (
            StatusCode::FORBIDDEN,
            "You may not sign in here",
            format!(
                "{provider_name} signed you in, but this gateway does not admit your account. No access was granted. If you think you should have access, ask the people who run it."
            )
            .into(),
        ),
        FlowError::Unavailable => (
            StatusCode::SERVICE_UNAVAILABLE,
            "Temporarily unavailable",
            "Portcullis cannot finish this step right now. Wait a few seconds, then reload this page.".into(),
        ),
        FlowError::Internal => (
            StatusCode::INTERNAL_SERVER_ERROR,
            "Something went wrong",
            "Portcullis could not finish this step. Please try again.".into(),
        ),
    }
}

/// `why` as a sentence.
fn capitalized(why: &str) -> String {
    let mut chars = why.chars();
    match chars.next() {
        Some(first) => format!("{}{}.", first.to_uppercase(), chars.as_str()),
        None => String::new(),
    }
}

fn error_page(state: &AppState, error: &FlowError) -> Response {
    let (status, title, message) = page_copy(error);
    let mut response = html(
        status,
        ErrorPage {
            base_path: base_path(state),
            title,
            message: &message,
        }
        .render(),
    );
    if status == StatusCode::SERVICE_UNAVAILABLE {
        super::api::retry_after(&mut response);
    }
    response
}

/// Sends the browser to a page of the flow `flow_id`.
fn flow_page(state: &AppState, path: &str, flow_id: &str) -> Response {
    redirect(&format!("{}?flow={flow_id}", state.public.url(path)))
}

fn redirect(location: &str) -> Response {
    harden(
        (
            StatusCode::SEE_OTHER,
            [(header::LOCATION, location.to_owned())],
        )
            .into_response(),
    )
}

/// The name of the browser-binding cookie: `__Host-` over https (bound to this exact origin).
fn cookie_name(state: &AppState) -> &'static str {
    if state.public.is_https() {
        "__Host-portcullis-browser"
    } else {
        "portcullis-browser"
    }
}

fn browser_secret(state: &AppState, headers: &HeaderMap) -> Option<String> {
    let name = cookie_name(state);
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(cookie::Cookie::split_parse)
        .filter_map(Result::ok)
        .find(|c| c.name() == name)
        .map(|c| c.value().to_owned())
        .filter(|v| v.len() >= 32)
}

fn set_browser_cookie(state: &AppState, response: &mut Response, secret: &str) {
    // Lax: the upstream provider's redirect back is a top-level GET navigation from another
    // site, which must carry the cookie; a cross-site form POST must not.
    let mut cookie = cookie::Cookie::build((cookie_name(state), secret.to_owned()))
        .http_only(true)
        .path("/")
        .same_site(cookie::SameSite::Lax);
    if state.public.is_https() {
        cookie = cookie.secure(true);
    }
    // A remembered consent lives in this browser: the cookie outlives the browser session as
    // long as the approval does.
    if let Ok(remember) =
        cookie::time::Duration::try_from(state.auth.remember_consent.to_std().unwrap_or_default())
        && remember > cookie::time::Duration::ZERO
    {
        cookie = cookie.max_age(remember);
    }
    if let Ok(value) = HeaderValue::from_str(&cookie.build().to_string()) {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
}

async fn read_form(body: Body) -> Result<Params, FlowError> {
    let bytes = axum::body::to_bytes(body, MAX_FORM_BYTES)
        .await
        .map_err(|_| FlowError::InvalidForm("the form is too large"))?;
    let text =
        std::str::from_utf8(&bytes).map_err(|_| FlowError::InvalidForm("the form is not UTF-8"))?;
    Params::parse(text).map_err(|_| FlowError::InvalidForm("the form could not be read"))
}

/// The flow named by `?flow=…`, if this browser started it.
async fn flow_of_query(
    state: &AppState,
    headers: &HeaderMap,
    query: Option<&str>,
) -> Result<crate::store::Flow, FlowError> {
    let flow_id = flow_param(query).ok_or(FlowError::FlowGone)?;
    consent::flow_for_browser(
        &state.auth,
        &flow_id,
        browser_secret(state, headers).as_deref(),
        state.now(),
    )
    .await
}

fn flow_param(query: Option<&str>) -> Option<String> {
    Params::parse(query.unwrap_or_default())
        .ok()?
        .get("flow")
        .map(str::to_owned)
}

/// RFC 6749 §4.1.1, with OAuth 2.1's PKCE requirement.
pub async fn authorize(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let existing = browser_secret(&state, &headers);
    let secret = existing.clone().unwrap_or_else(|| random_token(32));
    let outcome = authorize::start(
        &state.auth,
        query.as_deref().unwrap_or_default(),
        &secret,
        state.now(),
    )
    .await;
    let mut response = match outcome {
        Ok(AuthorizeOutcome::ChooseProvider { flow_id }) => {
            flow_page(&state, paths::AUTHORIZE_PROVIDER, &flow_id)
        }
        Ok(AuthorizeOutcome::Consent { flow_id }) => {
            flow_page(&state, paths::AUTHORIZE_CONSENT, &flow_id)
        }
        Err(AuthorizeError::Redirect(url)) => return redirect(url.as_str()),
        Err(AuthorizeError::Page(error)) => return error_page(&state, &error),
    };
    // With remembered consent the cookie is set again, so that it lives as long as an
    // approval given now.
    if existing.is_none() || state.auth.remember_consent > chrono::Duration::zero() {
        set_browser_cookie(&state, &mut response, &secret);
    }
    response
}

pub async fn provider_page(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let result = async {
        let flow = flow_of_query(&state, &headers, query.as_deref()).await?;
        consent::provider_view(&state.auth, &flow, state.now()).await
    }
    .await;
    match result {
        Ok(view) => html(
            StatusCode::OK,
            ProviderPage {
                base_path: base_path(&state),
                action: state.public.url(paths::AUTHORIZE_PROVIDER),
                view,
            }
            .render(),
        ),
        Err(error) => error_page(&state, &error),
    }
}

pub async fn choose_provider(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let result = async {
        let form = read_form(body).await?;
        consent::choose_provider(
            &state.auth,
            &form,
            browser_secret(&state, &headers).as_deref(),
            state.now(),
        )
        .await
    }
    .await;
    match result {
        Ok(flow_id) => flow_page(&state, paths::AUTHORIZE_CONSENT, &flow_id),
        Err(error) => error_page(&state, &error),
    }
}

pub async fn consent_page(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let result = async {
        let flow = flow_of_query(&state, &headers, query.as_deref()).await?;
        if flow.data.provider.is_none() {
            return Ok(Err(flow.id));
        }
        consent::consent_step(&state.auth, &flow, state.now())
            .await
            .map(Ok)
    }
    .await;
    match result {
        Ok(Ok(ConsentStep::Ask(view))) => html(
            StatusCode::OK,
            ConsentPage {
                base_path: base_path(&state),
                action: state.public.url(paths::AUTHORIZE_CONSENT),
                view: *view,
            }
            .render(),
        ),
        Ok(Ok(ConsentStep::Remembered(upstream))) => redirect(upstream.as_str()),
        // No provider chosen yet: the person skipped the provider page.
        Ok(Err(flow_id)) => flow_page(&state, paths::AUTHORIZE_PROVIDER, &flow_id),
        Err(error) => error_page(&state, &error),
    }
}

pub async fn decide(State(state): State<AppState>, headers: HeaderMap, body: Body) -> Response {
    let result = async {
        let form = read_form(body).await?;
        consent::decide(
            &state.auth,
            &form,
            browser_secret(&state, &headers).as_deref(),
            state.now(),
        )
        .await
    }
    .await;
    match result {
        Ok(url) => redirect(url.as_str()),
        Err(error) => error_page(&state, &error),
    }
}

pub async fn callback(
    State(state): State<AppState>,
    Path(provider): Path<String>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let secret = browser_secret(&state, &headers);
    match callback::finish(
        &state.auth,
        &provider,
        query.as_deref().unwrap_or_default(),
        secret.as_deref(),
        state.now(),
    )
    .await
    {
        Ok(url) => redirect(url.as_str()),
        Err(error) => error_page(&state, &error),
    }
}
