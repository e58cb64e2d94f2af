//! Remembered consent (`[consent] remember_for_secs`): the person who approved a client, at one
//! redirect URI, for a resource and scopes, is not asked again in the same browser; more scopes,
//! another redirect URI, another browser or another person ask again, and `grants revoke` ends it.

use std::sync::Arc;

use reqwest::StatusCode;
use reqwest::cookie::CookieStore;
use url::Url;

use super::documents::{Answer, DocumentServer};
use super::{CALLBACK, app_for, authorize_url, document, public_client};
use crate::support::app::{TestApp, TestClient, browser, location, pkce, query_param};
use crate::support::idp;

const SECOND_CALLBACK: &str = "http://127.0.0.1:41235/callback";
const READ: &str = "demo:notes:read";
const READ_WRITE: &str = "demo:notes:read demo:notes:write";

/// A browser whose cookie jar the test can read and copy.
fn browser_with(jar: &Arc<reqwest::cookie::Jar>) -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .cookie_provider(jar.clone())
        .build()
        .unwrap()
}

/// What `/authorize` leads to in `browser`: the consent page, or (consent remembered) the
/// upstream provider's authorization URL.
enum Step {
    Page(String),
    Upstream(String),
}

async fn consent_step(app: &TestApp, browser: &reqwest::Client, url: &str) -> Step {
    let response = browser.get(url).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let consent_url = location(&response);
    assert!(consent_url.contains("/authorize/consent"), "{consent_url}");
    let consent = browser.get(&consent_url).send().await.unwrap();
    match consent.status() {
        StatusCode::OK => Step::Page(consent.text().await.unwrap()),
        StatusCode::SEE_OTHER => {
            let upstream = location(&consent);
            assert!(!upstream.starts_with(&app.base), "{upstream}");
            Step::Upstream(upstream)
        }
        other => panic!("consent step answered {other}"),
    }
}

/// Approves on the page, or follows the remembered step, signs `login` in upstream, and returns
/// where Portcullis sends the browser after the callback.
async fn finish(app: &TestApp, browser: &reqwest::Client, step: Step, login: &str) -> String {
    let upstream = match step {
        Step::Page(html) => {
            let approved = app.submit_consent(browser, &html, "approve").await;
            assert_eq!(approved.status(), StatusCode::SEE_OTHER);
            location(&approved)
        }
        Step::Upstream(url) => url,
    };
    let callback = idp::sign_in(browser, &upstream, login).await;
    let done = browser.get(callback.as_str()).send().await.unwrap();
    assert_eq!(done.status(), StatusCode::SEE_OTHER);
    location(&done)
}

fn url_for(app: &TestApp, client: &TestClient, scope: &str) -> String {
    let (_, challenge) = pkce();
    authorize_url(app, client, &challenge, Some(scope))
}

