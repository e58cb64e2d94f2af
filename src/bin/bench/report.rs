//! The report: a table of figures, each with its ratio to the direct call or to the figure the
//! outside driver measured before this work, and one line per target saying whether it is met.

use std::time::Duration;

/// What the outside driver measured before (issue 6): 16 concurrent sessions, server CPU from
/// `/proc`, each sign-in with its own registration and the real provider's round trips.
pub const BEFORE_WHOAMI_US: f64 = 235.0;
pub const BEFORE_SIGN_IN_MS: (f64, f64) = (8.5, 9.0);
pub const BEFORE_PROXY_RATIO: f64 = 0.44;
pub const BEFORE_PROXY_MS: f64 = 0.8;

/// The targets.
pub const WHOAMI_TARGET_US: f64 = 50.0;
pub const SIGN_IN_TARGET_MS: f64 = 2.0;
pub const PROXY_TARGET_RATIO: f64 = 0.8;
/// "Flat": the repeat-call cost at the top of the scale test within this factor of the bottom's.
pub const SCALE_TARGET_FACTOR: f64 = 1.25;
pub const STARTUP_TARGET_MS: f64 = 200.0;
pub const IDLE_RSS_TARGET_MB: f64 = 30.0;
/// The CPU a rate limit may add to an MCP call (issue 9).
pub const LIMIT_TARGET_US: f64 = 10.0;

#[derive(Default)]
pub struct Report {
    rows: Vec<[String; 3]>,
    checks: Vec<(bool, String)>,
    notes: Vec<String>,
}

impl Report {
    /// A row: what, the absolute value, and its comparison.
    pub fn row(
        &mut self,
        what: impl Into<String>,
        value: impl Into<String>,
        compared: impl Into<String>,
    ) {
        self.rows.push([what.into(), value.into(), compared.into()]);
    }

    /// A target line.
    pub fn check(&mut self, met: bool, line: impl Into<String>) {
        self.checks.push((met, line.into()));
    }

    pub fn note(&mut self, line: impl Into<String>) {
        self.notes.push(line.into());
    }

    pub fn print(&self) {
        let widths = [0, 1, 2].map(|c| {
            self.rows
                .iter()
                .map(|r| r[c].chars().count())
                .max()
                .unwrap_or(0)
        });
        println!();
        println!("== Results ==");
        let rule = format!(
            "|{}|{}|{}|",
            "-".repeat(widths[0] + 2),
            "-".repeat(widths[1] + 2),
            "-".repeat(widths[2] + 2)
        );
        let line = |r: &[String; 3]| {
            format!(
                "| {:<w0$} | {:>w1$} | {:<w2$} |",
                r[0],
                r[1],
                r[2],
                w0 = widths[0],
                w1 = widths[1],
                w2 = widths[2]
            )
        };
        println!(
            "{}",
            line(&["measure".into(), "value".into(), "compared".into()])
        );
        println!("{rule}");
        for row in &self.rows {
            println!("{}", line(row));
        }
        for note in &self.notes {
            println!("note: {note}");
        }
        println!();
        println!("== Targets ==");
        for (met, line) in &self.checks {
            println!("{} {line}", if *met { "MET    " } else { "NOT MET" });
        }
    }
}

pub fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1e3)
}

pub fn us(d: Duration) -> String {
    format!("{:.0} µs", d.as_secs_f64() * 1e6)
}

/// A duration divided over `n` events.
pub fn per(total: Duration, n: usize) -> Duration {
    Duration::from_secs_f64(total.as_secs_f64() / n.max(1) as f64)
}

/// `value / before` as "0.42× of 235 µs before".
pub fn vs_before(value: f64, before: f64, unit: &str) -> String {
    format!("{:.2}× the {before} {unit} before", value / before)
}
