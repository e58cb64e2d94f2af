//! Who may sign in and what each person may do: `[roles.*]`, `default_role`, `grant`, and each
//! provider's admission rules and claim-to-role mappings, parsed into the types the policy
//! (`crate::access`) evaluates.

use std::collections::{BTreeMap, HashSet};

use serde::Deserialize;

use super::ConfigError;

/// What a sign-in grants.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum GrantMode {
    /// The person's whole entitlement on the resource; a client that asks for less gets less.
    #[default]
    Entitlement,
    /// Only what the client asked for (or the resource's scopes when it asked for none), within
    /// the entitlement: least privilege for clients that handle step-up well.
    Requested,
}

/// One role: a name for a set of scope patterns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Role {
    pub name: String,
    pub scopes: Vec<String>,
    pub description: Option<String>,
}

/// `[roles.*]`, `default_role` and `grant`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AccessSettings {
    /// By name.
    pub roles: BTreeMap<String, Role>,
    /// The role everyone admitted has.
    pub default_role: Option<String>,
    /// The default for every resource; a backend may say otherwise.
    pub grant: GrantMode,
}

impl AccessSettings {
    /// True when roles are in use: entitlements then come from roles (capped by each
    /// provider's `grant_scopes` when it sets them) rather than from `grant_scopes` alone.
    pub fn uses_roles(&self) -> bool {
        !self.roles.is_empty()
    }
}

/// Which people a provider admits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum UserAdmission {
    /// Anyone the provider signs in (and the `allow` rules, when set, accept).
    #[default]
    Any,
    /// Only people already in the user store: added with `portcullis users add`, or seen
    /// before through this provider.
    Known,
}

/// A dotted path into the provider's claims, such as `realm_access.roles`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ClaimPath(Vec<String>);

impl ClaimPath {
    fn parse(key: &str, raw: &str) -> Result<Self, ConfigError> {
        let segments: Vec<String> = raw.split('.').map(str::to_owned).collect();
        if segments.iter().any(String::is_empty) {
            return Err(ConfigError::invalid(
                key,
                format!("`{raw}` is not a claim path (names joined by `.`)"),
            ));
        }
        Ok(Self(segments))
    }

    pub fn segments(&self) -> &[String] {
        &self.0
    }
}

impl std::fmt::Display for ClaimPath {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0.join("."))
    }
}

/// An email rule: one address, or every address at a domain (`*@corp.com`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EmailRule {
    Exact(String),
    Domain(String),
}

/// A provider's admission rules. With no rule set, everyone the provider signs in is admitted
/// (unless `users = "known"`); with rules, a person must match at least one.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Admission {
    pub users: UserAdmission,
    pub emails: Vec<EmailRule>,
    /// Lower-cased domains of verified emails.
    pub domains: Vec<String>,
    /// A claim (string or list of strings) holding one of these values.
    pub claims: Vec<(ClaimPath, Vec<String>)>,
    /// A first sign-in whose verified email belongs to a person known through another provider
    /// becomes that person (off by default: a provider could otherwise take over accounts).
    pub link_by_email: bool,
    /// Claims every person must hold, whatever the `allow` rules say (a preset's, such as
    /// Google's `hd`).
    pub required: Vec<(ClaimPath, String)>,
}

impl Admission {
    /// Adds claims every person must hold: `(claim name, value)`.
    pub fn require_claims(&mut self, claims: Vec<(String, String)>) {
        self.required.extend(
            claims
                .into_iter()
                .map(|(name, value)| (ClaimPath(vec![name]), value)),
        );
    }

    /// True when at least one `allow` rule is set.
    pub fn has_rules(&self) -> bool {
        !self.emails.is_empty() || !self.domains.is_empty() || !self.claims.is_empty()
    }
}

/// A provider's claim-to-role mapping: a claim holding `value` gives `role`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClaimRoles(pub Vec<(ClaimPath, BTreeMap<String, String>)>);

/// `[providers.allow]` as written.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawAllow {
    #[serde(default)]
    emails: Vec<String>,
    #[serde(default)]
    domains: Vec<String>,
    #[serde(default)]
    claims: BTreeMap<String, Vec<String>>,
    /// GitHub organisations (`acme`) and teams (`acme/platform`).
    #[serde(default)]
    orgs: Vec<String>,
}

/// `[roles.NAME]` as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRole {
    scopes: Vec<String>,
    #[serde(default)]
    description: Option<String>,
}

