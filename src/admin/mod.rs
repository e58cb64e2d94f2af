//! `portcullis users`, `grants` and `clients`: the operator's hand on people, on what they were
//! granted and on the registered clients, straight against the store.
//!
//! Every change is audited as [`AuditKind::Admin`], written at once with
//! [`Store::insert_audit_events`]: a command has no running [`Auditor`](crate::audit::Auditor).
//! Revoking marks grants revoked in the store; every running instance polls those revocations,
//! so the tokens die there within the poll interval (seconds).

/// `portcullis clients`: list, show, delete.
mod clients;
/// `portcullis grants`: list, revoke.
mod grants;
/// `portcullis api-keys`: create, list, revoke.
mod keys;
/// `portcullis users disable`, `enable`, `delete`: switching a person off, and removing them.
mod lifecycle;
/// Table and JSON output, and the JSON shapes printed.
mod output;
/// `portcullis users`: list, show, add, roles.
mod users;

use std::io::Write;

use chrono::{DateTime, Duration, Utc};

use crate::cluster::Event;
use crate::config::AccessSettings;
use crate::store::{AuditEvent, AuditKind, Decision, Store, StoreError, User};

/// The operator's commands, as `portcullis` parses them.
#[derive(Debug, Clone, clap::Subcommand)]
pub enum Command {
    /// People: list, show, add, disable, enable, delete, and their roles.
    Users(UsersArgs),
    /// Grants (one per sign-in of a person at a client): list, revoke.
    Grants(GrantsArgs),
    /// Registered OAuth clients: list, show, delete.
    Clients(ClientsArgs),
    /// API keys for machines acting for a person: create, list, revoke.
    #[command(name = "api-keys")]
    ApiKeys(ApiKeysArgs),
}

/// `portcullis api-keys`.
#[derive(Debug, Clone, clap::Args)]
pub struct ApiKeysArgs {
    /// JSON (one object per line) instead of a table.
    #[arg(long, global = true)]
    pub json: bool,
    #[command(subcommand)]
    pub command: ApiKeysCommand,
}

#[derive(Debug, Clone, clap::Subcommand)]
pub enum ApiKeysCommand {
    /// Creates a key and prints it, this once (only its hash is kept).
    ///
    /// The key is accepted as `Authorization: Bearer` on the MCP endpoints only. A call needs
    /// both the key's scopes and its owner's entitlement at that moment.
    Create {
        /// The owner: their id or their email.
        #[arg(long)]
        user: String,
        /// Space-separated scope patterns, such as "tickets:*:read".
        #[arg(long)]
        scopes: String,
        /// How long it lives: 90d, 12h, 2w… (default: until revoked).
        #[arg(long)]
        expires: Option<String>,
        /// What it is for, shown in listings.
        #[arg(long)]
        name: String,
    },
    /// Keys, newest first, with their last use.
    List {
        /// Only this person's: their id or their email.
        #[arg(long)]
        user: Option<String>,
    },
    /// Revokes a key: every instance refuses it within seconds.
    Revoke { id: String },
}

/// `portcullis users`.
#[derive(Debug, Clone, clap::Args)]
pub struct UsersArgs {
    /// JSON (one object per line) instead of a table.
    #[arg(long, global = true)]
    pub json: bool,
    #[command(subcommand)]
    pub command: UsersCommand,
}

