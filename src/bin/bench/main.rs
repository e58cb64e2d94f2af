//! `cargo run --release --bin bench`: measures a release Portcullis from outside, as its clients
//! use it, against the targets of issue 6. It starts the real test OpenID provider
//! (`scripts/idp`), server-everything over Streamable HTTP (`scripts/mcp`) and `portcullis serve`
//! on the shipped defaults (logging included) with that provider and that backend, then:
//!
//! - sign-in: concurrent sessions, each signing in as an MCP client does (its own registration,
//!   PKCE, consent, the provider's login and consent, callback, token); then a sequential pass
//!   that measures the server's CPU around each step;
//! - whoami: authenticated `tools/call`s of the built-in tool on `/mcp`, concurrently;
//! - proxy: server-everything's `echo` called directly and through `/mcp/everything`, the same
//!   client and concurrency, interleaved, in one run;
//! - scale: `whoami` cycling through 100 and through 100,000 distinct tokens;
//! - start-up time and resident memory.
//!
//! Server CPU comes from `/proc`, for the server process only (see `procs`). Linux only.

mod browser;
mod mcp;
mod procs;
mod report;
mod runs;
mod scale;
mod signin;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use clap::{Parser, ValueEnum};

use procs::{NodePeer, Server};
use report::Report;

#[derive(Parser)]
#[command(about = "Measures a release Portcullis from outside (see the README's Benchmarks)")]
struct Args {
    /// Smaller counts: under a minute.
    #[arg(long)]
    quick: bool,
    /// Concurrent client sessions.
    #[arg(long, default_value_t = 16)]
    concurrency: usize,
    /// Run only these parts (comma-separated); start-up and memory are always measured.
    #[arg(long, value_delimiter = ',')]
    only: Vec<Part>,
    /// Distinct tokens at the top of the scale test [default: 100000, 20000 with --quick].
    #[arg(long)]
    scale_tokens: Option<usize>,
    /// Keep the temporary folder (configuration, database, logs) and print where it is.
    #[arg(long)]
    keep: bool,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Part {
    Signin,
    Whoami,
    Proxy,
    Scale,
}

/// How much of everything to do.
struct Plan {
    sessions: usize,
    /// Measured sign-ins per session (the first for `/mcp`, the second for `/mcp/everything`).
    sign_ins: usize,
    /// Sign-ins of the sequential, per-step pass.
    profile: usize,
    whoami: usize,
    proxy_rounds: usize,
    proxy_calls: usize,
    scale_small: usize,
    scale_small_calls: usize,
    scale_large: usize,
    /// The longest any one load loop may run.
    limit: Duration,
    parts: Vec<Part>,
}

impl Plan {
    fn new(args: &Args) -> Self {
        let quick = args.quick;
        let parts = if args.only.is_empty() {
            vec![Part::Signin, Part::Whoami, Part::Proxy, Part::Scale]
        } else {
            args.only.clone()
        };
        Plan {
            sessions: args.concurrency.max(1),
            sign_ins: if quick { 2 } else { 6 },
            profile: if quick { 6 } else { 24 },
            whoami: if quick { 250 } else { 2000 },
            proxy_rounds: if quick { 2 } else { 3 },
            proxy_calls: if quick { 40 } else { 100 },
            scale_small: 100,
            scale_small_calls: if quick { 4_000 } else { 32_000 },
            scale_large: args
                .scale_tokens
                .unwrap_or(if quick { 20_000 } else { 100_000 }),
            limit: Duration::from_secs(if quick { 30 } else { 100 }),
            parts,
        }
    }

