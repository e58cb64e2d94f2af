//! The test OpenID provider (`scripts/idp/idp.mjs`, oidc-provider with its development login and
//! consent forms): the one a test process shares, IdPs of a test's own, and a scripted browser
//! that signs in at it.

use std::io::{BufRead, BufReader, Write};
use std::sync::OnceLock;
use std::sync::mpsc;
use std::time::Duration;

use reqwest::StatusCode;
use reqwest::header::{CONTENT_TYPE, LOCATION};
use scraper::{ElementRef, Html, Selector};
use url::Url;

use super::prereq::{self, Need};

const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/idp/idp.mjs");
/// The confidential client `idp.mjs` registers.
const CLIENT_ID: &str = "portcullis-test";
const CLIENT_SECRET: &str = "portcullis-test-secret";

/// Where the test IdP runs and the confidential client registered at it for Portcullis.
#[derive(Debug, Clone)]
pub struct TestIdp {
    /// Exactly the `issuer` of its discovery document, e.g. `http://127.0.0.1:41234`.
    pub issuer: String,
    pub client_id: String,
    pub client_secret: String,
}

impl TestIdp {
    /// The IdP this test process shares. When `TEST_IDP_ISSUER` is set (`scripts/test.sh` sets
    /// it, with `TEST_IDP_CLIENT_ID` and `TEST_IDP_CLIENT_SECRET`, since cargo-nextest runs every
    /// test in a process of its own), that one; otherwise one started on first use
    /// (`node scripts/idp/idp.mjs --port 0 --exit-with-parent`) and kept until the process
    /// exits, when it stops by itself.
    pub fn from_env() -> TestIdp {
        static SHARED: OnceLock<Result<TestIdp, String>> = OnceLock::new();
        let shared = SHARED.get_or_init(|| match std::env::var("TEST_IDP_ISSUER") {
            Ok(issuer) => {
                let var = |name: &str, default: &str| {
                    std::env::var(name).unwrap_or_else(|_| default.to_owned())
                };
                Ok(TestIdp {
                    issuer,
                    client_id: var("TEST_IDP_CLIENT_ID", CLIENT_ID),
                    client_secret: var("TEST_IDP_CLIENT_SECRET", CLIENT_SECRET),
                })
            }
            Err(_) => start_shared(),
        });
        // A failed start is reported to every test that needs the IdP, without a retry each.
        shared.clone().unwrap_or_else(|error| panic!("{error}"))
    }
}

/// Starts the process-wide IdP with `std::process` (every `#[tokio::test]` has a runtime of its
/// own, which ends with the test) and leaves it running: `--exit-with-parent` stops it when this
/// process is gone. Its stderr is passed on to this process's stderr, without oidc-provider's
/// development-mode warnings and notices.
fn start_shared() -> Result<TestIdp, String> {
    prereq::require(&[Need::Idp]);
    let mut child = std::process::Command::new("node")
        .arg(SCRIPT)
        .args(["--port", "0", "--exit-with-parent"])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .map_err(|e| format!("starting node {SCRIPT}: {e}"))?;
    let stdout = child.stdout.take().expect("piped stdout");
    let stderr = child.stderr.take().expect("piped stderr");

    let (ready_tx, ready_rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut lines = BufReader::new(stdout).lines();
        let _ = ready_tx.send(lines.next());
        // Keep reading: a closed pipe would break a later write to stdout.
        for _ in lines {}
    });
    let (log_tx, log_rx) = mpsc::channel();
    let stderr_reader = std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if line.starts_with("oidc-provider ") {
                continue; // its development-mode WARNINGs and NOTICEs
            }
            // Shown as it comes (e.g. `idp: server_error`), and kept for a failed start.
            let _ = writeln!(std::io::stderr(), "[shared test IdP] {line}");
            let _ = log_tx.send(line);
        }
    });

    let ready = ready_rx.recv_timeout(Duration::from_secs(30));
    let issuer = match &ready {
        Ok(Some(Ok(line))) => line.strip_prefix("READY ").map(str::to_owned),
        _ => None,
    };
    match issuer {
        Some(issuer) => Ok(TestIdp {
            issuer,
            client_id: CLIENT_ID.to_owned(),
            client_secret: CLIENT_SECRET.to_owned(),
        }),
        None => {
            let _ = child.kill();
            let _ = child.wait();
            let _ = stderr_reader.join(); // its stderr is at its end now
            let log: Vec<String> = log_rx.try_iter().collect();
            Err(format!(
                "the shared test IdP ({SCRIPT}) did not print `READY <issuer>` within 30 s \
                 (got {ready:?})\n--- its stderr ---\n{}",
                log.join("\n")
            ))
        }
    }
}