#[derive(Debug, Clone, clap::Subcommand)]
pub enum UsersCommand {
    /// Everyone: id, email, name, roles, identities, disabled, last sign-in.
    List,
    /// One person: their identities, roles and active grants.
    Show {
        /// Their id or their email.
        user: String,
    },
    /// Adds a person ahead of their first sign-in, which claims them when it carries this
    /// email, verified.
    Add {
        #[arg(long)]
        email: String,
        #[arg(long)]
        name: Option<String>,
        /// A role defined under [roles]; repeat for several.
        #[arg(long = "role", value_name = "ROLE")]
        roles: Vec<String>,
    },
    /// Switches a person off and revokes every grant they hold.
    ///
    /// No sign-in and no refresh from then on, and their tokens are refused by every running
    /// instance within seconds (each polls the revoked grants).
    Disable {
        /// Their id or their email.
        user: String,
    },
    /// Switches a person back on; they sign in again for new grants.
    ///
    /// Their revoked grants stay revoked: what they held before is not handed back.
    Enable {
        /// Their id or their email.
        user: String,
    },
    /// Deletes a person with their identities, roles and grants, for good.
    ///
    /// Refused while a token issued to them could still be valid: deleting their grants would
    /// delete the revocations that keep those tokens out. Disable them first (which revokes
    /// every grant), then delete once the access-token lifetime has passed. A person who never
    /// held a grant is deleted at once.
    Delete {
        /// Their id or their email.
        user: String,
        /// Yes, delete them: without it nothing is deleted.
        #[arg(long)]
        yes: bool,
    },
    /// The roles the operator assigns: add, remove.
    ///
    /// In addition to the default role and the roles a provider's claims give. A change
    /// applies at the person's next sign-in or token refresh.
    Roles {
        #[command(subcommand)]
        command: RolesCommand,
    },
}

#[derive(Debug, Clone, clap::Subcommand)]
pub enum RolesCommand {
    /// Assigns a role defined under [roles].
    Add {
        /// Their id or their email.
        user: String,
        role: String,
    },
    /// Removes an assigned role.
    Remove {
        /// Their id or their email.
        user: String,
        role: String,
    },
}

/// `portcullis grants`.
#[derive(Debug, Clone, clap::Args)]
pub struct GrantsArgs {
    /// JSON (one object per line) instead of a table.
    #[arg(long, global = true)]
    pub json: bool,
    #[command(subcommand)]
    pub command: GrantsCommand,
}

#[derive(Debug, Clone, clap::Subcommand)]
pub enum GrantsCommand {
    /// Active grants, newest first.
    List {
        /// Only this person's: their id or their email.
        #[arg(long)]
        user: Option<String>,
        /// Only this client's.
        #[arg(long = "client", value_name = "CLIENT_ID", allow_hyphen_values = true)]
        client_id: Option<String>,
        /// Only those issued through this redirect URI (with --client: one installation of a
        /// client identified by a metadata document).
        #[arg(long, requires = "client_id")]
        redirect_uri: Option<String>,
        /// Revoked grants too.
        #[arg(long)]
        all: bool,
    },
    /// Revokes one grant, every active grant of a person, or every active grant of a client
    /// through one redirect URI: their tokens are refused by every instance within seconds,
    /// their refresh tokens are deleted, and a remembered consent for them ends.
    #[command(group(clap::ArgGroup::new("which").required(true).args(["grant_id", "user", "client_id"])))]
    Revoke {
        grant_id: Option<String>,
        /// Every active grant of this person: their id or their email.
        #[arg(long)]
        user: Option<String>,
        /// Every active grant of this client issued through --redirect-uri.
        #[arg(
            long = "client",
            value_name = "CLIENT_ID",
            requires = "redirect_uri",
            allow_hyphen_values = true
        )]
        client_id: Option<String>,
        #[arg(long, requires = "client_id")]
        redirect_uri: Option<String>,
    },
}

/// `portcullis clients`.
#[derive(Debug, Clone, clap::Args)]
pub struct ClientsArgs {
    /// JSON (one object per line) instead of a table.
    #[arg(long, global = true)]
    pub json: bool,
    #[command(subcommand)]
    pub command: ClientsCommand,
}

