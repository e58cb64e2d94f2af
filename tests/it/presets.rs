//! Provider presets against the real OpenID provider, shaped like the provider they stand for
//! (`issuer` pointed at the test provider): Google's hosted domain, Microsoft's subject and its
//! untrusted `email`.

use reqwest::StatusCode;

use crate::people::{callback, claims_of, tokens};
use crate::support::app::{AuthRequest, Db, Options, TestApp, browser, location, pkce, spawn};
use crate::support::idp::TestIdp;
use crate::support::recorder;

on_both!(
    google_admits_only_its_hosted_domain,
    microsoft_people_are_tenant_and_object_and_their_email_is_not_trusted,
    the_provider_page_shows_each_providers_logo_or_initial,
);

/// The app with `corp` and a preset provider `id` of `kind` (with `fields`) on the test
/// provider, and the recorder as backend `rec`.
async fn with_preset(db: Db, id: &str, kind: &str, fields: &str) -> (TestApp, recorder::Recorder) {
    let idp = TestIdp::from_env();
    let backend = recorder::spawn().await;
    let extra = format!(
        r#"
[[providers]]
id = "{id}"
kind = "{kind}"
issuer = "{issuer}"
client_id = "{client_id}"
client_secret = "{client_secret}"
grant_scopes = ["rec:*:call"]
{fields}

[[backends]]
id = "rec"
url = "{url}"
scope = "rec:tools:call"
"#,
        issuer = idp.issuer,
        client_id = idp.client_id,
        client_secret = idp.client_secret,
        url = backend.url,
    );
    let app = spawn(Options {
        db,
        second_provider: false,
        grant_scopes: r#"["rec:*:call"]"#,
        extra_toml: extra,
        ..Options::default()
    })
    .await;
    (app, backend)
}

/// Signs `login` in through `provider`; the callback's status and page.
async fn callback_status(app: &TestApp, provider: &str, login: &str) -> (StatusCode, String) {
    let (_, _, answer) = callback(app, provider, login).await;
    (answer.status(), answer.text().await.unwrap())
}

async fn google_admits_only_its_hosted_domain(db: Db) {
    let (app, _backend) =
        with_preset(db, "google", "google", "hosted_domain = \"corp.test\"").await;
    let (_, ann) = tokens(&app, "google", "ann@corp.test").await;
    assert_eq!(claims_of(&ann)["email"], "ann@corp.test");
    // A consumer account (no `hd`) and another Workspace are refused.
    for login in ["bob", "cy@other.test"] {
        let (status, page) = callback_status(&app, "google", login).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{login}");
        assert!(page.contains("Google signed you in"), "{page}");
    }
    app.stop().await;
}

async fn microsoft_people_are_tenant_and_object_and_their_email_is_not_trusted(db: Db) {
    let (app, _backend) =
        with_preset(db, "entra", "microsoft", "tenant = \"ignored-for-issuer\"").await;
    let (_, mia) = tokens(&app, "entra", "mia").await;
    let claims = claims_of(&mia);
    assert!(claims.get("email").is_none(), "{claims}");
    let identity = app
        .state
        .store
        .find_identity("entra", "tenant-1:oid-mia")
        .await
        .unwrap()
        .expect("the identity is tid:oid");
    assert_eq!(identity.user_id, claims["sub"].as_str().unwrap());
    assert_eq!(identity.email, None);
    app.stop().await;
}

async fn the_provider_page_shows_each_providers_logo_or_initial(db: Db) {
    let dir = tempfile::tempdir().unwrap();
    let logo = dir.path().join("google.svg");
    std::fs::write(
        &logo,
        r#"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 1 1"/>"#,
    )
    .unwrap();
    let fields = format!(
        "hosted_domain = \"corp.test\"\nlogo = \"{}\"",
        logo.display()
    );
    let (app, _backend) = with_preset(db, "google", "google", &fields).await;
    let client = app.register_public_client().await;
    let (_, challenge) = pkce();
    let url = app.authorize_url(&AuthRequest {
        client: &client,
        challenge: &challenge,
        state: "st",
        scope: None,
        resource: None,
    });
    let browser = browser();
    let authorize = browser.get(&url).send().await.unwrap();
    let page = browser.get(location(&authorize)).send().await.unwrap();
    let html = page.text().await.unwrap();
    assert!(
        html.contains(r#"<img src="data:image/svg+xml;base64,"#),
        "{html}"
    );
    assert!(
        html.contains(r#"<span class="logo monogram" aria-hidden="true">C</span>"#),
        "{html}"
    );
    assert!(html.contains("Google") && html.contains("Corp SSO"));
    app.stop().await;
}
