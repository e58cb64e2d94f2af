//! The measured parts: sign-in (concurrent, then step by step), whoami, proxy, scale.

use std::cell::RefCell;
use std::time::{Duration, Instant};

use anyhow::Context;

use crate::mcp::{self, Load, Session, drive};
use crate::procs::CpuSample;
use crate::report::{self, Report, ms, per, us, vs_before};
use crate::{Part, Plan, Rig, resources, scale, signin};

/// Each session signs in `plan.sign_ins` times (the first for `/mcp`, the second for
/// `/mcp/everything`, the rest for `/mcp`), all at once; returns each session's last token
/// for each resource. Measured when the sign-in part runs.
pub async fn sign_ins(
    plan: &Plan,
    rig: &Rig,
    report: &mut Report,
) -> anyhow::Result<(Vec<String>, Vec<String>)> {
    let base = &rig.server.base;
    let measured = plan.has(Part::Signin);
    let count = if measured { plan.sign_ins.max(2) } else { 2 };
    let kinds = resources(base);
    let clients = (0..plan.sessions)
        .map(|_| mcp::http_client())
        .collect::<anyhow::Result<Vec<_>>>()?;
    let tokens = RefCell::new(vec![[String::new(), String::new()]; plan.sessions]);
    let (log_before, cpu_before) = (rig.server.log_lines()?, rig.server.cpu()?);
    let idp_before = CpuSample::read(rig.idp.pid)?;
    let deadline = Instant::now() + plan.limit;
    let (clients, kinds, tokens_ref) = (&clients, &kinds, &tokens);
    let load = drive(
        plan.sessions,
        |_| count,
        deadline,
        move |s, i| async move {
            let kind = usize::from(i == 1);
            let (resource, scope) = &kinds[kind];
            let login = format!("bench-{s}");
            let got = signin::sign_in(&clients[s], base, resource, *scope, &login, None).await?;
            if kind == 1 && got.scope != "everything:tools:call" {
                anyhow::bail!("signed in for {resource} with scope {:?}", got.scope);
            }
            tokens_ref.borrow_mut()[s][kind] = got.access_token;
            Ok(())
        },
    )
    .await?;
    let cpu_after = rig.server.cpu()?;
    let cpu = cpu_after.since(&cpu_before);
    let idp_cpu = CpuSample::read(rig.idp.pid)?.since(&idp_before);
    let logged = rig.server.log_lines()? - log_before;
    let (mcp, everything): (Vec<String>, Vec<String>) =
        tokens.into_inner().into_iter().map(|[a, b]| (a, b)).unzip();
    if mcp.iter().chain(&everything).any(String::is_empty) {
        anyhow::bail!("the sign-ins stopped at the time limit before every session had its tokens");
    }
    if measured {
        let per_sign_in = per(cpu, load.calls);
        let cpu_ms = per_sign_in.as_secs_f64() * 1e3;
        let (lo, hi) = report::BEFORE_SIGN_IN_MS;
        report.row(
            format!(
                "sign-in: server CPU ({} sign-ins, {} at once)",
                load.calls, plan.sessions
            ),
            ms(per_sign_in),
            format!(
                "{:.2}–{:.2}× the {lo}–{hi} ms before",
                cpu_ms / hi,
                cpu_ms / lo
            ),
        );
        report.row(
            "sign-in: wall time p50 / p99",
            format!("{} / {}", ms(load.quantile(0.5)), ms(load.quantile(0.99))),
            format!("{:.1} sign-ins/s", load.per_second()),
        );
        kernel_share(report, "sign-in", &cpu_before, &cpu_after);
        by_thread(report, "sign-in", &cpu_before, &cpu_after);
        report.row(
            "sign-in: the OpenID provider's CPU (node)",
            ms(per(idp_cpu, load.calls)),
            "not Portcullis",
        );
        report.row(
            "sign-in: server log lines",
            format!("{:.1}", logged as f64 / load.calls as f64),
            "per sign-in",
        );
        report.check(
            cpu_ms <= report::SIGN_IN_TARGET_MS,
            format!("sign-in ≤ 2 ms server CPU: {cpu_ms:.2} ms"),
        );
        if load.cut_short {
            report.note("the sign-ins were cut short by the time limit");
        }
    }
    Ok((mcp, everything))
}

