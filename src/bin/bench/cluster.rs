//! Many instances: the same sign-ins and `whoami` calls on SQLite alone, on one instance with
//! Postgres and Redis, and on two instances sharing that Postgres and Redis. Every server has
//! the same limits ([`limits::LIMITS_ON`]: the per-person MCP limit, counted through Redis when
//! there is one).
//!
//! The two instances share their public URL, `http://localhost:PORT`, and listen on that port
//! of two loopback addresses (127.0.0.2 and 127.0.0.3). Each client session resolves
//! `localhost` to one of them, in turn, as a load balancer spreads connections: its requests
//! carry the public URL's `Host`, and the sign-in's redirects, which name the public URL, come
//! back to the same instance. Each session's `whoami` calls go to the other instance than its
//! sign-in, so every token is checked where it was not issued.

use std::net::{Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use anyhow::Context;

use crate::mcp::{self, Load, Session};
use crate::procs::{self, Server};
use crate::report::{Report, ms, per, us};
use crate::services::{Postgres, Redis};
use crate::{Plan, Rig, ServerConfig, limits, signin};

/// The instances' addresses; they share one port.
const INSTANCES: [Ipv4Addr; 2] = [Ipv4Addr::new(127, 0, 0, 2), Ipv4Addr::new(127, 0, 0, 3)];

/// A server, or servers, behind one public URL.
struct Setup<'a> {
    name: &'static str,
    /// Logins are `{tag}-{session}`: each setup signs in people new to it.
    tag: &'static str,
    public: &'a str,
    instances: Vec<&'a Server>,
    postgres: Option<&'a Postgres>,
    redis: Option<&'a Redis>,
}

/// What one setup did.
struct Figures {
    sign_ins: Load,
    sign_in_cpu: Duration,
    whoami: Load,
    whoami_cpu: Duration,
    /// Postgres's and Redis's CPU over the sign-ins and over the calls.
    peers_sign_in: (Duration, Duration),
    peers_whoami: (Duration, Duration),
}

impl Figures {
    fn sign_in_cpu(&self) -> Duration {
        per(self.sign_in_cpu, self.sign_ins.calls)
    }

    fn call_cpu(&self) -> Duration {
        per(self.whoami_cpu, self.whoami.calls)
    }
}

/// The CPU used so far by each instance, Postgres and Redis.
struct Sample {
    instances: Vec<procs::CpuSample>,
    postgres: Duration,
    redis: Option<procs::CpuSample>,
}

impl Setup<'_> {
    fn sample(&self) -> anyhow::Result<Sample> {
        Ok(Sample {
            instances: self
                .instances
                .iter()
                .map(|server| server.cpu())
                .collect::<anyhow::Result<_>>()?,
            postgres: self
                .postgres
                .map(Postgres::cpu)
                .transpose()?
                .unwrap_or_default(),
            redis: self
                .redis
                .map(|redis| procs::CpuSample::read(redis.pid))
                .transpose()?,
        })
    }

    /// The instances' CPU, summed, and Postgres's and Redis's, since `before`.
    fn since(&self, before: &Sample) -> anyhow::Result<(Duration, (Duration, Duration))> {
        let after = self.sample()?;
        let servers = after
            .instances
            .iter()
            .zip(&before.instances)
            .map(|(after, before)| after.since(before))
            .sum();
        let redis = match (&after.redis, &before.redis) {
            (Some(after), Some(before)) => after.since(before),
            _ => Duration::ZERO,
        };
        Ok((
            servers,
            (after.postgres.saturating_sub(before.postgres), redis),
        ))
    }

    /// A client whose requests for the public URL go to instance `n` (in turn).
    fn client(&self, n: usize) -> anyhow::Result<reqwest::Client> {
        let host = url::Url::parse(self.public)?
            .host_str()
            .context("a public URL without a host")?
            .to_owned();
        mcp::http_client_to(&host, self.instances[n % self.instances.len()].addr)
    }

    async fn measure(&self, plan: &Plan) -> anyhow::Result<Figures> {
        let deadline = Instant::now() + plan.limit;
        // Warm-up: one sign-in on each instance, not measured.
        let warm = (0..self.instances.len())
            .map(|n| self.client(n))
            .collect::<anyhow::Result<Vec<_>>>()?;
        let warm_login = format!("{}-warm", self.tag);
        signin::concurrently(&warm, self.public, &warm_login, 1, deadline).await?;

        let clients = (0..plan.sessions)
            .map(|s| self.client(s))
            .collect::<anyhow::Result<Vec<_>>>()?;
        let before = self.sample()?;
        let (sign_ins, tokens) =
            signin::concurrently(&clients, self.public, self.tag, plan.sign_ins, deadline).await?;
        let (sign_in_cpu, peers_sign_in) = self.since(&before)?;

        let url = format!("{}/mcp", self.public);
        let mut sessions = Vec::new();
        for (s, token) in tokens.iter().enumerate() {
            sessions.push(Session::open_with(self.client(s + 1)?, &url, Some(token)).await?);
        }
        mcp::whoami(&sessions, 20, deadline).await?;
        let before = self.sample()?;
        let whoami = mcp::whoami(&sessions, plan.whoami, deadline).await?;
        let (whoami_cpu, peers_whoami) = self.since(&before)?;
        Ok(Figures {
            sign_ins,
            sign_in_cpu,
            whoami,
            whoami_cpu,
            peers_sign_in,
            peers_whoami,
        })
    }
}

