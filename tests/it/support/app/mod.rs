//! Starts the real application on 127.0.0.1:0 with a fresh database, and drives it like a
//! browser and an MCP client would.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use portcullis::clock::Clock;
use portcullis::config::Settings;
use portcullis::startup::Application;
use reqwest::StatusCode;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use url::Url;

/// The browser's part of a sign-in, up to the callback's answer.
mod browser;
/// Driving the MCP endpoints as a client.
mod mcp;

/// Reading what the app answers a browser: redirects, query parameters, forms.
mod pages;

pub use mcp::rpc_body;
pub use pages::{form_fields, location, query_param};

use super::db;
use super::idp::TestIdp;

/// Which database the app runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Db {
    Sqlite,
    Postgres,
}

/// A running Portcullis.
pub struct TestApp {
    /// `http://127.0.0.1:PORT`, also the issuer.
    pub base: String,
    pub clock: Clock,
    /// A plain HTTP client: no cookies, no redirects followed.
    pub http: reqwest::Client,
    /// The running app's state: lets a test mint tokens with its keys.
    pub state: portcullis::state::AppState,
    /// `http://127.0.0.1:PORT` of the operator's own listener (`[metrics] bind`), if any.
    pub operator: Option<String>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
    _tmp: Option<tempfile::TempDir>,
}

/// Options for [`spawn`].
pub struct Options {
    pub db: Db,
    /// Also configure a second provider (`partner`, the same OpenID provider), so the
    /// provider page appears.
    pub second_provider: bool,
    /// Added to the `corp` provider's table: admission rules, claim roles…
    pub corp_toml: String,
    /// Top-level keys, before every table: `default_role`, `grant`…
    pub top_toml: String,
    pub grant_scopes: &'static str,
    /// Appended to the configuration (after the providers): `[[backends]]`, `[gateway]`…
    pub extra_toml: String,
    /// A database to use instead of a fresh one of `db`'s kind (several instances on one).
    pub database_url: Option<String>,
    /// The Fernet key (instances sharing a database share it); a new one when `None`.
    pub fernet_key: Option<String>,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            db: Db::Sqlite,
            second_provider: true,
            corp_toml: String::new(),
            // The suite was written for least-privilege grants; the people tests and the real
            // clients' tests set the default (`entitlement`) themselves.
            top_toml: "grant = \"requested\"\n".to_owned(),
            grant_scopes: r#"["demo:*:read"]"#,
            extra_toml: String::new(),
            database_url: None,
            fernet_key: None,
        }
    }
}

pub fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// A browser: keeps cookies, follows no redirect by itself.
pub fn browser() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .cookie_store(true)
        .build()
        .unwrap()
}

pub async fn spawn(options: Options) -> TestApp {
    let (store_url, tmp) = match (options.database_url.clone(), options.db) {
        (Some(url), _) => (url, None),
        (None, Db::Sqlite) => {
            let (_, url, tmp) = db::fresh_sqlite().await;
            (url, Some(tmp))
        }
        (None, Db::Postgres) => {
            let (_, url) = db::fresh_postgres().await;
            (url, None)
        }
    };
    let toml = config_toml(&options, &store_url);
    spawn_with_settings(Settings::from_toml(&toml).unwrap(), tmp).await
}

/// The configuration [`spawn`] runs with, on the database at `store_url`.
pub fn config_toml(options: &Options, store_url: &str) -> String {
    let idp = TestIdp::from_env();
    let partner = if options.second_provider {
        format!(
            "[[providers]]\nid = \"partner\"\nkind = \"oidc\"\ndisplay_name = \"Partner SSO\"\nissuer = \"{}\"\nclient_id = \"{}\"\nclient_secret = \"{}\"\ngrant_scopes = {}\n",
            idp.issuer, idp.client_id, idp.client_secret, options.grant_scopes
        )
    } else {
        String::new()
    };
    format!(
        r#"
bind = "127.0.0.1:0"
database_url = "{store_url}"
fernet_keys = ["{key}"]
{top}

[[providers]]
id = "corp"
kind = "oidc"
display_name = "Corp SSO"
issuer = "{issuer}"
client_id = "{client_id}"
client_secret = "{client_secret}"
scopes = ["openid", "email", "profile", "offline_access"]
grant_scopes = {grant_scopes}
{corp}

{partner}
{extra}
"#,
        key = options
            .fernet_key
            .clone()
            .unwrap_or_else(portcullis::crypto::Secrets::generate_key),
        extra = options.extra_toml,
        issuer = idp.issuer,
        client_id = idp.client_id,
        client_secret = idp.client_secret,
        grant_scopes = options.grant_scopes,
        corp = options.corp_toml,
        top = options.top_toml,
    )
}

