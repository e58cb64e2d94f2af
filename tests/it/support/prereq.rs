//! What the integration suite needs on this machine besides Rust: Node.js 20 or later with the
//! node modules of `scripts/idp`, `scripts/mcp` and `scripts/clients`, the Python MCP SDK's
//! virtualenv in `scripts/clients/py`, the FastAPI test app's in `scripts/openapi`, and, for the
//! Postgres tests, the PostgreSQL server binaries. `scripts/test.sh` installs all of them.
//!
//! Each support helper that starts a peer calls [`require`] first. When something is missing the
//! first such call prints one message, naming everything missing and `scripts/test.sh`, and ends
//! the test process with status 2: not one panic per test.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, OnceLock};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// What a helper is about to start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    /// The test OpenID provider: node and `scripts/idp/node_modules`.
    Idp,
    /// The MCP peers (the SDK client, server-everything): node and `scripts/mcp/node_modules`.
    Mcp,
    /// A throwaway Postgres cluster: `initdb`, `pg_ctl` and `postgres`.
    Postgres,
    /// The other real clients and the 2026-era backend: node, `scripts/clients/node_modules`
    /// and the Python SDK's virtualenv `scripts/clients/py/.venv`.
    Clients,
    /// The FastAPI app of the OpenAPI tests: its virtualenv `scripts/openapi/.venv`.
    OpenApi,
}

/// One thing the machine lacks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Item {
    Node,
    IdpModules,
    McpModules,
    ClientModules,
    PythonClient,
    OpenApiApp,
    PostgresBinaries,
}

impl Item {
    fn wanted_by(self, need: Need) -> bool {
        matches!(
            (self, need),
            (Item::Node, Need::Idp | Need::Mcp | Need::Clients)
                | (Item::IdpModules, Need::Idp)
                | (Item::McpModules, Need::Mcp | Need::Clients)
                | (Item::ClientModules | Item::PythonClient, Need::Clients)
                | (Item::OpenApiApp, Need::OpenApi)
                | (Item::PostgresBinaries, Need::Postgres)
        )
    }
}

/// Returns when everything `needs` names is installed; otherwise reports what is missing and
/// exits the test process with status 2.
pub fn require(needs: &[Need]) {
    let missing = missing();
    if missing
        .iter()
        .any(|(item, _)| needs.iter().any(|&need| item.wanted_by(need)))
    {
        stop(missing);
    }
}

/// The newest `/usr/lib/postgresql/<version>/bin` holding the server binaries.
pub fn postgres_bin() -> PathBuf {
    require(&[Need::Postgres]);
    find_postgres_bin().expect("checked by require")
}

fn find_postgres_bin() -> Option<PathBuf> {
    let mut found: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(Result::ok)
        .filter_map(|entry| {
            let version = entry.file_name().to_str()?.parse::<u32>().ok()?;
            let bin = entry.path().join("bin");
            ["initdb", "pg_ctl", "postgres"]
                .iter()
                .all(|tool| bin.join(tool).is_file())
                .then_some((version, bin))
        })
        .collect();
    found.sort();
    found.pop().map(|(_, bin)| bin)
}

/// Everything missing, with how to describe it; computed once per process.
fn missing() -> &'static [(Item, String)] {
    static MISSING: OnceLock<Vec<(Item, String)>> = OnceLock::new();
    MISSING.get_or_init(|| {
        let mut missing = Vec::new();
        match node_major() {
            Some(major) if major >= 20 => {}
            Some(major) => missing.push((
                Item::Node,
                format!("Node.js 20 or later (found Node.js {major})"),
            )),
            None => missing.push((Item::Node, "Node.js 20 or later (`node`)".to_owned())),
        }
        for (item, dir) in [
            (Item::IdpModules, "scripts/idp"),
            (Item::McpModules, "scripts/mcp"),
            (Item::ClientModules, "scripts/clients"),
        ] {
            if let Some(problem) = node_modules_problem(&Path::new(ROOT).join(dir)) {
                missing.push((item, format!("the node modules of {dir} ({problem})")));
            }
        }
        if let Some(problem) = venv_problem(&Path::new(ROOT).join("scripts/clients/py")) {
            missing.push((
                Item::PythonClient,
                format!("the Python MCP SDK's virtualenv scripts/clients/py/.venv ({problem})"),
            ));
        }
        if let Some(problem) = venv_problem(&Path::new(ROOT).join("scripts/openapi")) {
            missing.push((
                Item::OpenApiApp,
                format!("the FastAPI test app's virtualenv scripts/openapi/.venv ({problem})"),
            ));
        }
        if find_postgres_bin().is_none() {
            missing.push((
                Item::PostgresBinaries,
                "the PostgreSQL server binaries (/usr/lib/postgresql/*/bin: initdb, pg_ctl, \
                 postgres; the Debian package `postgresql`)"
                    .to_owned(),
            ));
        }
        missing
    })
}

fn node_major() -> Option<u32> {
    let output = Command::new("node")
        .args(["-p", "process.versions.node.split('.')[0]"])
        .output()
        .ok()?;
    if !output.status.success() {
        return None;
    }
    String::from_utf8_lossy(&output.stdout).trim().parse().ok()
}

/// Why `dir`'s node modules cannot be used, the way `scripts/test.sh` decides to run `npm ci`:
/// missing, or older than the lockfile.
fn node_modules_problem(dir: &Path) -> Option<&'static str> {
    let installed = dir.join("node_modules/.package-lock.json");
    let Ok(installed) = installed.metadata().and_then(|m| m.modified()) else {
        return Some("node_modules is missing");
    };
    let lockfile = dir
        .join("package-lock.json")
        .metadata()
        .and_then(|m| m.modified());
    match lockfile {
        Ok(lockfile) if lockfile > installed => Some("older than package-lock.json"),
        _ => None,
    }
}

/// Why the virtualenv in `dir/.venv` cannot be used, the way `scripts/test.sh` decides to
/// install it: missing, or older than `dir/requirements.txt`.
fn venv_problem(dir: &Path) -> Option<&'static str> {
    let marker = dir.join(".venv/installed");
    let Ok(installed) = marker.metadata().and_then(|m| m.modified()) else {
        return Some("not installed");
    };
    match dir
        .join("requirements.txt")
        .metadata()
        .and_then(|m| m.modified())
    {
        Ok(requirements) if requirements > installed => Some("older than requirements.txt"),
        _ => None,
    }
}

/// Prints the one message and exits; a second test thread getting here waits for the exit.
fn stop(missing: &[(Item, String)]) -> ! {
    static REPORTING: Mutex<()> = Mutex::new(());
    let _reporting = REPORTING.lock();
    let mut message = String::from(
        "\nThe integration tests cannot run: this machine lacks what they start.\nMissing:\n",
    );
    for (_, what) in missing {
        message.push_str(&format!("  - {what}\n"));
    }
    message.push_str(
        "Run scripts/test.sh: it installs what is missing (Debian packages, npm ci), starts the \
         peers and runs every test.\nAfterwards plain `cargo test` works too.\n",
    );
    // Straight to the process's stderr: the test harness would capture `eprintln!` and never
    // show it, since the process exits here.
    let mut stderr = std::io::stderr().lock();
    let _ = stderr.write_all(message.as_bytes());
    let _ = stderr.flush();
    std::process::exit(2);
}