#[derive(Debug, Clone, clap::Subcommand)]
pub enum ClientsCommand {
    /// Registered clients, newest first.
    List,
    /// One client, with everything it registered.
    Show {
        /// A registered client's id (one may begin with `-`).
        #[arg(allow_hyphen_values = true)]
        client_id: String,
    },
    /// Revokes the client's active grants, then deletes its registration.
    Delete {
        #[arg(allow_hyphen_values = true)]
        client_id: String,
    },
}

/// What went wrong, in one line naming it.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error("no person with id or email {0:?}")]
    NoSuchPerson(String),
    #[error("{} people have the email {email:?}: {}; name one by id", ids.len(), ids.join(", "))]
    AmbiguousEmail { email: String, ids: Vec<String> },
    #[error("no role {0:?} is defined under [roles]")]
    UnknownRole(String),
    #[error("no grant with id {0:?}")]
    NoSuchGrant(String),
    #[error("no client with id {0:?}")]
    NoSuchClient(String),
    /// The command would do harm or cannot be done as asked; the text says why and what to do.
    #[error("{0}")]
    Refused(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("writing the output: {0}")]
    Output(#[from] std::io::Error),
}

pub type AdminResult<T> = Result<T, AdminError>;

/// What the commands work with: the store, the configured roles, and the time.
pub struct Admin<'a> {
    pub store: &'a dyn Store,
    /// `[roles]`: a role is assigned only when defined there.
    pub access: &'a AccessSettings,
    /// The lifetime of an access token (`tokens.access_ttl`): how long a token issued before a
    /// revocation could still be presented.
    pub access_ttl: Duration,
    pub now: DateTime<Utc>,
    /// Redis, when configured: running instances learn of revocations through it at once
    /// (and by polling the database otherwise).
    pub redis: Option<crate::cluster::Redis>,
}

/// Runs `command`, writing what it shows or did to `out`.
pub async fn run(admin: &Admin<'_>, command: &Command, out: &mut dyn Write) -> AdminResult<()> {
    match command {
        Command::Users(args) => {
            let mut out = output::Output::new(out, args.json);
            match &args.command {
                UsersCommand::List => users::list(admin, &mut out).await,
                UsersCommand::Show { user } => users::show(admin, user, &mut out).await,
                UsersCommand::Add { email, name, roles } => {
                    users::add(admin, email, name.as_deref(), roles, &mut out).await
                }
                UsersCommand::Disable { user } => lifecycle::disable(admin, user, &mut out).await,
                UsersCommand::Enable { user } => lifecycle::enable(admin, user, &mut out).await,
                UsersCommand::Delete { user, yes } => {
                    lifecycle::delete(admin, user, *yes, &mut out).await
                }
                UsersCommand::Roles { command } => match command {
                    RolesCommand::Add { user, role } => {
                        users::add_role(admin, user, role, &mut out).await
                    }
                    RolesCommand::Remove { user, role } => {
                        users::remove_role(admin, user, role, &mut out).await
                    }
                },
            }
        }
        Command::Grants(args) => {
            let mut out = output::Output::new(out, args.json);
            match &args.command {
                GrantsCommand::List {
                    user,
                    client_id,
                    redirect_uri,
                    all,
                } => {
                    let which = grants::Which {
                        user: user.as_deref(),
                        client_id: client_id.as_deref(),
                        redirect_uri: redirect_uri.as_deref(),
                        all: *all,
                    };
                    grants::list(admin, &which, &mut out).await
                }
                GrantsCommand::Revoke {
                    grant_id,
                    user,
                    client_id,
                    redirect_uri,
                } => match (grant_id, user, client_id, redirect_uri) {
                    (Some(grant_id), ..) => grants::revoke_one(admin, grant_id, &mut out).await,
                    (None, Some(user), ..) => grants::revoke_all_of(admin, user, &mut out).await,
                    (None, None, Some(client_id), Some(redirect_uri)) => {
                        grants::revoke_installation(admin, client_id, redirect_uri, &mut out).await
                    }
                    // clap requires one of them.
                    _ => Err(AdminError::Refused(
                        "name a grant, a person with --user, or --client with --redirect-uri"
                            .to_owned(),
                    )),
                },
            }
        }
        Command::ApiKeys(args) => {
            let mut out = output::Output::new(out, args.json);
            match &args.command {
                ApiKeysCommand::Create {
                    user,
                    scopes,
                    expires,
                    name,
                } => keys::create(admin, user, scopes, expires.as_deref(), name, &mut out).await,
                ApiKeysCommand::List { user } => keys::list(admin, user.as_deref(), &mut out).await,
                ApiKeysCommand::Revoke { id } => keys::revoke(admin, id, &mut out).await,
            }
        }
        Command::Clients(args) => {
            let mut out = output::Output::new(out, args.json);
            match &args.command {
                ClientsCommand::List => clients::list(admin, &mut out).await,
                ClientsCommand::Show { client_id } => {
                    clients::show(admin, client_id, &mut out).await
                }
                ClientsCommand::Delete { client_id } => {
                    clients::delete(admin, client_id, &mut out).await
                }
            }
        }
    }
}