/// A test IdP of a test's own, for settings the shared one cannot have (a short access-token
/// lifetime, to make the upstream token expire). The process is killed when this is dropped.
#[derive(Debug)]
pub struct OwnIdp {
    pub idp: TestIdp,
    _process: tokio::process::Child,
    // Kept open: closing the pipe's reading end would break a later write to stdout.
    _stdout: tokio::io::Lines<tokio::io::BufReader<tokio::process::ChildStdout>>,
}

impl TestIdp {
    /// Starts `scripts/idp/idp.mjs --port 0 --access-ttl <access_ttl_secs>` and waits for it;
    /// it also stops by itself when the test process dies.
    pub async fn spawn(access_ttl_secs: u64) -> OwnIdp {
        use tokio::io::{AsyncBufReadExt, BufReader};

        prereq::require(&[Need::Idp]);
        let script = SCRIPT;
        let mut process = tokio::process::Command::new("node")
            .arg(script)
            .args(["--port", "0", "--exit-with-parent"])
            .args(["--access-ttl", &access_ttl_secs.to_string()])
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("starting node {script}: {e}"));
        let stdout = process.stdout.take().expect("piped stdout");
        let mut lines = BufReader::new(stdout).lines();
        let ready = tokio::time::timeout(std::time::Duration::from_secs(30), lines.next_line())
            .await
            .unwrap_or_else(|_| panic!("{script} did not print READY within 30 s"))
            .unwrap_or_else(|e| panic!("reading {script}'s stdout: {e}"));
        let issuer = match ready
            .as_deref()
            .and_then(|line| line.strip_prefix("READY "))
        {
            Some(issuer) => issuer.to_owned(),
            None => panic!("{script} exited or printed {ready:?} instead of `READY <issuer>`"),
        };
        OwnIdp {
            idp: TestIdp {
                issuer,
                client_id: CLIENT_ID.to_owned(),
                client_secret: CLIENT_SECRET.to_owned(),
            },
            _process: process,
            _stdout: lines,
        }
    }
}

/// How many requests a sign-in may take before it is considered a redirect loop.
const MAX_STEPS: usize = 20;

/// Signs in at the test IdP as `login`, the way a person in a browser would.
///
/// `browser` must keep cookies (`cookie_store(true)`) and must not follow redirects
/// (`redirect(Policy::none())`). Starting from `authorize_url` (the upstream authorization URL
/// Portcullis redirected the browser to), this follows the IdP's redirects, fills in and submits
/// the login form (`login` in the text field, anything in the password field), submits the
/// consent form, and stops at the first redirect that leaves the IdP's origin: Portcullis'
/// `/callback/{provider}?code=…&state=…`, returned without being requested.
pub async fn sign_in(browser: &reqwest::Client, authorize_url: &str, login: &str) -> Url {
    let start = Url::parse(authorize_url)
        .unwrap_or_else(|e| panic!("authorization URL {authorize_url:?} does not parse: {e}"));
    let idp_origin = start.origin();
    let mut request = Step::Get(start);
    let mut trail = Vec::new();

    for _ in 0..MAX_STEPS {
        trail.push(request.describe());
        let url = request.url().clone();
        let response = match &request {
            Step::Get(url) => browser.get(url.clone()).send().await,
            Step::Post(url, fields) => browser.post(url.clone()).form(fields).send().await,
        }
        .unwrap_or_else(|e| panic!("sign-in: {} failed: {e}", request.describe()));
        let status = response.status();

        if status.is_redirection() {
            let location = response
                .headers()
                .get(LOCATION)
                .and_then(|value| value.to_str().ok())
                .unwrap_or_else(|| panic!("sign-in: {status} from {url} without a Location"));
            let next = url.join(location).unwrap_or_else(|e| {
                panic!("sign-in: {url} redirected to {location:?}, which does not parse: {e}")
            });
            if next.origin() != idp_origin {
                return next;
            }
            request = Step::Get(next);
            continue;
        }

        let is_html = response
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|value| value.to_str().ok())
            .is_some_and(|value| value.starts_with("text/html"));
        let body = response.text().await.unwrap_or_default();
        if status != StatusCode::OK || !is_html {
            panic!(
                "sign-in: unexpected {status} from {url}\nsteps so far:\n  {}\nbody: {}",
                trail.join("\n  "),
                excerpt(&body)
            );
        }
        let (action, fields) = fill_form(&body, &url, login).unwrap_or_else(|| {
            panic!(
                "sign-in: {url} answered a page without a POST form\nsteps so far:\n  {}\nbody: {}",
                trail.join("\n  "),
                excerpt(&body)
            )
        });
        request = Step::Post(action, fields);
    }
    panic!(
        "sign-in did not leave the IdP after {MAX_STEPS} requests:\n  {}",
        trail.join("\n  ")
    );
}