/// A row with the server's CPU by thread name (tokio's workers, the blocking pool…).
fn by_thread(report: &mut Report, what: &str, before: &CpuSample, after: &CpuSample) {
    let names = after.by_thread_name(before);
    let total: Duration = names.iter().map(|(_, used)| *used).sum();
    let share = |used: Duration| used.as_secs_f64() / total.as_secs_f64().max(1e-9) * 100.0;
    let list: Vec<String> = names
        .iter()
        .filter(|(_, used)| share(*used) >= 1.0)
        .map(|(name, used)| format!("{name} {:.0} %", share(*used)))
        .collect();
    report.row(
        format!("{what}: server CPU by thread"),
        list.first().cloned().unwrap_or_default(),
        list.get(1..).unwrap_or_default().join(", "),
    );
}

/// A row with the user and system (kernel) parts of the server's CPU, from 10 ms ticks.
fn kernel_share(report: &mut Report, what: &str, before: &CpuSample, after: &CpuSample) {
    let (user, system) = after.split_since(before);
    let share = system.as_secs_f64() / (user + system).as_secs_f64().max(1e-9);
    report.row(
        format!("{what}: server CPU in the kernel"),
        format!("{:.0} %", share * 100.0),
        format!(
            "user {:.0} ms / system {:.0} ms in all (10 ms ticks)",
            user.as_secs_f64() * 1e3,
            system.as_secs_f64() * 1e3
        ),
    );
}

/// Sequential sign-ins with the server's CPU read around each step.
pub async fn profile(plan: &Plan, rig: &Rig, report: &mut Report) -> anyhow::Result<()> {
    let base = &rig.server.base;
    let http = mcp::http_client()?;
    let mut probe = signin::Probe::new(rig.server.pid);
    let resource = format!("{base}/mcp");
    for n in 0..plan.profile {
        let login = format!("bench-profile-{n}");
        signin::sign_in(&http, base, &resource, None, &login, Some(&mut probe)).await?;
    }
    println!();
    println!(
        "== Where a sign-in's server CPU goes ({} sequential sign-ins) ==",
        plan.profile
    );
    println!("| step | server CPU | wall |");
    println!("|---|---:|---:|");
    let mut total = (Duration::ZERO, Duration::ZERO);
    for (step, (cpu, wall, n)) in signin::STEPS.iter().zip(probe.totals) {
        if n == 0 {
            println!("| {step} | not shown | |");
            continue;
        }
        total = (total.0 + cpu / n, total.1 + wall / n);
        println!("| {step} | {} | {} |", ms(cpu / n), ms(wall / n));
    }
    println!("| whole sign-in | {} | {} |", ms(total.0), ms(total.1));
    report.row(
        "sign-in: server CPU, sequential, sum of steps",
        ms(total.0),
        "see the step table",
    );
    Ok(())
}

/// Authenticated `whoami` calls on `/mcp`, each session with its own token.
pub async fn whoami(
    plan: &Plan,
    rig: &Rig,
    tokens: &[String],
    report: &mut Report,
) -> anyhow::Result<()> {
    let url = format!("{}/mcp", rig.server.base);
    let mut sessions = Vec::new();
    for token in tokens {
        sessions.push(Session::open(&url, Some(token)).await?);
    }
    mcp::whoami(&sessions, 20, Instant::now() + plan.limit).await?;
    let (log_before, cpu_before) = (rig.server.log_lines()?, rig.server.cpu()?);
    let load = mcp::whoami(&sessions, plan.whoami, Instant::now() + plan.limit).await?;
    let cpu_after = rig.server.cpu()?;
    let cpu = per(cpu_after.since(&cpu_before), load.calls);
    let logged = rig.server.log_lines()? - log_before;
    let cpu_us = cpu.as_secs_f64() * 1e6;
    report.row(
        format!(
            "whoami: server CPU per call ({} calls, {} at once)",
            load.calls, plan.sessions
        ),
        us(cpu),
        vs_before(cpu_us, report::BEFORE_WHOAMI_US, "µs"),
    );
    report.row(
        "whoami: latency p50 / p99",
        format!("{} / {}", ms(load.quantile(0.5)), ms(load.quantile(0.99))),
        format!("{:.0} calls/s", load.per_second()),
    );
    kernel_share(report, "whoami", &cpu_before, &cpu_after);
    report.row(
        "whoami: server log lines",
        format!("{:.2}", logged as f64 / load.calls as f64),
        "per call",
    );
    report.check(
        cpu_us <= report::WHOAMI_TARGET_US,
        format!("whoami ≤ 50 µs server CPU per call: {cpu_us:.0} µs"),
    );
    if load.cut_short {
        report.note("the whoami run was cut short by the time limit");
    }
    Ok(())
}