/// An app with only the development provider (the embedded default) on a fresh SQLite file,
/// plus `extra_toml` (`[[backends]]`…). Its generated Fernet key is kept in the test's folder.
pub async fn spawn_dev(extra_toml: &str) -> TestApp {
    let (_, db_url, tmp) = db::fresh_sqlite().await;
    let toml = format!(
        "bind = \"127.0.0.1:0\"\ndatabase_url = \"{db_url}\"\ndev_key_file = \"{}\"\n{extra_toml}",
        tmp.path().join("dev.key").display()
    );
    spawn_with_settings(Settings::from_toml(&toml).unwrap(), Some(tmp)).await
}

pub async fn spawn_with_settings(settings: Settings, tmp: Option<tempfile::TempDir>) -> TestApp {
    let clock = Clock::default();
    let app = Application::build_with_clock(settings, clock.clone())
        .await
        .unwrap();
    let base = format!("http://{}", app.local_addr());
    let operator = app.operator_addr().map(|addr| format!("http://{addr}"));
    let state = app.state().clone();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(app.run_until(async move {
        let _ = stopped.await;
    }));
    TestApp {
        base,
        clock,
        http: http_client(),
        state,
        operator,
        stop: Some(stop),
        task: Some(task),
        _tmp: tmp,
    }
}

/// The same helpers, sending `http`'s requests to a Portcullis that runs elsewhere (another
/// process, or several behind a proxy) at `base`. `state` is that of an app built on the same
/// configuration and database but not serving.
pub fn driving(base: String, http: reqwest::Client, state: portcullis::state::AppState) -> TestApp {
    TestApp {
        base,
        clock: Clock::default(),
        http,
        state,
        operator: None,
        stop: None,
        task: None,
        _tmp: None,
    }
}

/// A PKCE pair.
pub fn pkce() -> (String, String) {
    let verifier = portcullis::crypto::random_token(48);
    let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    (verifier, challenge)
}

/// A registered client.
#[derive(Debug, Clone)]
pub struct TestClient {
    pub client_id: String,
    pub client_secret: Option<String>,
    pub redirect_uri: String,
}

/// One authorization request's parameters.
pub struct AuthRequest<'a> {
    pub client: &'a TestClient,
    pub challenge: &'a str,
    pub state: &'a str,
    pub scope: Option<&'a str>,
    pub resource: Option<String>,
}

impl TestApp {
    /// Shuts the server down gracefully and waits until its port is free.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            task.await.unwrap().unwrap();
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// The upstream access token the grant `grant_id` holds, decrypted.
    pub async fn upstream_access_token(&self, grant_id: &str) -> String {
        let grant = self.state.store.get_grant(grant_id).await.unwrap().unwrap();
        self.state
            .auth
            .secrets
            .decrypt(grant.upstream.access_token_enc.as_deref().unwrap())
            .unwrap()
    }

    /// Marks the grant's upstream token expired in the store (the IdP keeps real time, so the
    /// test clock cannot make it expire).
    pub async fn expire_upstream_token(&self, grant_id: &str) {
        let mut upstream = self
            .state
            .store
            .get_grant(grant_id)
            .await
            .unwrap()
            .unwrap()
            .upstream;
        upstream.expires_at = Some(self.clock.now() - chrono::Duration::seconds(1));
        self.state
            .store
            .update_grant_upstream(grant_id, &upstream)
            .await
            .unwrap();
    }

    /// GETs a JSON document, asserting a 200.
    pub async fn get_json(&self, url: &str) -> Value {
        let response = self.http.get(url).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{url}");
        response.json().await.unwrap()
    }

    /// Registers a client through `/register` (RFC 7591).
    pub async fn register(&self, metadata: Value) -> (StatusCode, Value) {
        let response = self
            .http
            .post(self.url("/register"))
            .json(&metadata)
            .send()
            .await
            .unwrap();
        let status = response.status();
        (status, response.json().await.unwrap())
    }

