//! One sign-in as an MCP client and its person do it: the client registers (RFC 7591), sends the
//! browser to `/authorize` (PKCE S256, RFC 8707 resource); the browser passes the provider page
//! when there is one and the consent page, signs in and consents at the real OpenID provider, and
//! comes back through `/callback`; the client redeems the code at `/token`.

use std::cell::RefCell;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use url::Url;

use crate::browser::{Browser, Jar, fill_form, redirect_target};
use crate::mcp::{Load, drive};
use crate::procs::CpuSample;

/// The client's redirect URI: a loopback port nothing listens on (RFC 8252 §7.3); the browser
/// stops at the redirect there.
const REDIRECT_URI: &str = "http://127.0.0.1:9/callback";
/// How many requests the provider's part may take before it is considered a loop.
const MAX_IDP_STEPS: usize = 20;

/// The steps of a sign-in, in order, as the profile names them.
pub const STEPS: [&str; 8] = [
    "POST /register",
    "GET /authorize",
    "provider page (GET + POST)",
    "GET consent page",
    "POST consent (approve)",
    "at the OpenID provider",
    "GET /callback (upstream exchange)",
    "POST /token",
];

/// Server CPU and wall time per step, measured around each step.
pub struct Probe {
    pid: u32,
    /// Time given to the server after a step to finish what it does after answering (logging,
    /// the audit writer) before its CPU is read.
    settle: Duration,
    last: Option<(CpuSample, Instant)>,
    /// Per step: total server CPU and wall time, and how often it ran.
    pub totals: [(Duration, Duration, u32); STEPS.len()],
}

impl Probe {
    pub fn new(pid: u32) -> Self {
        Self {
            pid,
            settle: Duration::from_millis(3),
            last: None,
            totals: [(Duration::ZERO, Duration::ZERO, 0); STEPS.len()],
        }
    }

    async fn start(&mut self) -> anyhow::Result<()> {
        tokio::time::sleep(self.settle).await;
        self.last = Some((CpuSample::read(self.pid)?, Instant::now()));
        Ok(())
    }

    /// Ends step `index` (of [`STEPS`]) and starts the next.
    async fn mark(&mut self, index: usize) -> anyhow::Result<()> {
        let (cpu, at) = self.last.take().context("mark before start")?;
        let wall = at.elapsed();
        tokio::time::sleep(self.settle).await;
        let now = CpuSample::read(self.pid)?;
        let total = &mut self.totals[index];
        total.0 += now.since(&cpu);
        total.1 += wall;
        total.2 += 1;
        self.last = Some((now, Instant::now()));
        Ok(())
    }
}

async fn mark(probe: &mut Option<&mut Probe>, index: usize) -> anyhow::Result<()> {
    match probe {
        Some(probe) => probe.mark(index).await,
        None => Ok(()),
    }
}

/// What one sign-in yields.
pub struct Tokens {
    pub access_token: String,
    pub scope: String,
}

