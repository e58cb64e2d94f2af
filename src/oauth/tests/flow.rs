//! Authorize, consent and callback: where each outcome sends the browser.

use chrono::Duration;

use super::*;
use crate::oauth::authorize::AuthorizeError;
use crate::oauth::error::FlowError;

#[tokio::test]
async fn an_authorization_request_is_refused_with_a_page_until_its_client_and_redirect_are_known() {
    let f = Fixture::new().await;
    let client = f.register().await;
    let page = |result: Result<AuthorizeOutcome, AuthorizeError>| match result {
        Err(AuthorizeError::Page(error)) => error,
        other => panic!("expected a page, got {other:?}"),
    };
    let start = async |query: &str| authorize::start(&f.server, query, BROWSER, t0()).await;
    assert_eq!(
        page(start("response_type=code").await),
        FlowError::MissingClientId
    );
    assert_eq!(
        page(start(&Fixture::authorize_query("nobody", "")).await),
        FlowError::UnknownClient
    );
    let elsewhere = Fixture::authorize_query(&client, "").replace(
        &urlencode(REDIRECT),
        &urlencode("https://evil.example.com/cb"),
    );
    assert_eq!(
        page(start(&elsewhere).await),
        FlowError::UnregisteredRedirectUri
    );
}

#[tokio::test]
async fn once_the_client_is_known_errors_go_back_to_it_with_state_and_iss() {
    let f = Fixture::new().await;
    let client = f.register().await;
    // A plain challenge is a downgrade: refused, back to the client.
    let query = Fixture::authorize_query(&client, "").replace("S256", "plain");
    let Err(AuthorizeError::Redirect(url)) =
        authorize::start(&f.server, &query, BROWSER, t0()).await
    else {
        panic!("expected a redirect to the client");
    };
    assert!(url.as_str().starts_with(REDIRECT), "{url}");
    assert_eq!(
        query_param(&url, "error").as_deref(),
        Some("invalid_request")
    );
    assert_eq!(query_param(&url, "state").as_deref(), Some("xyz"));
    assert_eq!(query_param(&url, "iss").as_deref(), Some(BASE));
    let unknown_resource =
        Fixture::authorize_query(&client, "&resource=https%3A%2F%2Fother.example.com%2Fmcp");
    let Err(AuthorizeError::Redirect(url)) =
        authorize::start(&f.server, &unknown_resource, BROWSER, t0()).await
    else {
        panic!("expected a redirect to the client");
    };
    assert_eq!(
        query_param(&url, "error").as_deref(),
        Some("invalid_target")
    );
}

#[tokio::test]
async fn consent_is_bound_to_the_browser_checked_against_csrf_and_usable_once() {
    let f = Fixture::new().await;
    let client = f.register().await;
    let flow = f
        .consent_flow(
            &client,
            "&scope=orders%3Ainvoices%3Aread%20offline_access%20billing%3Aall%3Aread",
            t0(),
        )
        .await;
    let flow_id = flow.id.clone();
    let consent::ConsentStep::Ask(view) =
        consent::consent_step(&f.server, &flow, t0()).await.unwrap()
    else {
        panic!("remembered consent is off: the page is shown");
    };
    assert_eq!(view.scopes, ["orders:invoices:read"]);
    assert_eq!(
        view.withheld,
        ["billing:all:read"],
        "offline_access is about the sign-in, not a permission withheld"
    );
    assert_eq!(view.redirect_host, "app.example.com");
    assert!(!view.document_client && !view.verified && !view.local_only);

    let other_browser = consent::flow_for_browser(
        &f.server,
        &flow_id,
        Some("another-browser-secret-0123456789abcdef"),
        t0(),
    )
    .await;
    assert_eq!(other_browser.unwrap_err(), FlowError::ForeignBrowser);
    let forged = Params::parse(&format!("flow={flow_id}&csrf=forged&decision=approve")).unwrap();
    assert_eq!(
        consent::decide(&f.server, &forged, Some(BROWSER), t0())
            .await
            .unwrap_err(),
        FlowError::FormExpired
    );
    let form = Params::parse(&format!(
        "flow={flow_id}&csrf={}&decision=approve",
        flow.data.csrf
    ))
    .unwrap();
    let upstream = consent::decide(&f.server, &form, Some(BROWSER), t0())
        .await
        .unwrap();
    assert!(
        upstream
            .as_str()
            .starts_with("https://idp.example.com/authorize")
    );
    let asked = f.provider.asked.lock().unwrap().clone();
    assert_eq!(asked["redirect_uri"], format!("{BASE}/callback/corp"));
    assert_eq!(
        asked["challenge"].len(),
        43,
        "an S256 challenge of our own verifier"
    );
    assert_eq!(
        consent::decide(&f.server, &form, Some(BROWSER), t0())
            .await
            .unwrap_err(),
        FlowError::FlowGone,
        "a second submit finds nothing"
    );
}

