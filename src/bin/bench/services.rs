//! A private Postgres and Redis on free loopback ports, in the bench's temporary folder, as
//! `scripts/test.sh` starts them: throwaway, so without durability. Each is stopped when
//! dropped, also when the bench fails: Postgres with `pg_ctl stop` and then by its PID, Redis by
//! its PID.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use tokio::process::{Child, Command};

use crate::procs;

/// A Postgres cluster of its own.
pub struct Postgres {
    /// `postgres://postgres@127.0.0.1:PORT/postgres`.
    pub url: String,
    /// The postmaster's.
    pub pid: u32,
    bin: PathBuf,
    data: PathBuf,
}

/// The newest `/usr/lib/postgresql/*/bin` that has `initdb`.
fn postgres_bin() -> Option<PathBuf> {
    let mut found: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|entry| {
            let entry = entry.ok()?;
            let version = entry.file_name().to_str()?.parse().ok()?;
            let bin = entry.path().join("bin");
            bin.join("initdb").is_file().then_some((version, bin))
        })
        .collect();
    found.sort();
    found.pop().map(|(_, bin)| bin)
}

/// What is missing to run the parts that need Postgres (`postgres`) or Redis, if anything.
pub fn missing(postgres: bool) -> Option<String> {
    let mut missing = Vec::new();
    if postgres && postgres_bin().is_none() {
        missing.push("postgresql (no initdb under /usr/lib/postgresql/*/bin)");
    }
    let redis = std::env::var_os("PATH").is_some_and(|path| {
        std::env::split_paths(&path).any(|dir| dir.join("redis-server").is_file())
    });
    if !redis {
        missing.push("redis-server (not on PATH)");
    }
    (!missing.is_empty()).then(|| missing.join(" and "))
}

/// Postgres refuses to run as root: as root, its tools run as the `postgres` user, from a
/// folder that user can read.
fn as_postgres(program: &Path, cwd: &Path) -> std::process::Command {
    let mut command = if rustix::process::geteuid().is_root() {
        let runuser = Path::new("/usr/sbin/runuser");
        let mut command = std::process::Command::new(if runuser.is_file() {
            runuser
        } else {
            Path::new("runuser")
        });
        command.args(["-u", "postgres", "--"]).arg(program);
        command
    } else {
        std::process::Command::new(program)
    };
    command.current_dir(cwd).stdin(Stdio::null());
    command
}

/// Runs `command` to its end, its output to `log`; fails with the log's end when it fails.
async fn run_logged(
    mut command: std::process::Command,
    log: &Path,
    what: &str,
) -> anyhow::Result<()> {
    command
        .stdout(std::fs::File::create(log)?)
        .stderr(std::fs::File::create(log.with_extension("err"))?);
    let status = Command::from(command).status().await?;
    if !status.success() {
        let said = std::fs::read_to_string(log.with_extension("err")).unwrap_or_default();
        bail!("{what} failed ({status}): {}", said.trim());
    }
    Ok(())
}

impl Postgres {
    /// `initdb` a cluster in `dir/postgres` and start it on a free port of 127.0.0.1, its unix
    /// socket in its data folder, without fsync.
    pub async fn start(dir: &Path) -> anyhow::Result<Postgres> {
        let bin = postgres_bin().context("no PostgreSQL server under /usr/lib/postgresql")?;
        let data = dir.join("postgres");
        std::fs::create_dir(&data)?;
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755))?;
        std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o700))?;
        if rustix::process::geteuid().is_root() {
            let status = Command::new("chown")
                .args(["postgres:", "--"])
                .arg(&data)
                .status()
                .await?;
            if !status.success() {
                bail!("chown postgres: {} failed ({status})", data.display());
            }
        }
        let mut initdb = as_postgres(&bin.join("initdb"), dir);
        initdb
            .arg("-D")
            .arg(&data)
            .args(["-A", "trust", "-U", "postgres", "-E", "UTF8"])
            .args(["--locale=C.UTF-8", "--no-sync"]);
        run_logged(initdb, &dir.join("initdb.log"), "initdb").await?;
        let port = procs::free_port()?;
        let mut postgres = Postgres {
            url: format!("postgres://postgres@127.0.0.1:{port}/postgres"),
            pid: 0,
            bin,
            data,
        };
        // From here on, dropping `postgres` stops whatever started.
        let options = format!(
            "-c listen_addresses=127.0.0.1 -p {port} -k '{}' -c max_connections=200 \
             -c fsync=off -c synchronous_commit=off -c full_page_writes=off",
            postgres.data.display()
        );
        let mut start = as_postgres(&postgres.bin.join("pg_ctl"), dir);
        start
            .arg("-D")
            .arg(&postgres.data)
            .arg("-l")
            .arg(postgres.data.join("server.log"))
            .args(["-w", "-t", "60", "-o", &options, "start"]);
        run_logged(start, &dir.join("pg_ctl.log"), "pg_ctl start")
            .await
            .with_context(|| format!("see {}", postgres.data.join("server.log").display()))?;
        let pid_file = std::fs::read_to_string(postgres.data.join("postmaster.pid"))?;
        postgres.pid = pid_file
            .lines()
            .next()
            .and_then(|l| l.trim().parse().ok())
            .context("no PID in postmaster.pid")?;
        Ok(postgres)
    }

    /// CPU used so far by the postmaster and its backends, in 10 ms ticks.
    pub fn cpu(&self) -> anyhow::Result<Duration> {
        procs::tree_cpu(self.pid)
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let cwd = self.data.parent().unwrap_or(Path::new("/"));
        let stopped = as_postgres(&self.bin.join("pg_ctl"), cwd)
            .arg("-D")
            .arg(&self.data)
            .args(["-m", "fast", "-w", "-t", "30", "stop"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !stopped && let Some(pid) = rustix::process::Pid::from_raw(self.pid as i32) {
            let _ = rustix::process::kill_process(pid, rustix::process::Signal::KILL);
        }
    }
}

/// A Redis server without persistence; killed when dropped.
pub struct Redis {
    /// `redis://127.0.0.1:PORT`.
    pub url: String,
    pub pid: u32,
    _child: Child,
}

impl Redis {
    /// Starts `redis-server` on a free port of 127.0.0.1 and waits until it answers `PING`.
    pub async fn start(dir: &Path) -> anyhow::Result<Redis> {
        let port = procs::free_port()?;
        let mut command = Command::new("redis-server");
        command
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no", "--daemonize", "no"])
            .arg("--dir")
            .arg(dir)
            .arg("--logfile")
            .arg(dir.join("redis.log"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .kill_on_drop(true);
        procs::die_with_bench(&mut command);
        let mut child = command.spawn().context("starting redis-server")?;
        let pid = child.id().context("redis-server exited at once")?;
        let url = format!("redis://127.0.0.1:{port}");
        let client = portcullis::cluster::Redis::new(&url.parse()?, "bench")?;
        let started = Instant::now();
        while client.ping().await.is_err() {
            if let Some(status) = child.try_wait()? {
                bail!(
                    "redis-server exited with {status}; see {}",
                    dir.join("redis.log").display()
                );
            }
            if started.elapsed() > Duration::from_secs(30) {
                bail!("redis-server did not answer PING within 30 s");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Ok(Redis {
            url,
            pid,
            _child: child,
        })
    }
}
