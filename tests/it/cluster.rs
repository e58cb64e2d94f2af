//! Several instances as one, through Redis: revocations honoured everywhere within a second,
//! rate limits counted together, and Redis going away and coming back without a 5xx.
//!
//! Every instance here polls the database for revocations only once an hour, so what reaches
//! another instance within a second came through Redis.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::app::{self, Db, Options, TestApp};
use crate::support::{db, redis};

/// Instances on one Postgres database and one Redis namespace, with one public URL (the
/// first instance's), as behind a load balancer.
struct Cluster {
    database_url: String,
    fernet_key: String,
    redis_url: String,
    prefix: String,
    public: std::sync::Mutex<Option<String>>,
}

impl Cluster {
    async fn new(redis_url: String) -> Self {
        Self {
            database_url: db::empty_postgres().await,
            fernet_key: portcullis::crypto::Secrets::generate_key(),
            redis_url,
            prefix: redis::fresh_prefix(),
            public: std::sync::Mutex::new(None),
        }
    }

    async fn instance(&self, limits: &str) -> TestApp {
        self.instance_with(limits, "").await
    }

    /// An instance with `extra` (backends…) in its configuration too.
    async fn instance_with(&self, limits: &str, extra: &str) -> TestApp {
        let public = self.public.lock().unwrap().clone();
        let public_toml = public
            .map(|url| format!("public_base_url = \"{url}\"\n"))
            .unwrap_or_default();
        let app = app::spawn(Options {
            db: Db::Postgres,
            database_url: Some(self.database_url.clone()),
            fernet_key: Some(self.fernet_key.clone()),
            top_toml: format!(
                "grant = \"requested\"\nredis_url = \"{}\"\nredis_prefix = \"{}\"\n{public_toml}",
                self.redis_url, self.prefix
            ),
            extra_toml: format!(
                "{extra}\n[tokens]\nrevocation_poll_secs = 3600\n\n[rate_limits]\n{limits}\n"
            ),
            ..Options::default()
        })
        .await;
        self.public
            .lock()
            .unwrap()
            .get_or_insert_with(|| app.base.clone());
        app
    }

    /// Waits until every one of `instances` listens for events (after a start or a Redis
    /// outage), so that a test does not race a subscription.
    async fn wait_for_subscribers(&self, instances: i64) {
        let channel = format!("{}:events", self.prefix);
        for _ in 0..200 {
            if redis::subscribers(&self.redis_url, &channel).await >= instances {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("the instances did not subscribe to {channel}");
    }
}

/// `whoami` on `app` itself, named by the public URL's host as a balancer passes it on.
async fn whoami_status(app: &TestApp, token: &str) -> StatusCode {
    let call = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
                      "params": {"name": "whoami", "arguments": {}}});
    let public = app.state.public.base();
    let host = format!(
        "{}:{}",
        public.host_str().unwrap(),
        public.port_or_known_default().unwrap()
    );
    app.http
        .post(app.mcp_url())
        .header("host", host)
        .header("accept", "application/json, text/event-stream")
        .header("mcp-protocol-version", "2025-06-18")
        .bearer_auth(token)
        .json(&call)
        .send()
        .await
        .unwrap()
        .status()
}

