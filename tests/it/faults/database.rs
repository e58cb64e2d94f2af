//! Postgres stopped, then started again: readiness says 503 and the endpoints that need the
//! database answer 503 `temporarily_unavailable` with `Retry-After` while it is down, tool calls
//! keep working (tokens verify locally), and everything recovers without a restart.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};

use super::{Session, assert_whoami, single, whoami};
use crate::support::outage::PrivatePostgres;

/// Polls `/health/ready` until it answers `wanted` (the deadline only stops a hang).
async fn until_ready_is(http: &reqwest::Client, base: &str, wanted: StatusCode) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let status = http
            .get(format!("{base}/health/ready"))
            .send()
            .await
            .unwrap()
            .status();
        if status == wanted {
            return;
        }
        assert!(Instant::now() < deadline, "readiness stayed {status}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Asserts a 503 `temporarily_unavailable` answer that says when to retry.
fn assert_unavailable(
    what: &str,
    status: StatusCode,
    headers: &reqwest::header::HeaderMap,
    body: &Value,
) {
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{what}: {body}");
    assert_eq!(body["error"], "temporarily_unavailable", "{what}: {body}");
    let retry_after: u64 = headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!(
        (1..=60).contains(&retry_after),
        "{what}: Retry-After {retry_after}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_down_answers_503_and_service_recovers_when_it_returns() {
    let postgres = PrivatePostgres::start_new();
    let database_url = postgres.fresh_database().await;
    let (instance, driver) = single(&database_url).await;
    let http = &driver.http;
    let (client, tokens) = driver.tokens_for("outage-ann", None).await;
    let mut session = Session::new(client, &tokens);
    until_ready_is(http, &instance.base(), StatusCode::OK).await;

    postgres.stop();

    until_ready_is(http, &instance.base(), StatusCode::SERVICE_UNAVAILABLE).await;
    let registration = json!({
        "client_name": "During the outage",
        "redirect_uris": ["http://127.0.0.1:33418/callback"],
        "token_endpoint_auth_method": "none",
    });
    let response = http
        .post(driver.url("/register"))
        .json(&registration)
        .send()
        .await
        .unwrap();
    let (status, headers) = (response.status(), response.headers().clone());
    assert_unavailable(
        "register",
        status,
        &headers,
        &response.json().await.unwrap(),
    );
    let (status, headers, body) = driver
        .post_form(
            "/token",
            &session.client,
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", &session.refresh),
            ],
        )
        .await;
    assert_unavailable("refresh", status, &headers, &body);
    // Tokens verify without the database: the built-in tool still answers.
    let (status, answer) = whoami(http, &driver.mcp_url(), &session.access).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_whoami(&answer);

    postgres.start();

    // Without restarting Portcullis: ready again, and the refresh refused during the outage
    // (which changed nothing) now succeeds.
    until_ready_is(http, &instance.base(), StatusCode::OK).await;
    let (status, tokens) = driver.refresh(&session.client, &session.refresh).await;
    assert_eq!(status, StatusCode::OK, "{tokens}");
    session = Session::new(session.client, &tokens);

    // A burst right after: no 5xx.
    let mut burst = Vec::new();
    for i in 0..30 {
        let http = http.clone();
        let (register_url, mcp_url) = (driver.url("/register"), driver.mcp_url());
        let (registration, access) = (registration.clone(), session.access.clone());
        burst.push(tokio::spawn(async move {
            let status = if i % 2 == 0 {
                http.post(register_url)
                    .json(&registration)
                    .send()
                    .await
                    .unwrap()
                    .status()
            } else {
                whoami(&http, &mcp_url, &access).await.0
            };
            (i, status)
        }));
    }
    for request in burst {
        let (i, status) = request.await.unwrap();
        assert!(
            status.is_success(),
            "request {i} of the burst: {status}\n{}",
            instance.output()
        );
    }
    let (status, tokens) = driver.refresh(&session.client, &session.refresh).await;
    assert_eq!(status, StatusCode::OK, "{tokens}");
}
