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
//! - limits: the CPU a rate limit adds to an MCP call, from outside (a server with limits on
//!   against the one without) and in process (`RateLimits::check`, local and through Redis);
//! - cluster: sign-ins and `whoami` on SQLite alone, on one instance with Postgres and Redis,
//!   and on two instances sharing them (private Postgres and Redis, see `services`);
//! - start-up time and resident memory.
//!
//! Server CPU comes from `/proc`, for the server process only (see `procs`). Linux only.

/// A scripted browser: cookies, no automatic redirects, forms filled as a person would.
mod browser;
/// Many instances: SQLite alone, one and two instances on Postgres and Redis.
mod cluster;
/// What a rate limit adds to an MCP call, from outside and in process.
mod limits;
/// An MCP client over Streamable HTTP, as the SDKs speak it.
mod mcp;
/// The processes under test and their peers, and what `/proc` says about them.
mod procs;
/// The report: figures with their ratios, and the targets met or not.
mod report;
/// The measured parts: sign-in, whoami, proxy, scale.
mod runs;
/// Many distinct active tokens, minted as the server mints them.
mod scale;
/// A private Postgres and Redis on free loopback ports.
mod services;
/// One sign-in as an MCP client and its person do it.
mod signin;

use std::net::SocketAddr;
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
    Limits,
    Cluster,
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
    /// Alternating rounds of `whoami` without and with rate limits, and calls per session in
    /// each.
    limit_rounds: usize,
    limit_calls: usize,
    /// In-process `RateLimits::check`s per form.
    limit_checks: usize,
    /// The longest any one load loop may run.
    limit: Duration,
    parts: Vec<Part>,
}

impl Plan {
    fn new(args: &Args) -> Self {
        let quick = args.quick;
        let parts = if args.only.is_empty() {
            vec![
                Part::Signin,
                Part::Whoami,
                Part::Proxy,
                Part::Scale,
                Part::Limits,
                Part::Cluster,
            ]
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
            limit_rounds: if quick { 2 } else { 4 },
            limit_calls: if quick { 250 } else { 1000 },
            limit_checks: if quick { 100_000 } else { 500_000 },
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
    // On Ctrl-C the run is dropped, so what it started is stopped (Postgres, which `pg_ctl`
    // detaches from the bench, only so).
    let result = tokio::select! {
        result = run(Plan::new(&args), &dir) => result,
        _ = tokio::signal::ctrl_c() => Err(anyhow::anyhow!("interrupted")),
    };
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
    binary: PathBuf,
    dir: PathBuf,
}

/// The rig's `[rate_limits]`: the loads come from one address, far above any per-address limit.
const LIMITS_OFF: &str = "enabled = false";

/// What differs between the servers the bench starts; all have the rig's provider and backend.
struct ServerConfig<'a> {
    bind: SocketAddr,
    database_url: &'a str,
    public_base_url: Option<&'a str>,
    redis_url: Option<&'a str>,
    /// The body of `[rate_limits]`.
    rate_limits: &'a str,
}

/// Writes `{name}.toml` in `dir` and starts `portcullis serve` on it.
async fn spawn_server(
    binary: &Path,
    dir: &Path,
    name: &str,
    peers: (&NodePeer, &NodePeer),
    fernet_key: &str,
    settings: &ServerConfig<'_>,
) -> anyhow::Result<(Server, Duration)> {
    let (idp, everything) = peers;
    let mut top = format!(
        "bind = \"{}\"\ndatabase_url = \"{}\"\n",
        settings.bind, settings.database_url
    );
    for (key, value) in [
        ("public_base_url", settings.public_base_url),
        ("redis_url", settings.redis_url),
    ] {
        if let Some(value) = value {
            top.push_str(&format!("{key} = \"{value}\"\n"));
        }
    }
    let config = dir.join(format!("{name}.toml"));
    std::fs::write(
        &config,
        format!(
            r#"{top}
[rate_limits]
{rate_limits}

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
            rate_limits = settings.rate_limits,
            issuer = idp.url,
            backend = everything.url,
        ),
    )?;
    procs::start_server(binary, dir, name, &config, settings.bind, fernet_key).await
}

impl Rig {
    /// Another server with the rig's provider and backend.
    async fn spawn(&self, name: &str, settings: &ServerConfig<'_>) -> anyhow::Result<Server> {
        let peers = (&self.idp, &self.everything);
        let (server, _) = spawn_server(
            &self.binary,
            &self.dir,
            name,
            peers,
            &self.fernet_key,
            settings,
        )
        .await?;
        Ok(server)
    }
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
    let database_url = format!("sqlite:{}", dir.join("portcullis.db").display());
    let settings = ServerConfig {
        bind: SocketAddr::from(([127, 0, 0, 1], procs::free_port()?)),
        database_url: &database_url,
        public_base_url: None,
        redis_url: None,
        rate_limits: LIMITS_OFF,
    };
    let peers = (&idp, &everything);
    let (server, startup) =
        spawn_server(binary, dir, "portcullis", peers, &fernet_key, &settings).await?;
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
        binary: binary.to_owned(),
        dir: dir.to_owned(),
    })
}

async fn run(plan: Plan, dir: &Path) -> anyhow::Result<()> {
    if (plan.has(Part::Limits) || plan.has(Part::Cluster))
        && let Some(missing) = services::missing(plan.has(Part::Cluster))
    {
        anyhow::bail!(
            "the limits and cluster parts need {missing}: install them (Debian: apt-get install postgresql redis-server), or choose other parts with --only"
        );
    }
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
    if plan.has(Part::Limits) || plan.has(Part::Cluster) {
        // Stopped when this block ends, also by an error.
        let redis = services::Redis::start(dir).await?;
        let limited = limits::start_limited(&rig).await?;
        if plan.has(Part::Limits) {
            limits::server_cost(&plan, &rig, &limited, &tokens, &mut report).await?;
            limits::in_process(&plan, &redis, &mut report).await?;
        }
        if plan.has(Part::Cluster) {
            cluster::run(&plan, &rig, &limited, &redis, &mut report).await?;
        }
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
