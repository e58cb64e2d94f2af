//! `[audit]`: how long the audit trail keeps its events.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::ConfigError;

/// The audit trail's upkeep.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AuditSettings {
    /// Events older than this are deleted by the periodic purge; `None` keeps them all.
    pub retention: Option<Duration>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(super) struct RawAudit {
    /// Days to keep audit events; 0 keeps them forever.
    retention_days: u64,
}

impl Default for RawAudit {
    fn default() -> Self {
        Self {
            retention_days: 365,
        }
    }
}

pub(super) fn parse_audit(raw: RawAudit) -> Result<AuditSettings, ConfigError> {
    if raw.retention_days > 100 * 365 {
        return Err(ConfigError::invalid(
            "audit.retention_days",
            "use at most 36500 days, or 0 to keep every event",
        ));
    }
    Ok(AuditSettings {
        retention: (raw.retention_days > 0)
            .then(|| Duration::from_secs(raw.retention_days * 24 * 3600)),
    })
}