#[tokio::test]
async fn a_denied_consent_goes_back_to_the_client_as_access_denied() {
    let f = Fixture::new().await;
    let client = f.register().await;
    let flow = f.consent_flow(&client, "", t0()).await;
    let flow_id = flow.id.clone();
    let form = Params::parse(&format!(
        "flow={flow_id}&csrf={}&decision=deny",
        flow.data.csrf
    ))
    .unwrap();
    let back = consent::decide(&f.server, &form, Some(BROWSER), t0())
        .await
        .unwrap();
    assert_eq!(
        query_param(&back, "error").as_deref(),
        Some("access_denied")
    );
    assert_eq!(query_param(&back, "state").as_deref(), Some("xyz"));
}

#[tokio::test]
async fn a_flow_expires_after_its_lifetime() {
    let f = Fixture::new().await;
    let client = f.register().await;
    let query = Fixture::authorize_query(&client, "");
    let Ok(AuthorizeOutcome::Consent { flow_id }) =
        authorize::start(&f.server, &query, BROWSER, t0()).await
    else {
        panic!("expected consent");
    };
    let later = t0() + f.server.lifetimes.flow + Duration::seconds(1);
    assert_eq!(
        consent::flow_for_browser(&f.server, &flow_id, Some(BROWSER), later)
            .await
            .unwrap_err(),
        FlowError::FlowGone
    );
}

#[tokio::test]
async fn the_callback_sends_the_client_its_code_and_grants_what_the_provider_may_grant() {
    let f = Fixture::new().await;
    let client = f.register().await;
    let state = f
        .approve(&client, "orders:invoices:read admin:everything:write", t0())
        .await;
    *f.provider.exchange.lock().unwrap() =
        Some(Ok(identity("ada@example.com", t0() + Duration::hours(1))));
    let back = f
        .callback(&format!("code=c&state={state}"), BROWSER, t0())
        .await
        .unwrap();
    assert!(back.as_str().starts_with(REDIRECT));
    assert_eq!(query_param(&back, "state").as_deref(), Some("xyz"));
    assert_eq!(query_param(&back, "iss").as_deref(), Some(BASE));
    let code = query_param(&back, "code").unwrap();
    let tokens = f
        .token(&Fixture::code_body(&client, &code, VERIFIER), t0())
        .await
        .unwrap();
    assert_eq!(
        tokens["scope"], "orders:invoices:read",
        "admin:* is not the provider's to grant"
    );

    // The callback's state is single-use.
    let again = f
        .callback(&format!("code=c&state={state}"), BROWSER, t0())
        .await;
    assert_eq!(again.unwrap_err(), FlowError::FlowGone);
}

#[tokio::test]
async fn an_upstream_refusal_or_outage_goes_back_to_the_client() {
    let f = Fixture::new().await;
    let client = f.register().await;
    let state = f.approve(&client, "orders:invoices:read", t0()).await;
    let back = f
        .callback(&format!("error=access_denied&state={state}"), BROWSER, t0())
        .await
        .unwrap();
    assert_eq!(
        query_param(&back, "error").as_deref(),
        Some("access_denied")
    );

    let state = f.approve(&client, "orders:invoices:read", t0()).await;
    *f.provider.exchange.lock().unwrap() = Some(Err(UpstreamError::Transport("down".into())));
    let back = f
        .callback(&format!("code=c&state={state}"), BROWSER, t0())
        .await
        .unwrap();
    assert_eq!(
        query_param(&back, "error").as_deref(),
        Some("temporarily_unavailable")
    );

    let state = f.approve(&client, "orders:invoices:read", t0()).await;
    let foreign = f
        .callback(
            &format!("code=c&state={state}"),
            "another-browser-secret-0123456789abcdef",
            t0(),
        )
        .await;
    assert_eq!(foreign.unwrap_err(), FlowError::ForeignBrowser);
    // The foreign request did not spend the person's sign-in: their own browser finishes it,
    // once.
    *f.provider.exchange.lock().unwrap() = Some(Ok(identity(
        "ada@example.com",
        t0() + chrono::Duration::hours(1),
    )));
    let back = f
        .callback(&format!("code=c&state={state}"), BROWSER, t0())
        .await
        .unwrap();
    assert!(query_param(&back, "code").is_some(), "{back}");
    let again = f
        .callback(&format!("code=c&state={state}"), BROWSER, t0())
        .await;
    assert_eq!(again.unwrap_err(), FlowError::FlowGone);
}
