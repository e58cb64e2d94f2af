//! A small local stand-in for GitHub, answering the documented shapes of the endpoints the
//! GitHub provider uses (GitHub itself cannot be reached from here): the authorize redirect
//! (signing in whoever the test chose), the token endpoint (HTTP 200 with an `error` body when it
//! refuses, as GitHub does), and `/api/v3/user`, `/user/emails`, `/user/orgs`, `/user/teams`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Json, Router};
use base64::Engine;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

pub const CLIENT_ID: &str = "gh-client";
pub const CLIENT_SECRET: &str = "gh-secret";

/// A GitHub account.
#[derive(Debug, Clone)]
pub struct Account {
    pub id: u64,
    pub login: &'static str,
    pub orgs: Vec<&'static str>,
    /// `(org, team slug)`.
    pub teams: Vec<(&'static str, &'static str)>,
    pub verified_email: bool,
}

#[derive(Default)]
struct Shared {
    accounts: HashMap<&'static str, Account>,
    /// Who the next authorize request signs in.
    next: Option<&'static str>,
    /// code → (login, PKCE challenge)
    codes: HashMap<String, (&'static str, String)>,
}

/// The running stand-in; stops with the test process.
#[derive(Clone)]
pub struct FakeGithub {
    pub base_url: String,
    shared: Arc<Mutex<Shared>>,
}

impl FakeGithub {
    pub async fn start(accounts: Vec<Account>) -> Self {
        let shared = Arc::new(Mutex::new(Shared {
            accounts: accounts.into_iter().map(|a| (a.login, a)).collect(),
            ..Shared::default()
        }));
        let app = Router::new()
            .route("/login/oauth/authorize", get(authorize))
            .route("/login/oauth/access_token", post(token))
            .route("/api/v3/user", get(user))
            .route("/api/v3/user/emails", get(emails))
            .route("/api/v3/user/orgs", get(orgs))
            .route("/api/v3/user/teams", get(teams))
            .with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base_url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.ok() });
        Self { base_url, shared }
    }

    /// The next sign-in is `login`'s.
    pub fn sign_in_next(&self, login: &'static str) {
        self.shared.lock().unwrap().next = Some(login);
    }
}

type SharedState = State<Arc<Mutex<Shared>>>;

async fn authorize(
    State(shared): SharedState,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let mut shared = shared.lock().unwrap();
    let (Some(login), Some(redirect), Some(state), Some(challenge)) = (
        shared.next.take(),
        q.get("redirect_uri"),
        q.get("state"),
        q.get("code_challenge"),
    ) else {
        return (StatusCode::BAD_REQUEST, "authorize: missing parameters").into_response();
    };
    if q.get("client_id").map(String::as_str) != Some(CLIENT_ID) {
        return (StatusCode::BAD_REQUEST, "authorize: unknown client").into_response();
    }
    let code = format!("code-{login}-{}", shared.codes.len());
    shared
        .codes
        .insert(code.clone(), (login, challenge.clone()));
    Redirect::to(&format!("{redirect}?code={code}&state={state}")).into_response()
}

async fn token(
    State(shared): SharedState,
    Form(form): Form<HashMap<String, String>>,
) -> Json<Value> {
    let field = |name: &str| form.get(name).map(String::as_str).unwrap_or_default();
    if field("client_id") != CLIENT_ID || field("client_secret") != CLIENT_SECRET {
        return Json(json!({"error": "incorrect_client_credentials"}));
    }
    let Some((login, challenge)) = shared.lock().unwrap().codes.remove(field("code")) else {
        return Json(
            json!({"error": "bad_verification_code", "error_description": "The code passed is incorrect or expired."}),
        );
    };
    let verifier = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(Sha256::digest(field("code_verifier").as_bytes()));
    if verifier != challenge {
        return Json(json!({"error": "bad_verification_code", "error_description": "PKCE"}));
    }
    Json(
        json!({"access_token": format!("gho_{login}"), "token_type": "bearer", "scope": "read:user,user:email,read:org"}),
    )
}

/// The account a request's token is for.
fn account(shared: &SharedState, headers: &HeaderMap) -> Option<Account> {
    let token = headers
        .get(header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .strip_prefix("Bearer gho_")?;
    shared.lock().unwrap().accounts.get(token).cloned()
}

async fn user(State(shared): SharedState, headers: HeaderMap) -> Response {
    match account(&State(shared), &headers) {
        Some(a) => Json(json!({"id": a.id, "login": a.login, "name": null})).into_response(),
        None => StatusCode::UNAUTHORIZED.into_response(),
    }
}

async fn emails(State(shared): SharedState, headers: HeaderMap) -> Response {
    match account(&State(shared), &headers) {
        Some(a) => Json(json!([
            {"email": format!("{}@users.noreply.github.test", a.login), "primary": false, "verified": true},
            {"email": format!("{}@github.test", a.login), "primary": true, "verified": a.verified_email},
        ]))
        .into_response(),
        None => StatusCode::UNAUTHORIZED.into_response(),
    }
}

async fn orgs(State(shared): SharedState, headers: HeaderMap) -> Response {
    match account(&State(shared), &headers) {
        Some(a) => Json(
            a.orgs
                .iter()
                .map(|o| json!({"login": o}))
                .collect::<Vec<_>>(),
        )
        .into_response(),
        None => StatusCode::UNAUTHORIZED.into_response(),
    }
}

async fn teams(State(shared): SharedState, headers: HeaderMap) -> Response {
    match account(&State(shared), &headers) {
        Some(a) => Json(
            a.teams
                .iter()
                .map(|(org, slug)| json!({"slug": slug, "organization": {"login": org}}))
                .collect::<Vec<_>>(),
        )
        .into_response(),
        None => StatusCode::UNAUTHORIZED.into_response(),
    }
}
