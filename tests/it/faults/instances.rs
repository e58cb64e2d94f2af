//! Two instances on one database behind a round-robin proxy behave as one: a sign-in whose
//! steps alternate between them, a tool call on either, a revoke on one honoured by the other.

use std::time::{Duration, Instant};

use reqwest::StatusCode;

use super::{Session, assert_whoami, launch, whoami};
use crate::support::process::{Instance, RoundRobin, free_port, one_connection_per_request};

/// Without Redis, an instance learns of a revocation by polling the database (every 5 s).
const WITHOUT_REDIS: Duration = Duration::from_secs(6);

/// The whole scenario, on Postgres, with the instances given `redis_url` (the Redis variant
/// passes one and a shorter `propagation`).
pub(super) async fn two_instances_behave_as_one(redis_url: Option<String>, propagation: Duration) {
    let database_url = crate::support::db::empty_postgres().await;
    let ports = [free_port(), free_port()];
    let upstreams = ports.map(|port| std::net::SocketAddr::from(([127, 0, 0, 1], port)));
    let proxy = RoundRobin::start(upstreams.to_vec()).await;
    let (launch, driver) = launch(
        &database_url,
        &proxy.url(),
        redis_url,
        one_connection_per_request(false),
    )
    .await;
    let a = Instance::start(launch.clone(), ports[0]).await;
    let b = Instance::start(launch, ports[1]).await;

    // A sign-in whose every request (register, authorize, provider page, consent, callback,
    // token) goes to the other instance than the one before.
    let before = proxy.counts();
    let browser = one_connection_per_request(true);
    let (client, tokens) = driver.tokens_with(&browser, "twins-ann", None, None).await;
    let session = Session::new(client, &tokens);
    let after = proxy.counts();
    let steps: Vec<usize> = after.iter().zip(&before).map(|(a, b)| a - b).collect();
    assert!(
        steps.iter().all(|&n| n >= 2),
        "the sign-in's steps went to both instances: {steps:?}"
    );

    // A tool call works on either instance.
    for instance in [&a, &b] {
        let mcp = format!("{}/mcp", instance.base());
        let (status, answer) = whoami(&driver.http, &mcp, &session.access).await;
        assert_eq!(status, StatusCode::OK, "{answer}\n{}", instance.output());
        assert_whoami(&answer);
    }

    // A revoke on one is honoured on the other.
    let revoked = driver
        .http
        .post(format!("{}/revoke", a.base()))
        .form(&[
            ("token", session.access.as_str()),
            ("token_type_hint", "access_token"),
            ("client_id", session.client.client_id.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(revoked.status(), StatusCode::OK);
    let since = Instant::now();
    let on_b = format!("{}/mcp", b.base());
    loop {
        let (status, answer) = whoami(&driver.http, &on_b, &session.access).await;
        if status == StatusCode::UNAUTHORIZED {
            break;
        }
        assert_eq!(status, StatusCode::OK, "{answer}");
        assert!(
            since.elapsed() < propagation,
            "the other instance still accepts the revoked token after {propagation:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_on_one_postgres_behave_as_one() {
    two_instances_behave_as_one(None, WITHOUT_REDIS).await;
}

/// With Redis, a revocation reaches the other instance at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_on_one_postgres_and_redis_behave_as_one() {
    let redis = crate::support::redis::PrivateRedis::start().await;
    two_instances_behave_as_one(Some(redis.url()), Duration::from_secs(1)).await;
}