    pub async fn register_public_client(&self) -> TestClient {
        let (status, body) = self
            .register(json!({
                "client_name": "Test MCP Client",
                "redirect_uris": ["http://127.0.0.1:33418/callback"],
                "token_endpoint_auth_method": "none",
                "grant_types": ["authorization_code", "refresh_token"],
                "response_types": ["code"],
            }))
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        TestClient {
            client_id: body["client_id"].as_str().unwrap().to_owned(),
            client_secret: None,
            redirect_uri: "http://127.0.0.1:33418/callback".into(),
        }
    }

    pub fn authorize_url(&self, request: &AuthRequest<'_>) -> String {
        let mut url = Url::parse(&self.url("/authorize")).unwrap();
        {
            let mut q = url.query_pairs_mut();
            q.append_pair("response_type", "code")
                .append_pair("client_id", &request.client.client_id)
                .append_pair("redirect_uri", &request.client.redirect_uri)
                .append_pair("code_challenge", request.challenge)
                .append_pair("code_challenge_method", "S256")
                .append_pair("state", request.state);
            if let Some(scope) = request.scope {
                q.append_pair("scope", scope);
            }
            let resource = request.resource.clone().unwrap_or_else(|| self.mcp_url());
            q.append_pair("resource", &resource);
        }
        url.to_string()
    }

    /// POSTs a form to `/token` (or another endpoint).
    pub async fn post_form(
        &self,
        path: &str,
        client: &TestClient,
        form: &[(&str, &str)],
    ) -> (StatusCode, reqwest::header::HeaderMap, Value) {
        let mut fields: Vec<(&str, &str)> = form.to_vec();
        let request = self.http.post(self.url(path));
        let request = match &client.client_secret {
            Some(secret) => request.basic_auth(&client.client_id, Some(secret)),
            None => {
                fields.push(("client_id", &client.client_id));
                request
            }
        };
        let response = request.form(&fields).send().await.unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let text = response.text().await.unwrap();
        (
            status,
            headers,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    /// Exchanges a code for the default resource; returns status and body.
    pub async fn exchange_code(
        &self,
        client: &TestClient,
        code: &str,
        verifier: &str,
    ) -> (StatusCode, Value) {
        self.exchange_code_for(client, code, verifier, &self.mcp_url())
            .await
    }

    /// Exchanges a code naming `resource`; returns status and body.
    pub async fn exchange_code_for(
        &self,
        client: &TestClient,
        code: &str,
        verifier: &str,
        resource: &str,
    ) -> (StatusCode, Value) {
        let (status, headers, body) = self
            .post_form(
                "/token",
                client,
                &[
                    ("grant_type", "authorization_code"),
                    ("code", code),
                    ("redirect_uri", &client.redirect_uri),
                    ("code_verifier", verifier),
                    ("resource", resource),
                ],
            )
            .await;
        assert_eq!(
            headers.get("cache-control").map(|v| v.to_str().unwrap()),
            Some("no-store")
        );
        (status, body)
    }

    pub async fn refresh(&self, client: &TestClient, refresh_token: &str) -> (StatusCode, Value) {
        let (status, _, body) = self
            .post_form(
                "/token",
                client,
                &[
                    ("grant_type", "refresh_token"),
                    ("refresh_token", refresh_token),
                ],
            )
            .await;
        (status, body)
    }

    /// Signs in a fresh public client all the way to tokens for the default resource (`/mcp`).
    pub async fn tokens_for(&self, login: &str, scope: Option<&str>) -> (TestClient, Value) {
        self.tokens_for_resource(login, scope, None).await
    }

    /// Signs in a fresh public client all the way to tokens for `resource`.
    pub async fn tokens_for_resource(
        &self,
        login: &str,
        scope: Option<&str>,
        resource: Option<String>,
    ) -> (TestClient, Value) {
        self.tokens_with(&browser(), login, scope, resource).await
    }

    /// [`Self::tokens_for_resource`] with the browser `browser`.
    pub async fn tokens_with(
        &self,
        browser: &reqwest::Client,
        login: &str,
        scope: Option<&str>,
        resource: Option<String>,
    ) -> (TestClient, Value) {
        let client = self.register_public_client().await;
        let (verifier, challenge) = pkce();
        let url = self.authorize_url(&AuthRequest {
            client: &client,
            challenge: &challenge,
            state: "st",
            scope,
            resource: resource.clone(),
        });
        let back = self.sign_in(browser, &url, login).await;
        let code = query_param(&back, "code").expect("a code");
        let resource = resource.unwrap_or_else(|| self.mcp_url());
        let (status, body) = self
            .exchange_code_for(&client, &code, &verifier, &resource)
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        (client, body)
    }
}
