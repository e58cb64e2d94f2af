//! The upstream identity providers (`[[providers]]`), each parsed into its kind with the fields
//! that kind needs.

use std::collections::{BTreeMap, HashSet};

use secrecy::SecretString;
use serde::Deserialize;
use url::Url;

use super::access::{
    AccessSettings, Admission, ClaimRoles, RawAllow, UserAdmission, check_scope_pattern,
    parse_admission, parse_claim_roles,
};
use super::presets::{Preset, PresetFields, Quirks};
use super::{ConfigError, check_identifier, is_loopback_url};

/// One upstream identity provider.
#[derive(Debug, Clone)]
pub struct ProviderSettings {
    /// Appears in `/callback/{id}`: lower-case letters, digits, `-` and `_`.
    pub id: String,
    /// Shown on the provider-choice page.
    pub display_name: String,
    /// Its logo on the provider page, as a `data:` URL read from the `logo` file at start-up.
    pub logo: Option<String>,
    /// The most a person signing in here may be granted (`domain:resource:action` patterns
    /// with `*`). Without roles it is what everyone admitted gets; with roles, a cap on them
    /// (`None`: no cap).
    pub grant_scopes: Option<Vec<String>>,
    /// Who may sign in here.
    pub admission: Admission,
    /// Roles given by the provider's claims.
    pub claim_roles: ClaimRoles,
    /// A grant whose upstream token has expired and cannot be refreshed ends: a person removed
    /// at the provider loses access at their next refresh.
    pub require_upstream_session: bool,
    pub kind: ProviderKind,
}

/// What kind of provider, with what that kind needs.
#[derive(Debug, Clone)]
// Parsed once at start-up: the size of the variants does not matter.
#[allow(clippy::large_enum_variant)]
pub enum ProviderKind {
    /// The local development sign-in form (loopback only).
    Dev,
    /// Any OpenID Connect issuer, found through discovery.
    Oidc(OidcSettings),
    /// GitHub or GitHub Enterprise Server (OAuth 2).
    Github(GithubSettings),
}

/// A GitHub OAuth app.
#[derive(Debug, Clone)]
pub struct GithubSettings {
    /// `https://github.com/`, or a GitHub Enterprise Server.
    pub base_url: Url,
    /// The REST API: `https://api.github.com/`, or `{base_url}/api/v3/`.
    pub api_url: Url,
    pub client_id: String,
    pub client_secret: SecretString,
    /// OAuth scopes asked for (`read:user user:email read:org` by default).
    pub scopes: Vec<String>,
}

/// An OpenID Connect provider's client registration.
#[derive(Debug, Clone)]
pub struct OidcSettings {
    pub issuer: Url,
    pub client_id: String,
    pub client_secret: SecretString,
    /// What Portcullis asks the provider for; always includes `openid`.
    pub scopes: Vec<String>,
    /// What a preset knows about this provider (none for plain `oidc`).
    pub quirks: Quirks,
}

/// `[[providers]]` as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawProvider {
    id: String,
    kind: RawKind,
    #[serde(default)]
    display_name: Option<String>,
    #[serde(default)]
    logo: Option<std::path::PathBuf>,
    #[serde(default)]
    issuer: Option<Url>,
    #[serde(default)]
    client_id: Option<String>,
    #[serde(default)]
    client_secret: Option<SecretString>,
    #[serde(default)]
    scopes: Option<Vec<String>>,
    #[serde(default)]
    grant_scopes: Option<Vec<String>>,
    #[serde(default)]
    users: UserAdmission,
    #[serde(default)]
    link_by_email: bool,
    #[serde(default)]
    allow: RawAllow,
    #[serde(default)]
    claim_roles: BTreeMap<String, BTreeMap<String, String>>,
    #[serde(default)]
    require_upstream_session: bool,
    #[serde(default)]
    tenant: Option<String>,
    #[serde(default)]
    domain: Option<String>,
    #[serde(default)]
    base_url: Option<Url>,
    #[serde(default)]
    realm: Option<String>,
    #[serde(default)]
    region: Option<String>,
    #[serde(default)]
    user_pool_id: Option<String>,
    #[serde(default)]
    hosted_domain: Option<String>,
    #[serde(default)]
    audience: Option<String>,
    #[serde(default)]
    authorization_server: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