/// Signs `login` in for `resource` (asking for `scope`, or none), as a fresh client.
pub async fn sign_in(
    http: &reqwest::Client,
    base: &str,
    resource: &str,
    scope: Option<&str>,
    login: &str,
    mut probe: Option<&mut Probe>,
) -> anyhow::Result<Tokens> {
    if let Some(probe) = probe.as_deref_mut() {
        probe.start().await?;
    }
    let registered = http
        .post(format!("{base}/register"))
        .json(
            &json!({"client_name": "bench", "redirect_uris": [REDIRECT_URI],
            "token_endpoint_auth_method": "none", "response_types": ["code"],
            "grant_types": ["authorization_code", "refresh_token"]}),
        )
        .send()
        .await?;
    if registered.status() != reqwest::StatusCode::CREATED {
        bail!("/register answered {}", registered.status());
    }
    let registered: Value = registered.json().await?;
    let client_id = registered["client_id"]
        .as_str()
        .context("no client_id")?
        .to_owned();
    mark(&mut probe, 0).await?;

    let verifier = portcullis::crypto::random_token(48);
    let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    let mut params = vec![
        ("response_type", "code"),
        ("client_id", client_id.as_str()),
        ("redirect_uri", REDIRECT_URI),
        ("code_challenge", challenge.as_str()),
        ("code_challenge_method", "S256"),
        ("state", "bench"),
        ("resource", resource),
    ];
    if let Some(scope) = scope {
        params.push(("scope", scope));
    }
    let authorize = Url::parse_with_params(&format!("{base}/authorize"), &params)?;
    let mut browser = Browser {
        http: http.clone(),
        jar: Jar::default(),
    };
    let response = browser.send(&authorize, None).await?;
    let mut next = redirect_target(&authorize, &response)?;
    mark(&mut probe, 1).await?;

    if next.path().ends_with("/authorize/provider") {
        let page = browser.send(&next, None).await?.text().await?;
        let (action, mut fields) = fill_form(&page, &next, login)?;
        fields.push(("provider".into(), "corp".into()));
        let chosen = browser.send(&action, Some(&fields)).await?;
        next = redirect_target(&action, &chosen)?;
        mark(&mut probe, 2).await?;
    }

    let consent = browser.send(&next, None).await?;
    if !consent.status().is_success() {
        bail!("the consent page answered {}", consent.status());
    }
    let consent = consent.text().await?;
    let (action, mut fields) = fill_form(&consent, &next, login)?;
    mark(&mut probe, 3).await?;
    fields.push(("decision".into(), "approve".into()));
    let approved = browser.send(&action, Some(&fields)).await?;
    let upstream = redirect_target(&action, &approved)?;
    mark(&mut probe, 4).await?;

    let callback = at_provider(&mut browser, upstream, login).await?;
    mark(&mut probe, 5).await?;

    let done = browser.send(&callback, None).await?;
    let back = redirect_target(&callback, &done)?;
    let code = back
        .query_pairs()
        .find(|(k, _)| k == "code")
        .with_context(|| format!("no code in {back}"))?
        .1
        .into_owned();
    mark(&mut probe, 6).await?;

    let response = http
        .post(format!("{base}/token"))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", REDIRECT_URI),
            ("code_verifier", verifier.as_str()),
            ("client_id", client_id.as_str()),
            ("resource", resource),
        ])
        .send()
        .await?;
    let status = response.status();
    let tokens: Value = response.json().await?;
    if !status.is_success() {
        bail!("/token answered {status}: {tokens}");
    }
    mark(&mut probe, 7).await?;
    Ok(Tokens {
        access_token: tokens["access_token"]
            .as_str()
            .context("no access_token")?
            .to_owned(),
        scope: tokens["scope"].as_str().unwrap_or_default().to_owned(),
    })
}

/// Session `s` of `clients` signs in `count` times for `{base}/mcp` as `{login}-{s}`, all
/// sessions at once, stopping early at `deadline`; returns the load and each session's last
/// access token.
pub async fn concurrently(
    clients: &[reqwest::Client],
    base: &str,
    login: &str,
    count: usize,
    deadline: Instant,
) -> anyhow::Result<(Load, Vec<String>)> {
    let resource = format!("{base}/mcp");
    let tokens = RefCell::new(vec![String::new(); clients.len()]);
    let (resource, tokens_ref) = (&resource, &tokens);
    let load = drive(
        clients.len(),
        |_| count,
        deadline,
        move |s, _| async move {
            let login = format!("{login}-{s}");
            let got = sign_in(&clients[s], base, resource, None, &login, None).await?;
            tokens_ref.borrow_mut()[s] = got.access_token;
            Ok(())
        },
    )
    .await?;
    let tokens = tokens.into_inner();
    if tokens.iter().any(String::is_empty) {
        bail!("the sign-ins at {base} stopped at the time limit before every session had a token");
    }
    Ok((load, tokens))
}

/// Follows the provider's redirects and submits its login and consent forms, until a redirect
/// leaves its origin: Portcullis' `/callback/{provider}`, returned without being requested.
async fn at_provider(browser: &mut Browser, start: Url, login: &str) -> anyhow::Result<Url> {
    let origin = start.origin();
    let mut url = start;
    let mut form: Option<Vec<(String, String)>> = None;
    for _ in 0..MAX_IDP_STEPS {
        let response = browser.send(&url, form.as_deref()).await?;
        if response.status().is_redirection() {
            let next = redirect_target(&url, &response)?;
            if next.origin() != origin {
                return Ok(next);
            }
            (url, form) = (next, None);
            continue;
        }
        let status = response.status();
        let page = response.text().await?;
        if !status.is_success() {
            bail!("the OpenID provider answered {status} at {url}: {page:.500}");
        }
        let (action, fields) = fill_form(&page, &url, login)?;
        (url, form) = (action, Some(fields));
    }
    bail!("the sign-in did not leave the OpenID provider after {MAX_IDP_STEPS} requests")
}

/// The claims of a token, read without verifying it (the bench only copies them).
pub fn claims_of(token: &str) -> anyhow::Result<portcullis::oauth::tokens::AccessClaims> {
    let payload = token.split('.').nth(1).context("not a JWT")?;
    Ok(serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload)?)?)
}
