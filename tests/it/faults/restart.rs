//! `kill -9` under load, then a restart on the same port and database: nothing issued before is
//! lost, and the clients carry on.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::Value;
use tokio::sync::Mutex;

use super::{Session, assert_whoami, single, whoami};
use crate::support::app::{Db, TestApp};

/// What the load saw: successes, and every answer that was not one (a connection that broke
/// with the process is not an answer, and not counted).
#[derive(Default)]
struct Tally {
    refreshes: AtomicUsize,
    calls: AtomicUsize,
    wrong: std::sync::Mutex<Vec<String>>,
}

impl Tally {
    fn wrong(&self, what: String) {
        self.wrong.lock().unwrap().push(what);
    }
}

/// Each session refreshes in a loop (keeping the newest tokens) while another task calls a tool
/// with its newest access token, until `stop`.
fn load(
    driver: &TestApp,
    sessions: &[Arc<Mutex<Session>>],
    shared_tally: &Arc<Tally>,
    shared_stop: &Arc<AtomicBool>,
) -> Vec<tokio::task::JoinHandle<()>> {
    let mut tasks = Vec::new();
    for shared in sessions {
        let (session, tally, stop) = (shared.clone(), shared_tally.clone(), shared_stop.clone());
        let (http, token_url) = (driver.http.clone(), driver.url("/token"));
        tasks.push(tokio::spawn(async move {
            while !stop.load(Ordering::SeqCst) {
                let (client_id, refresh) = {
                    let s = session.lock().await;
                    (s.client.client_id.clone(), s.refresh.clone())
                };
                let form = [
                    ("grant_type", "refresh_token"),
                    ("refresh_token", &refresh),
                    ("client_id", &client_id),
                ];
                let Ok(response) = http.post(&token_url).form(&form).send().await else {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    continue;
                };
                let status = response.status();
                let Ok(body) = response.json::<Value>().await else {
                    continue;
                };
                if status == StatusCode::OK {
                    let mut s = session.lock().await;
                    s.access = body["access_token"].as_str().unwrap().to_owned();
                    s.refresh = body["refresh_token"].as_str().unwrap().to_owned();
                    tally.refreshes.fetch_add(1, Ordering::SeqCst);
                } else {
                    tally.wrong(format!("refresh: {status} {body}"));
                }
            }
        }));
        let (session, tally, stop) = (shared.clone(), shared_tally.clone(), shared_stop.clone());
        let (http, mcp_url) = (driver.http.clone(), driver.mcp_url());
        tasks.push(tokio::spawn(async move {
            while !stop.load(Ordering::SeqCst) {
                let access = session.lock().await.access.clone();
                let request = http
                    .post(&mcp_url)
                    .header("accept", "application/json, text/event-stream")
                    .header("mcp-protocol-version", "2025-06-18")
                    .bearer_auth(access)
                    .json(&serde_json::json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "whoami", "arguments": {}}}));
                let Ok(response) = request.send().await else {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    continue;
                };
                let status = response.status();
                match response.text().await {
                    Ok(_) if status == StatusCode::OK => {
                        tally.calls.fetch_add(1, Ordering::SeqCst);
                    }
                    Ok(body) => tally.wrong(format!("tool call: {status} {body}")),
                    Err(_) => {}
                }
            }
        }));
    }
    tasks
}

/// Waits until the tally has `refreshes` and `calls` more than it had (a readiness check, not
/// a timing assertion: the deadline only stops a test that would hang).
async fn until_progress(tally: &Tally, refreshes: usize, calls: usize) {
    let (r0, c0) = (
        tally.refreshes.load(Ordering::SeqCst),
        tally.calls.load(Ordering::SeqCst),
    );
    let deadline = Instant::now() + Duration::from_secs(120);
    while tally.refreshes.load(Ordering::SeqCst) < r0 + refreshes
        || tally.calls.load(Ordering::SeqCst) < c0 + calls
    {
        assert!(Instant::now() < deadline, "the load made no progress");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn killed_under_load_and_restarted(db: Db) {
    let (database_url, _tmp) = match db {
        Db::Postgres => (crate::support::db::empty_postgres().await, None),
        Db::Sqlite => {
            let (url, tmp) = crate::support::db::empty_sqlite();
            (url, Some(tmp))
        }
    };
    let (mut instance, driver) = single(&database_url).await;
    let mut sessions = Vec::new();
    for login in ["kill-ann", "kill-bob", "kill-cyd"] {
        let (client, tokens) = driver.tokens_for(login, None).await;
        sessions.push(Arc::new(Mutex::new(Session::new(client, &tokens))));
    }
    let tally = Arc::new(Tally::default());

    // Under load: every session refreshing and calling a tool, then the process killed.
    let stop = Arc::new(AtomicBool::new(false));
    let tasks = load(&driver, &sessions, &tally, &stop);
    until_progress(&tally, 2 * sessions.len(), 2 * sessions.len()).await;
    instance.kill();
    stop.store(true, Ordering::SeqCst);
    for task in tasks {
        task.await.unwrap();
    }
    let before: Vec<Session> = {
        let mut all = Vec::new();
        for session in &sessions {
            all.push(session.lock().await.clone());
        }
        all
    };

    instance.restart().await;

    // Every access token issued before still verifies; every client's newest refresh token
    // (with its registration and grant) still works.
    for session in &before {
        let (status, answer) = whoami(&driver.http, &driver.mcp_url(), &session.access).await;
        assert_eq!(status, StatusCode::OK, "{answer}");
        assert_whoami(&answer);
    }
    for (session, live) in before.iter().zip(&sessions) {
        let (status, tokens) = driver.refresh(&session.client, &session.refresh).await;
        assert_eq!(
            status,
            StatusCode::OK,
            "the newest refresh token before the kill: {tokens}\n{}",
            instance.output()
        );
        *live.lock().await = Session::new(session.client.clone(), &tokens);
    }

    // And the clients carry on.
    let stop = Arc::new(AtomicBool::new(false));
    let tasks = load(&driver, &sessions, &tally, &stop);
    until_progress(&tally, 2 * sessions.len(), 2 * sessions.len()).await;
    stop.store(true, Ordering::SeqCst);
    for task in tasks {
        task.await.unwrap();
    }
    let wrong = tally.wrong.lock().unwrap().clone();
    assert!(
        wrong.is_empty(),
        "every answer was a success: {wrong:#?}\n{}",
        instance.output()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_a_kill_under_load_loses_nothing_and_clients_carry_on() {
    killed_under_load_and_restarted(Db::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_a_kill_under_load_loses_nothing_and_clients_carry_on() {
    killed_under_load_and_restarted(Db::Sqlite).await;
}
