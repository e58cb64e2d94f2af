//! Stdio MCP backends (`command = [...]`): Portcullis starts the server program, is its MCP client
//! over stdin and stdout, and supervises it. By default each user gets a process of their own,
//! started on their first call and stopped when idle, up to `max_processes`; `shared = true`
//! runs one process for everybody. A process that exits fails the calls in flight on it at once
//! and is started afresh by the next call, never by itself.

/// Newline-delimited JSON-RPC over pipes, bounded.
mod framing;
/// One process's JSON-RPC traffic, shared by many callers.
mod link;
/// Starting, handshaking with and stopping one process.
mod process;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::time::Duration;

use async_trait::async_trait;
use futures::FutureExt;
use futures::future::{BoxFuture, Shared};
use serde_json::Value;
use tokio::time::{Instant, MissedTickBehavior, timeout_at};

use super::connection::{CallContext, CallError, Connection, Notifications};
use super::era::ServerFacts;
use crate::config::{BackendSettings, ForwardMode, StdioSettings};
use process::{Process, Spec};

/// Whose process: a user's, or everybody's (`None`) on a shared backend.
type Key = Option<String>;

/// A process being started, or started: every request that needs it meanwhile awaits the same
/// start.
type Starting = Shared<BoxFuture<'static, Result<Arc<Process>, CallError>>>;

/// The processes of one stdio backend.
pub struct StdioPool {
    inner: Arc<PoolShared>,
}

/// What the pool handle, its leases and its reaper share.
struct PoolShared {
    spec: Arc<Spec>,
    /// Per-user processes learn who they serve from their environment (headers do not exist
    /// on stdio): `PORTCULLIS_USER`, `PORTCULLIS_EMAIL`.
    identity_env: bool,
    idle_timeout: Duration,
    max_processes: usize,
    slots: Mutex<Slots>,
}

#[derive(Default)]
struct Slots {
    by_key: HashMap<Key, Slot>,
    next_id: u64,
    reaper_started: bool,
    closing: bool,
}

struct Slot {
    /// Tells this slot from a later one for the same key.
    id: u64,
    process: Starting,
    /// Requests holding the slot. Counted under the pool's lock, so the reaper never takes a
    /// process that a request has just been given.
    busy: usize,
    last_used: Instant,
}

impl Slot {
    fn running(&self) -> Option<&Arc<Process>> {
        self.process
            .peek()
            .and_then(|started| started.as_ref().ok())
    }

    /// Exited, or failed to start: the next request replaces it.
    fn is_dead(&self) -> bool {
        match self.process.peek() {
            None => false,
            Some(Ok(process)) => !process.is_alive(),
            Some(Err(_)) => true,
        }
    }

    fn stop(&self) {
        if let Some(process) = self.running() {
            process.kill();
        }
    }
}

/// A request's hold on a slot, released when the request ends however it ends.
struct Lease {
    pool: Arc<PoolShared>,
    key: Key,
    slot: u64,
    process: Starting,
}

impl Drop for Lease {
    fn drop(&mut self) {
        let mut slots = lock(&self.pool.slots);
        if let Some(slot) = slots.by_key.get_mut(&self.key)
            && slot.id == self.slot
        {
            slot.busy = slot.busy.saturating_sub(1);
            slot.last_used = Instant::now();
        }
    }
}

impl StdioPool {
    /// A pool for the stdio backend `settings`; nothing is started until the first request.
    pub fn new(settings: &BackendSettings, stdio: &StdioSettings) -> StdioPool {
        let spec = Spec {
            backend: settings.id.clone(),
            program: stdio.program.clone(),
            args: stdio.args.clone(),
            env: stdio.env.clone(),
            shared: stdio.shared,
            max_line: settings.max_response_bytes,
            era: Arc::default(),
        };
        StdioPool {
            inner: Arc::new(PoolShared {
                identity_env: !stdio.shared && settings.forwards(ForwardMode::IdentityHeaders),
                spec: Arc::new(spec),
                idle_timeout: stdio.idle_timeout,
                max_processes: stdio.max_processes.get(),
                slots: Mutex::default(),
            }),
        }
    }

