//! `[cimd]`: clients identified by a metadata document URL, and `[consent]`: remembered consent.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use url::Url;

use super::{ConfigError, is_loopback_url};

/// Which hosts may serve client metadata documents.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CimdHosts {
    /// Any https host that passes the address checks.
    Any,
    /// Only these hosts (lower-case DNS names); they are also shown as verified.
    Only(Vec<String>),
}

/// Client ID Metadata Documents (draft-ietf-oauth-client-id-metadata-document).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CimdSettings {
    /// Off: a URL `client_id` is refused, and discovery does not advertise CIMD.
    pub enabled: bool,
    pub hosts: CimdHosts,
    /// Hosts whose documents the consent page marks as verified (besides the pinned clients).
    pub trusted_hosts: Vec<String>,
    /// Use the documents shipped for well-known clients when their URL cannot be fetched.
    pub pinned: bool,
    pub timeout: Duration,
    pub max_document_bytes: usize,
    /// The shortest time a fetched document is used before it is fetched again.
    pub min_cache: Duration,
    /// The longest: whatever its cache headers say.
    pub max_cache: Duration,
    /// A PEM file of extra root certificates for the fetches (an operator's own CA).
    pub ca_file: Option<PathBuf>,
    /// `ip:port` of loopback servers that may serve documents although loopback addresses are
    /// refused otherwise. Only accepted while Portcullis itself is on a loopback URL: it exists
    /// so a test can serve a document from 127.0.0.1.
    pub loopback_hosts: Vec<SocketAddr>,
}

/// Remembered consent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConsentSettings {
    /// How long a person's approval of a client (same `client_id` and redirect URI) for a
    /// resource and scopes spares them the consent page in the same browser. Zero: always ask.
    pub remember_for: Duration,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(super) struct RawCimd {
    enabled: bool,
    hosts: RawHosts,
    trusted_hosts: Vec<String>,
    pinned: bool,
    timeout_secs: u64,
    max_document_bytes: usize,
    min_cache_secs: u64,
    max_cache_secs: u64,
    ca_file: Option<PathBuf>,
    loopback_hosts: Vec<String>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(untagged)]
enum RawHosts {
    /// `"any"`.
    Word(String),
    List(Vec<String>),
}

impl Default for RawCimd {
    fn default() -> Self {
        Self {
            enabled: true,
            hosts: RawHosts::Word("any".into()),
            trusted_hosts: Vec::new(),
            pinned: true,
            timeout_secs: 5,
            max_document_bytes: 16 * 1024,
            min_cache_secs: 60,
            max_cache_secs: 24 * 3600,
            ca_file: None,
            loopback_hosts: Vec::new(),
        }
    }
}

/// Registered clients' upkeep.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientSettings {
    /// A client registered this long ago that holds no grant is deleted; `None` keeps them.
    pub purge_unused_after: Option<Duration>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(super) struct RawClients {
    /// Days; 0 keeps every client.
    purge_unused_after_days: u64,
}

impl Default for RawClients {
    fn default() -> Self {
        Self {
            purge_unused_after_days: 30,
        }
    }
}

pub(super) fn parse_clients(raw: RawClients) -> Result<ClientSettings, ConfigError> {
    if raw.purge_unused_after_days > 10 * 365 {
        return Err(ConfigError::invalid(
            "clients.purge_unused_after_days",
            "use at most 3650 days, or 0 to keep every client",
        ));
    }
    Ok(ClientSettings {
        purge_unused_after: (raw.purge_unused_after_days > 0)
            .then(|| Duration::from_secs(raw.purge_unused_after_days * 24 * 3600)),
    })
}

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(super) struct RawConsent {
    remember_for_secs: u64,
}

/// A host name as it appears in a URL: lower-case, no port, no scheme.
fn host_list(key: &str, hosts: Vec<String>) -> Result<Vec<String>, ConfigError> {
    hosts
        .into_iter()
        .map(|host| {
            let lower = host.trim().to_ascii_lowercase();
            match Url::parse(&format!("https://{lower}/")) {
                Ok(url) if url.host_str() == Some(lower.as_str()) && url.port().is_none() => {
                    Ok(lower)
                }
                _ => Err(ConfigError::invalid(
                    key,
                    format!("`{host}` is not a host name (no scheme, port or path)"),
                )),
            }
        })
        .collect()
}

