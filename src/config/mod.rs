//! Typed settings: embedded defaults, then a TOML file, then the environment.
//!
//! Infrastructure settings use their conventional bare names (`DATABASE_URL`, `REDIS_URL`,
//! `PUBLIC_BASE_URL`); everything else is `PORTCULLIS_…` with `__` for nesting
//! (`PORTCULLIS_TOKENS__ACCESS_TTL_SECS=600`). Unknown keys, malformed values and missing
//! secrets fail at start-up with a message naming the key.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use secrecy::SecretString;
use serde::{Deserialize, Deserializer, Serialize};
use url::Url;

mod backends;

pub use backends::{BackendSettings, ForwardMode, GatewaySettings};

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
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// Where to listen (`PORTCULLIS_BIND`).
    pub bind: SocketAddr,
    /// The URL clients reach Portcullis at, possibly with a path prefix (`PUBLIC_BASE_URL`).
    /// Defaults to `http://{bind}`. Every advertised URL is built from it.
    #[serde(default)]
    pub public_base_url: Option<Url>,
    /// `sqlite:…` or `postgres://…` (`DATABASE_URL`).
    pub database_url: String,
    /// Optional Redis (`REDIS_URL`).
    #[serde(default)]
    pub redis_url: Option<String>,
    /// Fernet keys, comma-separated in `PORTCULLIS_FERNET_KEYS`: the first encrypts, all decrypt.
    #[serde(default, deserialize_with = "comma_list")]
    pub fernet_keys: Vec<SecretString>,
    /// Where the generated Fernet key is kept when only the development provider is configured.
    pub dev_key_file: PathBuf,
    pub tokens: TokenSettings,
    pub limits: LimitSettings,
    pub log: LogSettings,
    pub providers: Vec<ProviderSettings>,
    /// The MCP servers behind the gateway.
    #[serde(default)]
    pub backends: Vec<BackendSettings>,
    pub gateway: GatewaySettings,
}

/// Lifetimes of what Portcullis issues.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenSettings {
    pub access_ttl_secs: u64,
    pub refresh_ttl_secs: u64,
    /// How long a rotated refresh token still answers a concurrent duplicate refresh.
    pub refresh_grace_secs: u64,
    pub code_ttl_secs: u64,
    /// How long a person has from `/authorize` to finishing upstream sign-in.
    pub flow_ttl_secs: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitSettings {
    /// The largest request body accepted by the OAuth endpoints.
    pub max_body_bytes: usize,
    /// The largest request body accepted by `/mcp`.
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

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ProviderKind {
    /// The local development sign-in form (loopback only).
    Dev,
    /// Any OpenID Connect issuer, found through discovery.
    Oidc,
}

/// One upstream identity provider (`[[providers]]`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProviderSettings {
    /// Appears in `/callback/{id}`: lower-case letters, digits, `-` and `_`.
    pub id: String,
    pub kind: ProviderKind,
    /// Shown on the provider-choice page; defaults to the id.
    #[serde(default)]
    pub display_name: Option<String>,
    #[serde(default)]
    pub issuer: Option<Url>,
    #[serde(default)]
    pub client_id: Option<String>,
    #[serde(default)]
    pub client_secret: Option<SecretString>,
    #[serde(default = "default_upstream_scopes")]
    pub scopes: Vec<String>,
    /// The most a person signing in here may be granted (`domain:resource:action` patterns with
    /// `*`). Defaults to everything for the development provider and nothing for the others.
    #[serde(default)]
    pub grant_scopes: Option<Vec<String>>,
}

impl ProviderSettings {
    /// The scope patterns a sign-in through this provider may receive.
    pub fn may_grant(&self) -> Vec<String> {
        match (&self.grant_scopes, self.kind) {
            (Some(patterns), _) => patterns.clone(),
            (None, ProviderKind::Dev) => vec!["*".into()],
            (None, ProviderKind::Oidc) => Vec::new(),
        }
    }
}

