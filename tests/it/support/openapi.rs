//! The REST API behind the OpenAPI tests: `scripts/openapi/app.py`, a FastAPI app that FastAPI
//! describes itself (`/openapi.json`), run from its virtualenv (`scripts/openapi/.venv`, which
//! `scripts/test.sh` installs) with uvicorn on 127.0.0.1.
//!
//! Besides the inventory (`/items`, with an enum, a tag list, path parameters, a JSON body, a
//! 404), it has `/slow?seconds=`, `/large?count=`, `/fail` (a 500), `/calls/{key}` (how many
//! requests for the key reached it), `/echo` and `/echo/{bearer,header-key,query-key}` (behind
//! FastAPI's `HTTPBearer`, `APIKeyHeader` `X-API-Key` and `APIKeyQuery` `api_key`, all echoing
//! the credentials and identity headers they received), and `/stats`: the requests each path
//! received, which shows what reached the API and what did not.

use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader, Lines};
use tokio::process::{Child, ChildStdout};

use super::prereq::{self, Need};

const DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/openapi");

/// A running app, with a state of its own (items, counts); killed when dropped.
pub struct Api {
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    child: Child,
    http: reqwest::Client,
    // Kept open: closing the pipe's reading end would break a later write to stdout.
    _stdout: Lines<BufReader<ChildStdout>>,
}

/// Starts `app.py serve --port 0 --exit-with-parent` (it binds a free port itself and prints
/// `READY <url>` once it listens) and waits until `/health` answers.
pub async fn spawn() -> Api {
    prereq::require(&[Need::OpenApi]);
    let mut child = tokio::process::Command::new(format!("{DIR}/.venv/bin/python"))
        .arg(format!("{DIR}/app.py"))
        .args(["serve", "--port", "0", "--exit-with-parent"])
        .current_dir(DIR)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap_or_else(|e| panic!("starting {DIR}/app.py: {e}"));
    let mut stdout = BufReader::new(child.stdout.take().expect("piped stdout")).lines();
    let ready = tokio::time::timeout(Duration::from_secs(30), stdout.next_line())
        .await
        .expect("app.py did not print READY within 30 s")
        .expect("reading app.py's stdout");
    let base = match ready.as_deref().and_then(|l| l.strip_prefix("READY ")) {
        Some(url) => url.to_owned(),
        None => panic!("app.py exited or printed {ready:?} instead of `READY <url>`"),
    };
    let api = Api {
        base,
        child,
        http: reqwest::Client::new(),
        _stdout: stdout,
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match api.http.get(api.url("/health")).send().await {
            Ok(response) if response.status().is_success() => return api,
            outcome => assert!(
                Instant::now() < deadline,
                "{} did not answer /health within 30 s: {outcome:?}",
                api.base
            ),
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

impl Api {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Where FastAPI serves the app's OpenAPI document.
    pub fn document_url(&self) -> String {
        self.url("/openapi.json")
    }

    /// GETs `path` from the app directly, as JSON; panics on a non-2xx answer.
    pub async fn get(&self, path: &str) -> Value {
        let response = self.http.get(self.url(path)).send().await.unwrap();
        assert!(response.status().is_success(), "{path}: {response:?}");
        response.json().await.unwrap()
    }

    /// How many requests for `path` (e.g. `/items/7`) reached the app so far.
    pub async fn calls(&self, path: &str) -> u64 {
        self.get("/stats").await[path].as_u64().unwrap_or(0)
    }
}

impl Drop for Api {
    fn drop(&mut self) {
        // SIGKILL, to the process this test started; `kill_on_drop` reaps it.
        let _ = self.child.start_kill();
    }
}
