//! What a rate limit adds to an MCP call (target: at most 10 µs of CPU), measured two ways.
//!
//! - From outside: `whoami` on the rig's server (`[rate_limits] enabled = false`) and on a
//!   second SQLite server whose only limit is the per-person MCP one at the largest rate
//!   accepted, far above the load, in alternating rounds; the difference in server CPU per call.
//! - In process: `portcullis::ratelimit::RateLimits::check` in a loop, in its local form and in
//!   its hybrid form against the private Redis, the checks cycling through 1,000 people.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use portcullis::config::RateLimitSettings;
use portcullis::ratelimit::{Class, RateLimits};

use crate::mcp::{self, Load, Session};
use crate::procs::{self, CpuSample, Server};
use crate::report::{self, Report, per, us};
use crate::services::Redis;
use crate::{Plan, Rig, ServerConfig, signin};

/// The `[rate_limits]` of the limited server and of the cluster's instances: the per-person MCP
/// limit at the largest rate accepted, every other class off (the loads come from one address,
/// one OAuth client per session, no API key).
pub const LIMITS_ON: &str = "enabled = true
register_per_minute = 0
authorize_per_minute = 0
token_per_minute = 0
mcp_person_per_minute = 600000
mcp_client_per_minute = 0
mcp_api_key_per_minute = 0";

/// The rate of [`LIMITS_ON`], per minute.
const PERSON_PER_MINUTE: u32 = 600_000;

/// People the in-process checks cycle through.
const SUBJECTS: usize = 1000;

/// A SQLite server of its own (its own database) with [`LIMITS_ON`].
pub async fn start_limited(rig: &Rig) -> anyhow::Result<Server> {
    let database_url = format!("sqlite:{}", rig.dir.join("limited.db").display());
    rig.spawn(
        "limited",
        &ServerConfig {
            bind: SocketAddr::from(([127, 0, 0, 1], procs::free_port()?)),
            database_url: &database_url,
            public_base_url: None,
            redis_url: None,
            rate_limits: LIMITS_ON,
        },
    )
    .await
}

/// Server CPU per `whoami` call without and with the limit, in alternating rounds.
pub async fn server_cost(
    plan: &Plan,
    rig: &Rig,
    limited: &Server,
    tokens: &[String],
    report: &mut Report,
) -> anyhow::Result<()> {
    let clients = (0..plan.sessions)
        .map(|_| mcp::http_client())
        .collect::<anyhow::Result<Vec<_>>>()?;
    let deadline = Instant::now() + plan.limit;
    let (_, limited_tokens) =
        signin::concurrently(&clients, &limited.base, "limits", 1, deadline).await?;
    let mut off = Vec::new();
    let mut on = Vec::new();
    for (off_token, on_token) in tokens.iter().zip(&limited_tokens) {
        off.push(Session::open(&format!("{}/mcp", rig.server.base), Some(off_token)).await?);
        on.push(Session::open(&format!("{}/mcp", limited.base), Some(on_token)).await?);
    }
    mcp::whoami(&off, 20, deadline).await?;
    mcp::whoami(&on, 20, deadline).await?;
    let (mut off_load, mut on_load) = (Load::default(), Load::default());
    let (mut off_cpu, mut on_cpu) = (Duration::ZERO, Duration::ZERO);
    // Each round's difference, µs per call: how far apart rounds fall shows the noise.
    let mut spread = (f64::INFINITY, f64::NEG_INFINITY);
    for _ in 0..plan.limit_rounds {
        let mut round = [0.0; 2];
        for (side, (sessions, server, load, cpu)) in [
            (&off, &rig.server, &mut off_load, &mut off_cpu),
            (&on, limited, &mut on_load, &mut on_cpu),
        ]
        .into_iter()
        .enumerate()
        {
            let before = server.cpu()?;
            let ran = mcp::whoami(sessions, plan.limit_calls, deadline).await?;
            let used = server.cpu()?.since(&before);
            round[side] = per(used, ran.calls).as_secs_f64() * 1e6;
            *cpu += used;
            load.absorb(ran);
        }
        let added = round[1] - round[0];
        spread = (spread.0.min(added), spread.1.max(added));
    }
    let off_us = per(off_cpu, off_load.calls).as_secs_f64() * 1e6;
    let on_us = per(on_cpu, on_load.calls).as_secs_f64() * 1e6;
    let added = on_us - off_us;
    report.row(
        format!(
            "rate limit: server CPU per whoami call, off / on ({} alternating rounds of {} calls)",
            plan.limit_rounds,
            off_load.calls / plan.limit_rounds.max(1)
        ),
        format!("{off_us:.1} / {on_us:.1} µs"),
        format!(
            "{:.0} / {:.0} calls/s",
            off_load.per_second(),
            on_load.per_second()
        ),
    );
    report.row(
        "rate limit: CPU added per call, from outside",
        format!("{added:.1} µs"),
        format!(
            "on − off; {:.1} to {:.1} µs round by round; target ≤ {} µs",
            spread.0,
            spread.1,
            report::LIMIT_TARGET_US
        ),
    );
    report.check(
        added <= report::LIMIT_TARGET_US,
        format!("a rate limit adds ≤ 10 µs server CPU per MCP call (from outside): {added:.1} µs"),
    );
    if off_load.cut_short || on_load.cut_short {
        report.note("the rate-limit rounds were cut short by the time limit");
    }
    Ok(())
}