enum RawKind {
    Dev,
    Oidc,
    Google,
    Microsoft,
    Okta,
    Auth0,
    Keycloak,
    Gitlab,
    Cognito,
    Github,
}

impl RawKind {
    fn preset(self) -> Option<Preset> {
        Some(match self {
            Self::Dev | Self::Oidc | Self::Github => return None,
            Self::Google => Preset::Google,
            Self::Microsoft => Preset::Microsoft,
            Self::Okta => Preset::Okta,
            Self::Auth0 => Preset::Auth0,
            Self::Keycloak => Preset::Keycloak,
            Self::Gitlab => Preset::Gitlab,
            Self::Cognito => Preset::Cognito,
        })
    }
}

impl ProviderSettings {
    pub fn is_dev(&self) -> bool {
        matches!(self.kind, ProviderKind::Dev)
    }
}

/// The largest logo file read.
const MAX_LOGO_BYTES: usize = 64 * 1024;

/// A logo file (SVG or PNG) as a `data:` URL, which the pages' policy allows for images.
fn read_logo(key: &str, path: &std::path::Path) -> Result<String, ConfigError> {
    use base64::Engine as _;
    let media = match path.extension().and_then(|e| e.to_str()) {
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        _ => return Err(ConfigError::invalid(key, "must be an .svg or .png file")),
    };
    let bytes = std::fs::read(path).map_err(|e| {
        ConfigError::invalid(key, format!("{} cannot be read: {e}", path.display()))
    })?;
    if bytes.len() > MAX_LOGO_BYTES {
        return Err(ConfigError::invalid(key, "must be at most 64 KiB"));
    }
    let data = base64::engine::general_purpose::STANDARD.encode(bytes);
    Ok(format!("data:{media};base64,{data}"))
}

/// `url` ending with `/`, so that joining a relative path keeps its path.
fn with_slash(mut url: Url) -> Url {
    if !url.path().ends_with('/') {
        let path = format!("{}/", url.path());
        url.set_path(&path);
    }
    url
}

