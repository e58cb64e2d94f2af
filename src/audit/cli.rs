//! `portcullis audit`: list the audit trail, filtered, as a table or as JSON lines.

use std::io::Write;
use std::str::FromStr;

use chrono::{DateTime, Duration, Utc};

use crate::store::{AuditEvent, AuditFilter, AuditKind, Store};
use crate::table::{self, cell};

/// The filters and output format of `portcullis audit`.
#[derive(Debug, Clone, clap::Args)]
pub struct AuditArgs {
    /// Only events of this user: their id or their email, exactly.
    #[arg(long)]
    pub user: Option<String>,
    /// Only calls of this tool.
    #[arg(long)]
    pub tool: Option<String>,
    /// Only calls to this backend.
    #[arg(long)]
    pub backend: Option<String>,
    /// Only events of this kind: tool_call, sign_in, token_issued, token_refreshed,
    /// token_revoked, request_denied, admin.
    #[arg(long, value_parser = parse_kind)]
    pub kind: Option<AuditKind>,
    /// Only events at or after WHEN: an RFC 3339 time (2026-11-22T10:00:00Z) or a time ago
    /// (30s, 15m, 2h, 7d, 2w).
    #[arg(long, value_name = "WHEN")]
    pub since: Option<Since>,
    /// At most this many events, newest first.
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..))]
    pub limit: u32,
    /// One JSON object per line instead of a table.
    #[arg(long)]
    pub json: bool,
}

impl AuditArgs {
    /// The store filter these arguments mean at `now`.
    pub fn filter(&self, now: DateTime<Utc>) -> AuditFilter {
        AuditFilter {
            user: self.user.clone(),
            tool: self.tool.clone(),
            backend: self.backend.clone(),
            kind: self.kind,
            since: self.since.map(|since| since.resolve(now)),
            limit: self.limit,
        }
    }
}

/// Reads the events `args` select and writes them to `out`. Returns how many were written.
pub async fn run(
    store: &dyn Store,
    args: &AuditArgs,
    now: DateTime<Utc>,
    out: &mut dyn Write,
) -> anyhow::Result<usize> {
    let events = store.audit_events(&args.filter(now)).await?;
    if args.json {
        write_json_lines(&events, out)?;
    } else {
        write_table(&events, out)?;
    }
    Ok(events.len())
}

fn parse_kind(s: &str) -> Result<AuditKind, String> {
    s.parse().map_err(|_| {
        let names: Vec<&str> = AuditKind::ALL.iter().map(|k| k.as_str()).collect();
        format!("`{s}` is not one of {}", names.join(", "))
    })
}

/// The `--since` value: a fixed time or a time before now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Since {
    At(DateTime<Utc>),
    Ago(Duration),
}

impl Since {
    pub fn resolve(self, now: DateTime<Utc>) -> DateTime<Utc> {
        match self {
            Since::At(time) => time,
            Since::Ago(ago) => now - ago,
        }
    }
}

impl FromStr for Since {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let s = s.trim();
        if let Ok(time) = DateTime::parse_from_rfc3339(s) {
            return Ok(Since::At(time.with_timezone(&Utc)));
        }
        parse_ago(s).map(Since::Ago).ok_or_else(|| {
            format!(
                "`{s}` is neither an RFC 3339 time (2026-11-22T10:00:00Z) nor a time ago such as \
                 30s, 15m, 2h, 7d or 2w"
            )
        })
    }
}

/// `<digits><unit>` with unit `s`, `m`, `h`, `d` or `w` (at most a hundred years).
pub(crate) fn parse_ago(s: &str) -> Option<Duration> {
    let unit_at = s.len().checked_sub(1)?;
    let (number, unit) = s.split_at_checked(unit_at)?;
    if number.is_empty() || !number.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    // All digits: parsing fails only on overflow, which is "very long ago" all the same.
    let n: i64 = number.parse().unwrap_or(i64::MAX);
    let seconds = match unit {
        "s" => n,
        "m" => n.saturating_mul(60),
        "h" => n.saturating_mul(3600),
        "d" => n.saturating_mul(86_400),
        "w" => n.saturating_mul(7 * 86_400),
        _ => return None,
    };
    // Far enough back to mean "everything", near enough for chrono to represent.
    Duration::try_seconds(seconds.min(100 * 365 * 86_400))
}

