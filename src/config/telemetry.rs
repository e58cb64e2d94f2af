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

/// `[metrics]`: off by default, and which tokens are accepted.
#[cfg(test)]
mod tests {
    use crate::config::Settings;

    #[test]
    fn the_operator_endpoints_are_off_unless_configured() {
        let settings = Settings::from_toml("").unwrap();
        assert!(!settings.metrics.enabled());
    }

    #[test]
    fn a_bind_or_a_long_token_turns_them_on() {
        let bind = Settings::from_toml("[metrics]\nbind = \"127.0.0.1:9464\"").unwrap();
        assert_eq!(bind.metrics.bind, Some("127.0.0.1:9464".parse().unwrap()));
        assert!(bind.metrics.enabled());
        let token = Settings::from_toml("[metrics]\ntoken = \"0123456789abcdef0123\"").unwrap();
        assert!(token.metrics.enabled() && token.metrics.bind.is_none());
    }

    #[test]
    fn a_short_or_spaced_token_is_refused_naming_the_key() {
        for token in ["short", "0123456789 abcdef0123"] {
            let error =
                Settings::from_toml(&format!("[metrics]\ntoken = \"{token}\"")).unwrap_err();
            assert!(error.to_string().contains("metrics.token"), "{error}");
        }
        let unknown = Settings::from_toml("[metrics]\nport = 9464").unwrap_err();
        assert!(unknown.to_string().contains("port"), "{unknown}");
    }
}