/// Parses the providers. The development provider signs anyone in as anyone, so it runs only
/// alone, bound to loopback and published at a loopback URL: not behind a reverse proxy, and
/// not beside a real provider.
pub(super) fn parse(
    raw: Vec<RawProvider>,
    bind: std::net::SocketAddr,
    public_base_url: Option<&Url>,
    access: &AccessSettings,
) -> Result<Vec<ProviderSettings>, ConfigError> {
    if raw.is_empty() {
        return Err(ConfigError::invalid(
            "providers",
            "at least one provider is required",
        ));
    }
    let mut seen = HashSet::new();
    for (index, provider) in raw.iter().enumerate() {
        check_identifier(&format!("providers[{index}].id"), &provider.id, &mut seen)?;
    }
    let raw_count = raw.len();
    let mut providers = Vec::with_capacity(raw.len());
    for (index, mut provider) in raw.into_iter().enumerate() {
        let key = |field: &str| format!("providers[{index}].{field}");
        let mut default_name = None;
        let mut extra_claims = Vec::new();
        let kind = match provider.kind {
            RawKind::Dev => {
                let refusal = if !bind.ip().is_loopback() {
                    Some(format!(
                        "runs only on a loopback address, but bind is {bind}"
                    ))
                } else if let Some(url) = public_base_url.filter(|url| !is_loopback_url(url)) {
                    Some(format!(
                        "runs only at a loopback public URL, but public_base_url is {url}"
                    ))
                } else if raw_count > 1 {
                    Some("runs only as the one provider, but others are configured".to_owned())
                } else {
                    None
                };
                if let Some(refusal) = refusal {
                    return Err(ConfigError::invalid(
                        key("kind"),
                        format!("the development provider signs anyone in as anyone: it {refusal}"),
                    ));
                }
                ProviderKind::Dev
            }
            RawKind::Github => {
                let base_url = provider
                    .base_url
                    .take()
                    .unwrap_or_else(|| Url::parse("https://github.com/").expect("a URL"));
                if base_url.scheme() != "https" && !is_loopback_url(&base_url) {
                    return Err(ConfigError::invalid(
                        key("base_url"),
                        "must be https (or http on loopback)",
                    ));
                }
                let base_url = with_slash(base_url);
                let api_url = if base_url.host_str() == Some("github.com") {
                    Url::parse("https://api.github.com/").expect("a URL")
                } else {
                    base_url.join("api/v3/").map_err(|e| {
                        ConfigError::invalid(key("base_url"), format!("no API below it: {e}"))
                    })?
                };
                default_name = Some("GitHub");
                ProviderKind::Github(GithubSettings {
                    base_url,
                    api_url,
                    client_id: provider
                        .client_id
                        .take()
                        .filter(|id| !id.is_empty())
                        .ok_or_else(|| {
                            ConfigError::invalid(key("client_id"), "required for this kind")
                        })?,
                    client_secret: provider.client_secret.take().ok_or_else(|| {
                        ConfigError::invalid(key("client_secret"), "required for this kind")
                    })?,
                    scopes: provider.scopes.take().unwrap_or_else(|| {
                        ["read:user", "user:email", "read:org"]
                            .map(String::from)
                            .to_vec()
                    }),
                })
            }
            RawKind::Oidc
            | RawKind::Google
            | RawKind::Microsoft
            | RawKind::Okta
            | RawKind::Auth0
            | RawKind::Keycloak
            | RawKind::Gitlab
            | RawKind::Cognito => {
                let (issuer, quirks) = match provider.kind.preset() {
                    Some(preset) => {
                        let fields = PresetFields {
                            tenant: provider.tenant.take(),
                            domain: provider.domain.take(),
                            base_url: provider.base_url.take(),
                            realm: provider.realm.take(),
                            region: provider.region.take(),
                            user_pool_id: provider.user_pool_id.take(),
                            hosted_domain: provider.hosted_domain.take(),
                            audience: provider.audience.take(),
                            authorization_server: provider.authorization_server.take(),
                        };
                        default_name = Some(preset.display_name());
                        preset.resolve(&key, provider.issuer.take(), fields)?
                    }
                    None => {
                        let issuer = provider.issuer.take().ok_or_else(|| {
                            ConfigError::invalid(key("issuer"), "required for kind = \"oidc\"")
                        })?;
                        (issuer, Quirks::default())
                    }
                };
                if issuer.scheme() != "https" && !is_loopback_url(&issuer) {
                    return Err(ConfigError::invalid(
                        key("issuer"),
                        "must be https (or http on loopback)",
                    ));
                }
                let client_id = provider
                    .client_id
                    .take()
                    .filter(|id| !id.is_empty())
                    .ok_or_else(|| {
                        ConfigError::invalid(key("client_id"), "required for this kind")
                    })?;
                let client_secret = provider.client_secret.take().ok_or_else(|| {
                    ConfigError::invalid(key("client_secret"), "required for this kind")
                })?;
                let scopes = provider
                    .scopes
                    .take()
                    .unwrap_or_else(|| ["openid", "email", "profile"].map(String::from).to_vec());
                if !scopes.iter().any(|s| s == "openid") {
                    return Err(ConfigError::invalid(key("scopes"), "must include openid"));
                }
                if let Some(domain) = &quirks.hosted_domain {
                    // Only that Workspace's accounts: the id_token's `hd` must say so.
                    extra_claims.push(("hd".to_owned(), domain.clone()));
                }
                ProviderKind::Oidc(OidcSettings {
                    issuer,
                    client_id,
                    client_secret,
                    scopes,
                    quirks,
                })
            }
        };
        for scope in provider.grant_scopes.iter().flatten() {
            check_scope_pattern(&key("grant_scopes"), scope)?;
        }
        let base = format!("providers[{index}]");
        let mut admission = parse_admission(
            &base,
            provider.users,
            provider.link_by_email,
            provider.allow,
        )?;
        admission.require_claims(extra_claims);
        let logo = provider
            .logo
            .as_deref()
            .map(|path| read_logo(&key("logo"), path))
            .transpose()?;
        providers.push(ProviderSettings {
            logo,
            display_name: provider
                .display_name
                .or_else(|| default_name.map(str::to_owned))
                .unwrap_or_else(|| provider.id.clone()),
            grant_scopes: provider.grant_scopes,
            admission,
            claim_roles: parse_claim_roles(&base, provider.claim_roles, access)?,
            require_upstream_session: provider.require_upstream_session,
            id: provider.id,
            kind,
        });
    }
    Ok(providers)
}
