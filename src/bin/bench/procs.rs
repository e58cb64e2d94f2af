//! The processes under test and the peers they talk to, and what `/proc` says about them.
//!
//! Server CPU is read two ways. `/proc/{pid}/stat` (utime + stime of the whole process, exited
//! threads included) is exact in total but counted in 10 ms ticks; the sum over the live threads
//! of `/proc/{pid}/task/*/schedstat` (time on CPU, in nanoseconds) is precise but misses a thread
//! that exits. A delta uses the precise sum unless a thread went away in between, then the ticks.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use tokio::io::{AsyncBufReadExt, BufReader, Lines};
use tokio::process::{Child, ChildStdout, Command};

/// A node peer (the test OpenID provider, server-everything): killed when dropped, and stops by
/// itself when the bench dies (`--exit-with-parent`).
pub struct NodePeer {
    /// What it printed after `READY `: the IdP's issuer, or server-everything's MCP URL.
    pub url: String,
    pub pid: u32,
    _child: Child,
    // Kept open: closing the pipe's reading end would break a later write to stdout.
    _stdout: Lines<BufReader<ChildStdout>>,
}

/// Starts `node <script> --port 0 --exit-with-parent` and waits for its `READY <url>` line.
pub async fn start_node(script: &Path, log: &Path) -> anyhow::Result<NodePeer> {
    let modules = script
        .parent()
        .context("script without a folder")?
        .join("node_modules");
    if !modules.is_dir() {
        bail!(
            "{} is missing: run `npm ci --no-audit --no-fund` in {}",
            modules.display(),
            script.parent().map(Path::display).context("no folder")?
        );
    }
    let mut child = Command::new("node")
        .arg(script)
        .args(["--port", "0", "--exit-with-parent"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(log)?)
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("starting node {}", script.display()))?;
    let pid = child.id().context("node exited at once")?;
    let mut lines = BufReader::new(child.stdout.take().context("no stdout")?).lines();
    let ready = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
        .await
        .with_context(|| format!("{} did not print READY within 30 s", script.display()))??;
    let Some(url) = ready.as_deref().and_then(|l| l.strip_prefix("READY ")) else {
        bail!(
            "{} printed {ready:?} instead of `READY <url>` (see {})",
            script.display(),
            log.display()
        );
    };
    Ok(NodePeer {
        url: url.to_owned(),
        pid,
        _child: child,
        _stdout: lines,
    })
}

/// The `portcullis` next to this binary. Under `cargo run` (which sets `CARGO`) it is built
/// first, so the server measured is the code the bench was built from; run directly, the bench
/// uses the binary as it is and says so when it is older than the bench.
pub async fn server_binary() -> anyhow::Result<PathBuf> {
    let bench = std::env::current_exe()?;
    let binary = bench.with_file_name("portcullis");
    if cfg!(debug_assertions) {
        eprintln!("bench: this is a debug build; run `cargo run --release --bin bench`");
    }
    if let Some(cargo) = std::env::var_os("CARGO") {
        let manifest = Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml");
        let mut build = Command::new(cargo);
        build
            .args(["build", "--quiet", "--bin", "portcullis", "--manifest-path"])
            .arg(&manifest);
        if !cfg!(debug_assertions) {
            build.arg("--release");
        }
        if !build.status().await?.success() {
            bail!("building portcullis failed");
        }
    }
    if !binary.is_file() {
        bail!(
            "{} is missing: run `cargo build --release --bins` first",
            binary.display()
        );
    }
    let modified = |path: &Path| std::fs::metadata(path).and_then(|m| m.modified());
    if let (Ok(server), Ok(bench)) = (modified(&binary), modified(&bench))
        && server < bench
    {
        eprintln!(
            "bench: {} is older than the bench: `cargo build --release --bins` rebuilds it",
            binary.display()
        );
    }
    Ok(binary)
}

/// `portcullis keys generate`: a fresh Fernet key.
pub async fn generate_key(binary: &Path) -> anyhow::Result<String> {
    let output = Command::new(binary)
        .args(["keys", "generate"])
        .output()
        .await?;
    if !output.status.success() {
        bail!("portcullis keys generate failed: {output:?}");
    }
    Ok(String::from_utf8(output.stdout)?.trim().to_owned())
}

/// The server under test, `portcullis serve`; killed when dropped.
pub struct Server {
    /// `http://{addr}`.
    pub base: String,
    pub addr: SocketAddr,
    pub pid: u32,
    /// Its stderr: the log, at the shipped defaults.
    pub log: PathBuf,
    _child: Child,
}

