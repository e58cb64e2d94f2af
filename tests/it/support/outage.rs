//! Peers a test may take away and bring back: a Postgres cluster and a redis-server of its own,
//! on free loopback ports, stopped and started again on the same data and port.

use std::path::PathBuf;
use std::process::{Command, Stdio};

use sqlx::{AssertSqlSafe, Connection, PgConnection};

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free loopback port")
        .port()
}

/// Runs `program args…`, as the `postgres` user when this process is root (Postgres refuses to
/// run as root), and panics with its output when it fails.
fn as_postgres(program: PathBuf, args: &[&str]) {
    let output = run_as_postgres(&program, args);
    assert!(
        output.status.success(),
        "{} {args:?}: {}{}",
        program.display(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

fn run_as_postgres(program: &std::path::Path, args: &[&str]) -> std::process::Output {
    const AS_POSTGRES: &str = r#"
        if [ "$(id -u)" = 0 ]; then
            exec "$(command -v runuser || echo /usr/sbin/runuser)" -u postgres -- "$@"
        fi
        exec "$@"
    "#;
    Command::new("sh")
        .args(["-c", AS_POSTGRES, "as-postgres"])
        .arg(program)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run sh")
}

/// A Postgres cluster only this test uses, so that it can stop it. Stopped (immediately) and
/// removed when dropped.
pub struct PrivatePostgres {
    bin: PathBuf,
    dir: tempfile::TempDir,
    port: u16,
}

impl PrivatePostgres {
    /// Creates the cluster and starts it.
    pub fn start_new() -> Self {
        let bin = super::prereq::postgres_bin();
        let dir = tempfile::Builder::new()
            .prefix("portcullis-fault-pg.")
            .tempdir()
            .expect("a directory for the cluster");
        // The postgres user must reach its data directory inside.
        std::fs::set_permissions(
            dir.path(),
            std::os::unix::fs::PermissionsExt::from_mode(0o755),
        )
        .unwrap();
        let data = dir.path().join("data");
        let output = Command::new("sh")
            .args([
                "-c",
                r#"mkdir -m 700 "$1" && if [ "$(id -u)" = 0 ]; then chown postgres: "$1"; fi"#,
                "mkdata",
            ])
            .arg(&data)
            .output()
            .unwrap();
        assert!(output.status.success(), "{output:?}");
        let postgres = Self {
            port: free_port(),
            bin,
            dir,
        };
        let data = postgres.data();
        as_postgres(
            postgres.bin.join("initdb"),
            &[
                "-D",
                &data,
                "-A",
                "trust",
                "-U",
                "postgres",
                "-E",
                "UTF8",
                "--locale=C.UTF-8",
                "--no-sync",
            ],
        );
        postgres.start();
        postgres
    }

    fn data(&self) -> String {
        self.dir.path().join("data").display().to_string()
    }

    /// Starts the server (again) on its port and data, and waits until it accepts connections.
    pub fn start(&self) {
        let options = format!(
            "-c listen_addresses=127.0.0.1 -p {} -k '{}' -c fsync=off -c synchronous_commit=off -c full_page_writes=off",
            self.port,
            self.data()
        );
        let log = format!("{}/server.log", self.data());
        as_postgres(
            self.bin.join("pg_ctl"),
            &[
                "-D",
                &self.data(),
                "-l",
                &log,
                "-w",
                "-t",
                "60",
                "-o",
                &options,
                "start",
            ],
        );
    }

    /// Stops the server as an operator would (`fast`: sessions are ended with "terminating
    /// connection due to administrator command") and waits until it is down.
    pub fn stop(&self) {
        self.stop_with("fast");
    }

    fn stop_with(&self, mode: &str) {
        as_postgres(
            self.bin.join("pg_ctl"),
            &["-D", &self.data(), "-m", mode, "-w", "stop"],
        );
    }

    /// The URL of a new, empty database on this cluster.
    pub async fn fresh_database(&self) -> String {
        let admin = format!("postgres://postgres@127.0.0.1:{}/postgres", self.port);
        let name = format!("portcullis_fault_{}", uuid::Uuid::new_v4().simple());
        let mut connection = PgConnection::connect(&admin).await.unwrap();
        // The name is ours (a prefix and a UUID): nothing to inject.
        sqlx::query(AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut connection)
            .await
            .unwrap();
        connection.close().await.ok();
        format!("postgres://postgres@127.0.0.1:{}/{name}", self.port)
    }
}

impl Drop for PrivatePostgres {
    fn drop(&mut self) {
        // It may be stopped already: then pg_ctl fails, which is fine here.
        let data = self.data();
        let _ = run_as_postgres(
            &self.bin.join("pg_ctl"),
            &["-D", &data, "-m", "immediate", "-w", "stop"],
        );
    }
}
