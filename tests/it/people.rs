//! Who may sign in and what each person may do, through the real OpenID provider, on SQLite and
//! Postgres: admission rules admitting and refusing, people keyed by (provider, subject),
//! unverified emails never kept, roles turned into scopes and re-checked at every refresh.
//!
//! The test provider's logins carry their groups after `+` (`erin+platform`), and a name
//! starting with `unverified-` has an email the provider did not verify.

use portcullis::store::{AuditFilter, AuditKind, Decision, NewUser};
use reqwest::StatusCode;
use serde_json::Value;

use crate::gateway::{call, rec_url};
use crate::support::app::{
    AuthRequest, Db, Options, TestApp, TestClient, browser, pkce, query_param, rpc_body, spawn,
};
use crate::support::recorder::{self, Recorder};

on_both!(
    claim_rules_admit_members_and_refuse_the_others,
    email_rules_admit_addresses_and_domains,
    only_known_people_may_sign_in_when_the_provider_says_so,
    an_unverified_email_is_neither_kept_nor_forwarded_nor_admitted,
    people_are_keyed_by_provider_and_subject_and_link_only_when_allowed,
    roles_become_scopes_and_a_refusal_names_the_role,
    every_refresh_applies_the_roles_and_a_disabled_person_is_shut_out,
);

/// Roles for the recorder backend `rec` (see `crate::gateway`).
const ROLES: &str = r#"
[roles.reader]
scopes = ["rec:tools:call"]
[roles.engineer]
scopes = ["rec:*:call"]
"#;

/// The roles `reader` and `engineer`, and the backend `rec` at `url` whose `echo` needs
/// `rec:echo:call`.
pub(crate) fn rec_config(url: &str) -> String {
    format!(
        r#"{ROLES}
[[backends]]
id = "rec"
url = "{url}"
scope = "rec:tools:call"
[backends.tools]
"echo" = "rec:echo:call"
"#
    )
}

pub(crate) async fn app_with(
    db: Db,
    top: &str,
    corp: &str,
    second_provider: bool,
) -> (TestApp, Recorder) {
    let backend = recorder::spawn().await;
    let extra = rec_config(&backend.url);
    let app = spawn(Options {
        db,
        second_provider,
        top_toml: top.to_owned(),
        corp_toml: corp.to_owned(),
        grant_scopes: r#"["rec:*:call"]"#,
        extra_toml: extra,
        ..Options::default()
    })
    .await;
    (app, backend)
}

/// Signs `login` in through `provider` for `/mcp/rec`; the callback's answer.
pub(crate) async fn callback(
    app: &TestApp,
    provider: &str,
    login: &str,
) -> (TestClient, String, reqwest::Response) {
    let client = app.register_public_client().await;
    let (verifier, challenge) = pkce();
    let url = app.authorize_url(&AuthRequest {
        client: &client,
        challenge: &challenge,
        state: "st",
        scope: None,
        resource: Some(rec_url(app)),
    });
    let answer = app.callback_via(&browser(), &url, provider, login).await;
    (client, verifier, answer)
}

/// Signs `login` in through `provider` for `/mcp/rec` and redeems the code: the token response.
pub(crate) async fn tokens(app: &TestApp, provider: &str, login: &str) -> (TestClient, Value) {
    let (client, verifier, answer) = callback(app, provider, login).await;
    assert_eq!(
        answer.status(),
        StatusCode::SEE_OTHER,
        "{login} is admitted"
    );
    let back = answer.headers()["location"].to_str().unwrap().to_owned();
    let code = query_param(&back, "code").expect("a code");
    let (status, body) = app
        .exchange_code_for(&client, &code, &verifier, &rec_url(app))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    (client, body)
}

/// Signs `login` in through corp, expecting the refusal page and no code.
async fn refused(app: &TestApp, login: &str) {
    let (_, _, answer) = callback(app, "corp", login).await;
    assert_eq!(answer.status(), StatusCode::FORBIDDEN, "{login} is refused");
    assert!(answer.headers().get("location").is_none());
    let page = answer.text().await.unwrap();
    assert!(page.contains("You may not sign in here"), "{page}");
    assert!(page.contains("Corp SSO"), "{page}");
}

/// The refused sign-ins audited so far.
async fn refusals(app: &TestApp) -> Vec<String> {
    app.state.auditor.flush().await;
    let events = app
        .state
        .store
        .audit_events(&AuditFilter {
            kind: Some(AuditKind::SignIn),
            limit: 100,
            ..AuditFilter::default()
        })
        .await
        .unwrap();
    events
        .into_iter()
        .filter(|e| e.decision == Decision::Denied)
        .filter_map(|e| e.reason)
        .collect()
}