enum Step {
    Get(Url),
    Post(Url, Vec<(String, String)>),
}

impl Step {
    fn url(&self) -> &Url {
        match self {
            Step::Get(url) | Step::Post(url, _) => url,
        }
    }

    fn describe(&self) -> String {
        match self {
            Step::Get(url) => format!("GET {url}"),
            Step::Post(url, fields) => {
                let names: Vec<&str> = fields.iter().map(|(name, _)| name.as_str()).collect();
                format!("POST {url} [{}]", names.join(", "))
            }
        }
    }
}

/// The page's first POST form, filled in: its action (resolved against `page`) and its fields.
/// Hidden and other pre-set inputs keep their values, text-like inputs get `login`, password
/// inputs get a dummy password; buttons and unchecked boxes are left out, like a browser does.
fn fill_form(html: &str, page: &Url, login: &str) -> Option<(Url, Vec<(String, String)>)> {
    let document = Html::parse_document(html);
    let form = document.select(&selector("form")).find(|form| {
        form.value()
            .attr("method")
            .is_some_and(|method| method.eq_ignore_ascii_case("post"))
    })?;
    let action = match form.value().attr("action") {
        Some(action) if !action.is_empty() => page.join(action).ok()?,
        _ => page.clone(),
    };
    let fields = form
        .select(&selector("input[name], textarea[name], select[name]"))
        .filter_map(|field| fill_field(field, login))
        .collect();
    Some((action, fields))
}

fn fill_field(field: ElementRef<'_>, login: &str) -> Option<(String, String)> {
    let element = field.value();
    let name = element.attr("name")?.to_owned();
    let value = element.attr("value").unwrap_or_default();
    let kind = element.attr("type").unwrap_or("text").to_ascii_lowercase();
    let filled = match (element.name(), kind.as_str()) {
        ("input", "hidden") => value.to_owned(),
        ("input", "password") => "any-password".to_owned(),
        ("input", "text" | "email" | "search") | ("textarea", _) => login.to_owned(),
        ("input", "checkbox" | "radio") if element.attr("checked").is_some() => {
            if value.is_empty() {
                "on".to_owned()
            } else {
                value.to_owned()
            }
        }
        ("input", "submit" | "button" | "image" | "reset" | "checkbox" | "radio" | "file") => {
            return None;
        }
        ("select", _) => {
            let option = field
                .select(&selector("option[selected]"))
                .next()
                .or_else(|| field.select(&selector("option")).next())?;
            option
                .value()
                .attr("value")
                .map_or_else(|| option.text().collect(), str::to_owned)
        }
        _ => value.to_owned(),
    };
    Some((name, filled))
}

fn selector(css: &str) -> Selector {
    Selector::parse(css).unwrap_or_else(|e| panic!("CSS selector {css:?}: {e}"))
}

fn excerpt(body: &str) -> String {
    const LIMIT: usize = 1500;
    match body.char_indices().nth(LIMIT) {
        Some((end, _)) => format!("{}…", &body[..end]),
        None => body.to_owned(),
    }
}