/// Starts `portcullis --config <config> serve` in `dir` with nothing from the bench's own
/// environment that Portcullis reads but `PORTCULLIS_FERNET_KEYS`, and waits until
/// `/health/live` answers at `addr` (the configuration's `bind`). Its output goes to
/// `{name}.out` and `{name}.log`. Returns the server and how long that took.
pub async fn start_server(
    binary: &Path,
    dir: &Path,
    name: &str,
    config: &Path,
    addr: SocketAddr,
    fernet_key: &str,
) -> anyhow::Result<(Server, Duration)> {
    let log = dir.join(format!("{name}.log"));
    let mut command = Command::new(binary);
    command
        .arg("--config")
        .arg(config)
        .arg("serve")
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(dir.join(format!("{name}.out")))?)
        .stderr(std::fs::File::create(&log)?)
        .kill_on_drop(true);
    for (name, _) in std::env::vars_os() {
        let name = name.to_string_lossy();
        if name.starts_with("PORTCULLIS_")
            || ["RUST_LOG", "DATABASE_URL", "REDIS_URL", "PUBLIC_BASE_URL"].contains(&&*name)
        {
            command.env_remove(&*name);
        }
    }
    command.env("PORTCULLIS_FERNET_KEYS", fernet_key);
    die_with_bench(&mut command);
    let started = Instant::now();
    let mut child = command.spawn()?;
    let pid = child.id().context("portcullis exited at once")?;
    let base = format!("http://{addr}");
    let http = reqwest::Client::builder().no_proxy().build()?;
    loop {
        if http
            .get(format!("{base}/health/live"))
            .send()
            .await
            .is_ok_and(|r| r.status().is_success())
        {
            let elapsed = started.elapsed();
            let server = Server {
                base,
                addr,
                pid,
                log,
                _child: child,
            };
            return Ok((server, elapsed));
        }
        if let Some(status) = child.try_wait()? {
            bail!("portcullis exited with {status}; see {}", log.display());
        }
        if started.elapsed() > Duration::from_secs(30) {
            bail!("portcullis did not answer /health/live within 30 s");
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

/// Like the node peers' `--exit-with-parent`: a bench killed outright leaves no child behind.
pub fn die_with_bench(command: &mut Command) {
    #[cfg(target_os = "linux")]
    // SAFETY: the closure runs in the child between fork and exec and makes one prctl system
    // call through rustix, which neither allocates nor locks: it is async-signal-safe.
    unsafe {
        command.pre_exec(|| {
            rustix::process::set_parent_process_death_signal(Some(rustix::process::Signal::KILL))
                .map_err(std::io::Error::from)
        });
    }
}

impl Server {
    pub fn cpu(&self) -> anyhow::Result<CpuSample> {
        CpuSample::read(self.pid)
    }

    pub fn rss_mib(&self) -> anyhow::Result<f64> {
        rss_mib(self.pid)
    }

    /// Lines written to its log so far.
    pub fn log_lines(&self) -> anyhow::Result<usize> {
        Ok(std::fs::read(&self.log)?
            .iter()
            .filter(|b| **b == b'\n')
            .count())
    }
}

/// Resident memory of a process, in MiB.
pub fn rss_mib(pid: u32) -> anyhow::Result<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let kib: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .context("no VmRSS")?
        .parse()?;
    Ok(kib / 1024.0)
}

/// A process's CPU time at one moment.
#[derive(Debug, Clone)]
pub struct CpuSample {
    /// utime and stime from `/proc/{pid}/stat`, in nanoseconds (10 ms steps).
    user_ns: u64,
    system_ns: u64,
    /// Time on CPU of each live thread, from its `schedstat`.
    threads: HashMap<u32, u64>,
    /// Each live thread's name (`comm`, at most 15 bytes).
    names: HashMap<u32, String>,
}

impl CpuSample {
    pub fn read(pid: u32) -> anyhow::Result<Self> {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
        // Fields after the command name (which may contain spaces) start after the last ')'.
        let fields: Vec<&str> = stat
            .rsplit_once(')')
            .context("malformed /proc stat")?
            .1
            .split_whitespace()
            .collect();
        let (user, system): (u64, u64) = (fields[11].parse()?, fields[12].parse()?);
        let mut threads = HashMap::new();
        let mut names = HashMap::new();
        for task in std::fs::read_dir(format!("/proc/{pid}/task"))? {
            let task = task?;
            let Ok(tid) = task.file_name().to_string_lossy().parse::<u32>() else {
                continue;
            };
            // A thread may exit between the listing and the read.
            if let Ok(schedstat) = std::fs::read_to_string(task.path().join("schedstat"))
                && let Some(ns) = schedstat
                    .split_whitespace()
                    .next()
                    .and_then(|v| v.parse().ok())
            {
                threads.insert(tid, ns);
                if let Ok(name) = std::fs::read_to_string(task.path().join("comm")) {
                    names.insert(tid, name.trim().to_owned());
                }
            }
        }
        // USER_HZ, the unit of these fields, is 100 on Linux.
        Ok(Self {
            user_ns: user * 10_000_000,
            system_ns: system * 10_000_000,
            threads,
            names,
        })
    }

    /// User and system (kernel) CPU from `earlier` to `self`, in 10 ms steps.
    pub fn split_since(&self, earlier: &CpuSample) -> (Duration, Duration) {
        (
            Duration::from_nanos(self.user_ns.saturating_sub(earlier.user_ns)),
            Duration::from_nanos(self.system_ns.saturating_sub(earlier.system_ns)),
        )
    }

    /// CPU used from `earlier` to `self` by the threads still alive, by thread name, largest
    /// first.
    pub fn by_thread_name(&self, earlier: &CpuSample) -> Vec<(String, Duration)> {
        let mut names: Vec<(String, Duration)> = Vec::new();
        for (tid, ns) in &self.threads {
            let used = Duration::from_nanos(
                ns.saturating_sub(earlier.threads.get(tid).copied().unwrap_or(0)),
            );
            let name = self.names.get(tid).map_or("?", String::as_str);
            match names.iter_mut().find(|(n, _)| n == name) {
                Some((_, total)) => *total += used,
                None => names.push((name.to_owned(), used)),
            }
        }
        names.sort_by_key(|(_, used)| std::cmp::Reverse(*used));
        names
    }

    /// CPU used from `earlier` to `self`.
    pub fn since(&self, earlier: &CpuSample) -> Duration {
        let thread_exited = earlier
            .threads
            .keys()
            .any(|tid| !self.threads.contains_key(tid));
        if thread_exited || self.threads.is_empty() {
            let (user, system) = self.split_since(earlier);
            return user + system;
        }
        let ns = self
            .threads
            .iter()
            .map(|(tid, ns)| ns.saturating_sub(earlier.threads.get(tid).copied().unwrap_or(0)))
            .sum();
        Duration::from_nanos(ns)
    }
}

/// The CPU and memory of this machine, as `lscpu` names it.
pub fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    format!("{cpu}, {cores} cores")
}