    /// The backend's answer to `initialize` in the caller's process (started if need be): what
    /// the gateway tells a client that initializes with it.
    pub async fn server_info(&self, ctx: &CallContext) -> Result<Value, CallError> {
        let (process, _lease) = self.process_for(ctx).await?;
        Ok(process.server_info().clone())
    }

    /// Processes running or starting.
    pub fn process_count(&self) -> usize {
        lock(&self.inner.slots)
            .by_key
            .values()
            .filter(|slot| !slot.is_dead())
            .count()
    }

    /// The pid of `user`'s process (of the one process when shared), if it is running.
    pub fn pid_for(&self, user: Option<&str>) -> Option<u32> {
        let key = if self.inner.spec.shared {
            None
        } else {
            Some(user?.to_owned())
        };
        let slots = lock(&self.inner.slots);
        let process = slots.by_key.get(&key)?.running()?;
        process.is_alive().then(|| process.pid()).flatten()
    }

    /// For a graceful stop: closes every process' stdin, waits briefly, then terminates and
    /// kills. Requests after this get `Unavailable`.
    pub async fn shutdown(&self) {
        let slots: Vec<Slot> = {
            let mut slots = lock(&self.inner.slots);
            slots.closing = true;
            slots.by_key.drain().map(|(_, slot)| slot).collect()
        };
        let running: Vec<Arc<Process>> = slots
            .iter()
            .filter_map(|slot| slot.running().cloned())
            .collect();
        // Processes still starting are killed when their start completes and nobody takes them.
        drop(slots);
        futures::future::join_all(running.iter().map(|process| process.shutdown())).await;
    }

    async fn process_for(&self, ctx: &CallContext) -> Result<(Arc<Process>, Lease), CallError> {
        let key = (!self.inner.spec.shared).then(|| ctx.caller.claims.sub.clone());
        let mut identity = BTreeMap::new();
        if self.inner.identity_env {
            identity.insert("PORTCULLIS_USER".to_owned(), ctx.caller.claims.sub.clone());
            if let Some(email) = &ctx.caller.claims.email {
                identity.insert("PORTCULLIS_EMAIL".to_owned(), email.clone());
            }
        }
        let lease = self.inner.lease(key, identity)?;
        match timeout_at(ctx.deadline, lease.process.clone()).await {
            Ok(started) => Ok((started?, lease)),
            Err(_) => Err(CallError::Timeout),
        }
    }
}

impl std::fmt::Debug for StdioPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StdioPool")
            .field("backend", &self.inner.spec.backend)
            .field("processes", &self.process_count())
            .finish()
    }
}

#[async_trait]
impl Connection for StdioPool {
    async fn request(
        &self,
        ctx: &CallContext,
        method: &str,
        params: Option<Value>,
        notifications: Option<Notifications>,
    ) -> Result<Value, CallError> {
        let (process, _lease) = self.process_for(ctx).await?;
        // Portcullis did the handshake when the process started; a second `initialize` would be
        // a protocol error at the backend.
        if method == "initialize" {
            return Ok(process.server_info().clone());
        }
        process
            .request(
                method,
                params,
                &ctx.client_capabilities,
                notifications,
                ctx.deadline,
            )
            .await
    }

    async fn facts(&self, ctx: &CallContext) -> Result<ServerFacts, CallError> {
        let (process, _lease) = self.process_for(ctx).await?;
        Ok(process.facts().clone())
    }
}

