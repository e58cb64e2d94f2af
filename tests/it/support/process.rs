//! Portcullis as a separate process (the built binary), so that a test can `kill -9` it and
//! start it again, and a round-robin TCP proxy to put several in front of one client.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use tokio::net::{TcpListener, TcpStream};

/// A free loopback port (bound and let go: a port the instance can take).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free loopback port")
        .port()
}

/// How an instance is run: its configuration file, and what the environment adds to it.
#[derive(Clone)]
pub struct Launch {
    pub config_toml: String,
    pub database_url: String,
    /// The URL clients reach it at (`PUBLIC_BASE_URL`): its own, or a proxy's.
    pub public_base_url: String,
    pub redis_url: Option<String>,
}

/// `portcullis serve` on 127.0.0.1:`port`. Killed when dropped.
pub struct Instance {
    launch: Launch,
    port: u16,
    dir: tempfile::TempDir,
    child: Option<Child>,
}

impl Instance {
    /// Starts an instance on `port` and waits until it answers.
    pub async fn start(launch: Launch, port: u16) -> Self {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("portcullis.toml"), &launch.config_toml).unwrap();
        let mut instance = Self {
            launch,
            port,
            dir,
            child: None,
        };
        instance.restart().await;
        instance
    }

    /// `http://127.0.0.1:PORT`: this instance itself, whatever the public URL.
    pub fn base(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn log(&self) -> PathBuf {
        self.dir.path().join("portcullis.log")
    }

    /// Starts the process (again: same port, configuration and database) and waits until it
    /// answers `/health/live`.
    pub async fn restart(&mut self) {
        assert!(self.child.is_none(), "the instance is running already");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log())
            .unwrap();
        let mut command = Command::new(env!("CARGO_BIN_EXE_portcullis"));
        command
            .args(["--config", "portcullis.toml", "serve"])
            .current_dir(self.dir.path())
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("PORTCULLIS_BIND", format!("127.0.0.1:{}", self.port))
            .env("DATABASE_URL", &self.launch.database_url)
            .env("PUBLIC_BASE_URL", &self.launch.public_base_url)
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log);
        if let Some(redis) = &self.launch.redis_url {
            command.env("REDIS_URL", redis);
        }
        self.child = Some(command.spawn().unwrap());
        let http = reqwest::Client::new();
        let live = format!("{}/health/live", self.base());
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(response) = http.get(&live).send().await
                && response.status().is_success()
            {
                return;
            }
            let exited = self.child.as_mut().unwrap().try_wait().unwrap();
            assert!(
                exited.is_none() && Instant::now() < deadline,
                "portcullis on port {} did not start ({exited:?}):\n{}",
                self.port,
                self.output()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// `kill -9`: no shutdown, nothing flushed; returns once the process is gone.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            // SIGKILL, to the process this test started.
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// What the process has logged (to explain a failure).
    pub fn output(&self) -> String {
        std::fs::read_to_string(self.log()).unwrap_or_default()
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A TCP proxy on 127.0.0.1 that hands each new connection to the next upstream in turn, and
/// counts the connections each received. With a client that opens a connection per request,
/// consecutive requests alternate between the upstreams.
pub struct RoundRobin {
    pub addr: SocketAddr,
    counts: Arc<Vec<AtomicUsize>>,
    task: tokio::task::JoinHandle<()>,
}

impl RoundRobin {
    pub async fn start(upstreams: Vec<SocketAddr>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let counts: Arc<Vec<AtomicUsize>> =
            Arc::new(upstreams.iter().map(|_| AtomicUsize::new(0)).collect());
        let counted = counts.clone();
        let task = tokio::spawn(async move {
            let mut next = 0;
            while let Ok((mut inbound, _)) = listener.accept().await {
                let index = next % upstreams.len();
                next += 1;
                counted[index].fetch_add(1, Ordering::SeqCst);
                let upstream = upstreams[index];
                tokio::spawn(async move {
                    if let Ok(mut outbound) = TcpStream::connect(upstream).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
            }
        });
        Self { addr, counts, task }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The connections each upstream received so far, in the order given.
    pub fn counts(&self) -> Vec<usize> {
        self.counts
            .iter()
            .map(|count| count.load(Ordering::SeqCst))
            .collect()
    }
}

impl Drop for RoundRobin {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// An HTTP client that opens a new connection for every request (through a [`RoundRobin`],
/// every request goes to the next upstream), follows no redirect, and keeps cookies when
/// `cookies`, as a browser does.
pub fn one_connection_per_request(cookies: bool) -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .pool_max_idle_per_host(0)
        .cookie_store(cookies)
        .build()
        .unwrap()
}
