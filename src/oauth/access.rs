//! Who may come in, and what each person may do: admission per provider, roles (assigned by the
//! operator, given by the provider's claims, and the default role) and the entitlement they
//! add up to. Pure: the callback, the refresh grant and the gate ask it; nothing here reads the
//! store or the clock.

use std::collections::{BTreeSet, HashMap};

use serde_json::{Map, Value};

use super::scope::{Scopes, pattern_covers};
use crate::config::{
    AccessSettings, Admission, ClaimPath, ClaimRoles, EmailRule, GrantMode, ProviderSettings,
    UserAdmission,
};
use crate::store::Person;
use crate::upstream::dev::DEV_ROLE_CLAIM;

/// Why a person may not sign in (or go on), as the audit trail records it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("the person is disabled")]
    Disabled,
    #[error("only known people may sign in through {0}")]
    Unknown(String),
    #[error("no admission rule of {provider} matches {who}")]
    NoRuleMatched { provider: String, who: String },
    #[error("{0} is not a configured provider")]
    UnknownProvider(String),
    #[error("{provider} requires the claim {claim} to be {value}")]
    MissingClaim {
        provider: String,
        claim: String,
        value: String,
    },
}

/// The person as the rules see them.
#[derive(Debug, Clone, Copy)]
pub struct Candidate<'a> {
    /// A verified email only.
    pub email: Option<&'a str>,
    /// The provider's claims (or the stored projection of them).
    pub claims: &'a Value,
    /// Already in the user store (seen through this provider, or added by the operator).
    pub known: bool,
}

/// Scopes of OAuth and OpenID Connect themselves, never a resource's: clients add them to any
/// request (`offline_access` for a refresh token, `openid` out of habit).
pub const PROTOCOL_SCOPES: [&str; 6] = [
    "openid",
    "profile",
    "email",
    "address",
    "phone",
    "offline_access",
];

/// What a person may be granted: the union of their roles' scope patterns, within a cap.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entitlement {
    allow: Vec<String>,
    cap: Option<Vec<String>>,
}

impl Entitlement {
    pub fn covers(&self, scope: &str) -> bool {
        self.allow.iter().any(|p| pattern_covers(p, scope))
            && self
                .cap
                .as_ref()
                .is_none_or(|cap| cap.iter().any(|p| pattern_covers(p, scope)))
    }

    /// The scopes of `scopes` this entitlement covers.
    pub fn restrict(&self, scopes: &Scopes) -> Scopes {
        Scopes::from_items(scopes.iter().filter(|s| self.covers(s)).map(str::to_owned))
    }

    /// What a sign-in grants on a resource that supports `supported`, when the client asked
    /// for `requested`. Scopes that are not the resource's (`offline_access`, `openid`: claude.ai
    /// asks only `offline_access`) do not count as asking: a client that asked for none of the
    /// resource's scopes asked for nothing.
    /// - [`GrantMode::Entitlement`]: the resource scopes the client asked for, or all of them
    ///   when it asked for nothing, within the entitlement;
    /// - [`GrantMode::Requested`]: what it asked for of the resource (a pattern such as
    ///   `rec:*:call` counts when it covers one of the resource's scopes), or the resource's
    ///   scopes when it asked for nothing, within the entitlement. The difference is in what the
    ///   401 tells clients to ask for: the basic scopes here, nothing there.
    pub fn grant(&self, mode: GrantMode, requested: &Scopes, supported: &[String]) -> Scopes {
        let asks_for = |s: &str| {
            // A resource that names no scopes of its own takes what was asked at its word.
            !PROTOCOL_SCOPES.contains(&s)
                && (supported.is_empty()
                    || match mode {
                        GrantMode::Entitlement => supported.iter().any(|r| r == s),
                        GrantMode::Requested => supported.iter().any(|r| pattern_covers(s, r)),
                    })
        };
        let of_resource =
            Scopes::from_items(requested.iter().filter(|s| asks_for(s)).map(str::to_owned));
        let wanted = if of_resource.is_empty() {
            Scopes::from_items(supported.iter().cloned())
        } else {
            of_resource
        };
        self.restrict(&wanted)
    }
}

/// One provider's rules.
#[derive(Debug, Clone)]
struct ProviderRules {
    admission: Admission,
    claim_roles: ClaimRoles,
    grant_scopes: Option<Vec<String>>,
    /// The development provider: without roles and without `grant_scopes` it grants
    /// everything (a real one nothing), and the role picked on its form is given.
    is_dev: bool,
}

