//! Typed settings: embedded defaults, then a TOML file, then the environment.
//!
//! Infrastructure settings use their conventional bare names (`DATABASE_URL`, `REDIS_URL`,
//! `PUBLIC_BASE_URL`); everything else is `PORTCULLIS_…` with `__` for nesting
//! (`PORTCULLIS_TOKENS__ACCESS_TTL_SECS=600`). What is read is first deserialized as written,
//! then parsed into the types the rest of Portcullis uses (durations, one variant per provider
//! kind and backend transport, compiled tool patterns): a value start-up accepted cannot fail
//! later. Unknown keys, malformed values and missing secrets fail with a message naming the key.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use secrecy::SecretString;
use serde::{Deserialize, Deserializer, Serialize};
use url::Url;

/// `[roles.*]`, `default_role`, `grant`, and the providers' admission and role rules.
mod access;
/// `[audit]`: the trail's retention.
mod audit;
/// `[[backends]]` and `[gateway]`.
mod backends;
/// `[cimd]` and `[consent]`: clients identified by a metadata document, remembered consent.
mod clients;
/// `[[trusted_issuers]]`.
mod issuers;
/// `[[backends]]` with `openapi`: a REST API's operations as tools.
mod openapi;
/// The identity providers people run, as presets of OpenID Connect.
mod presets;
/// `[[providers]]`.
mod providers;
/// `[rate_limits]`.
mod rate_limits;
/// `[metrics]`: the operator's endpoints.
mod telemetry;

pub use access::{
    AccessSettings, Admission, ClaimPath, ClaimRoles, EmailRule, GrantMode, Role, UserAdmission,
};
pub use audit::AuditSettings;
use audit::{RawAudit, parse_audit};
pub use backends::{
    BackendSettings, BackendTransport, ForwardMode, GatewaySettings, StdioSettings, ToolPattern,
};
pub use clients::{CimdHosts, CimdSettings, ClientSettings, ConsentSettings};
pub use issuers::{ScopeClaim, TrustedIssuer};
pub use openapi::{ApiAuth, DocumentSource, OpenApiSettings};
pub use presets::{Quirks, SubjectFrom};
pub use providers::{GithubSettings, OidcSettings, ProviderKind, ProviderSettings};
pub use rate_limits::RateLimitSettings;
pub use telemetry::MetricsSettings;

/// The file read when `--config` is not given, if it exists.
pub const DEFAULT_CONFIG_FILE: &str = "portcullis.toml";

/// A configuration that cannot be used, with the key to fix.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{0}")]
    Parse(String),
    #[error("`{key}`: {message}")]
    Invalid { key: String, message: String },
}

impl ConfigError {
    pub(crate) fn invalid(key: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Invalid {
            key: key.into(),
            message: message.into(),
        }
    }
}

/// Every setting Portcullis reads.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Where to listen (`PORTCULLIS_BIND`).
    pub bind: SocketAddr,
    /// The URL clients reach Portcullis at, possibly with a path prefix (`PUBLIC_BASE_URL`).
    /// Without it, `http://{the bound address}`. Every advertised URL is built from it.
    pub public_base_url: Option<Url>,
    /// `sqlite:…` or `postgres://…` (`DATABASE_URL`).
    pub database_url: String,
    /// Optional Redis (`REDIS_URL`).
    pub redis_url: Option<Url>,
    /// What every Redis key and channel of this deployment starts with, so that several
    /// deployments can share one Redis (`PORTCULLIS_REDIS_PREFIX`).
    pub redis_prefix: String,
    /// Fernet keys (`PORTCULLIS_FERNET_KEYS`, comma-separated): the first encrypts, all decrypt.
    pub fernet_keys: Vec<SecretString>,
    /// Where the generated Fernet key is kept when only the development provider is configured.
    pub dev_key_file: PathBuf,
    pub tokens: TokenSettings,
    pub limits: LimitSettings,
    pub log: LogSettings,
    pub providers: Vec<ProviderSettings>,
    /// Roles, the default role, and what a sign-in grants.
    pub access: AccessSettings,
    /// Other issuers whose access tokens the MCP endpoints accept.
    pub trusted_issuers: Vec<TrustedIssuer>,
    /// The MCP servers behind the gateway.
    pub backends: Vec<BackendSettings>,
    pub gateway: GatewaySettings,
    /// Clients identified by a metadata document URL.
    pub cimd: CimdSettings,
    pub consent: ConsentSettings,
    pub audit: AuditSettings,
    pub rate_limits: RateLimitSettings,
    pub clients: ClientSettings,
    /// Where `/metrics` and `/health/backends` are served, if anywhere.
    pub metrics: MetricsSettings,
}

