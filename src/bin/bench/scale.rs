//! Many distinct active tokens. Signing in 100,000 times would take hours, so the tokens are
//! minted the way the server mints them: its own signing key, read from its database with its
//! Fernet key, and claims copied from a real sign-in's token with a fresh `jti` each.

use std::time::{Duration, Instant};

use anyhow::anyhow;
use portcullis::crypto::Secrets;
use portcullis::oauth::tokens::{AccessClaims, KeySet, install_crypto_provider, new_jti};

use crate::mcp::{Session, drive};
use crate::procs::Server;

/// `count` distinct access tokens like `template`, signed with the server's key.
pub async fn mint(
    database_url: &str,
    fernet_key: &str,
    template: &AccessClaims,
    count: usize,
) -> anyhow::Result<Vec<String>> {
    install_crypto_provider();
    let store = portcullis::store::connect(database_url).await?;
    let secrets = Secrets::from_keys(&[fernet_key.to_owned()])
        .map_err(|index| anyhow!("Fernet key {index} is not valid"))?;
    let keys = KeySet::load_or_create(store.as_ref(), &secrets, chrono::Utc::now()).await?;
    let now = chrono::Utc::now().timestamp();
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let per_thread = count.div_ceil(threads);
    let keys = &keys;
    let minted = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|t| {
                let n = per_thread.min(count.saturating_sub(t * per_thread));
                scope.spawn(move || {
                    (0..n)
                        .map(|_| {
                            let claims = AccessClaims {
                                jti: new_jti(),
                                iat: now,
                                exp: now + 3600,
                                ..template.clone()
                            };
                            keys.issue(&claims)
                        })
                        .collect::<Result<Vec<String>, _>>()
                })
            })
            .collect();
        workers
            .into_iter()
            .map(|w| {
                w.join()
                    .map_err(|_| anyhow!("a minting thread panicked"))?
                    .map_err(anyhow::Error::from)
            })
            .collect::<anyhow::Result<Vec<Vec<String>>>>()
    })?;
    Ok(minted.into_iter().flatten().collect())
}

/// Calls over one set of tokens, and the server CPU they took.
#[derive(Debug, Default)]
pub struct Pass {
    pub calls: usize,
    pub cpu: Duration,
    pub wall: Duration,
    pub cut_short: bool,
}

impl Pass {
    pub fn cpu_per_call(&self) -> Duration {
        self.cpu / self.calls.max(1) as u32
    }
}

/// The first use of each token, then `repeat_calls` more calls cycling through the same ones.
pub struct Scale {
    pub tokens: usize,
    pub first: Pass,
    pub repeat: Pass,
}

/// `whoami` over `tokens`: session `s` of `sessions` takes tokens `s`, `s + sessions`, … in
/// turn. The first pass uses each token once (its first use: the signature is verified), the
/// second cycles through the same ones again for about `repeat_calls` calls in all (each a
/// repeat). Each pass stops at `limit` if it runs that long.
pub async fn run(
    server: &Server,
    sessions: &[Session],
    tokens: &[String],
    repeat_calls: usize,
    limit: Duration,
) -> anyhow::Result<Scale> {
    let width = sessions.len();
    let total = tokens.len();
    // How many tokens session `s` owns.
    let owned = move |s: usize| total.saturating_sub(s).div_ceil(width);
    let pass = move |calls: Box<dyn Fn(usize) -> usize>| async move {
        let before = server.cpu()?;
        let load = drive(width, calls, Instant::now() + limit, move |s, i| {
            let token = &tokens[s + (i % owned(s)) * width];
            sessions[s].call_tool(
                Some(token),
                i + 1,
                "whoami",
                "{}",
                "structuredContent",
                i == 0,
            )
        })
        .await?;
        Ok::<_, anyhow::Error>(Pass {
            calls: load.calls,
            cpu: server.cpu()?.since(&before),
            wall: load.wall,
            cut_short: load.cut_short,
        })
    };
    let first = pass(Box::new(owned)).await?;
    let repeat = pass(Box::new(move |s| {
        (repeat_calls * owned(s)).div_ceil(total.max(1))
    }))
    .await?;
    Ok(Scale {
        tokens: total,
        first,
        repeat,
    })
}