pub(crate) fn claims_of(tokens: &Value) -> Value {
    let token = tokens["access_token"].as_str().unwrap();
    let payload = token.split('.').nth(1).unwrap();
    use base64::Engine as _;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

async fn claim_rules_admit_members_and_refuse_the_others(db: Db) {
    let corp = "[providers.allow.claims]\ngroups = [\"mcp\", \"platform\"]\n";
    let (app, _backend) = app_with(db, "", corp, false).await;

    let (_, ada) = tokens(&app, "corp", "ada+mcp").await;
    assert_eq!(claims_of(&ada)["email"], "ada@example.com");
    refused(&app, "bob").await;
    refused(&app, "bob+mcpx").await;

    let reasons = refusals(&app).await;
    assert_eq!(reasons.len(), 2, "{reasons:?}");
    assert!(
        reasons
            .iter()
            .all(|r| r.contains("not admitted") && r.contains("bob@example.com")),
        "{reasons:?}"
    );
    // Nothing was recorded of the refused person.
    assert!(
        app.state
            .store
            .find_identity("corp", "bob")
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        app.state
            .store
            .users_by_email("bob@example.com")
            .await
            .unwrap()
            .is_empty()
    );
    app.stop().await;
}

async fn email_rules_admit_addresses_and_domains(db: Db) {
    let corp = "[providers.allow]\nemails = [\"ada@example.com\", \"*@corp.test\"]\ndomains = [\"partner.test\"]\n";
    let (app, _backend) = app_with(db, "", corp, false).await;

    tokens(&app, "corp", "ada").await;
    tokens(&app, "corp", "bob@corp.test").await;
    tokens(&app, "corp", "cy@partner.test").await;
    refused(&app, "eve").await;
    refused(&app, "dee@corp.test.evil.org").await;
    refused(&app, "fay@sub.partner.test").await;
    assert_eq!(refusals(&app).await.len(), 3);
    app.stop().await;
}

async fn only_known_people_may_sign_in_when_the_provider_says_so(db: Db) {
    let (app, _backend) = app_with(db, "", "users = \"known\"\n", false).await;

    refused(&app, "stranger").await;
    let kim = app
        .state
        .store
        .create_user(
            &NewUser {
                email: Some("Kim@Example.com".into()),
                name: None,
            },
            chrono::Utc::now(),
        )
        .await
        .unwrap();
    // The first sign-in with the verified email claims the provisioned person…
    let (_, first) = tokens(&app, "corp", "kim").await;
    assert_eq!(claims_of(&first)["sub"], kim.id.as_str());
    // …and from then on the identity is known.
    let (_, again) = tokens(&app, "corp", "kim").await;
    assert_eq!(claims_of(&again)["sub"], kim.id.as_str());
    let identity = app
        .state
        .store
        .find_identity("corp", "kim")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(identity.user_id, kim.id);
    assert!(
        refusals(&app).await[0].contains("only known people"),
        "the refusal says why"
    );
    app.stop().await;
}

async fn an_unverified_email_is_neither_kept_nor_forwarded_nor_admitted(db: Db) {
    let (app, _backend) = app_with(db, "", "", false).await;
    let (_, eve) = tokens(&app, "corp", "unverified-eve").await;
    let claims = claims_of(&eve);
    assert!(claims.get("email").is_none(), "{claims}");
    let user = app
        .state
        .store
        .get_user(claims["sub"].as_str().unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(user.email, None);
    let identity = app
        .state
        .store
        .find_identity("corp", "unverified-eve")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(identity.email, None);
    app.stop().await;

    let corp = "[providers.allow]\ndomains = [\"example.com\"]\n";
    let (app, _backend) = app_with(db, "", corp, false).await;
    tokens(&app, "corp", "ann").await;
    refused(&app, "unverified-eve").await;
    app.stop().await;
}

async fn people_are_keyed_by_provider_and_subject_and_link_only_when_allowed(db: Db) {
    let (app, _backend) = app_with(db, "", "", true).await;
    let (_, at_corp) = tokens(&app, "corp", "carol").await;
    let (_, at_partner) = tokens(&app, "partner", "carol").await;
    assert_ne!(
        claims_of(&at_corp)["sub"],
        claims_of(&at_partner)["sub"],
        "the same email through another provider is another person"
    );
    app.stop().await;

    // With linking allowed on the partner provider, its first sign-in joins the person.
    let backend = recorder::spawn().await;
    let extra = format!(
        "link_by_email = true\n{ROLES}\n[[backends]]\nid = \"rec\"\nurl = \"{}\"\nscope = \"rec:tools:call\"\n",
        backend.url
    );
    let app = spawn(Options {
        db,
        second_provider: true,
        top_toml: String::new(),
        grant_scopes: r#"["rec:*:call"]"#,
        // Appended after the partner provider's table: it belongs to partner.
        extra_toml: extra,
        ..Options::default()
    })
    .await;
    let (_, at_corp) = tokens(&app, "corp", "carol").await;
    let (_, at_partner) = tokens(&app, "partner", "carol").await;
    assert_eq!(claims_of(&at_corp)["sub"], claims_of(&at_partner)["sub"]);
    let identities = app
        .state
        .store
        .identities_of(claims_of(&at_corp)["sub"].as_str().unwrap())
        .await
        .unwrap();
    assert_eq!(identities.len(), 2);
    app.stop().await;
}

async fn roles_become_scopes_and_a_refusal_names_the_role(db: Db) {
    let top = "default_role = \"reader\"\n";
    let corp = "[providers.claim_roles.groups]\nplatform = \"engineer\"\n";
    let (app, _backend) = app_with(db, top, corp, false).await;

    // The default grant mode names no scope in the challenge: clients that echo it would ask
    // for less than the person may have.
    let challenge = app.mcp(&rec_url(&app), None, call(1, "echo")).await;
    assert_eq!(challenge.status(), StatusCode::UNAUTHORIZED);
    let header = challenge.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(!header.contains("scope="), "{header}");

    let (_, dan) = tokens(&app, "corp", "dan").await;
    assert_eq!(dan["scope"], "rec:tools:call");
    let token = dan["access_token"].as_str().unwrap();
    let denied = app.mcp(&rec_url(&app), Some(token), call(2, "echo")).await;
    assert_eq!(denied.status(), StatusCode::FORBIDDEN);
    let header = denied.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(header.contains("the role engineer grants it"), "{header}");
    let body = rpc_body(denied).await;
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .ends_with("requires the scope rec:echo:call; the role engineer grants it"),
        "{body}"
    );

    let (_, erin) = tokens(&app, "corp", "erin+platform").await;
    assert_eq!(erin["scope"], "rec:echo:call rec:tools:call");
    let token = erin["access_token"].as_str().unwrap();
    let allowed = app.mcp(&rec_url(&app), Some(token), call(3, "echo")).await;
    assert_eq!(allowed.status(), StatusCode::OK);
    app.stop().await;
}

async fn every_refresh_applies_the_roles_and_a_disabled_person_is_shut_out(db: Db) {
    let (app, _backend) = app_with(db, "default_role = \"reader\"\n", "", false).await;
    let store = app.state.store.clone();
    let now = chrono::Utc::now();
    let fay = store
        .create_user(
            &NewUser {
                email: Some("fay@example.com".into()),
                name: None,
            },
            now,
        )
        .await
        .unwrap();
    assert!(store.add_user_role(&fay.id, "engineer", now).await.unwrap());

    let (client, first) = tokens(&app, "corp", "fay").await;
    assert_eq!(first["scope"], "rec:echo:call rec:tools:call");

    // A removed role narrows the next token…
    assert!(store.remove_user_role(&fay.id, "engineer").await.unwrap());
    let (status, second) = app
        .refresh(&client, first["refresh_token"].as_str().unwrap())
        .await;
    assert_eq!(status, StatusCode::OK, "{second}");
    assert_eq!(second["scope"], "rec:tools:call");
    // …and one given back restores what was consented to.
    store.add_user_role(&fay.id, "engineer", now).await.unwrap();
    let (status, third) = app
        .refresh(&client, second["refresh_token"].as_str().unwrap())
        .await;
    assert_eq!(status, StatusCode::OK, "{third}");
    assert_eq!(third["scope"], "rec:echo:call rec:tools:call");

    // Switched off: the refresh fails, the grant is revoked, the access token stops working.
    store.set_user_disabled(&fay.id, Some(now)).await.unwrap();
    let (status, fourth) = app
        .refresh(&client, third["refresh_token"].as_str().unwrap())
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{fourth}");
    assert_eq!(fourth["error"], "invalid_grant");
    let token = third["access_token"].as_str().unwrap();
    let after = app.mcp(&rec_url(&app), Some(token), call(4, "echo")).await;
    assert_eq!(after.status(), StatusCode::UNAUTHORIZED);
    // And a new sign-in is refused.
    refused(&app, "fay").await;
    assert!(refusals(&app).await.iter().any(|r| r.contains("disabled")));
    app.stop().await;
}