/// Lifetimes of what Portcullis issues.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TokenSettings {
    pub access_ttl: Duration,
    pub refresh_ttl: Duration,
    /// How long a rotated refresh token still answers a concurrent duplicate refresh.
    pub refresh_grace: Duration,
    pub code_ttl: Duration,
    /// How long a person has from `/authorize` to finishing upstream sign-in.
    pub flow_ttl: Duration,
    /// How long a sign-in lasts however often it is refreshed: then the person signs in again.
    pub session_ttl: Duration,
    /// How often each instance reads the revocations the others made from the database (with
    /// Redis they arrive at once; this is the fallback).
    pub revocation_poll: Duration,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitSettings {
    /// The largest request body accepted by the OAuth endpoints.
    pub max_body_bytes: usize,
    /// The largest request body accepted by the MCP endpoints the gateway serves itself.
    pub max_mcp_body_bytes: usize,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogSettings {
    /// `text` or `json`.
    pub format: LogFormat,
    /// A `tracing` filter such as `info,portcullis=debug` (`RUST_LOG` wins when set).
    pub filter: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

/// The settings as written, before they are parsed.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSettings {
    bind: SocketAddr,
    #[serde(default)]
    public_base_url: Option<Url>,
    database_url: String,
    #[serde(default)]
    redis_url: Option<String>,
    #[serde(default = "default_redis_prefix")]
    redis_prefix: String,
    #[serde(default, deserialize_with = "comma_list")]
    fernet_keys: Vec<SecretString>,
    dev_key_file: PathBuf,
    tokens: RawTokens,
    limits: LimitSettings,
    log: LogSettings,
    providers: Vec<providers::RawProvider>,
    #[serde(default)]
    roles: std::collections::BTreeMap<String, access::RawRole>,
    #[serde(default)]
    default_role: Option<String>,
    #[serde(default)]
    grant: GrantMode,
    #[serde(default)]
    trusted_issuers: Vec<issuers::RawIssuer>,
    #[serde(default)]
    backends: Vec<backends::RawBackend>,
    gateway: backends::RawGateway,
    #[serde(default)]
    cimd: clients::RawCimd,
    #[serde(default)]
    consent: clients::RawConsent,
    #[serde(default)]
    audit: RawAudit,
    #[serde(default)]
    rate_limits: rate_limits::RawRateLimits,
    #[serde(default)]
    clients: clients::RawClients,
    #[serde(default)]
    metrics: telemetry::RawMetrics,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTokens {
    access_ttl_secs: u64,
    refresh_ttl_secs: u64,
    refresh_grace_secs: u64,
    code_ttl_secs: u64,
    flow_ttl_secs: u64,
    session_ttl_secs: u64,
    #[serde(default = "default_revocation_poll_secs")]
    revocation_poll_secs: u64,
}

fn default_revocation_poll_secs() -> u64 {
    5
}

fn default_redis_prefix() -> String {
    "portcullis".to_owned()
}

/// Accepts `"k1,k2"` (from the environment) as well as `["k1", "k2"]` (from TOML).
fn comma_list<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<SecretString>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(String),
        Many(Vec<String>),
    }
    let items = match OneOrMany::deserialize(deserializer)? {
        OneOrMany::One(joined) => joined.split(',').map(str::to_owned).collect(),
        OneOrMany::Many(items) => items,
    };
    Ok(items
        .into_iter()
        .map(|item| item.trim().to_owned())
        .filter(|item| !item.is_empty())
        .map(SecretString::from)
        .collect())
}