fn write_json_lines(events: &[AuditEvent], out: &mut dyn Write) -> anyhow::Result<()> {
    for event in events {
        serde_json::to_writer(&mut *out, event)?;
        out.write_all(b"\n")?;
    }
    Ok(())
}

const HEADERS: [&str; 11] = [
    "TIME", "KIND", "DECISION", "USER", "CLIENT", "TOOL", "OUTCOME", "LATENCY", "BYTES", "TRACE",
    "REASON",
];

fn write_table(events: &[AuditEvent], out: &mut dyn Write) -> anyhow::Result<()> {
    let rows: Vec<Vec<String>> = events.iter().map(table_row).collect();
    // Numbers read best right-aligned.
    table::write(out, &HEADERS, &rows, &["LATENCY", "BYTES"])?;
    Ok(())
}

fn table_row(event: &AuditEvent) -> Vec<String> {
    let user = event.user_email.as_deref().or(event.user_id.as_deref());
    let tool = match (&event.backend, &event.tool) {
        (Some(backend), Some(tool)) => Some(format!("{backend}/{tool}")),
        (None, Some(tool)) => Some(tool.clone()),
        (Some(backend), None) => Some(format!("{backend}/")),
        (None, None) => None,
    };
    vec![
        event.time.format("%Y-%m-%d %H:%M:%S%.3fZ").to_string(),
        event.kind.as_str().to_owned(),
        event.decision.as_str().to_owned(),
        cell(user),
        cell(event.client_id.as_deref()),
        cell(tool.as_deref()),
        cell(event.outcome.as_deref()),
        event
            .latency_ms
            .map_or_else(|| "-".to_owned(), |ms| format!("{ms} ms")),
        event
            .response_bytes
            .map_or_else(|| "-".to_owned(), |b| b.to_string()),
        cell(event.trace_id.as_deref()),
        // The last column is not padded: it may run long.
        cell(event.reason.as_deref()),
    ]
}

/// `--since` read as RFC 3339 or a time ago.
#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    #[test]
    fn since_reads_rfc_3339_and_times_ago() {
        let now = Utc.with_ymd_and_hms(2026, 11, 22, 12, 0, 0).unwrap();
        let at = |s: &str| s.parse::<Since>().map(|since| since.resolve(now));

        assert_eq!(
            at("2026-11-22T10:00:00Z"),
            Ok(Utc.with_ymd_and_hms(2026, 11, 22, 10, 0, 0).unwrap())
        );
        assert_eq!(
            at("2026-11-22T11:00:00+01:00"),
            Ok(Utc.with_ymd_and_hms(2026, 11, 22, 10, 0, 0).unwrap())
        );
        assert_eq!(at("30s"), Ok(now - Duration::seconds(30)));
        assert_eq!(at("15m"), Ok(now - Duration::minutes(15)));
        assert_eq!(at("2h"), Ok(now - Duration::hours(2)));
        assert_eq!(at("7d"), Ok(now - Duration::days(7)));
        assert_eq!(at("2w"), Ok(now - Duration::weeks(2)));
        assert_eq!(at("0m"), Ok(now));
    }

    #[test]
    fn since_refuses_what_it_cannot_read() {
        for bad in [
            "",
            "m",
            "15",
            "15x",
            "-5m",
            "+5m",
            "1.5h",
            "15 m",
            "yesterday",
            "2026-11-22",
            "১৫m",
        ] {
            let error = bad.parse::<Since>().unwrap_err();
            assert!(error.contains("RFC 3339"), "{bad}: {error}");
        }
    }

    #[test]
    fn a_huge_time_ago_means_everything_rather_than_an_error() {
        let now = Utc.with_ymd_and_hms(2026, 11, 22, 12, 0, 0).unwrap();
        for huge in ["99999999999999d", "99999999999999999999999999w"] {
            let since = huge.parse::<Since>().unwrap().resolve(now);
            assert!(since < Utc.with_ymd_and_hms(1930, 1, 1, 0, 0, 0).unwrap());
        }
    }
}