pub(super) fn parse_cimd(
    raw: RawCimd,
    bind: SocketAddr,
    public_base_url: Option<&Url>,
) -> Result<CimdSettings, ConfigError> {
    let hosts = match raw.hosts {
        RawHosts::Word(word) if word == "any" => CimdHosts::Any,
        RawHosts::Word(_) => {
            return Err(ConfigError::invalid(
                "cimd.hosts",
                "use \"any\" or a list of host names",
            ));
        }
        RawHosts::List(list) => CimdHosts::Only(host_list("cimd.hosts", list)?),
    };
    if !(1..=30).contains(&raw.timeout_secs) {
        return Err(ConfigError::invalid(
            "cimd.timeout_secs",
            "use 1 to 30 seconds",
        ));
    }
    if !(1024..=256 * 1024).contains(&raw.max_document_bytes) {
        return Err(ConfigError::invalid(
            "cimd.max_document_bytes",
            "use 1024 to 262144 bytes",
        ));
    }
    if raw.max_cache_secs == 0 || raw.min_cache_secs > raw.max_cache_secs {
        return Err(ConfigError::invalid(
            "cimd.max_cache_secs",
            "must be greater than zero and at least cimd.min_cache_secs",
        ));
    }
    if raw.max_cache_secs > 7 * 24 * 3600 {
        return Err(ConfigError::invalid(
            "cimd.max_cache_secs",
            "use at most a week (604800)",
        ));
    }
    if let Some(path) = &raw.ca_file
        && !path.is_file()
    {
        return Err(ConfigError::invalid(
            "cimd.ca_file",
            format!("{} does not exist", path.display()),
        ));
    }
    let mut loopback_hosts = Vec::with_capacity(raw.loopback_hosts.len());
    for entry in &raw.loopback_hosts {
        let addr: SocketAddr = entry.parse().map_err(|_| {
            ConfigError::invalid(
                "cimd.loopback_hosts",
                format!("`{entry}` is not an ip:port"),
            )
        })?;
        if !addr.ip().is_loopback() {
            return Err(ConfigError::invalid(
                "cimd.loopback_hosts",
                format!("`{entry}` is not a loopback address"),
            ));
        }
        loopback_hosts.push(addr);
    }
    let public_is_loopback = match public_base_url {
        Some(url) => is_loopback_url(url),
        None => bind.ip().is_loopback(),
    };
    if !loopback_hosts.is_empty() && !public_is_loopback {
        return Err(ConfigError::invalid(
            "cimd.loopback_hosts",
            "is only for tests: it is refused unless Portcullis itself is on a loopback URL",
        ));
    }
    Ok(CimdSettings {
        enabled: raw.enabled,
        hosts,
        trusted_hosts: host_list("cimd.trusted_hosts", raw.trusted_hosts)?,
        pinned: raw.pinned,
        timeout: Duration::from_secs(raw.timeout_secs),
        max_document_bytes: raw.max_document_bytes,
        min_cache: Duration::from_secs(raw.min_cache_secs),
        max_cache: Duration::from_secs(raw.max_cache_secs),
        ca_file: raw.ca_file,
        loopback_hosts,
    })
}

pub(super) fn parse_consent(raw: RawConsent) -> Result<ConsentSettings, ConfigError> {
    if raw.remember_for_secs > 365 * 24 * 3600 {
        return Err(ConfigError::invalid(
            "consent.remember_for_secs",
            "use at most a year (31536000)",
        ));
    }
    Ok(ConsentSettings {
        remember_for: Duration::from_secs(raw.remember_for_secs),
    })
}

/// `[cimd]` and `[consent]`: defaults, host lists and refusals.
#[cfg(test)]
mod tests {
    use super::*;

    fn parse(toml: &str) -> Result<CimdSettings, ConfigError> {
        let raw: RawCimd = toml::from_str(toml).unwrap();
        parse_cimd(raw, "127.0.0.1:0".parse().unwrap(), None)
    }

    #[test]
    fn defaults_take_any_host_with_pinned_documents() {
        let settings = parse("").unwrap();
        assert!(settings.enabled && settings.pinned);
        assert_eq!(settings.hosts, CimdHosts::Any);
        assert_eq!(settings.timeout, Duration::from_secs(5));
        assert!(settings.loopback_hosts.is_empty());
    }

    #[test]
    fn hosts_are_any_or_a_list_of_plain_host_names() {
        assert_eq!(
            parse(r#"hosts = ["Claude.AI", "chatgpt.com"]"#)
                .unwrap()
                .hosts,
            CimdHosts::Only(vec!["claude.ai".into(), "chatgpt.com".into()])
        );
        for bad in [
            r#"hosts = "all""#,
            r#"hosts = ["https://claude.ai"]"#,
            r#"hosts = ["claude.ai:443"]"#,
            r#"hosts = ["claude.ai/x"]"#,
            r#"trusted_hosts = ["a b"]"#,
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn loopback_hosts_are_refused_unless_portcullis_is_on_loopback() {
        let raw =
            || -> RawCimd { toml::from_str(r#"loopback_hosts = ["127.0.0.1:8443"]"#).unwrap() };
        assert!(parse_cimd(raw(), "127.0.0.1:0".parse().unwrap(), None).is_ok());
        let public = Url::parse("https://auth.example.com/").unwrap();
        let error = parse_cimd(raw(), "0.0.0.0:8080".parse().unwrap(), Some(&public))
            .unwrap_err()
            .to_string();
        assert!(error.contains("cimd.loopback_hosts"), "{error}");
        assert!(parse(r#"loopback_hosts = ["10.0.0.1:443"]"#).is_err());
        assert!(parse(r#"loopback_hosts = ["localhost:443"]"#).is_err());
    }

    #[test]
    fn limits_are_bounded() {
        assert!(parse("timeout_secs = 0").is_err());
        assert!(parse("max_document_bytes = 10").is_err());
        assert!(parse("min_cache_secs = 100\nmax_cache_secs = 10").is_err());
        assert!(parse("ca_file = \"/nonexistent/ca.pem\"").is_err());
    }
}