#[tokio::test]
async fn a_remembered_approval_skips_the_page_only_for_the_same_request_in_the_same_browser() {
    let docs = DocumentServer::start().await;
    let app = app_for(&docs, "", "[consent]\nremember_for_secs = 3600\n").await;
    let client_id = docs.url("/client.json");
    docs.serve(
        "/client.json",
        Answer::json(
            &document(&client_id, &[CALLBACK, SECOND_CALLBACK]),
            "max-age=3600",
        ),
    );
    let client = public_client(&client_id, CALLBACK);
    let jar = Arc::new(reqwest::cookie::Jar::default());
    let alices = browser_with(&jar);

    // First time: asked, approved, signed in.
    let first = consent_step(&app, &alices, &url_for(&app, &client, READ)).await;
    assert!(matches!(first, Step::Page(_)), "asked the first time");
    let back = finish(&app, &alices, first, "alice").await;
    assert!(query_param(&back, "code").is_some(), "{back}");

    // Same browser, client, redirect URI, resource, and no more scopes: not asked.
    let again = consent_step(&app, &alices, &url_for(&app, &client, READ)).await;
    assert!(matches!(again, Step::Upstream(_)), "not asked again");
    let back = finish(&app, &alices, again, "alice").await;
    assert!(query_param(&back, "code").is_some(), "{back}");

    // More scopes, another redirect URI, another browser: asked.
    let wider = consent_step(&app, &alices, &url_for(&app, &client, READ_WRITE)).await;
    assert!(matches!(wider, Step::Page(_)), "more scopes ask again");
    let other_install = public_client(&client_id, SECOND_CALLBACK);
    let other = consent_step(&app, &alices, &url_for(&app, &other_install, READ)).await;
    assert!(matches!(other, Step::Page(_)), "another redirect URI asks");
    let elsewhere = consent_step(&app, &browser(), &url_for(&app, &client, READ)).await;
    assert!(matches!(elsewhere, Step::Page(_)), "another browser asks");

    // Another person in the same browser (same Portcullis cookie, their own upstream session):
    // the page is skipped, but they approved nothing, so nothing is granted.
    let base = Url::parse(&app.base).unwrap();
    // Cookies are not kept apart by port: the jar also holds the test IdP's, which stay behind.
    let cookies = jar.cookies(&base).unwrap();
    let portcullis = cookies
        .to_str()
        .unwrap()
        .split("; ")
        .find(|c| c.starts_with("portcullis-browser="))
        .unwrap()
        .to_owned();
    let shared = Arc::new(reqwest::cookie::Jar::default());
    shared.add_cookie_str(&portcullis, &base);
    let mallorys = browser_with(&shared);
    let skipped = consent_step(&app, &mallorys, &url_for(&app, &client, READ)).await;
    assert!(matches!(skipped, Step::Upstream(_)));
    let back = finish(&app, &mallorys, skipped, "mallory").await;
    assert_eq!(
        query_param(&back, "error").as_deref(),
        Some("access_denied"),
        "{back}"
    );
    assert!(query_param(&back, "code").is_none());
    // And the approval is forgotten: the next attempt asks.
    let asked = consent_step(&app, &alices, &url_for(&app, &client, READ)).await;
    assert!(
        matches!(asked, Step::Page(_)),
        "asked after another person's attempt"
    );
    finish(&app, &alices, asked, "alice").await;
    assert!(matches!(
        consent_step(&app, &alices, &url_for(&app, &client, READ)).await,
        Step::Upstream(_)
    ));

    // `grants revoke` of this client's installation ends the remembered approval.
    let grants = app
        .state
        .store
        .list_grants(&portcullis::store::GrantFilter {
            client_id: Some(client_id.clone()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(
        grants
            .iter()
            .all(|g| g.redirect_uri.as_deref() == Some(CALLBACK))
    );
    let dir = tempfile::tempdir().unwrap();
    let env = [("DATABASE_URL", app.state.settings.database_url.as_str())];
    let listed = crate::cli::portcullis(
        dir.path(),
        &[
            "grants",
            "list",
            "--client",
            &client_id,
            "--redirect-uri",
            CALLBACK,
            "--json",
        ],
        &env,
    );
    assert!(listed.status.success(), "{}", crate::cli::text(&listed));
    let listed: Vec<serde_json::Value> = String::from_utf8(listed.stdout)
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert_eq!(listed.len(), grants.len());
    assert!(
        listed.iter().all(|g| g["redirect_uri"] == CALLBACK),
        "{listed:?}"
    );
    let other = crate::cli::portcullis(
        dir.path(),
        &[
            "grants",
            "list",
            "--client",
            &client_id,
            "--redirect-uri",
            SECOND_CALLBACK,
        ],
        &env,
    );
    assert!(other.status.success());
    assert_eq!(
        String::from_utf8(other.stdout).unwrap().lines().count(),
        1,
        "the header only"
    );
    let output = crate::cli::portcullis(
        dir.path(),
        &[
            "grants",
            "revoke",
            "--client",
            &client_id,
            "--redirect-uri",
            CALLBACK,
        ],
        &[("DATABASE_URL", &app.state.settings.database_url)],
    );
    assert!(output.status.success(), "{}", crate::cli::text(&output));
    let printed = String::from_utf8(output.stdout).unwrap();
    assert!(
        printed.contains(&format!("{} grants revoked", grants.len())),
        "{printed}"
    );
    let after = consent_step(&app, &alices, &url_for(&app, &client, READ)).await;
    assert!(
        matches!(after, Step::Page(_)),
        "asked again after the revocation"
    );
    app.stop().await;
}

#[tokio::test]
async fn without_the_option_the_page_is_shown_every_time() {
    let docs = DocumentServer::start().await;
    let app = app_for(&docs, "", "").await;
    let client = super::serve_client(&docs, "/client.json", "max-age=600");
    let alices = browser();

    for _ in 0..2 {
        let step = consent_step(&app, &alices, &url_for(&app, &client, READ)).await;
        assert!(matches!(step, Step::Page(_)));
        finish(&app, &alices, step, "alice").await;
    }
    app.stop().await;
}