/// Parses `[roles.*]`, `default_role` and `grant`.
pub(super) fn parse(
    roles: BTreeMap<String, RawRole>,
    default_role: Option<String>,
    grant: GrantMode,
) -> Result<AccessSettings, ConfigError> {
    let mut parsed = BTreeMap::new();
    for (name, role) in roles {
        let key = format!("roles.{name}");
        super::check_identifier(&key, &name, &mut HashSet::new())?;
        for scope in &role.scopes {
            check_scope_pattern(&format!("{key}.scopes"), scope)?;
        }
        parsed.insert(
            name.clone(),
            Role {
                name,
                scopes: role.scopes,
                description: role.description,
            },
        );
    }
    let settings = AccessSettings {
        roles: parsed,
        default_role,
        grant,
    };
    if let Some(role) = &settings.default_role {
        check_role(&settings, "default_role", role)?;
    }
    Ok(settings)
}

/// Fails unless `role` is defined under `[roles]`.
pub(super) fn check_role(
    access: &AccessSettings,
    key: &str,
    role: &str,
) -> Result<(), ConfigError> {
    if access.roles.contains_key(role) {
        Ok(())
    } else {
        Err(ConfigError::invalid(
            key,
            format!("no role `{role}` is defined under [roles]"),
        ))
    }
}

/// A scope pattern: RFC 6749 scope-token characters (`*` included).
pub(super) fn check_scope_pattern(key: &str, pattern: &str) -> Result<(), ConfigError> {
    let valid = !pattern.is_empty()
        && pattern
            .bytes()
            .all(|b| b == 0x21 || (0x23..=0x5B).contains(&b) || (0x5D..=0x7E).contains(&b));
    if valid {
        Ok(())
    } else {
        Err(ConfigError::invalid(
            key,
            format!("`{pattern}` is not a scope pattern"),
        ))
    }
}

/// Parses a provider's `users`, `link_by_email` and `[providers.allow]`.
pub(super) fn parse_admission(
    key: &str,
    users: UserAdmission,
    link_by_email: bool,
    allow: RawAllow,
) -> Result<Admission, ConfigError> {
    let mut emails = Vec::new();
    for raw in allow.emails {
        let email = raw.trim().to_lowercase();
        let rule = match email.strip_prefix("*@") {
            Some(domain) if is_domain(domain) => EmailRule::Domain(domain.to_owned()),
            None if email
                .split_once('@')
                .is_some_and(|(l, d)| !l.is_empty() && is_domain(d)) =>
            {
                EmailRule::Exact(email)
            }
            _ => {
                return Err(ConfigError::invalid(
                    format!("{key}.allow.emails"),
                    format!("`{raw}` is neither an email nor `*@domain`"),
                ));
            }
        };
        emails.push(rule);
    }
    let mut domains = Vec::new();
    for raw in allow.domains {
        let domain = raw.trim().trim_start_matches('@').to_lowercase();
        if !is_domain(&domain) {
            return Err(ConfigError::invalid(
                format!("{key}.allow.domains"),
                format!("`{raw}` is not a domain"),
            ));
        }
        domains.push(domain);
    }
    let mut claims = Vec::new();
    for (path, values) in allow.claims {
        let claim_key = format!("{key}.allow.claims");
        if values.is_empty() {
            return Err(ConfigError::invalid(
                claim_key,
                format!("`{path}` lists no values"),
            ));
        }
        claims.push((ClaimPath::parse(&claim_key, &path)?, values));
    }
    // GitHub memberships are claims of the identity: `orgs`, and `teams` as `org/team`.
    let (mut orgs, mut teams) = (Vec::new(), Vec::new());
    for raw in allow.orgs {
        let name = raw.trim().to_lowercase();
        let valid = |part: &str| {
            !part.is_empty()
                && part
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
        };
        match name.split_once('/') {
            None if valid(&name) => orgs.push(name),
            Some((org, team)) if valid(org) && valid(team) => teams.push(name),
            _ => {
                return Err(ConfigError::invalid(
                    format!("{key}.allow.orgs"),
                    format!("`{raw}` is neither an organisation nor `org/team`"),
                ));
            }
        }
    }
    for (name, values) in [("orgs", orgs), ("teams", teams)] {
        if !values.is_empty() {
            claims.push((ClaimPath(vec![name.to_owned()]), values));
        }
    }
    Ok(Admission {
        users,
        emails,
        domains,
        claims,
        link_by_email,
        required: Vec::new(),
    })
}

/// Parses a provider's `[providers.claim_roles]`: claim path → claim value → role.
pub(super) fn parse_claim_roles(
    key: &str,
    raw: BTreeMap<String, BTreeMap<String, String>>,
    access: &AccessSettings,
) -> Result<ClaimRoles, ConfigError> {
    let key = format!("{key}.claim_roles");
    let mut mappings = Vec::new();
    for (path, values) in raw {
        for role in values.values() {
            check_role(access, &format!("{key}.{path}"), role)?;
        }
        mappings.push((ClaimPath::parse(&key, &path)?, values));
    }
    Ok(ClaimRoles(mappings))
}

fn is_domain(domain: &str) -> bool {
    domain.contains('.')
        && domain.split('.').all(|label| {
            !label.is_empty()
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
}
