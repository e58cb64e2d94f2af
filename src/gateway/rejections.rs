//! Refused credentials, counted per source per minute. The first refusal from a source in a
//! minute is audited at once, with its reason; the rest of that minute are counted and audited
//! as one event when the minute is over. A flood of bad tokens costs at most two audit events
//! per source per minute, so it cannot crowd real events out of the audit queue.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::net::IpAddr;
use std::sync::Mutex;

use chrono::{DateTime, TimeZone, Utc};

use crate::audit::Auditor;
use crate::store::{AuditEvent, AuditKind, Decision};

/// The most sources counted one by one in a minute; the others are counted together.
const MAX_SOURCES: usize = 10_000;

#[derive(Debug, Default)]
struct Minute {
    /// Minutes since the epoch.
    start: i64,
    /// Refusals after the first, per source (`None`: unknown, or beyond `MAX_SOURCES`).
    more: HashMap<Option<IpAddr>, u64>,
}

/// The per-minute tally.
pub struct Rejections {
    auditor: Auditor,
    minute: Mutex<Minute>,
}

impl Rejections {
    pub fn new(auditor: Auditor) -> Self {
        Self {
            auditor,
            minute: Mutex::new(Minute::default()),
        }
    }

    /// Counts one refusal from `source` (the client's address, when known); audits it when it
    /// is the source's first this minute. `event` is the refusal's own event.
    pub fn note(&self, source: Option<IpAddr>, event: AuditEvent) {
        let (closed, first) = {
            let Ok(mut minute) = self.minute.lock() else {
                return;
            };
            let closed = self.close_if_over(&mut minute, event.time);
            let key = if minute.more.len() >= MAX_SOURCES && !minute.more.contains_key(&source) {
                None
            } else {
                source
            };
            let first = match minute.more.entry(key) {
                Entry::Occupied(mut count) => {
                    *count.get_mut() += 1;
                    false
                }
                Entry::Vacant(slot) => {
                    slot.insert(0);
                    true
                }
            };
            (closed, first)
        };
        self.record_all(closed);
        if first {
            let source =
                source.map_or_else(|| "an unknown address".to_owned(), |ip| ip.to_string());
            let reason = event.reason.clone().unwrap_or_default();
            self.auditor
                .record(event.reason(format!("{reason}, from {source}")));
        }
    }

    /// Audits the counts of a minute that is over; called now and then, so that the last
    /// minute of a flood is audited when the flood stops.
    pub fn flush(&self, now: DateTime<Utc>) {
        let closed = match self.minute.lock() {
            Ok(mut minute) => self.close_if_over(&mut minute, now),
            Err(_) => return,
        };
        self.record_all(closed);
    }

    /// When `now` is past the tallied minute: its summary events, and a fresh minute.
    fn close_if_over(&self, minute: &mut Minute, now: DateTime<Utc>) -> Vec<AuditEvent> {
        let current = now.timestamp().div_euclid(60);
        if minute.start == current {
            return Vec::new();
        }
        let over = std::mem::replace(
            minute,
            Minute {
                start: current,
                more: HashMap::new(),
            },
        );
        let start = Utc
            .timestamp_opt(over.start * 60, 0)
            .single()
            .unwrap_or(now);
        over.more
            .into_iter()
            .filter(|(_, count)| *count > 0)
            .map(|(source, count)| {
                let source =
                    source.map_or_else(|| "other addresses".to_owned(), |ip| ip.to_string());
                AuditEvent::new(AuditKind::RequestDenied, Decision::Denied, now).reason(format!(
                    "{count} more refused credentials from {source} in the minute from {}",
                    start.format("%Y-%m-%d %H:%M UTC")
                ))
            })
            .collect()
    }

    fn record_all(&self, events: Vec<AuditEvent>) {
        for event in events {
            self.auditor.record(event);
        }
    }
}

/// Refusals counted per source and minute.
#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::audit::AuditSink;

    #[derive(Default)]
    struct Kept(Mutex<Vec<AuditEvent>>);

    #[async_trait::async_trait]
    impl AuditSink for Kept {
        fn name(&self) -> &'static str {
            "kept"
        }

        async fn record(&self, events: &[AuditEvent]) -> Result<(), String> {
            self.0.lock().unwrap().extend_from_slice(events);
            Ok(())
        }
    }

    fn refusal(at: DateTime<Utc>) -> AuditEvent {
        AuditEvent::new(AuditKind::RequestDenied, Decision::Denied, at)
            .reason("rejected token (InvalidSignature) for http://x/mcp")
    }

    #[tokio::test]
    async fn a_flood_is_one_event_per_source_then_one_count_per_minute() {
        let kept = Arc::new(Kept::default());
        let auditor = Auditor::start(vec![kept.clone()]);
        let rejections = Rejections::new(auditor.clone());
        let start = Utc.with_ymd_and_hms(2026, 12, 1, 10, 0, 5).unwrap();
        let (a, b) = ("192.0.2.1".parse().ok(), "192.0.2.2".parse().ok());
        for i in 0..1000 {
            rejections.note(a, refusal(start + chrono::Duration::milliseconds(i)));
        }
        rejections.note(b, refusal(start));
        auditor.flush().await;
        let reasons = |kept: &Kept| {
            kept.0
                .lock()
                .unwrap()
                .iter()
                .map(|e| e.reason.clone().unwrap())
                .collect::<Vec<_>>()
        };
        // The first of each source at once, with its reason and source.
        assert_eq!(
            reasons(&kept),
            [
                "rejected token (InvalidSignature) for http://x/mcp, from 192.0.2.1",
                "rejected token (InvalidSignature) for http://x/mcp, from 192.0.2.2",
            ]
        );
        // Within the minute, nothing more; after it, the count of the rest.
        rejections.flush(start + chrono::Duration::seconds(30));
        auditor.flush().await;
        assert_eq!(reasons(&kept).len(), 2);
        rejections.flush(start + chrono::Duration::seconds(60));
        auditor.flush().await;
        let all = reasons(&kept);
        assert_eq!(
            all[2..],
            ["999 more refused credentials from 192.0.2.1 in the minute from 2026-12-01 10:00 UTC"]
        );
    }
}