/// What one form of the limiter measured.
struct Checks {
    checks: usize,
    /// The first check of each subject (the hybrid form asks Redis then).
    first_use: Duration,
    wall: Duration,
    /// This process's CPU during the loop: the checks and the limiter's background work.
    cpu: Duration,
    /// Redis's CPU during the loop.
    redis_cpu: Duration,
}

impl Checks {
    fn ns(&self, total: Duration) -> f64 {
        total.as_secs_f64() * 1e9 / self.checks.max(1) as f64
    }
}

/// `RateLimits::check` in a loop, local and through Redis, on a runtime of its own with two
/// workers for the limiter's background tasks (the bench's own runtime has one thread).
pub async fn in_process(plan: &Plan, redis: &Redis, report: &mut Report) -> anyhow::Result<()> {
    let (url, redis_pid, checks) = (redis.url.clone(), redis.pid, plan.limit_checks);
    let [local, shared] = tokio::task::spawn_blocking(move || {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()?
            .block_on(async {
                let settings = RateLimitSettings {
                    enabled: true,
                    trusted_proxies: Vec::new(),
                    register: None,
                    authorize: None,
                    token: None,
                    mcp_person: Some(PERSON_PER_MINUTE),
                    mcp_client: None,
                    mcp_api_key: None,
                };
                let shared = portcullis::cluster::Redis::new(&url.parse()?, "benchlimits")?;
                let local = RateLimits::new(&settings, None)?;
                let local = check_loop(&local, checks, redis_pid).await?;
                let hybrid = RateLimits::new(&settings, Some(&shared))?;
                let shared = check_loop(&hybrid, checks, redis_pid).await?;
                Ok::<_, anyhow::Error>([local, shared])
            })
    })
    .await
    .context("the in-process rate-limit loop panicked")??;
    for (form, run) in [("local", &local), ("through Redis", &shared)] {
        let cpu = run.ns(run.cpu) + run.ns(run.redis_cpu);
        report.row(
            format!(
                "rate limit in process, {form}: per check ({} checks)",
                run.checks
            ),
            format!("{:.0} ns", run.ns(run.wall)),
            format!(
                "CPU {:.0} ns here + {:.0} ns in Redis; first use of a key {}",
                run.ns(run.cpu),
                run.ns(run.redis_cpu),
                us(run.first_use / SUBJECTS as u32)
            ),
        );
        report.check(
            cpu <= report::LIMIT_TARGET_US * 1e3,
            format!("a rate-limit check ({form}) costs ≤ 10 µs CPU in process: {cpu:.0} ns"),
        );
    }
    Ok(())
}

/// One check of each of [`SUBJECTS`] people, then `checks` more cycling through them; fails if
/// any is refused (the figure would then be a refusal's).
async fn check_loop(limits: &RateLimits, checks: usize, redis_pid: u32) -> anyhow::Result<Checks> {
    let subjects: Vec<String> = (0..SUBJECTS)
        .map(|n| format!("https://issuer.invalid\nperson-{n}"))
        .collect();
    let started = Instant::now();
    for subject in &subjects {
        if let Err(limited) = limits.check(Class::McpPerson, subject).await {
            bail!("a first check was refused: {limited:?}");
        }
    }
    let first_use = started.elapsed();
    let (cpu, redis_cpu) = (
        CpuSample::read(std::process::id())?,
        CpuSample::read(redis_pid)?,
    );
    let started = Instant::now();
    let mut refused = 0usize;
    for n in 0..checks {
        refused += usize::from(
            limits
                .check(Class::McpPerson, &subjects[n % SUBJECTS])
                .await
                .is_err(),
        );
    }
    let wall = started.elapsed();
    let cpu = CpuSample::read(std::process::id())?.since(&cpu);
    let redis_cpu = CpuSample::read(redis_pid)?.since(&redis_cpu);
    if refused > 0 {
        bail!(
            "{refused} of {checks} checks were refused: the rate is meant to be far above the loop's"
        );
    }
    Ok(Checks {
        checks,
        first_use,
        wall,
        cpu,
        redis_cpu,
    })
}
