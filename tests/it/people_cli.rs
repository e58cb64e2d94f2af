//! `portcullis users`, `grants`, `clients` and `api-keys` as an operator runs them: the built binary against
//! a fresh database, its output read back as a table and as JSON, and the stored state checked.

/// `grants list` / `revoke`, and `clients list` / `show` / `delete`.
mod grants;
/// `api-keys create`, `list`, `revoke`.
mod keys;
/// `users list`, `show`, `add`, `roles`, `disable`, `enable`, `delete`.
mod users;

use std::process::Output;

use chrono::{DateTime, Duration, Utc};
use portcullis::store::{Attach, AuditFilter, AuditKind, Client, Grant, SignedIn, Store, User};
use serde_json::{Value, json};

use crate::cli::text;

/// `[roles]` for the role cases; everything else is the defaults.
const CONFIG: &str = "[roles.reader]\nscopes = [\"tools:read\"]\n\n\
                      [roles.admin]\nscopes = [\"*\"]\n";

/// An operator's shell: a directory holding `portcullis.toml`, and the database.
struct Shell {
    dir: tempfile::TempDir,
    url: String,
}

impl Shell {
    fn new(url: String) -> Self {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("portcullis.toml"), CONFIG).unwrap();
        Self { dir, url }
    }

    fn run(&self, args: &[&str]) -> Output {
        crate::cli::portcullis(self.dir.path(), args, &[("DATABASE_URL", &self.url)])
    }

    /// Runs a command that must succeed; returns its stdout.
    fn ok(&self, args: &[&str]) -> String {
        let output = self.run(args);
        assert!(output.status.success(), "{args:?}: {}", text(&output));
        String::from_utf8(output.stdout).unwrap()
    }

    /// Runs a command that must fail with exit code 1; returns its one line on stderr.
    fn fails(&self, args: &[&str]) -> String {
        let output = self.run(args);
        assert_eq!(output.status.code(), Some(1), "{args:?}: {}", text(&output));
        assert!(output.stdout.is_empty(), "{args:?}: {}", text(&output));
        let stderr = String::from_utf8(output.stderr).unwrap();
        assert_eq!(stderr.lines().count(), 1, "{args:?}: {stderr}");
        stderr.trim_end().to_owned()
    }

    /// The JSON lines a command printed with `--json`.
    fn json(&self, args: &[&str]) -> Vec<Value> {
        let mut args = args.to_vec();
        args.push("--json");
        self.ok(&args)
            .lines()
            .map(|line| serde_json::from_str(line).unwrap())
            .collect()
    }
}

/// A fresh SQLite database and a shell on it.
async fn sqlite() -> (portcullis::store::DynStore, Shell, tempfile::TempDir) {
    let (store, url, db_dir) = crate::support::db::fresh_sqlite().await;
    (store, Shell::new(url), db_dir)
}

/// `subject` signed in at the `dev` provider with a verified `email`.
async fn signed_in(store: &dyn Store, subject: &str, email: &str) -> User {
    let signed_in = SignedIn {
        provider: "dev".to_owned(),
        subject: subject.to_owned(),
        email: Some(email.to_owned()),
        name: Some(subject.to_owned()),
        claims: json!({}),
    };
    let now = Utc::now() - Duration::minutes(10);
    store
        .record_sign_in(&signed_in, &Attach::NewUser, now)
        .await
        .unwrap()
}

/// A grant of `user` at `client_id`, created `minutes_ago`.
async fn grant(store: &dyn Store, id: &str, user: &User, client_id: &str, minutes_ago: i64) {
    let grant = Grant {
        id: id.to_owned(),
        user_id: user.id.clone(),
        client_id: client_id.to_owned(),
        provider: "dev".to_owned(),
        scope: "tools:call".to_owned(),
        resource: "https://mcp.example/mcp".to_owned(),
        redirect_uri: None,
        upstream: Default::default(),
        created_at: Utc::now() - Duration::minutes(minutes_ago),
        revoked_at: None,
    };
    store.insert_grant(&grant).await.unwrap();
}

fn client(client_id: &str) -> Client {
    Client {
        client_id: client_id.to_owned(),
        secret_hash: Some("5ec7e7".repeat(10)),
        token_endpoint_auth_method: "client_secret_basic".to_owned(),
        client_name: Some("Inspector".to_owned()),
        redirect_uris: vec!["http://127.0.0.1:6274/callback".to_owned()],
        grant_types: vec!["authorization_code".to_owned()],
        response_types: vec!["code".to_owned()],
        scope: None,
        metadata: json!({"logo_uri": "https://app.example/logo.png"}),
        created_at: Utc::now() - Duration::days(1),
    }
}

/// The ids of the grants listed, in order.
fn ids(lines: &[Value]) -> Vec<&str> {
    lines.iter().map(|l| l["id"].as_str().unwrap()).collect()
}

/// The reasons of the operator's audit events, oldest first.
async fn admin_reasons(store: &dyn Store) -> Vec<String> {
    let filter = AuditFilter {
        kind: Some(AuditKind::Admin),
        ..AuditFilter::default()
    };
    let mut events = store.audit_events(&filter).await.unwrap();
    events.reverse();
    events.into_iter().filter_map(|e| e.reason).collect()
}

fn revoked(grant: &Option<Grant>) -> Option<DateTime<Utc>> {
    grant.as_ref().unwrap().revoked_at
}