fn default_upstream_scopes() -> Vec<String> {
    ["openid", "email", "profile"].map(String::from).to_vec()
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
        "tokens": TokenSettings {
            access_ttl_secs: 3600,
            refresh_ttl_secs: 30 * 24 * 3600,
            refresh_grace_secs: 30,
            code_ttl_secs: 60,
            flow_ttl_secs: 600,
        },
        "limits": LimitSettings { max_body_bytes: 64 * 1024, max_mcp_body_bytes: 4 * 1024 * 1024 },
        "log": LogSettings { format: LogFormat::Text, filter: "info".into() },
        "gateway": GatewaySettings::default(),
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
        let settings: Settings = figment.extract().map_err(|errors| {
            ConfigError::Parse(
                errors
                    .into_iter()
                    .map(|e| e.to_string())
                    .collect::<Vec<_>>()
                    .join("; "),
            )
        })?;
        settings.validate()?;
        Ok(settings)
    }

    /// The public URL, defaulting to `http://{bind}`.
    pub fn public_url(&self) -> Url {
        match &self.public_base_url {
            Some(url) => url.clone(),
            None => Url::parse(&format!("http://{}", self.bind)).unwrap_or_else(|_| {
                // `SocketAddr` always formats as a valid authority.
                unreachable!("a socket address is a valid URL authority")
            }),
        }
    }

    /// True when only the development provider is configured (a generated Fernet key is fine).
    pub fn dev_only(&self) -> bool {
        self.providers.iter().all(|p| p.kind == ProviderKind::Dev)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        if let Some(url) = &self.public_base_url {
            validate_public_url(url)?;
        }
        if !self.database_url.starts_with("sqlite:")
            && !self.database_url.starts_with("postgres://")
            && !self.database_url.starts_with("postgresql://")
        {
            return Err(ConfigError::invalid(
                "database_url",
                "must start with sqlite: or postgres:// (DATABASE_URL)",
            ));
        }
        if let Some(redis) = &self.redis_url {
            Url::parse(redis).map_err(|e| {
                ConfigError::invalid("redis_url", format!("not a URL: {e} (REDIS_URL)"))
            })?;
        }
        let tokens = &self.tokens;
        for (key, value) in [
            ("tokens.access_ttl_secs", tokens.access_ttl_secs),
            ("tokens.refresh_ttl_secs", tokens.refresh_ttl_secs),
            ("tokens.code_ttl_secs", tokens.code_ttl_secs),
            ("tokens.flow_ttl_secs", tokens.flow_ttl_secs),
        ] {
            if value == 0 {
                return Err(ConfigError::invalid(key, "must be greater than zero"));
            }
        }
        if self.providers.is_empty() {
            return Err(ConfigError::invalid(
                "providers",
                "at least one provider is required",
            ));
        }
        let mut seen = std::collections::HashSet::new();
        for (index, provider) in self.providers.iter().enumerate() {
            let key = |field: &str| format!("providers[{index}].{field}");
            check_identifier(&key("id"), &provider.id, &mut seen)?;
            match provider.kind {
                ProviderKind::Dev => {
                    if !self.bind.ip().is_loopback() {
                        return Err(ConfigError::invalid(
                            key("kind"),
                            format!(
                                "the development provider signs anyone in and runs only on a loopback address, but bind is {}",
                                self.bind
                            ),
                        ));
                    }
                }
                ProviderKind::Oidc => {
                    let issuer = provider.issuer.as_ref().ok_or_else(|| {
                        ConfigError::invalid(key("issuer"), "required for kind = \"oidc\"")
                    })?;
                    if issuer.scheme() != "https" && !is_loopback_url(issuer) {
                        return Err(ConfigError::invalid(
                            key("issuer"),
                            "must be https (or http on loopback)",
                        ));
                    }
                    if provider.client_id.as_deref().is_none_or(str::is_empty) {
                        return Err(ConfigError::invalid(
                            key("client_id"),
                            "required for kind = \"oidc\"",
                        ));
                    }
                    if provider.client_secret.is_none() {
                        return Err(ConfigError::invalid(
                            key("client_secret"),
                            "required for kind = \"oidc\"",
                        ));
                    }
                    if !provider.scopes.iter().any(|s| s == "openid") {
                        return Err(ConfigError::invalid(key("scopes"), "must include openid"));
                    }
                }
            }
        }
        backends::validate(&self.backends, &self.gateway)?;
        if self.fernet_keys.is_empty() && !self.dev_only() {
            return Err(ConfigError::invalid(
                "fernet_keys",
                "required when a real provider is configured: set PORTCULLIS_FERNET_KEYS to one or more comma-separated Fernet keys (portcullis keys generate prints one)",
            ));
        }
        Ok(())
    }
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

