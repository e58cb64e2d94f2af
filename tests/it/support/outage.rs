//! Peers a test may take away and bring back: a Postgres cluster and a redis-server of its own,
//! on free loopback ports, stopped and started again on the same data and port.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

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

/// A redis-server only this test uses, without persistence, so that it can stop it. Stopped
/// when dropped.
pub struct PrivateRedis {
    port: u16,
    server: Option<Child>,
}

impl PrivateRedis {
    pub fn start_new() -> Self {
        let mut redis = Self {
            port: free_port(),
            server: None,
        };
        redis.start();
        redis
    }

    /// `redis://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Starts the server (again) on its port, and waits until it answers.
    pub fn start(&mut self) {
        assert!(self.server.is_none(), "redis-server is running already");
        let port = self.port.to_string();
        let server = Command::new("redis-server")
            .args(["--port", &port, "--bind", "127.0.0.1", "--save", ""])
            .args(["--appendonly", "no", "--daemonize", "no"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start redis-server (is it installed? scripts/test.sh installs it)");
        self.server = Some(server);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while !self.answers() {
            assert!(
                std::time::Instant::now() < deadline,
                "redis-server did not answer on port {port}"
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }

    /// Whether it answers a `PING` (in RESP, by hand: no Redis client in this suite yet).
    pub fn answers(&self) -> bool {
        use std::io::{Read, Write};
        let Ok(mut stream) = std::net::TcpStream::connect(("127.0.0.1", self.port)) else {
            return false;
        };
        let mut reply = [0u8; 7];
        stream.write_all(b"PING\r\n").is_ok()
            && stream.read_exact(&mut reply).is_ok()
            && &reply == b"+PONG\r\n"
    }

    /// Ends the server (the process this test started, by its id) and waits for it.
    pub fn stop(&mut self) {
        if let Some(mut server) = self.server.take() {
            let _ = server.kill();
            let _ = server.wait();
        }
    }
}

impl Drop for PrivateRedis {
    fn drop(&mut self) {
        self.stop();
    }
}