    fn has(&self, part: Part) -> bool {
        self.parts.contains(&part)
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let dir = std::env::temp_dir().join(format!("portcullis-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let result = run(Plan::new(&args), &dir).await;
    if args.keep || result.is_err() {
        eprintln!(
            "bench: the configuration, database and logs are in {}",
            dir.display()
        );
    } else {
        let _ = std::fs::remove_dir_all(&dir);
    }
    result
}

/// The running peers and server.
struct Rig {
    idp: NodePeer,
    everything: NodePeer,
    server: Server,
    database_url: String,
    fernet_key: String,
}

async fn start(binary: &Path, dir: &Path, report: &mut Report) -> anyhow::Result<Rig> {
    let scripts = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("scripts");
    let idp = procs::start_node(&scripts.join("idp/idp.mjs"), &dir.join("idp.log")).await?;
    let everything = procs::start_node(
        &scripts.join("mcp/everything-http.mjs"),
        &dir.join("everything.log"),
    )
    .await?;
    let fernet_key = procs::generate_key(binary).await?;
    let port = procs::free_port()?;
    let database_url = format!("sqlite:{}", dir.join("portcullis.db").display());
    let config = dir.join("portcullis.toml");
    std::fs::write(
        &config,
        format!(
            r#"bind = "127.0.0.1:{port}"
database_url = "{database_url}"

# The loads below come from one address, far above any per-address limit.
[rate_limits]
enabled = false

[[providers]]
id = "corp"
kind = "oidc"
display_name = "Test OpenID provider"
issuer = "{issuer}"
client_id = "portcullis-test"
client_secret = "portcullis-test-secret"
scopes = ["openid", "email", "profile", "offline_access"]
grant_scopes = ["everything:*:*"]

[[backends]]
id = "everything"
url = "{backend}"
"#,
            issuer = idp.url,
            backend = everything.url,
        ),
    )?;
    let (server, startup) = procs::start_server(binary, dir, &config, port, &fernet_key).await?;
    println!(
        "portcullis: {} (pid {}), log {}",
        server.base,
        server.pid,
        server.log.display()
    );
    println!("OpenID provider: {} (pid {})", idp.url, idp.pid);
    println!(
        "server-everything: {} (pid {})",
        everything.url, everything.pid
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    let startup_ms = startup.as_secs_f64() * 1e3;
    let idle = server.rss_mib()?;
    report.row(
        "start-up to healthy (incl. OIDC discovery)",
        format!("{startup_ms:.0} ms"),
        "target < 200 ms",
    );
    report.row(
        "idle resident memory",
        format!("{idle:.1} MB"),
        "target < 30 MB",
    );
    report.check(
        startup_ms < report::STARTUP_TARGET_MS,
        format!("start-up < 200 ms: {startup_ms:.0} ms"),
    );
    report.check(
        idle < report::IDLE_RSS_TARGET_MB,
        format!("idle resident memory < 30 MB: {idle:.1} MB"),
    );
    Ok(Rig {
        idp,
        everything,
        server,
        database_url,
        fernet_key,
    })
}

async fn run(plan: Plan, dir: &Path) -> anyhow::Result<()> {
    let binary = procs::server_binary().await?;
    let started = Instant::now();
    println!("machine: {}", procs::machine());
    println!(
        "load average at start: {} (other work on the machine)",
        procs::load_average()
    );
    let mut report = Report::default();
    let rig = start(&binary, dir, &mut report).await?;
    let base = rig.server.base.clone();

    // Warm-up: one sign-in of each kind, not measured.
    let warm = mcp::http_client()?;
    for (resource, scope) in resources(&base) {
        signin::sign_in(&warm, &base, &resource, scope, "bench-warm-up", None).await?;
    }

    let (tokens, proxy_tokens) = runs::sign_ins(&plan, &rig, &mut report).await?;
    if plan.has(Part::Signin) {
        runs::profile(&plan, &rig, &mut report).await?;
    }
    if plan.has(Part::Whoami) {
        runs::whoami(&plan, &rig, &tokens, &mut report).await?;
    }
    if plan.has(Part::Proxy) {
        runs::proxy(&plan, &rig, &proxy_tokens, &mut report).await?;
    }
    if plan.has(Part::Scale) {
        runs::scale(&plan, &rig, &tokens, &mut report).await?;
    }
    let after = rig.server.rss_mib()?;
    report.row("resident memory at the end", format!("{after:.1} MB"), "");
    report.note(format!(
        "load average at the end: {} on {}",
        procs::load_average(),
        procs::machine()
    ));
    report.note(format!(
        "the bench ran {:.0} s",
        started.elapsed().as_secs_f64()
    ));
    report.print();
    Ok(())
}

/// The resources signed in for, and the scope asked: `/mcp` (none: the default), and
/// `/mcp/everything` with the backend's basic scope.
fn resources(base: &str) -> [(String, Option<&'static str>); 2] {
    [
        (format!("{base}/mcp"), None),
        (
            format!("{base}/mcp/everything"),
            Some("everything:tools:call"),
        ),
    ]
}