/// A configured number of seconds as a duration (saturating: no setting is that large).
pub fn seconds(secs: u64) -> chrono::Duration {
    chrono::Duration::seconds(i64::try_from(secs).unwrap_or(i64::MAX / 1000))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_defaults_are_sqlite_loopback_and_the_dev_provider() {
        let settings = Settings::from_toml("").unwrap();
        assert_eq!(settings.bind.to_string(), "127.0.0.1:8080");
        assert_eq!(settings.public_url().as_str(), "http://127.0.0.1:8080/");
        assert_eq!(settings.database_url, "sqlite:portcullis.db");
        assert_eq!(settings.providers.len(), 1);
        assert_eq!(settings.providers[0].kind, ProviderKind::Dev);
        assert!(settings.dev_only());
    }

    #[test]
    fn unknown_keys_are_refused_by_name() {
        let err = Settings::from_toml("bnid = \"127.0.0.1:1\"")
            .unwrap_err()
            .to_string();
        assert!(err.contains("bnid"), "{err}");
        let err = Settings::from_toml("[tokens]\naccess_ttl = 5")
            .unwrap_err()
            .to_string();
        assert!(err.contains("access_ttl"), "{err}");
    }

    #[test]
    fn an_oidc_provider_without_a_secret_names_the_key() {
        let toml = r#"
            fernet_keys = ["x"]
            [[providers]]
            id = "corp"
            kind = "oidc"
            issuer = "https://idp.example.com"
            client_id = "abc"
        "#;
        let err = Settings::from_toml(toml).unwrap_err().to_string();
        assert!(err.contains("providers[0].client_secret"), "{err}");
    }

    #[test]
    fn a_real_provider_requires_fernet_keys() {
        let toml = r#"
            [[providers]]
            id = "corp"
            kind = "oidc"
            issuer = "https://idp.example.com"
            client_id = "abc"
            client_secret = "s"
        "#;
        let err = Settings::from_toml(toml).unwrap_err().to_string();
        assert!(
            err.contains("fernet_keys") && err.contains("PORTCULLIS_FERNET_KEYS"),
            "{err}"
        );
    }

    #[test]
    fn malformed_urls_are_refused_by_name() {
        let err = Settings::from_toml("public_base_url = \"not a url\"")
            .unwrap_err()
            .to_string();
        assert!(err.contains("public_base_url"), "{err}");
        let err = Settings::from_toml("public_base_url = \"http://example.com\"")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("public_base_url") && err.contains("https"),
            "{err}"
        );
    }

    #[test]
    fn the_dev_provider_refuses_a_non_loopback_bind() {
        let err = Settings::from_toml("bind = \"0.0.0.0:8080\"")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("providers[0].kind") && err.contains("loopback"),
            "{err}"
        );
    }

    #[test]
    fn fernet_keys_accept_a_comma_separated_string() {
        let settings = Settings::from_toml("fernet_keys = \"a, b,\"").unwrap();
        assert_eq!(settings.fernet_keys.len(), 2);
    }

    #[test]
    fn a_public_url_with_a_path_prefix_is_kept() {
        let settings =
            Settings::from_toml("public_base_url = \"https://example.com/auth\"").unwrap();
        assert_eq!(settings.public_url().as_str(), "https://example.com/auth");
    }
}