/// The person `user` names: their id, or else their email (when exactly one person has it).
async fn resolve_person(store: &dyn Store, user: &str) -> AdminResult<User> {
    if let Some(person) = store.get_user(user).await? {
        return Ok(person);
    }
    let mut people = store.users_by_email(user).await?;
    match people.len() {
        0 => Err(AdminError::NoSuchPerson(user.to_owned())),
        1 => Ok(people.remove(0)),
        _ => Err(AdminError::AmbiguousEmail {
            email: user.to_owned(),
            ids: people.into_iter().map(|p| p.id).collect(),
        }),
    }
}

/// Fails unless `role` is defined under `[roles]`.
fn check_role(admin: &Admin<'_>, role: &str) -> AdminResult<()> {
    if admin.access.roles.contains_key(role) {
        Ok(())
    } else {
        Err(AdminError::UnknownRole(role.to_owned()))
    }
}

/// Revokes each of `grant_ids` at `admin.now`.
async fn revoke_grants(admin: &Admin<'_>, grant_ids: &[String]) -> AdminResult<()> {
    for id in grant_ids {
        admin.store.revoke_grant(id, admin.now).await?;
        publish(
            admin,
            Event::GrantRevoked {
                id: id.clone(),
                at: admin.now,
            },
        )
        .await;
    }
    Ok(())
}

/// Tells running instances about a change already made in the database. Without Redis, or
/// when it does not answer, they learn of it from the database within seconds instead.
async fn publish(admin: &Admin<'_>, event: Event) {
    let Some(redis) = &admin.redis else {
        return;
    };
    let published = tokio::time::timeout(std::time::Duration::from_secs(2), redis.publish(&event));
    match published.await {
        Ok(Ok(())) => {}
        Ok(Err(error)) => {
            tracing::warn!(%error, "publishing to Redis failed; instances learn of the change by polling")
        }
        Err(_) => tracing::warn!("Redis did not answer; instances learn of the change by polling"),
    }
}

/// The audit event of an operator's change to `person`.
fn person_event(admin: &Admin<'_>, person: &User, reason: String) -> AuditEvent {
    AuditEvent::new(AuditKind::Admin, Decision::Allowed, admin.now)
        .user(person.id.clone(), person.email.as_deref())
        .reason(reason)
}

/// Writes `event` to the audit trail now.
async fn audit(admin: &Admin<'_>, event: AuditEvent) -> AdminResult<()> {
    admin.store.insert_audit_events(&[event]).await?;
    Ok(())
}

/// `n grant(s)`.
fn grants_count(n: usize) -> String {
    if n == 1 {
        "1 grant".to_owned()
    } else {
        format!("{n} grants")
    }
}

/// How a person is named in messages: their email, else their id.
fn who(person: &User) -> &str {
    person.email.as_deref().unwrap_or(&person.id)
}
