//! What the operator's commands print: a table or `key: value` lines for people, JSON lines
//! for scripts. The JSON shapes are here, apart from the stored rows, so that no secret (a
//! client's secret hash, a grant's upstream tokens) can reach the output by a new field.

use std::io::Write;

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::AdminResult;
use crate::store::{Client, Grant, IdentityRecord, User};
use crate::table::{self, printable};

/// Where a command writes, and how.
pub(super) struct Output<'a> {
    out: &'a mut dyn Write,
    pub json: bool,
}

impl<'a> Output<'a> {
    pub fn new(out: &'a mut dyn Write, json: bool) -> Self {
        Self { out, json }
    }

    /// One JSON object per item, one per line.
    pub fn json_lines<T: Serialize>(&mut self, items: &[T]) -> AdminResult<()> {
        for item in items {
            serde_json::to_writer(&mut *self.out, item).map_err(std::io::Error::from)?;
            self.out.write_all(b"\n")?;
        }
        Ok(())
    }

    pub fn table(&mut self, headers: &[&str], rows: &[Vec<String>]) -> AdminResult<()> {
        table::write(self.out, headers, rows, &[])?;
        Ok(())
    }

    /// `key: value` lines, the values aligned and printable, never cut.
    pub fn fields(&mut self, fields: &[(&str, String)]) -> AdminResult<()> {
        let width = fields.iter().map(|(k, _)| k.len()).max().unwrap_or(0) + 2;
        for (key, value) in fields {
            writeln!(self.out, "{:width$}{}", format!("{key}:"), printable(value))?;
        }
        Ok(())
    }

    /// A blank line and a section title.
    pub fn section(&mut self, title: &str) -> AdminResult<()> {
        writeln!(self.out, "\n{title}")?;
        Ok(())
    }

    /// What a change did: its message, or the whole outcome as one JSON line.
    pub fn outcome(&mut self, outcome: &Outcome) -> AdminResult<()> {
        if self.json {
            self.json_lines(std::slice::from_ref(outcome))
        } else {
            writeln!(self.out, "{}", printable(&outcome.message))?;
            Ok(())
        }
    }
}

/// What a change did, as printed with `--json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Outcome {
    /// The line printed without `--json`.
    pub message: String,
    /// False when there was nothing to do (the person had the role already, say).
    pub changed: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    /// The grants this change revoked.
    pub grants_revoked: Vec<String>,
}

impl Outcome {
    pub fn new(message: String, changed: bool) -> Self {
        Self {
            message,
            changed,
            user_id: None,
            client_id: None,
            grants_revoked: Vec::new(),
        }
    }

    pub fn user(mut self, user: &User) -> Self {
        self.user_id = Some(user.id.clone());
        self
    }

    pub fn client(mut self, client_id: &str) -> Self {
        self.client_id = Some(client_id.to_owned());
        self
    }

    pub fn revoked(mut self, grant_ids: Vec<String>) -> Self {
        self.grants_revoked = grant_ids;
        self
    }
}

/// A person as listed and shown.
#[derive(Debug, Serialize)]
pub(super) struct PersonView {
    pub id: String,
    pub email: Option<String>,
    pub name: Option<String>,
    /// Assigned by the operator; the default role and claim-given roles are not stored.
    pub roles: Vec<String>,
    pub identities: Vec<IdentityView>,
    pub disabled_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    /// `None` for a person who never signed in.
    pub last_sign_in_at: Option<DateTime<Utc>>,
}

impl PersonView {
    pub fn new(user: User, roles: Vec<String>, identities: &[IdentityRecord]) -> Self {
        Self {
            last_sign_in_at: identities.iter().map(|i| i.last_login_at).max(),
            id: user.id,
            email: user.email,
            name: user.name,
            roles,
            identities: identities.iter().map(IdentityView::from).collect(),
            disabled_at: user.disabled_at,
            created_at: user.created_at,
        }
    }

    /// `provider:subject, …`.
    pub fn identity_list(&self) -> String {
        let keys: Vec<String> = self
            .identities
            .iter()
            .map(|i| format!("{}:{}", i.provider, i.subject))
            .collect();
        keys.join(", ")
    }

    pub fn disabled(&self) -> String {
        self.disabled_at.map_or_else(|| "no".to_owned(), time)
    }

    pub fn last_sign_in(&self) -> String {
        self.last_sign_in_at
            .map_or_else(|| "never".to_owned(), time)
    }
}

#[derive(Debug, Serialize)]
pub(super) struct IdentityView {
    pub provider: String,
    pub subject: String,
    /// The email this provider verified at the last sign-in.
    pub email: Option<String>,
    /// What the admission and role rules read.
    pub claims: serde_json::Value,
    pub created_at: DateTime<Utc>,
    pub last_sign_in_at: DateTime<Utc>,
}

impl From<&IdentityRecord> for IdentityView {
    fn from(identity: &IdentityRecord) -> Self {
        Self {
            provider: identity.provider.clone(),
            subject: identity.subject.clone(),
            email: identity.email.clone(),
            claims: identity.claims.clone(),
            created_at: identity.created_at,
            last_sign_in_at: identity.last_login_at,
        }
    }
}

/// A grant without its upstream tokens.
#[derive(Debug, Serialize)]
pub(super) struct GrantView {
    pub id: String,
    pub user_id: String,
    pub user_email: Option<String>,
    pub client_id: String,
    pub provider: String,
    pub resource: String,
    /// Where the client's installation receives its codes: with a metadata document client,
    /// what tells its installations apart.
    pub redirect_uri: Option<String>,
    pub scope: String,
    pub created_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
}

impl GrantView {
    pub fn new(grant: &Grant, user_email: Option<String>) -> Self {
        Self {
            id: grant.id.clone(),
            user_id: grant.user_id.clone(),
            user_email,
            client_id: grant.client_id.clone(),
            provider: grant.provider.clone(),
            resource: grant.resource.clone(),
            redirect_uri: grant.redirect_uri.clone(),
            scope: grant.scope.clone(),
            created_at: grant.created_at,
            revoked_at: grant.revoked_at,
        }
    }
}

/// A client without its secret hash.
#[derive(Debug, Serialize)]
pub(super) struct ClientView {
    pub client_id: String,
    pub client_name: Option<String>,
    pub token_endpoint_auth_method: String,
    pub redirect_uris: Vec<String>,
    pub grant_types: Vec<String>,
    pub response_types: Vec<String>,
    pub scope: Option<String>,
    pub metadata: serde_json::Value,
    pub created_at: DateTime<Utc>,
}

impl From<Client> for ClientView {
    fn from(client: Client) -> Self {
        Self {
            client_id: client.client_id,
            client_name: client.client_name,
            token_endpoint_auth_method: client.token_endpoint_auth_method,
            redirect_uris: client.redirect_uris,
            grant_types: client.grant_types,
            response_types: client.response_types,
            scope: client.scope,
            metadata: client.metadata,
            created_at: client.created_at,
        }
    }
}

/// A time as the tables print it, to the second.
pub(super) fn time(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%d %H:%M:%SZ").to_string()
}

/// `-` for an empty list, else the items joined by `, `.
pub(super) fn joined(items: &[String]) -> String {
    if items.is_empty() {
        "-".to_owned()
    } else {
        items.join(", ")
    }
}
