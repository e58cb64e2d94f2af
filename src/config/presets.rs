//! The identity providers people run, each a few lines of configuration: where its issuer is,
//! and the quirks Portcullis must know about it.
//!
//! | kind | settings | quirks |
//! |---|---|---|
//! | `google` | `hosted_domain` | only accounts of that Workspace domain (`hd`, checked in the id_token) |
//! | `microsoft` | `tenant` | subject is `tid:oid`; the `email` claim is never taken as verified |
//! | `okta` | `domain`, `authorization_server` | |
//! | `auth0` | `domain`, `audience` | `audience` sent with the authorization request |
//! | `keycloak` | `base_url`, `realm` | |
//! | `gitlab` | `base_url` | |
//! | `cognito` | `region`, `user_pool_id` | |
//!
//! Every preset accepts `issuer` too, which then wins (sovereign clouds, tests).

use url::Url;

use super::ConfigError;

/// What a provider does differently from plain OpenID Connect (the default: nothing).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Quirks {
    /// Added to the authorization request (`hd`, `audience`).
    pub extra_params: Vec<(String, String)>,
    pub subject: SubjectFrom,
    /// False when the provider's `email_verified` cannot be relied on.
    pub trust_email_verified: bool,
    /// Only accounts whose id_token carries `hd` equal to this.
    pub hosted_domain: Option<String>,
}

impl Default for Quirks {
    fn default() -> Self {
        Self {
            extra_params: Vec::new(),
            subject: SubjectFrom::Sub,
            trust_email_verified: true,
            hosted_domain: None,
        }
    }
}

/// Which claims make the stable subject.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum SubjectFrom {
    /// `sub`.
    #[default]
    Sub,
    /// `tid:oid`: Microsoft's `sub` differs per application, `oid` is the person in a tenant.
    TenantObject,
}

/// A preset's own settings, as written.
#[derive(Debug, Clone, Default)]
pub(super) struct PresetFields {
    pub tenant: Option<String>,
    pub domain: Option<String>,
    pub base_url: Option<Url>,
    pub realm: Option<String>,
    pub region: Option<String>,
    pub user_pool_id: Option<String>,
    pub hosted_domain: Option<String>,
    pub audience: Option<String>,
    pub authorization_server: Option<String>,
}

/// One preset: its name in `kind`, its display name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Preset {
    Google,
    Microsoft,
    Okta,
    Auth0,
    Keycloak,
    Gitlab,
    Cognito,
}

impl Preset {
    pub fn display_name(self) -> &'static str {
        match self {
            Self::Google => "Google",
            Self::Microsoft => "Microsoft",
            Self::Okta => "Okta",
            Self::Auth0 => "Auth0",
            Self::Keycloak => "Keycloak",
            Self::Gitlab => "GitLab",
            Self::Cognito => "Amazon Cognito",
        }
    }

    fn kind(self) -> &'static str {
        match self {
            Self::Google => "google",
            Self::Microsoft => "microsoft",
            Self::Okta => "okta",
            Self::Auth0 => "auth0",
            Self::Keycloak => "keycloak",
            Self::Gitlab => "gitlab",
            Self::Cognito => "cognito",
        }
    }

    /// The issuer (unless `issuer` was given) and the quirks.
    pub fn resolve(
        self,
        key: &dyn Fn(&str) -> String,
        issuer: Option<Url>,
        fields: PresetFields,
    ) -> Result<(Url, Quirks), ConfigError> {
        let kind = self.kind();
        let need = |value: Option<String>, field: &str| {
            value.filter(|v| !v.trim().is_empty()).ok_or_else(|| {
                ConfigError::invalid(key(field), format!("required for kind = \"{kind}\""))
            })
        };
        let mut quirks = Quirks::default();
        let derived = match self {
            Self::Google => {
                if let Some(domain) = fields.hosted_domain {
                    let domain = domain.trim().to_lowercase();
                    quirks.extra_params.push(("hd".into(), domain.clone()));
                    quirks.hosted_domain = Some(domain);
                }
                "https://accounts.google.com".to_owned()
            }
            Self::Microsoft => {
                quirks.subject = SubjectFrom::TenantObject;
                // Entra lets users and admins set `email` to anything ("nOAuth").
                quirks.trust_email_verified = false;
                let tenant = need(fields.tenant, "tenant")?;
                format!("https://login.microsoftonline.com/{tenant}/v2.0")
            }
            Self::Okta => {
                let domain = need(fields.domain, "domain")?;
                match fields.authorization_server {
                    Some(server) => format!("https://{domain}/oauth2/{server}"),
                    None => format!("https://{domain}"),
                }
            }
            Self::Auth0 => {
                if let Some(audience) = fields.audience {
                    quirks.extra_params.push(("audience".into(), audience));
                }
                format!("https://{}/", need(fields.domain, "domain")?)
            }
            Self::Keycloak => {
                let base = fields.base_url.ok_or_else(|| {
                    ConfigError::invalid(key("base_url"), "required for kind = \"keycloak\"")
                })?;
                let realm = need(fields.realm, "realm")?;
                format!("{}/realms/{realm}", base.as_str().trim_end_matches('/'))
            }
            Self::Gitlab => fields.base_url.map_or_else(
                || "https://gitlab.com".to_owned(),
                |u| u.as_str().trim_end_matches('/').to_owned(),
            ),
            Self::Cognito => {
                let region = need(fields.region, "region")?;
                let pool = need(fields.user_pool_id, "user_pool_id")?;
                format!("https://cognito-idp.{region}.amazonaws.com/{pool}")
            }
        };
        let issuer = match issuer {
            Some(issuer) => issuer,
            None => Url::parse(&derived).map_err(|e| {
                ConfigError::invalid(
                    key("kind"),
                    format!("the issuer {derived} is not a URL: {e}"),
                )
            })?,
        };
        Ok((issuer, quirks))
    }
}