impl PoolShared {
    /// The slot for `key`, created (and its process started) if there is none or its process
    /// is gone. At the cap, the longest-idle process makes room, if one is idle.
    fn lease(
        self: &Arc<Self>,
        key: Key,
        identity: BTreeMap<String, String>,
    ) -> Result<Lease, CallError> {
        let mut stopped = Vec::new();
        let mut slots = lock(&self.slots);
        if slots.closing {
            return Err(CallError::Unavailable(
                "the gateway is shutting down".into(),
            ));
        }
        if !self.spec.shared && !slots.reaper_started {
            slots.reaper_started = true;
            tokio::spawn(reap(Arc::downgrade(self), self.reap_every()));
        }
        if slots.by_key.get(&key).is_some_and(Slot::is_dead) {
            tracing::info!(backend = %self.spec.backend, "restarting a backend process that exited");
            stopped.extend(slots.by_key.remove(&key));
        }
        if !slots.by_key.contains_key(&key)
            && !self.spec.shared
            && slots.by_key.len() >= self.max_processes
        {
            let idlest = slots
                .by_key
                .iter()
                .filter(|(_, slot)| slot.busy == 0)
                .min_by_key(|(_, slot)| slot.last_used)
                .map(|(key, _)| key.clone());
            let Some(idlest) = idlest else {
                tracing::warn!(backend = %self.spec.backend, max_processes = self.max_processes, "every backend process is busy");
                return Err(CallError::AtCapacity);
            };
            stopped.extend(slots.by_key.remove(&idlest));
        }
        let id = slots.next_id;
        slots.next_id += 1;
        let slot = slots.by_key.entry(key.clone()).or_insert_with(|| Slot {
            id,
            process: self.start(key.clone(), id, identity),
            busy: 0,
            last_used: Instant::now(),
        });
        slot.busy += 1;
        slot.last_used = Instant::now();
        let lease = Lease {
            pool: self.clone(),
            key,
            slot: slot.id,
            process: slot.process.clone(),
        };
        drop(slots);
        stopped.iter().for_each(Slot::stop);
        Ok(lease)
    }

    /// Starts a process in a task of its own, so a start outlives the request that asked for it
    /// (the next request finds the process ready). The slot goes when the process does.
    fn start(
        self: &Arc<Self>,
        key: Key,
        slot: u64,
        identity: BTreeMap<String, String>,
    ) -> Starting {
        let pool = Arc::downgrade(self);
        let spec = if identity.is_empty() {
            self.spec.clone()
        } else {
            let mut spec = (*self.spec).clone();
            spec.env.extend(identity);
            Arc::new(spec)
        };
        let task = tokio::spawn(async move {
            let started = Process::start(&spec).await.map(Arc::new);
            match &started {
                Ok(process) => {
                    let link = process.link();
                    tokio::spawn(async move {
                        link.wait_closed().await;
                        if let Some(pool) = pool.upgrade() {
                            pool.forget(&key, slot);
                        }
                    });
                }
                Err(_) => {
                    if let Some(pool) = pool.upgrade() {
                        pool.forget(&key, slot);
                    }
                }
            }
            started
        });
        async move {
            task.await.unwrap_or_else(|_| {
                Err(CallError::Unavailable(
                    "the backend process could not be started".into(),
                ))
            })
        }
        .boxed()
        .shared()
    }

    fn forget(&self, key: &Key, slot: u64) {
        let removed = {
            let mut slots = lock(&self.slots);
            match slots.by_key.get(key) {
                Some(current) if current.id == slot => slots.by_key.remove(key),
                _ => None,
            }
        };
        drop(removed);
    }

    fn reap_every(&self) -> Duration {
        (self.idle_timeout / 2).clamp(Duration::from_millis(100), Duration::from_secs(30))
    }

    fn take_idle(&self) -> Vec<Slot> {
        let mut slots = lock(&self.slots);
        let now = Instant::now();
        let idle: Vec<Key> = slots
            .by_key
            .iter()
            .filter(|(_, slot)| {
                slot.busy == 0
                    && slot.running().is_some()
                    && now.duration_since(slot.last_used) >= self.idle_timeout
            })
            .map(|(key, _)| key.clone())
            .collect();
        idle.iter()
            .filter_map(|key| slots.by_key.remove(key))
            .collect()
    }
}

/// Stops idle per-user processes. Holds the pool weakly, so dropping the pool ends it.
async fn reap(pool: Weak<PoolShared>, every: Duration) {
    let mut ticks = tokio::time::interval(every);
    ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        let Some(strong) = pool.upgrade() else {
            return;
        };
        let idle = strong.take_idle();
        for slot in &idle {
            tracing::debug!(backend = %strong.spec.backend, pid = ?slot.running().and_then(|p| p.pid()), "stopping an idle backend process");
            slot.stop();
        }
        drop(strong);
    }
}

/// A poisoned lock only means another thread panicked mid-update of plain bookkeeping, which
/// stays usable.
pub(super) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}
