//! `cargo run --release --bin bench`: measures a release Portcullis as a separate process, the
//! way an operator runs it, against the design targets: start-up time, idle memory, server CPU
//! per full sign-in (registration to token, through the development provider) and per
//! authenticated `tools/call` of the built-in `whoami`. Server CPU is read from
//! `/proc/{pid}/stat`, so the client's own work is not counted. Linux only.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use reqwest::redirect::Policy;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

const SIGN_INS: usize = 200;
const CALLS: usize = 5_000;
const REDIRECT_URI: &str = "http://127.0.0.1:9/callback";

/// The server under test; killed when dropped.
struct Server {
    child: Child,
    base: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// User plus system CPU time the server has used so far.
    fn cpu(&self) -> anyhow::Result<Duration> {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.pid()))?;
        // Fields after the command name (which may contain spaces) start after the last ')'.
        let fields: Vec<&str> = stat
            .rsplit_once(')')
            .context("malformed /proc stat")?
            .1
            .split_whitespace()
            .collect();
        let ticks: u64 = fields[11].parse::<u64>()? + fields[12].parse::<u64>()?;
        // USER_HZ, the unit of these fields, is 100 on Linux.
        Ok(Duration::from_millis(ticks * 10))
    }

    fn rss_kib(&self) -> anyhow::Result<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid()))?;
        let line = status
            .lines()
            .find(|l| l.starts_with("VmRSS:"))
            .context("no VmRSS")?;
        Ok(line
            .split_whitespace()
            .nth(1)
            .context("malformed VmRSS")?
            .parse()?)
    }
}

fn release_binary() -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe()?;
    let binary = exe.with_file_name("portcullis");
    if !binary.is_file() {
        bail!(
            "{} is missing: run `cargo build --release` first",
            binary.display()
        );
    }
    Ok(binary)
}