/// `echo` at server-everything directly and through `/mcp/everything`, in alternating blocks.
pub async fn proxy(
    plan: &Plan,
    rig: &Rig,
    tokens: &[String],
    report: &mut Report,
) -> anyhow::Result<()> {
    let through = format!("{}/mcp/everything", rig.server.base);
    let mut direct = Vec::new();
    let mut proxied = Vec::new();
    for token in tokens {
        direct.push(Session::open(&rig.everything.url, None).await?);
        proxied.push(Session::open(&through, Some(token)).await?);
    }
    let deadline = Instant::now() + plan.limit;
    echo(&direct, plan.sessions, 10, deadline).await?;
    echo(&proxied, plan.sessions, 10, deadline).await?;
    let (mut d, mut p) = (Load::default(), Load::default());
    let (mut cpu, mut user, mut system, mut logged) =
        (Duration::ZERO, Duration::ZERO, Duration::ZERO, 0);
    let width = plan.sessions;
    for _ in 0..plan.proxy_rounds {
        d.absorb(echo(&direct, width, plan.proxy_calls, deadline).await?);
        let (log_before, before) = (rig.server.log_lines()?, rig.server.cpu()?);
        p.absorb(echo(&proxied, width, plan.proxy_calls, deadline).await?);
        let after = rig.server.cpu()?;
        cpu += after.since(&before);
        let (u, k) = after.split_since(&before);
        (user, system) = (user + u, system + k);
        logged += rig.server.log_lines()? - log_before;
    }
    // The same, one session alone: the latency the proxy adds when nothing queues.
    let (mut d1, mut p1) = (Load::default(), Load::default());
    for _ in 0..2 {
        d1.absorb(echo(&direct, 1, plan.proxy_calls, deadline).await?);
        p1.absorb(echo(&proxied, 1, plan.proxy_calls, deadline).await?);
    }
    let added_alone = p1.quantile(0.5).saturating_sub(d1.quantile(0.5));
    let ratio = p.per_second() / d.per_second();
    let added = p.quantile(0.5).saturating_sub(d.quantile(0.5));
    report.row(
        format!("echo direct ({} calls, {} at once)", d.calls, plan.sessions),
        format!("{:.0} calls/s", d.per_second()),
        format!("p50 {} / p99 {}", ms(d.quantile(0.5)), ms(d.quantile(0.99))),
    );
    report.row(
        "echo through /mcp/everything",
        format!("{:.0} calls/s", p.per_second()),
        format!("p50 {} / p99 {}", ms(p.quantile(0.5)), ms(p.quantile(0.99))),
    );
    report.row(
        "proxy: throughput proxied / direct",
        format!("{ratio:.2}×"),
        format!(
            "{:.2}× the {}× before",
            ratio / report::BEFORE_PROXY_RATIO,
            report::BEFORE_PROXY_RATIO
        ),
    );
    report.row(
        format!("proxy: added p50 latency, {} at once", plan.sessions),
        us(added),
        "p50 proxied − p50 direct",
    );
    report.row(
        format!(
            "proxy: added p50 latency, one session ({} calls each way)",
            p1.calls
        ),
        us(added_alone),
        format!(
            "direct p50 {}, proxied {}; a Rust MCP proxy adds about 50 µs",
            ms(d1.quantile(0.5)),
            ms(p1.quantile(0.5))
        ),
    );
    let cpu = per(cpu, p.calls);
    report.row(
        "proxy: Portcullis CPU per proxied call",
        us(cpu),
        vs_before(cpu.as_secs_f64() * 1e3, report::BEFORE_PROXY_MS, "ms"),
    );
    report.row(
        "proxy: server user / system CPU per call",
        format!("{} / {}", us(per(user, p.calls)), us(per(system, p.calls))),
        format!(
            "{:.2} server log lines per call",
            logged as f64 / p.calls.max(1) as f64
        ),
    );
    report.check(
        ratio >= report::PROXY_TARGET_RATIO,
        format!(
            "proxied ≥ 0.8× the direct throughput: {ratio:.2}× (added p50 {} at {} at once, {} alone)",
            us(added),
            plan.sessions,
            us(added_alone)
        ),
    );
    if d.cut_short || p.cut_short {
        report.note("the proxy runs were cut short by the time limit");
    }
    Ok(())
}