/// The 1-minute load average: how busy the machine was with other work.
pub fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|l| l.split_whitespace().next().map(str::to_owned))
        .unwrap_or_else(|| "?".into())
}

/// A free port on 127.0.0.1 (the kernel picks it; it is released for the server to bind).
pub fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// One port free on every address of `hosts` (loopback addresses: all of 127.0.0.0/8 is
/// loopback on Linux), for instances that share a public URL and differ only in their address.
pub fn shared_free_port(hosts: &[std::net::Ipv4Addr]) -> anyhow::Result<u16> {
    let first = *hosts.first().context("no address")?;
    for _ in 0..20 {
        let port = std::net::TcpListener::bind((first, 0))?
            .local_addr()?
            .port();
        if hosts
            .iter()
            .all(|host| std::net::TcpListener::bind((*host, port)).is_ok())
        {
            return Ok(port);
        }
    }
    bail!("found no port free on all of {hosts:?}")
}

/// The CPU a process and its children have used so far, in 10 ms ticks: its own, its
/// live children's and that of the children it has waited for (a Postgres server: the
/// postmaster and its backends, including those that ended).
pub fn tree_cpu(pid: u32) -> anyhow::Result<Duration> {
    // The parent, and utime + stime + cutime + cstime.
    let ticks = |stat: &str| -> Option<(u32, u64)> {
        let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
        let parent = fields.get(1)?.parse().ok()?;
        let used = fields
            .get(11..=14)?
            .iter()
            .map(|f| f.parse::<u64>().ok())
            .sum::<Option<u64>>()?;
        Some((parent, used))
    };
    let own = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    let (_, mut total) = ticks(&own).context("malformed /proc stat")?;
    for entry in std::fs::read_dir("/proc")? {
        let name = entry?.file_name();
        let Some(child) = name.to_str().and_then(|n| n.parse::<u32>().ok()) else {
            continue;
        };
        // A process may end between the listing and the read.
        if let Ok(stat) = std::fs::read_to_string(format!("/proc/{child}/stat"))
            && let Some((parent, used)) = ticks(&stat)
            && parent == pid
        {
            total += used;
        }
    }
    Ok(Duration::from_millis(total * 10))
}