/// The access policy of the configured roles and providers.
#[derive(Debug, Clone)]
pub struct AccessPolicy {
    settings: AccessSettings,
    providers: HashMap<String, ProviderRules>,
}

impl AccessPolicy {
    pub fn new(settings: &AccessSettings, providers: &[ProviderSettings]) -> Self {
        Self {
            settings: settings.clone(),
            providers: providers
                .iter()
                .map(|p| {
                    let rules = ProviderRules {
                        admission: p.admission.clone(),
                        claim_roles: p.claim_roles.clone(),
                        grant_scopes: p.grant_scopes.clone(),
                        is_dev: p.is_dev(),
                    };
                    (p.id.clone(), rules)
                })
                .collect(),
        }
    }

    fn rules(&self, provider: &str) -> Result<&ProviderRules, Refusal> {
        self.providers
            .get(provider)
            .ok_or_else(|| Refusal::UnknownProvider(provider.to_owned()))
    }

    /// True when roles decide what each person gets.
    pub fn uses_roles(&self) -> bool {
        self.settings.uses_roles()
    }

    /// Whether `provider` admits `who`.
    pub fn admit(&self, provider: &str, who: Candidate<'_>) -> Result<(), Refusal> {
        let admission = &self.rules(provider)?.admission;
        for (path, value) in &admission.required {
            if !claim_values(who.claims, path).any(|v| v == value) {
                return Err(Refusal::MissingClaim {
                    provider: provider.to_owned(),
                    claim: path.to_string(),
                    value: value.clone(),
                });
            }
        }
        if admission.users == UserAdmission::Known && !who.known {
            return Err(Refusal::Unknown(provider.to_owned()));
        }
        if !admission.has_rules() || matches_a_rule(admission, &who) {
            return Ok(());
        }
        Err(Refusal::NoRuleMatched {
            provider: provider.to_owned(),
            who: who
                .email
                .unwrap_or("a person with no verified email")
                .to_owned(),
        })
    }

    /// Whether a first sign-in through `provider` may join the person known by the same
    /// verified email through another provider.
    pub fn links_by_email(&self, provider: &str) -> bool {
        self.rules(provider)
            .is_ok_and(|rules| rules.admission.link_by_email)
    }

    /// A person's roles: the default role, those the operator assigned, and those the
    /// provider's claims give.
    pub fn roles(&self, provider: &str, assigned: &[String], claims: &Value) -> BTreeSet<String> {
        let mut roles: BTreeSet<String> = assigned
            .iter()
            .filter(|role| self.settings.roles.contains_key(*role))
            .cloned()
            .collect();
        roles.extend(self.settings.default_role.iter().cloned());
        if let Ok(rules) = self.rules(provider) {
            let picked = claims.get(DEV_ROLE_CLAIM).and_then(Value::as_str);
            if let Some(role) =
                picked.filter(|r| rules.is_dev && self.settings.roles.contains_key(*r))
            {
                roles.insert(role.to_owned());
            }
            roles.extend(mapped_roles(&rules.claim_roles, claims));
        }
        roles
    }

    /// The roles of a caller known by a token's claims alone (a trusted issuer's): the default
    /// role and those `mappings` give. Only roles defined under `[roles]` count.
    pub fn roles_of_claims(&self, mappings: &ClaimRoles, claims: &Value) -> BTreeSet<String> {
        let mut roles: BTreeSet<String> = self.settings.default_role.iter().cloned().collect();
        roles.extend(
            mapped_roles(mappings, claims).filter(|role| self.settings.roles.contains_key(role)),
        );
        roles
    }

    /// What a person with `roles` signing in through `provider` may be granted. Without
    /// roles configured, the provider's `grant_scopes` alone.
    pub fn entitlement(&self, provider: &str, roles: &BTreeSet<String>) -> Entitlement {
        let Ok(rules) = self.rules(provider) else {
            return Entitlement {
                allow: Vec::new(),
                cap: None,
            };
        };
        if !self.settings.uses_roles() {
            let allow = match (&rules.grant_scopes, rules.is_dev) {
                (Some(scopes), _) => scopes.clone(),
                (None, true) => vec!["*".to_owned()],
                (None, false) => Vec::new(),
            };
            return Entitlement { allow, cap: None };
        }
        let allow = roles
            .iter()
            .filter_map(|name| self.settings.roles.get(name))
            .flat_map(|role| role.scopes.iter().cloned())
            .collect();
        Entitlement {
            allow,
            cap: rules.grant_scopes.clone(),
        }
    }