/// `calls` calls of `echo` in each of the first `width` sessions at once.
async fn echo(
    sessions: &[Session],
    width: usize,
    calls: usize,
    deadline: Instant,
) -> anyhow::Result<Load> {
    drive(
        width,
        move |_| calls,
        deadline,
        move |s, i| async move {
            let message = format!("bench-{s}-{i}");
            let arguments = format!(r#"{{"message":"{message}"}}"#);
            let expect = format!("Echo: {message}");
            sessions[s]
                .call_tool(None, i + 1, "echo", &arguments, &expect, i == 0)
                .await
        },
    )
    .await
}

/// `whoami` over 100 and over many distinct tokens minted with the server's key.
pub async fn scale(
    plan: &Plan,
    rig: &Rig,
    tokens: &[String],
    report: &mut Report,
) -> anyhow::Result<()> {
    let template = signin::claims_of(&tokens[0])?;
    let minting = Instant::now();
    let mut minted = scale::mint(
        &rig.database_url,
        &rig.fernet_key,
        &template,
        plan.scale_small + plan.scale_large,
    )
    .await
    .context("minting tokens with the server's key")?;
    println!();
    println!(
        "minted {} tokens in {:.1} s",
        minted.len(),
        minting.elapsed().as_secs_f64()
    );
    let large = minted.split_off(plan.scale_small);
    let url = format!("{}/mcp", rig.server.base);
    let mut sessions = Vec::new();
    for _ in 0..plan.sessions {
        sessions.push(Session::open(&url, Some(&tokens[0])).await?);
    }
    let small = scale::run(
        &rig.server,
        &sessions,
        &minted,
        plan.scale_small_calls,
        plan.limit,
    )
    .await?;
    let large = scale::run(&rig.server, &sessions, &large, large.len(), plan.limit).await?;
    for end in [&small, &large] {
        report.row(
            format!(
                "scale: {} tokens, first use ({} calls)",
                end.tokens, end.first.calls
            ),
            us(end.first.cpu_per_call()),
            format!(
                "{:.0} calls/s",
                end.first.calls as f64 / end.first.wall.as_secs_f64()
            ),
        );
        report.row(
            format!(
                "scale: {} tokens, repeat use ({} calls)",
                end.tokens, end.repeat.calls
            ),
            us(end.repeat.cpu_per_call()),
            format!(
                "{:.0} calls/s",
                end.repeat.calls as f64 / end.repeat.wall.as_secs_f64()
            ),
        );
        if end.first.cut_short || end.repeat.cut_short {
            report.note(format!(
                "the scale run over {} tokens was cut short by the time limit",
                end.tokens
            ));
        }
    }
    let factor =
        large.repeat.cpu_per_call().as_secs_f64() / small.repeat.cpu_per_call().as_secs_f64();
    let first = large.first.cpu_per_call().as_secs_f64() / small.first.cpu_per_call().as_secs_f64();
    report.row(
        format!("scale: {} / {} tokens", large.tokens, small.tokens),
        format!("{factor:.2}× repeat"),
        format!("{first:.2}× first use"),
    );
    report.check(
        factor <= report::SCALE_TARGET_FACTOR,
        format!(
            "call cost flat from {} to {} tokens (repeat use within {}×): {factor:.2}×",
            small.tokens,
            large.tokens,
            report::SCALE_TARGET_FACTOR
        ),
    );
    Ok(())
}