/// The embedded defaults: SQLite in the working directory, loopback, the development provider.
fn defaults() -> serde_json::Value {
    serde_json::json!({
        "bind": "127.0.0.1:8080",
        "database_url": "sqlite:portcullis.db",
        "dev_key_file": "portcullis.dev-key",
        "tokens": RawTokens {
            access_ttl_secs: 3600,
            refresh_ttl_secs: 30 * 24 * 3600,
            refresh_grace_secs: 30,
            code_ttl_secs: 60,
            flow_ttl_secs: 600,
            session_ttl_secs: 30 * 24 * 3600,
            revocation_poll_secs: default_revocation_poll_secs(),
        },
        "limits": LimitSettings { max_body_bytes: 64 * 1024, max_mcp_body_bytes: 4 * 1024 * 1024 },
        "log": LogSettings { format: LogFormat::Text, filter: "info".into() },
        "gateway": backends::RawGateway::default(),
        "providers": [{ "id": "dev", "kind": "dev", "display_name": "Development sign-in" }],
    })
}

impl Settings {
    /// Defaults, then `path` (or `./portcullis.toml` when present), then the environment.
    pub fn load(path: Option<&Path>) -> Result<Self, ConfigError> {
        let mut figment = Figment::from(Serialized::defaults(defaults()));
        match path {
            Some(path) => {
                if !path.is_file() {
                    return Err(ConfigError::Parse(format!(
                        "configuration file {} does not exist",
                        path.display()
                    )));
                }
                figment = figment.merge(Toml::file_exact(path));
            }
            None if Path::new(DEFAULT_CONFIG_FILE).is_file() => {
                figment = figment.merge(Toml::file_exact(DEFAULT_CONFIG_FILE));
            }
            None => {}
        }
        let figment = figment
            .merge(Env::raw().only(&["DATABASE_URL", "REDIS_URL", "PUBLIC_BASE_URL"]))
            .merge(Env::prefixed("PORTCULLIS_").split("__"));
        Self::extract(figment)
    }

    /// Defaults overlaid with a TOML document only (no file lookup, no environment): for tests
    /// and tools that build a configuration themselves.
    pub fn from_toml(toml: &str) -> Result<Self, ConfigError> {
        Self::extract(Figment::from(Serialized::defaults(defaults())).merge(Toml::string(toml)))
    }

    fn extract(figment: Figment) -> Result<Self, ConfigError> {
        let raw: RawSettings = figment.extract().map_err(|errors| {
            ConfigError::Parse(
                errors
                    .into_iter()
                    .map(|e| e.to_string())
                    .collect::<Vec<_>>()
                    .join("; "),
            )
        })?;
        Self::parse(raw)
    }

    fn parse(raw: RawSettings) -> Result<Self, ConfigError> {
        if let Some(url) = &raw.public_base_url {
            validate_public_url(url)?;
        }
        if !raw.database_url.starts_with("sqlite:")
            && !raw.database_url.starts_with("postgres://")
            && !raw.database_url.starts_with("postgresql://")
        {
            return Err(ConfigError::invalid(
                "database_url",
                "must start with sqlite: or postgres:// (DATABASE_URL)",
            ));
        }
        let redis_url = raw
            .redis_url
            .as_deref()
            .map(Url::parse)
            .transpose()
            .map_err(|e| {
                ConfigError::invalid("redis_url", format!("not a URL: {e} (REDIS_URL)"))
            })?;
        let prefix = &raw.redis_prefix;
        if prefix.is_empty()
            || prefix.len() > 64
            || !prefix
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        {
            return Err(ConfigError::invalid(
                "redis_prefix",
                "use 1 to 64 letters, digits, `_` or `-`",
            ));
        }
        let t = &raw.tokens;
        let tokens = TokenSettings {
            access_ttl: positive_seconds("tokens.access_ttl_secs", t.access_ttl_secs)?,
            refresh_ttl: positive_seconds("tokens.refresh_ttl_secs", t.refresh_ttl_secs)?,
            refresh_grace: Duration::from_secs(t.refresh_grace_secs),
            code_ttl: positive_seconds("tokens.code_ttl_secs", t.code_ttl_secs)?,
            flow_ttl: positive_seconds("tokens.flow_ttl_secs", t.flow_ttl_secs)?,
            session_ttl: positive_seconds("tokens.session_ttl_secs", t.session_ttl_secs)?,
            revocation_poll: positive_seconds(
                "tokens.revocation_poll_secs",
                t.revocation_poll_secs,
            )?,
        };
        let access = access::parse(raw.roles, raw.default_role, raw.grant)?;
        let providers = providers::parse(
            raw.providers,
            raw.bind,
            raw.public_base_url.as_ref(),
            &access,
        )?;
        let trusted_issuers = issuers::parse(raw.trusted_issuers, &access)?;
        let gateway = backends::parse_gateway(raw.gateway)?;
        let backends = backends::parse(raw.backends, &gateway)?;
        let cimd = clients::parse_cimd(raw.cimd, raw.bind, raw.public_base_url.as_ref())?;
        let consent = clients::parse_consent(raw.consent)?;
        let audit = parse_audit(raw.audit)?;
        let rate_limits = rate_limits::parse_rate_limits(raw.rate_limits)?;
        let clients = clients::parse_clients(raw.clients)?;
        let metrics = telemetry::parse_metrics(raw.metrics)?;
        let settings = Settings {
            bind: raw.bind,
            public_base_url: raw.public_base_url,
            database_url: raw.database_url,
            redis_url,
            redis_prefix: raw.redis_prefix,
            fernet_keys: raw.fernet_keys,
            dev_key_file: raw.dev_key_file,
            tokens,
            limits: raw.limits,
            log: raw.log,
            providers,
            access,
            trusted_issuers,
            backends,
            gateway,
            cimd,
            consent,
            audit,
            rate_limits,
            clients,
            metrics,
        };
        if settings.fernet_keys.is_empty() && !settings.dev_only() {
            return Err(ConfigError::invalid(
                "fernet_keys",
                "required when a real provider is configured: set PORTCULLIS_FERNET_KEYS to one or more comma-separated Fernet keys (portcullis keys generate prints one)",
            ));
        }
        Ok(settings)
    }