    /// [`Self::entitlement`] for a person who may never have signed in through any provider
    /// (`provider` empty): then their roles alone, uncapped.
    pub fn entitlement_of_roles(&self, provider: &str, roles: &BTreeSet<String>) -> Entitlement {
        if self.providers.contains_key(provider) {
            return self.entitlement(provider, roles);
        }
        Entitlement {
            allow: roles
                .iter()
                .filter_map(|name| self.settings.roles.get(name))
                .flat_map(|role| role.scopes.iter().cloned())
                .collect(),
            cap: None,
        }
    }

    /// What `person` may be granted through `provider` today: their assigned roles, the default
    /// role, and those the claims kept with their identity there give.
    pub fn entitlement_of_person(&self, provider: &str, person: &Person) -> Entitlement {
        let no_claims = Value::Object(Map::new());
        let claims = person.identity.as_ref().map_or(&no_claims, |i| &i.claims);
        let roles = self.roles(provider, &person.roles, claims);
        self.entitlement_of_roles(provider, &roles)
    }

    /// The most anyone signing in through `provider` could be granted: what the consent page
    /// can promise before it knows who the person is.
    pub fn most_for(&self, provider: &str) -> Entitlement {
        let everyone: BTreeSet<String> = self.settings.roles.keys().cloned().collect();
        self.entitlement(provider, &everyone)
    }

    /// The roles whose scopes cover `scope`, for a refusal that explains itself.
    pub fn roles_granting(&self, scope: &str) -> Vec<&str> {
        self.settings
            .roles
            .values()
            .filter(|role| role.scopes.iter().any(|p| pattern_covers(p, scope)))
            .map(|role| role.name.as_str())
            .collect()
    }

    /// The part of `claims` the rules of `provider` read: what is kept with the identity, so
    /// the rules can be applied again at every refresh without keeping the whole token.
    pub fn claims_kept(&self, provider: &str, claims: &Value) -> Value {
        let mut kept = Map::new();
        let Ok(rules) = self.rules(provider) else {
            return Value::Object(kept);
        };
        let paths = rules
            .admission
            .claims
            .iter()
            .map(|(path, _)| path)
            .chain(rules.admission.required.iter().map(|(path, _)| path))
            .chain(rules.claim_roles.0.iter().map(|(path, _)| path));
        for path in paths {
            if let Some(value) = lookup(claims, path) {
                kept.insert(path.to_string(), value.clone());
            }
        }
        if let Some(role) = claims.get(DEV_ROLE_CLAIM).filter(|_| rules.is_dev) {
            kept.insert(DEV_ROLE_CLAIM.to_owned(), role.clone());
        }
        Value::Object(kept)
    }
}

/// The roles `mappings` give for the claim values in `claims`.
fn mapped_roles<'m>(
    mappings: &'m ClaimRoles,
    claims: &'m Value,
) -> impl Iterator<Item = String> + 'm {
    mappings.0.iter().flat_map(move |(path, by_value)| {
        claim_values(claims, path).filter_map(|value| by_value.get(value).cloned())
    })
}

fn matches_a_rule(admission: &Admission, who: &Candidate<'_>) -> bool {
    let email = who.email.map(str::to_lowercase);
    let domain = email
        .as_deref()
        .and_then(|e| e.rsplit_once('@'))
        .map(|(_, d)| d);
    let by_email = admission.emails.iter().any(|rule| match rule {
        EmailRule::Exact(exact) => email.as_deref() == Some(exact.as_str()),
        EmailRule::Domain(d) => domain == Some(d.as_str()),
    });
    let by_domain = domain.is_some_and(|d| admission.domains.iter().any(|x| x == d));
    let by_claim = admission.claims.iter().any(|(path, allowed)| {
        claim_values(who.claims, path).any(|value| allowed.iter().any(|a| a == value))
    });
    by_email || by_domain || by_claim
}

/// The value at `path`: in a kept projection (keyed by the whole dotted path), else by walking
/// the objects.
fn lookup<'v>(claims: &'v Value, path: &ClaimPath) -> Option<&'v Value> {
    if let Some(kept) = claims.get(path.to_string()) {
        return Some(kept);
    }
    path.segments()
        .iter()
        .try_fold(claims, |value, segment| value.get(segment))
}

/// The string values at `path`: a string claim, or the strings of a list claim.
fn claim_values<'v>(claims: &'v Value, path: &ClaimPath) -> impl Iterator<Item = &'v str> {
    let found = lookup(claims, path);
    let single = found.and_then(Value::as_str);
    let many = found
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str);
    single.into_iter().chain(many)
}

/// Admission, roles and scopes, rule by rule.
#[cfg(test)]
mod tests;