/// Waits up to `limit` for `token` to be refused by `app`; returns how long it took.
async fn refused_within(app: &TestApp, token: &str, limit: Duration) -> Duration {
    let start = Instant::now();
    loop {
        match whoami_status(app, token).await {
            StatusCode::UNAUTHORIZED => return start.elapsed(),
            StatusCode::OK => {}
            other => panic!("whoami answered {other}"),
        }
        assert!(
            start.elapsed() < limit,
            "the token is still accepted after {limit:?}"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

async fn revoke(app: &TestApp, client_id: &str, refresh_token: &str) {
    let response = app
        .http
        .post(app.url("/revoke"))
        .form(&[("token", refresh_token), ("client_id", client_id)])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
}

#[tokio::test]
async fn a_revocation_on_one_instance_is_honoured_by_another_within_a_second() {
    let (redis_url, _own) = redis::shared().await;
    let cluster = Cluster::new(redis_url).await;
    let a = cluster.instance("").await;
    let b = cluster.instance("").await;
    cluster.wait_for_subscribers(2).await;

    let (client, tokens) = a.tokens_for("alice@example.com", None).await;
    let access = tokens["access_token"].as_str().unwrap();
    assert_eq!(whoami_status(&b, access).await, StatusCode::OK);
    revoke(
        &a,
        &client.client_id,
        tokens["refresh_token"].as_str().unwrap(),
    )
    .await;
    refused_within(&b, access, Duration::from_secs(1)).await;
    assert_eq!(whoami_status(&a, access).await, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn an_api_key_revoked_by_the_operator_is_refused_everywhere_within_a_second() {
    let (redis_url, _own) = redis::shared().await;
    let cluster = Cluster::new(redis_url).await;
    let a = cluster.instance("").await;
    let b = cluster.instance("").await;
    cluster.wait_for_subscribers(2).await;
    // A person with an identity, and a key of theirs that both instances have judged good.
    let (_, tokens) = a.tokens_for("gus@example.com", None).await;
    let claims = crate::negative::claims_of(tokens["access_token"].as_str().unwrap());
    let now = chrono::Utc::now();
    let (record, key) =
        portcullis::oauth::api_keys::issue(&claims.sub, "ci-bot", "demo:*:read", None, now);
    a.state.store.insert_api_key(&record).await.unwrap();
    for instance in [&a, &b] {
        assert_eq!(whoami_status(instance, &key).await, StatusCode::OK);
    }

    let shell = tempfile::tempdir().unwrap();
    let output = crate::cli::portcullis(
        shell.path(),
        &["api-keys", "revoke", &record.id],
        &[
            ("DATABASE_URL", &cluster.database_url),
            ("REDIS_URL", &cluster.redis_url),
            ("PORTCULLIS_REDIS_PREFIX", &cluster.prefix),
        ],
    );
    assert!(output.status.success(), "{}", crate::cli::text(&output));
    assert!(
        crate::cli::text(&output).contains("every instance refuses it now"),
        "{}",
        crate::cli::text(&output)
    );
    for instance in [&a, &b] {
        refused_within(instance, &key, Duration::from_secs(1)).await;
    }
}

async fn register(app: &TestApp) -> StatusCode {
    app.http
        .post(app.url("/register"))
        .json(&json!({
            "client_name": "Shared",
            "redirect_uris": ["http://127.0.0.1:33418/callback"],
            "token_endpoint_auth_method": "none",
        }))
        .send()
        .await
        .unwrap()
        .status()
}

#[tokio::test]
async fn instances_count_one_rate_limit_together() {
    let (redis_url, _own) = redis::shared().await;
    let cluster = Cluster::new(redis_url).await;
    let limits = "register_per_minute = 4";
    let a = cluster.instance(limits).await;
    let b = cluster.instance(limits).await;
    // Alternating between the instances, as a round-robin balancer would.
    let mut accepted = 0;
    for attempt in 0..12 {
        let instance = if attempt % 2 == 0 { &a } else { &b };
        match register(instance).await {
            StatusCode::CREATED => accepted += 1,
            StatusCode::TOO_MANY_REQUESTS => {}
            other => panic!("registration answered {other}"),
        }
        // The instances share their counts every few milliseconds.
        tokio::time::sleep(Duration::from_millis(60)).await;
    }
    // Each instance alone would have let four through: eight in all.
    assert!(
        (4..=5).contains(&accepted),
        "{accepted} registrations were let through"
    );
}

async fn ready(app: &TestApp) -> (StatusCode, Value) {
    let response = app.http.get(app.url("/health/ready")).send().await.unwrap();
    (response.status(), response.json().await.unwrap())
}

#[tokio::test]
async fn redis_stopped_then_started_again_costs_no_request_and_events_flow_again() {
    let mut private = redis::PrivateRedis::start().await;
    let cluster = Cluster::new(private.url()).await;
    let limits = "register_per_minute = 2";
    let a = cluster.instance(limits).await;
    let b = cluster.instance(limits).await;
    cluster.wait_for_subscribers(2).await;
    let (client, tokens) = a.tokens_for("alice@example.com", None).await;
    let access = tokens["access_token"].as_str().unwrap().to_owned();
    let (status, body) = ready(&a).await;
    assert_eq!(
        (status, body["redis"].as_str()),
        (StatusCode::OK, Some("ok"))
    );

    private.stop();
    // Readiness says so, without taking the instance out of service.
    let (status, body) = ready(&b).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["status"], "degraded", "{body}");
    assert_eq!(body["redis"], "unavailable", "{body}");
    assert_eq!(body["database"], "ok", "{body}");
    // Limits fail open; tool calls, registration and refresh carry on.
    for instance in [&a, &b, &a, &b] {
        assert_eq!(register(instance).await, StatusCode::CREATED);
        assert_eq!(whoami_status(instance, &access).await, StatusCode::OK);
    }
    let (status, refreshed) = b
        .refresh(&client, tokens["refresh_token"].as_str().unwrap())
        .await;
    assert_eq!(status, StatusCode::OK, "{refreshed}");

    private.start_again().await;
    cluster.wait_for_subscribers(2).await;
    // The instances' connections are made again at their next use of Redis.
    let mut again = false;
    for _ in 0..100 {
        let (status, body) = ready(&a).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        if body["status"] == "ok" {
            again = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(again, "readiness did not see Redis again");
    // Revocations flow through Redis again.
    let access = refreshed["access_token"].as_str().unwrap();
    revoke(
        &b,
        &client.client_id,
        refreshed["refresh_token"].as_str().unwrap(),
    )
    .await;
    refused_within(&a, access, Duration::from_secs(1)).await;
}

#[tokio::test]
async fn an_instance_starts_and_serves_while_redis_is_unreachable() {
    // Nothing listens on this port.
    let cluster = Cluster::new(format!("redis://127.0.0.1:{}", redis::free_port())).await;
    let app = cluster
        .instance_with(
            "register_per_minute = 1",
            &format!("[metrics]\ntoken = \"{}\"\n", crate::metrics::TOKEN),
        )
        .await;
    let (status, body) = ready(&app).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["redis"], "unavailable", "{body}");
    for _ in 0..3 {
        assert_eq!(register(&app).await, StatusCode::CREATED);
    }
    let (_, tokens) = app.tokens_for("alice@example.com", None).await;
    let access = tokens["access_token"].as_str().unwrap();
    assert_eq!(whoami_status(&app, access).await, StatusCode::OK);
    // The limits failed open, and the operator can see so.
    let metrics = crate::metrics::scrape(&app).await;
    let unlimited =
        crate::metrics::sample(&metrics, "portcullis_rate_limit_unavailable_total", &[]);
    assert!(unlimited >= Some(3.0), "{metrics}");
}

#[tokio::test]
async fn a_person_disabled_by_the_operator_is_refused_everywhere_within_a_second() {
    let (redis_url, _own) = redis::shared().await;
    let cluster = Cluster::new(redis_url).await;
    let a = cluster.instance("").await;
    let b = cluster.instance("").await;
    cluster.wait_for_subscribers(2).await;
    let (_, tokens) = a.tokens_for("dora@example.com", None).await;
    let access = tokens["access_token"].as_str().unwrap();
    assert_eq!(whoami_status(&b, access).await, StatusCode::OK);

    let shell = tempfile::tempdir().unwrap();
    let output = crate::cli::portcullis(
        shell.path(),
        &["users", "disable", "dora@example.com"],
        &[
            ("DATABASE_URL", &cluster.database_url),
            ("REDIS_URL", &cluster.redis_url),
            ("PORTCULLIS_REDIS_PREFIX", &cluster.prefix),
        ],
    );
    assert!(output.status.success(), "{}", crate::cli::text(&output));
    for instance in [&a, &b] {
        refused_within(instance, access, Duration::from_secs(1)).await;
    }
}

/// An expired upstream token is refreshed by one instance at a time: while another instance
/// holds the grant's lock, a call waits, then uses the tokens that instance stored, and does
/// not spend the upstream refresh token again.
#[tokio::test]
async fn an_upstream_refresh_under_another_instances_lock_waits_for_its_tokens() {
    let (redis_url, _own) = redis::shared().await;
    let cluster = Cluster::new(redis_url).await;
    let backend = crate::support::recorder::spawn().await;
    let config = format!(
        "[[backends]]\nid = \"rec\"\nurl = \"{}\"\nscope = \"demo:tools:read\"\n\
         forward = [\"upstream-token\"]\n",
        backend.url
    );
    let app = cluster.instance_with("", &config).await;
    let (_, tokens) = app
        .tokens_for_resource("alice@example.com", None, Some(app.url("/mcp/rec")))
        .await;
    let token = tokens["access_token"].as_str().unwrap().to_owned();
    let grant_id = crate::negative::claims_of(&token).sid;
    app.expire_upstream_token(&grant_id).await;

    // Another instance is refreshing this grant.
    let redis =
        portcullis::cluster::Redis::new(&cluster.redis_url.parse().unwrap(), &cluster.prefix)
            .unwrap();
    let lock = redis
        .try_lock(
            &format!("upstream-refresh:{grant_id}"),
            Duration::from_secs(20),
        )
        .await
        .unwrap()
        .expect("the lock is free");
    let call = {
        let (http, url, token) = (app.http.clone(), app.url("/mcp/rec"), token.clone());
        tokio::spawn(async move {
            http.post(url)
                .bearer_auth(token)
                .header("accept", "application/json, text/event-stream")
                .json(&json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
                              "params": {"name": "echo", "arguments": {}}}))
                .send()
                .await
                .unwrap()
                .status()
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!call.is_finished(), "the call waits for the other instance");

    // The other instance stores what its refresh got, and lets go.
    let store = &app.state.store;
    let before = store.get_grant(&grant_id).await.unwrap().unwrap().upstream;
    let secrets = &app.state.auth.secrets;
    let theirs = portcullis::store::UpstreamTokens {
        access_token_enc: Some(secrets.encrypt("from-the-other-instance")),
        refresh_token_enc: Some(secrets.encrypt("their-new-refresh-token")),
        id_token_enc: before.id_token_enc.clone(),
        expires_at: Some(chrono::Utc::now() + chrono::Duration::hours(1)),
    };
    let spent = before.refresh_token_enc.clone().unwrap();
    assert!(
        store
            .replace_grant_upstream(&grant_id, &spent, &theirs)
            .await
            .unwrap()
    );
    lock.release().await;

    assert_eq!(call.await.unwrap(), StatusCode::OK);
    assert_eq!(
        backend.last().headers["authorization"],
        "Bearer from-the-other-instance"
    );
    let now = store.get_grant(&grant_id).await.unwrap().unwrap().upstream;
    assert_eq!(
        (now.access_token_enc, now.refresh_token_enc),
        (theirs.access_token_enc, theirs.refresh_token_enc),
        "nothing refreshed the grant again"
    );
}