async fn start(binary: &Path, dir: &Path) -> anyhow::Result<(Server, Duration)> {
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let started = Instant::now();
    let child = Command::new(binary)
        .arg("serve")
        .current_dir(dir)
        .env("PORTCULLIS_BIND", format!("127.0.0.1:{port}"))
        .env("DATABASE_URL", "sqlite:bench.db")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()?;
    let server = Server {
        child,
        base: format!("http://127.0.0.1:{port}"),
    };
    let http = reqwest::Client::new();
    loop {
        if http
            .get(format!("{}/health/live", server.base))
            .send()
            .await
            .is_ok_and(|r| r.status().is_success())
        {
            return Ok((server, started.elapsed()));
        }
        if started.elapsed() > Duration::from_secs(30) {
            bail!("the server did not start");
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

fn hidden_inputs(html: &str) -> Vec<(String, String)> {
    html.split("<input")
        .skip(1)
        .filter(|tag| tag.contains(r#"type="hidden""#))
        .filter_map(|tag| {
            let attr = |name: &str| {
                let start = tag.find(&format!(r#"{name}=""#))? + name.len() + 2;
                Some(tag[start..].split('"').next()?.replace("&amp;", "&"))
            };
            Some((attr("name")?, attr("value")?))
        })
        .collect()
}

fn location(response: &reqwest::Response) -> anyhow::Result<String> {
    Ok(response
        .headers()
        .get("location")
        .context("no Location")?
        .to_str()?
        .to_owned())
}

fn absolute(base: &str, location: &str) -> String {
    if location.starts_with("http") {
        location.to_owned()
    } else {
        format!("{base}{location}")
    }
}

/// One full sign-in: registration, authorization, consent, development sign-in, callback, token.
async fn sign_in(base: &str) -> anyhow::Result<String> {
    let browser = reqwest::Client::builder()
        .redirect(Policy::none())
        .build()?;
    let client: Value = browser
        .post(format!("{base}/register"))
        .json(&json!({"client_name": "bench", "redirect_uris": [REDIRECT_URI], "token_endpoint_auth_method": "none",
                      "grant_types": ["authorization_code", "refresh_token"]}))
        .send()
        .await?
        .json()
        .await?;
    let client_id = client["client_id"]
        .as_str()
        .context("no client_id")?
        .to_owned();
    let verifier = portcullis::crypto::random_token(48);
    let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    let authorize = reqwest::Url::parse_with_params(
        &format!("{base}/authorize"),
        [
            ("response_type", "code"),
            ("client_id", &client_id),
            ("redirect_uri", REDIRECT_URI),
            ("code_challenge", &challenge),
            ("code_challenge_method", "S256"),
            ("state", "bench"),
        ],
    )?;
    let started = browser.get(authorize).send().await?;
    // The browser-binding cookie, sent back on every later step as a browser would.
    let cookie = started
        .headers()
        .get("set-cookie")
        .context("no browser cookie")?
        .to_str()?;
    let cookie = cookie.split(';').next().unwrap_or_default().to_owned();
    let consent_url = location(&started)?;
    let consent = browser
        .get(absolute(base, &consent_url))
        .header("cookie", &cookie)
        .send()
        .await?
        .text()
        .await?;
    let mut form = hidden_inputs(&consent);
    form.push(("decision".into(), "approve".into()));
    let approved = browser
        .post(format!("{base}/authorize/consent"))
        .header("cookie", &cookie)
        .form(&form)
        .send()
        .await?;
    let page = browser
        .get(absolute(base, &location(&approved)?))
        .send()
        .await?
        .text()
        .await?;
    let mut form = hidden_inputs(&page);
    form.push(("email".into(), "bench@example.com".into()));
    let callback = location(
        &browser
            .post(format!("{base}/dev/sign-in"))
            .form(&form)
            .send()
            .await?,
    )?;
    let back = location(
        &browser
            .get(absolute(base, &callback))
            .header("cookie", &cookie)
            .send()
            .await?,
    )?;
    let code = reqwest::Url::parse(&back)?
        .query_pairs()
        .find(|(k, _)| k == "code")
        .context("no code")?
        .1
        .into_owned();
    let tokens: Value = browser
        .post(format!("{base}/token"))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", REDIRECT_URI),
            ("code_verifier", &verifier),
            ("client_id", &client_id),
        ])
        .send()
        .await?
        .json()
        .await?;
    Ok(tokens["access_token"]
        .as_str()
        .context("no access token")?
        .to_owned())
}

fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    format!("{cpu}, {cores} cores")
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let binary = release_binary()?;
    let dir = std::env::temp_dir().join(format!("portcullis-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let result = run(&binary, &dir).await;
    let _ = std::fs::remove_dir_all(&dir);
    result
}

async fn run(binary: &Path, dir: &Path) -> anyhow::Result<()> {
    println!("machine: {}", machine());
    let (server, startup) = start(binary, dir).await?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    println!(
        "start-up to healthy:       {:>8.1} ms   (target < 200 ms)",
        startup.as_secs_f64() * 1e3
    );
    println!(
        "idle resident memory:      {:>8.1} MB   (target < 30 MB)",
        server.rss_kib()? as f64 / 1024.0
    );

    // Warm up, then measure full sign-ins.
    let token = sign_in(&server.base).await?;
    let before = server.cpu()?;
    let clock = Instant::now();
    for _ in 0..SIGN_INS {
        sign_in(&server.base).await?;
    }
    let per_sign_in = (server.cpu()? - before) / SIGN_INS as u32;
    println!(
        "server CPU per sign-in:    {:>8.3} ms   (target <= 2 ms; {SIGN_INS} sign-ins, {:.1} ms wall each)",
        per_sign_in.as_secs_f64() * 1e3,
        clock.elapsed().as_secs_f64() * 1e3 / SIGN_INS as f64
    );

    let http = reqwest::Client::new();
    let call = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "whoami", "arguments": {}}});
    let mcp = format!("{}/mcp", server.base);
    let send = || {
        http.post(&mcp)
            .bearer_auth(&token)
            .header("accept", "application/json, text/event-stream")
            .header("mcp-protocol-version", "2025-06-18")
            .json(&call)
            .send()
    };
    for _ in 0..200 {
        send().await?.bytes().await?;
    }
    let before = server.cpu()?;
    let clock = Instant::now();
    for _ in 0..CALLS {
        let response = send().await?;
        if !response.status().is_success() {
            bail!("tools/call answered {}", response.status());
        }
        response.bytes().await?;
    }
    let per_call = (server.cpu()? - before) / CALLS as u32;
    println!(
        "server CPU per tools/call: {:>8.1} µs   (target <= 50 µs; {CALLS} calls, {:.0} µs wall each)",
        per_call.as_secs_f64() * 1e6,
        clock.elapsed().as_secs_f64() * 1e6 / CALLS as f64
    );
    println!(
        "resident memory after:     {:>8.1} MB",
        server.rss_kib()? as f64 / 1024.0
    );
    Ok(())
}
