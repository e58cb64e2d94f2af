//! `[metrics]`: where the operator's endpoints (`/metrics`, `/health/backends`) are served.
//! With neither a bind address nor a token they are not served at all.

use std::net::SocketAddr;

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

use super::ConfigError;

/// The shortest token accepted: a guessable token would publish the operator's view.
const MIN_TOKEN_LEN: usize = 16;

/// How the operator's endpoints are reached.
#[derive(Debug, Clone, Default)]
pub struct MetricsSettings {
    /// A second listener serving only the operator's endpoints, without a token (keep it on a
    /// private interface).
    pub bind: Option<SocketAddr>,
    /// A bearer token that opens them on the public listener (`PORTCULLIS_METRICS__TOKEN`).
    pub token: Option<SecretString>,
}

impl MetricsSettings {
    /// True when the endpoints are served somewhere, so metrics are worth recording.
    pub fn enabled(&self) -> bool {
        self.bind.is_some() || self.token.is_some()
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawMetrics {
    #[serde(default)]
    bind: Option<SocketAddr>,
    #[serde(default)]
    token: Option<SecretString>,
}

pub(super) fn parse_metrics(raw: RawMetrics) -> Result<MetricsSettings, ConfigError> {
    let token = raw.token.filter(|t| !t.expose_secret().trim().is_empty());
    if let Some(token) = &token {
        let value = token.expose_secret();
        if value.len() < MIN_TOKEN_LEN || !value.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(ConfigError::invalid(
                "metrics.token",
                format!(
                    "use at least {MIN_TOKEN_LEN} printable characters without spaces (PORTCULLIS_METRICS__TOKEN)"
                ),
            ));
        }
    }
    Ok(MetricsSettings {
        bind: raw.bind,
        token,
    })
}
