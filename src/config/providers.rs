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
use super::{ConfigError, check_identifier, is_loopback_url};

/// One upstream identity provider.
#[derive(Debug, Clone)]
pub struct ProviderSettings {
    /// Appears in `/callback/{id}`: lower-case letters, digits, `-` and `_`.
    pub id: String,
    /// Shown on the provider-choice page.
    pub display_name: String,
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
pub enum ProviderKind {
    /// The local development sign-in form (loopback only).
    Dev,
    /// Any OpenID Connect issuer, found through discovery.
    Oidc(OidcSettings),
}

/// An OpenID Connect provider's client registration.
#[derive(Debug, Clone)]
pub struct OidcSettings {
    pub issuer: Url,
    pub client_id: String,
    pub client_secret: SecretString,
    /// What Portcullis asks the provider for; always includes `openid`.
    pub scopes: Vec<String>,
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
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
enum RawKind {
    Dev,
    Oidc,
}

impl ProviderSettings {
    pub fn is_dev(&self) -> bool {
        matches!(self.kind, ProviderKind::Dev)
    }
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
    for (index, provider) in raw.into_iter().enumerate() {
        let key = |field: &str| format!("providers[{index}].{field}");
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
            RawKind::Oidc => {
                let issuer = provider.issuer.ok_or_else(|| {
                    ConfigError::invalid(key("issuer"), "required for kind = \"oidc\"")
                })?;
                if issuer.scheme() != "https" && !is_loopback_url(&issuer) {
                    return Err(ConfigError::invalid(
                        key("issuer"),
                        "must be https (or http on loopback)",
                    ));
                }
                let client_id =
                    provider
                        .client_id
                        .filter(|id| !id.is_empty())
                        .ok_or_else(|| {
                            ConfigError::invalid(key("client_id"), "required for kind = \"oidc\"")
                        })?;
                let client_secret = provider.client_secret.ok_or_else(|| {
                    ConfigError::invalid(key("client_secret"), "required for kind = \"oidc\"")
                })?;
                let scopes = provider
                    .scopes
                    .unwrap_or_else(|| ["openid", "email", "profile"].map(String::from).to_vec());
                if !scopes.iter().any(|s| s == "openid") {
                    return Err(ConfigError::invalid(key("scopes"), "must include openid"));
                }
                ProviderKind::Oidc(OidcSettings {
                    issuer,
                    client_id,
                    client_secret,
                    scopes,
                })
            }
        };
        for scope in provider.grant_scopes.iter().flatten() {
            check_scope_pattern(&key("grant_scopes"), scope)?;
        }
        let base = format!("providers[{index}]");
        providers.push(ProviderSettings {
            display_name: provider.display_name.unwrap_or_else(|| provider.id.clone()),
            grant_scopes: provider.grant_scopes,
            admission: parse_admission(
                &base,
                provider.users,
                provider.link_by_email,
                provider.allow,
            )?,
            claim_roles: parse_claim_roles(&base, provider.claim_roles, access)?,
            require_upstream_session: provider.require_upstream_session,
            id: provider.id,
            kind,
        });
    }
    Ok(providers)
}