/// Starts a private Postgres and two instances on it and on `redis`, and measures the three
/// setups; `sqlite` is the SQLite server with the same limits.
pub async fn run(
    plan: &Plan,
    rig: &Rig,
    sqlite: &Server,
    redis: &Redis,
    report: &mut Report,
) -> anyhow::Result<()> {
    let postgres = Postgres::start(&rig.dir).await?;
    println!("Postgres: {} (pid {})", postgres.url, postgres.pid);
    println!("Redis: {} (pid {})", redis.url, redis.pid);
    let port = procs::shared_free_port(&INSTANCES)?;
    let public = format!("http://localhost:{port}");
    let mut instances = Vec::new();
    // One after the other: the first creates the schema and the signing key.
    for (n, ip) in INSTANCES.into_iter().enumerate() {
        let server = rig
            .spawn(
                &format!("instance-{n}"),
                &ServerConfig {
                    bind: SocketAddr::from((ip, port)),
                    database_url: &postgres.url,
                    public_base_url: Some(&public),
                    redis_url: Some(&redis.url),
                    rate_limits: limits::LIMITS_ON,
                },
            )
            .await?;
        println!(
            "instance {n}: {} behind {public} (pid {})",
            server.base, server.pid
        );
        instances.push(server);
    }
    let setups = [
        Setup {
            name: "SQLite alone",
            tag: "sqlite",
            public: &sqlite.base,
            instances: vec![sqlite],
            postgres: None,
            redis: None,
        },
        Setup {
            name: "Postgres + Redis, one instance",
            tag: "one",
            public: &public,
            instances: vec![&instances[0]],
            postgres: Some(&postgres),
            redis: Some(redis),
        },
        Setup {
            name: "Postgres + Redis, two instances",
            tag: "two",
            public: &public,
            instances: instances.iter().collect(),
            postgres: Some(&postgres),
            redis: Some(redis),
        },
    ];
    let mut figures = Vec::new();
    for setup in &setups {
        figures.push(setup.measure(plan).await?);
    }
    print_table(plan, &setups, &figures);
    let [sqlite, one, two] = &figures[..] else {
        anyhow::bail!("three setups, not {}", figures.len());
    };
    for (setup, run) in setups.iter().zip(&figures) {
        report.row(
            format!("cluster: {}", setup.name),
            format!(
                "{:.1} sign-ins/s, {:.0} calls/s",
                run.sign_ins.per_second(),
                run.whoami.per_second()
            ),
            format!(
                "server CPU {} per sign-in, {} per call",
                ms(run.sign_in_cpu()),
                us(run.call_cpu())
            ),
        );
        if run.sign_ins.cut_short || run.whoami.cut_short {
            report.note(format!(
                "the {} run was cut short by the time limit",
                setup.name
            ));
        }
    }
    for (what, a, b) in [
        ("cluster: two instances / one", two, one),
        (
            "cluster: Postgres + Redis / SQLite, one instance",
            one,
            sqlite,
        ),
    ] {
        let ratio = |x: f64, y: f64| x / y.max(1e-9);
        report.row(
            what,
            format!(
                "{:.2}× sign-ins/s, {:.2}× calls/s",
                ratio(a.sign_ins.per_second(), b.sign_ins.per_second()),
                ratio(a.whoami.per_second(), b.whoami.per_second())
            ),
            format!(
                "server CPU {:.2}× per sign-in, {:.2}× per call",
                ratio(a.sign_in_cpu().as_secs_f64(), b.sign_in_cpu().as_secs_f64()),
                ratio(a.call_cpu().as_secs_f64(), b.call_cpu().as_secs_f64())
            ),
        );
    }
    Ok(())
}

fn print_table(plan: &Plan, setups: &[Setup], figures: &[Figures]) {
    println!();
    println!(
        "== Many instances ({} sessions: {} sign-ins each, then {} whoami calls each) ==",
        plan.sessions, plan.sign_ins, plan.whoami
    );
    println!(
        "| setup | sign-ins/s | server CPU per sign-in | Postgres / Redis CPU per sign-in | calls/s | server CPU per call | Postgres / Redis CPU per call |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|");
    for (setup, run) in setups.iter().zip(figures) {
        // Postgres's and Redis's CPU per operation, when the setup has them.
        let peers =
            |(pg, redis): (Duration, Duration), n: usize, unit: fn(Duration) -> String| match setup
                .postgres
            {
                Some(_) => format!("{} / {}", unit(per(pg, n)), unit(per(redis, n))),
                None => "–".to_owned(),
            };
        println!(
            "| {} | {:.1} | {} | {} | {:.0} | {} | {} |",
            setup.name,
            run.sign_ins.per_second(),
            ms(run.sign_in_cpu()),
            peers(run.peers_sign_in, run.sign_ins.calls, ms),
            run.whoami.per_second(),
            us(run.call_cpu()),
            peers(run.peers_whoami, run.whoami.calls, us),
        );
    }
}
