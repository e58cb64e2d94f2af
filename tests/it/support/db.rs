//! A fresh, migrated database per test, on either engine, and the Postgres server the test
//! process shares.

use std::io::{BufRead, BufReader};
use std::process::{ChildStdin, Command, Stdio};
use std::sync::{OnceLock, mpsc};
use std::time::Duration;

use portcullis::store::{self, DynStore};
use sqlx::{AssertSqlSafe, Connection, PgConnection};
use url::Url;

/// The URL of a new SQLite file in its own temporary directory, which lives as long as the
/// returned guard. Nothing is created yet.
pub fn empty_sqlite() -> (String, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("create a temporary directory");
    let url = format!("sqlite://{}", dir.path().join("portcullis.db").display());
    (url, dir)
}

/// A new SQLite file in its own temporary directory, which lives as long as the returned guard.
pub async fn fresh_sqlite() -> (DynStore, String, tempfile::TempDir) {
    let (url, dir) = empty_sqlite();
    let store = store::connect(&url)
        .await
        .expect("open the SQLite database");
    store.migrate().await.expect("migrate the SQLite database");
    (store, url, dir)
}

/// A new database on the shared Postgres server (see [`admin_url`]).
///
/// Never skipped: a suite that passes while testing nothing would hide a broken Postgres
/// implementation.
pub async fn fresh_postgres() -> (DynStore, String) {
    let url = empty_postgres().await;
    let store = store::connect(&url)
        .await
        .expect("connect to the test database");
    store
        .migrate()
        .await
        .expect("migrate the Postgres database");
    (store, url)
}

/// The URL of a new, empty database on the shared Postgres server.
pub async fn empty_postgres() -> String {
    let admin_url = admin_url();
    let name = format!("portcullis_test_{}", uuid::Uuid::new_v4().simple());
    let mut admin = PgConnection::connect(admin_url)
        .await
        .unwrap_or_else(|e| panic!("connect to the test Postgres ({admin_url}): {e}"));
    // The name is ours (a prefix and a UUID): nothing to inject.
    sqlx::query(AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut admin)
        .await
        .expect("create the test database");
    admin.close().await.ok();

    let mut url = Url::parse(admin_url).expect("the test Postgres URL is a URL");
    url.set_path(&name);
    url.to_string()
}

/// The admin URL (superuser, no password) of the Postgres server this test process shares:
/// `TEST_POSTGRES_URL` when set (`scripts/test.sh` sets it; cargo-nextest runs every test in a
/// process of its own), otherwise a throwaway cluster started on first use and stopped, its
/// files removed, once this process has exited.
pub fn admin_url() -> &'static str {
    static SHARED: OnceLock<Result<SharedPostgres, String>> = OnceLock::new();
    let shared = SHARED.get_or_init(|| match std::env::var("TEST_POSTGRES_URL") {
        Ok(url) => Ok(SharedPostgres {
            url,
            _guardian: None,
        }),
        Err(_) => start_cluster(),
    });
    match shared {
        Ok(shared) => &shared.url,
        // A failed start is reported to every Postgres test, without a retry each.
        Err(error) => panic!("{error}"),
    }
}

struct SharedPostgres {
    url: String,
    /// The write end of the guardian's stdin, never closed while this process lives.
    _guardian: Option<ChildStdin>,
}

/// Starts a cluster the way `scripts/test.sh` does (initdb, trust auth, 127.0.0.1 only, fsync
/// off; as the `postgres` user when root, since Postgres refuses to run as root) under a
/// guardian shell. Statics are never dropped, so the cluster's lifetime is tied to a pipe
/// instead: the guardian reads its stdin, whose write end only this process holds, and when that
/// hits end of file (this process exited, however) it stops Postgres and removes the directory.
fn start_cluster() -> Result<SharedPostgres, String> {
    const GUARDIAN: &str = r#"
        bin=$1 dir=$2 port=$3
        exec 2>&1
        # A Ctrl-C reaches the whole foreground process group: outlive it, to clean up. And
        # outlive a test process that dies before READY is read: no SIGPIPE.
        trap '' INT HUP PIPE
        cd "$dir" || exit 1
        data="$dir/data"
        if [ "$(id -u)" = 0 ]; then
            runuser=$(command -v runuser || echo /usr/sbin/runuser)
            as_postgres() { "$runuser" -u postgres -- "$@"; }
            mkdir -m 700 "$data" && chown postgres: "$data" || exit 1
        else
            as_postgres() { "$@"; }
            mkdir -m 700 "$data" || exit 1
        fi
        if ! as_postgres "$bin/initdb" -D "$data" -A trust -U postgres -E UTF8 --locale=C.UTF-8 \
                --no-sync >"$dir/initdb.log" 2>&1; then
            echo "initdb failed:"; cat "$dir/initdb.log"; rm -rf "$dir"; exit 1
        fi
        if ! as_postgres "$bin/pg_ctl" -D "$data" -l "$data/server.log" -w -t 60 \
                -o "-c listen_addresses=127.0.0.1 -p $port -k '$data' -c max_connections=200 -c fsync=off -c synchronous_commit=off -c full_page_writes=off" \
                start >/dev/null </dev/null; then
            echo "Postgres did not start:"; tail -n 40 "$data/server.log"
            as_postgres "$bin/pg_ctl" -D "$data" -m immediate -w stop >/dev/null 2>&1
            rm -rf "$dir"; exit 1
        fi
        echo READY
        # Nobody may read stdout any more: writing to it would kill this shell (SIGPIPE).
        exec >/dev/null 2>&1
        cat >/dev/null
        as_postgres "$bin/pg_ctl" -D "$data" -m immediate -w stop
        rm -rf "$dir"
    "#;

    let bin = super::prereq::postgres_bin();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map_err(|e| format!("finding a free port for the test Postgres: {e}"))?
        .port();
    let dir = tempfile::Builder::new()
        .prefix("portcullis-test-pg.")
        .tempdir()
        .map_err(|e| format!("creating a directory for the test Postgres: {e}"))?
        .keep(); // the guardian removes it
    // The postgres user must reach its data directory inside.
    std::fs::set_permissions(&dir, std::os::unix::fs::PermissionsExt::from_mode(0o755))
        .map_err(|e| format!("chmod {}: {e}", dir.display()))?;

    let mut guardian = Command::new("sh")
        .args(["-c", GUARDIAN, "portcullis-test-postgres"])
        .arg(&bin)
        .arg(&dir)
        .arg(port.to_string())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("starting the test Postgres' guardian shell: {e}"))?;
    let stdin = guardian.stdin.take().expect("piped stdin");
    let stdout = guardian.stdout.take().expect("piped stdout");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut output = Vec::new();
    loop {
        match rx.recv_timeout(Duration::from_secs(120)) {
            Ok(line) if line == "READY" => break,
            Ok(line) => output.push(line),
            Err(error) => {
                // Closing stdin makes the guardian stop whatever it started.
                drop(stdin);
                return Err(format!(
                    "the test Postgres ({}, port {port}) did not start ({error}):\n{}",
                    bin.display(),
                    output.join("\n")
                ));
            }
        }
    }
    Ok(SharedPostgres {
        url: format!("postgres://postgres@127.0.0.1:{port}/postgres"),
        _guardian: Some(stdin),
    })
}
