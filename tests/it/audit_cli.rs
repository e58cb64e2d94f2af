//! `portcullis audit` as an operator runs it: filters, JSON lines, the table, and the messages
//! for what it cannot read.

use std::process::{Command, Output};

use chrono::{DateTime, Duration, TimeZone, Utc};
use portcullis::store::{AuditEvent, AuditKind, Decision};
use serde_json::Value;

fn portcullis(dir: &std::path::Path, database_url: &str, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_portcullis"))
        .arg("audit")
        .args(args)
        .current_dir(dir)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("DATABASE_URL", database_url)
        .output()
        .unwrap()
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// The ids of the JSON lines printed, in order.
fn json_ids(output: &Output) -> Vec<String> {
    assert!(output.status.success(), "{}", text(output));
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|line| {
            let event: Value = serde_json::from_str(line).unwrap();
            event["id"].as_str().unwrap().to_owned()
        })
        .collect()
}

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2021, 3, 4, 10, 0, 0).unwrap()
}

/// A SQLite database holding a small trail: three events at a fixed time in 2021, one an hour
/// ago and one five minutes ago.
async fn seeded(dir: &std::path::Path) -> String {
    let url = format!("sqlite://{}", dir.join("audit.db").display());
    let store = portcullis::startup::open_store(&url).await.unwrap();
    let now = Utc::now();
    let mut events = vec![
        AuditEvent::new(AuditKind::SignIn, Decision::Allowed, t0())
            .user("user-ada", Some("ada@example.com"))
            .client("client-1"),
        AuditEvent::new(
            AuditKind::ToolCall,
            Decision::Allowed,
            t0() + Duration::seconds(1),
        )
        .user("user-ada", Some("ada@example.com"))
        .client("client-1")
        .tool("orders", "list_orders")
        .request_id("req-1")
        .trace_id("4bf92f3577b34da6a3ce929d0e0e4736")
        .outcome("ok")
        .latency_ms(12)
        .response_bytes(2048),
        AuditEvent::new(
            AuditKind::ToolCall,
            Decision::Denied,
            t0() + Duration::seconds(2),
        )
        .user("user-bob", Some("bob@example.com"))
        .client("client-2")
        .tool("orders", "cancel_order")
        .reason("insufficient_scope orders:*:write"),
        AuditEvent::new(
            AuditKind::ToolCall,
            Decision::Allowed,
            now - Duration::hours(1),
        )
        .user("user-ada", None)
        .tool("billing", "list_orders")
        .outcome("timeout"),
        AuditEvent::new(
            AuditKind::RequestDenied,
            Decision::Denied,
            now - Duration::minutes(5),
        )
        .reason("invalid_token"),
    ];
    for (i, event) in events.iter_mut().enumerate() {
        event.id = format!("e-{i}");
    }
    store.insert_audit_events(&events).await.unwrap();
    url
}

#[tokio::test]
async fn audit_lists_what_the_filters_select_newest_first() {
    let dir = tempfile::tempdir().unwrap();
    let url = seeded(dir.path()).await;
    let run = |args: &[&str]| {
        let mut all = args.to_vec();
        all.push("--json");
        json_ids(&portcullis(dir.path(), &url, &all))
    };

    assert_eq!(run(&[]), ["e-4", "e-3", "e-2", "e-1", "e-0"]);
    assert_eq!(run(&["--user", "ada@example.com"]), ["e-1", "e-0"]);
    assert_eq!(run(&["--user", "user-ada"]), ["e-3", "e-1", "e-0"]);
    assert_eq!(run(&["--tool", "list_orders"]), ["e-3", "e-1"]);
    assert_eq!(
        run(&["--tool", "list_orders", "--backend", "orders"]),
        ["e-1"]
    );
    assert_eq!(run(&["--kind", "request_denied"]), ["e-4"]);
    assert_eq!(
        run(&["--since", "2021-03-04T10:00:01Z"]),
        ["e-4", "e-3", "e-2", "e-1"]
    );
    assert_eq!(run(&["--since", "2h"]), ["e-4", "e-3"]);
    assert_eq!(run(&["--since", "30m"]), ["e-4"]);
    assert_eq!(run(&["--limit", "2"]), ["e-4", "e-3"]);
    assert!(run(&["--user", "nobody@example.com"]).is_empty());
}

#[tokio::test]
async fn audit_json_lines_carry_every_field() {
    let dir = tempfile::tempdir().unwrap();
    let url = seeded(dir.path()).await;

    let output = portcullis(
        dir.path(),
        &url,
        &["--json", "--tool", "list_orders", "--backend", "orders"],
    );

    assert!(output.status.success(), "{}", text(&output));
    let line: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(
        line,
        serde_json::json!({
            "id": "e-1",
            "time": "2021-03-04T10:00:01Z",
            "kind": "tool_call",
            "request_id": "req-1",
            "trace_id": "4bf92f3577b34da6a3ce929d0e0e4736",
            "user_id": "user-ada",
            "user_email": "ada@example.com",
            "client_id": "client-1",
            "backend": "orders",
            "tool": "list_orders",
            "decision": "allowed",
            "reason": null,
            "outcome": "ok",
            "latency_ms": 12,
            "response_bytes": 2048,
        })
    );
}

#[tokio::test]
async fn audit_prints_a_table_by_default() {
    let dir = tempfile::tempdir().unwrap();
    let url = seeded(dir.path()).await;

    let output = portcullis(
        dir.path(),
        &url,
        &[
            "--since",
            "2021-03-04T09:00:00Z",
            "--user",
            "bob@example.com",
        ],
    );

    assert!(output.status.success(), "{}", text(&output));
    let stdout = String::from_utf8(output.stdout).unwrap();
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 2, "{stdout}");
    for header in [
        "TIME", "KIND", "DECISION", "USER", "CLIENT", "TOOL", "OUTCOME", "LATENCY", "BYTES",
        "TRACE", "REASON",
    ] {
        assert!(lines[0].contains(header), "{stdout}");
    }
    for cell in [
        "2021-03-04 10:00:02.000Z",
        "tool_call",
        "denied",
        "bob@example.com",
        "client-2",
        "orders/cancel_order",
        "insufficient_scope orders:*:write",
    ] {
        assert!(lines[1].contains(cell), "{cell} in {stdout}");
    }
}

#[tokio::test]
async fn a_bad_since_or_kind_exits_2_naming_the_flag() {
    let dir = tempfile::tempdir().unwrap();
    let url = seeded(dir.path()).await;

    for (args, flag) in [
        (&["--since", "yesterday"][..], "--since"),
        (&["--since", "15"][..], "--since"),
        (&["--kind", "tool-call"][..], "--kind"),
        (&["--limit", "0"][..], "--limit"),
    ] {
        let output = portcullis(dir.path(), &url, args);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {}", text(&output));
        assert!(text(&output).contains(flag), "{args:?}: {}", text(&output));
        assert!(output.stdout.is_empty());
    }
}