    /// The public URL as configured, or the one derived from the bind address.
    pub fn public_url(&self) -> String {
        match &self.public_base_url {
            Some(url) => url.to_string(),
            None => format!("http://{}/", self.bind),
        }
    }

    /// The providers whose grants end with the upstream session (`require_upstream_session`).
    pub fn session_bound_providers(&self) -> std::collections::HashSet<String> {
        self.providers
            .iter()
            .filter(|p| p.require_upstream_session)
            .map(|p| p.id.clone())
            .collect()
    }

    /// True when only the development provider is configured (a generated Fernet key is fine).
    pub fn dev_only(&self) -> bool {
        self.providers.iter().all(ProviderSettings::is_dev)
    }
}

/// A configured number of seconds that must not be zero.
pub(crate) fn positive_seconds(key: &str, secs: u64) -> Result<Duration, ConfigError> {
    if secs == 0 {
        return Err(ConfigError::invalid(key, "must be greater than zero"));
    }
    Ok(Duration::from_secs(secs))
}

/// An id that appears in URLs (`/callback/{id}`, `/mcp/{id}`): short, lower-case, unique.
pub(crate) fn check_identifier<'a>(
    key: &str,
    id: &'a str,
    seen: &mut std::collections::HashSet<&'a str>,
) -> Result<(), ConfigError> {
    let valid = !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
    if !valid {
        return Err(ConfigError::invalid(key, "use 1-64 of a-z, 0-9, - and _"));
    }
    if !seen.insert(id) {
        return Err(ConfigError::invalid(key, format!("`{id}` is used twice")));
    }
    Ok(())
}

/// A configured duration in chrono's terms (saturating: no setting is that large).
pub fn chrono_duration(duration: Duration) -> chrono::Duration {
    chrono::Duration::from_std(duration).unwrap_or(chrono::Duration::MAX)
}

/// True for `localhost`, `127.0.0.0/8` and `[::1]` hosts.
pub fn is_loopback_url(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(domain)) => domain.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

fn validate_public_url(url: &Url) -> Result<(), ConfigError> {
    let key = "public_base_url";
    if url.scheme() != "https" && !(url.scheme() == "http" && is_loopback_url(url)) {
        return Err(ConfigError::invalid(
            key,
            "must be https (http only on a loopback host) (PUBLIC_BASE_URL)",
        ));
    }
    if url.query().is_some() || url.fragment().is_some() || url.cannot_be_a_base() {
        return Err(ConfigError::invalid(
            key,
            "must not carry a query or fragment (PUBLIC_BASE_URL)",
        ));
    }
    Ok(())
}

/// Settings read from TOML and the environment: defaults, precedence, refusals.
#[cfg(test)]
mod tests;
