//! Building and running the application: bind first (port 0 in tests), then derive the public
//! URL, open the store, load keys and providers, and serve until told to stop.

use std::net::SocketAddr;
use std::path::Path;

use anyhow::{Context, bail};
use secrecy::ExposeSecret;
use tokio::net::TcpListener;
use url::Url;

use std::sync::Arc;

use crate::audit::{Auditor, LogSink, StoreSink};
use crate::clock::Clock;
use crate::cluster::{Event, Redis};
use crate::config::Settings;
use crate::crypto::Secrets;
use crate::gateway::api_keys::ApiKeyVerifier;
use crate::gateway::caller::{OtherCredentials, TokenVerifier};
use crate::gateway::identity::IdentityForwarder;
use crate::gateway::trusted::TrustedIssuers;
use crate::gateway::{self, Gateway, GatewayParts};
use crate::oauth::access::AccessPolicy;
use crate::oauth::cimd::Clients;
use crate::oauth::revocation::RevocationView;
use crate::oauth::server::{AuthorizationServer, Lifetimes};
use crate::oauth::tokens::{KeySet, install_crypto_provider};
use crate::oauth::upstream_tokens::UpstreamTokenKeeper;
use crate::paths::PublicUrl;
use crate::ratelimit::RateLimits;
use crate::state::{AppParts, AppState};
use crate::store::{self, DynStore};
use crate::upstream::{self, Providers, dev};

/// A built application, bound to its port but not yet serving.
pub struct Application {
    listener: TcpListener,
    state: AppState,
    router: axum::Router,
    /// `[metrics] bind`: the operator's endpoints on a listener of their own.
    operator: Option<TcpListener>,
}

/// The Fernet keys: configured ones, or (development provider only) a generated key kept in a
/// local file so that encrypted data survives restarts.
pub fn load_secrets(settings: &Settings) -> anyhow::Result<Secrets> {
    if !settings.fernet_keys.is_empty() {
        let keys: Vec<String> = settings
            .fernet_keys
            .iter()
            .map(|k| k.expose_secret().to_owned())
            .collect();
        return Secrets::from_keys(&keys).map_err(|index| {
            anyhow::anyhow!(
                "`fernet_keys`: key number {} is not a valid Fernet key (PORTCULLIS_FERNET_KEYS)",
                index + 1
            )
        });
    }
    let path = &settings.dev_key_file;
    let key = if path.is_file() {
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?
    } else {
        let key = Secrets::generate_key();
        write_private(path, &key).with_context(|| format!("writing {}", path.display()))?;
        key
    };
    tracing::warn!(
        file = %path.display(),
        "no PORTCULLIS_FERNET_KEYS: using a generated development key kept in a local file; set PORTCULLIS_FERNET_KEYS for anything but local development"
    );
    Secrets::from_keys(&[key.trim().to_owned()])
        .map_err(|_| anyhow::anyhow!("{} does not hold a valid Fernet key", path.display()))
}

fn write_private(path: &Path, contents: &str) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options.open(path)?.write_all(contents.as_bytes())
}

/// Opens the database and applies its migrations.
pub async fn open_store(database_url: &str) -> anyhow::Result<DynStore> {
    let store = store::connect(database_url)
        .await
        .context("connecting to the database (DATABASE_URL)")?;
    store
        .migrate()
        .await
        .context("applying database migrations")?;
    Ok(store)
}

impl Application {
    /// Binds `settings.bind` and builds everything. With no `public_base_url`, the public URL
    /// is `http://{the bound address}`, so port 0 works.
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        Self::build_with_clock(settings, Clock::default()).await
    }

    /// As [`Application::build`], with a clock the caller can move (tests).
    pub async fn build_with_clock(settings: Settings, clock: Clock) -> anyhow::Result<Self> {
        install_crypto_provider();
        let listener = TcpListener::bind(settings.bind)
            .await
            .with_context(|| format!("binding {}", settings.bind))?;
        let local = listener.local_addr()?;
        let operator = match settings.metrics.bind {
            Some(bind) => Some(
                TcpListener::bind(bind)
                    .await
                    .with_context(|| format!("binding {bind} (metrics.bind)"))?,
            ),
            None => None,
        };
        if settings.metrics.enabled() {
            crate::telemetry::metrics::install().context("installing the metrics recorder")?;
        }
        let base = match &settings.public_base_url {
            Some(url) => url.clone(),
            None => Url::parse(&format!("http://{local}")).context("building the public URL")?,
        };
        let public = PublicUrl::new(base);
        let secrets = load_secrets(&settings)?;
        let store = open_store(&settings.database_url).await?;
        let keys = Arc::new(
            KeySet::load_or_create(store.as_ref(), &secrets, clock.now())
                .await
                .context("loading the signing keys")?,
        );
        let http = upstream::http_client().context("building the HTTP client")?;
        let providers = Providers::from_settings(&settings, public.base(), &secrets, http.clone())
            .await
            .context("setting up the identity providers")?;
        if providers.is_empty() {
            bail!("`providers`: no identity provider is configured");
        }
        // Flows, grants and revocations live in the database, so several instances behave as
        // one without Redis too; Redis makes revocations immediate and limits shared.
        let redis = settings
            .redis_url
            .as_ref()
            .map(|url| Redis::new(url, &settings.redis_prefix))
            .transpose()?;
        let limits = Arc::new(
            RateLimits::new(&settings.rate_limits, redis.as_ref())
                .context("setting up the rate limits")?,
        );
        let auditor = Auditor::start(vec![Arc::new(StoreSink(store.clone())), Arc::new(LogSink)]);
        let revocations = Arc::new(match &redis {
            Some(redis) => RevocationView::shared(redis.clone()),
            None => RevocationView::default(),
        });
        let apis = gateway::Apis::load(&settings)
            .await
            .context("reading the OpenAPI documents")?;
        let resources = Arc::new(gateway::resources(public.base(), &settings, &apis));
        let upstream = UpstreamTokenKeeper::new(
            store.clone(),
            secrets.clone(),
            providers.clone(),
            revocations.clone(),
            settings.session_bound_providers(),
        )
        .shared_through(redis.clone());
        let identity = Arc::new(IdentityForwarder::new(
            public.issuer().to_owned(),
            keys.clone(),
            upstream.clone(),
            crate::config::chrono_duration(settings.gateway.assertion_ttl),
        ));
        let access = Arc::new(AccessPolicy::new(&settings.access, &settings.providers));
        let api_keys = ApiKeyVerifier::new(store.clone(), access.clone());
        let verifier = TokenVerifier::new(
            public.issuer().to_owned(),
            keys.clone(),
            revocations.clone(),
            OtherCredentials {
                api_keys: api_keys.clone(),
                trusted: TrustedIssuers::new(
                    &settings.trusted_issuers,
                    access.clone(),
                    http.clone(),
                )
                .shared_through(redis.clone()),
            },
            auditor.clone(),
        );
        let gateway = Arc::new(Gateway::new(GatewayParts {
            settings: &settings,
            public: &public,
            resources: &resources,
            verifier,
            identity,
            access: access.clone(),
            store: store.clone(),
            secrets: secrets.clone(),
            auditor: auditor.clone(),
            clock: clock.clone(),
            limits: limits.clone(),
            apis: &apis,
            response_cache: gateway::ResponseCache::new(redis.clone()),
        })?);
        let extra = if providers.has_dev() {
            dev::router(
                secrets.clone(),
                public.base().clone(),
                clock.clone(),
                settings.access.roles.keys().cloned().collect(),
            )
        } else {
            axum::Router::new()
        };
        let auth = Arc::new(AuthorizationServer {
            public: public.clone(),
            store: store.clone(),
            clients: Arc::new(
                Clients::new(store.clone(), &settings.cimd)?.shared_through(redis.clone()),
            ),
            remember_consent: crate::config::chrono_duration(settings.consent.remember_for),
            secrets,
            keys: keys.clone(),
            access,
            logos: settings
                .providers
                .iter()
                .filter_map(|p| p.logo.clone().map(|logo| (p.id.clone(), logo)))
                .collect(),
            providers,
            resources,
            revocations: revocations.clone(),
            auditor: auditor.clone(),
            lifetimes: Lifetimes::from(&settings.tokens),
            upstream,
        });
        let state = AppState::new(AppParts {
            settings,
            public,
            store,
            keys,
            auth,
            gateway,
            revocations,
            auditor,
            clock,
            redis,
            limits,
            api_keys,
        });
        let router = crate::http::router(state.clone(), extra);
        Ok(Self {
            listener,
            state,
            router,
            operator,
        })
    }

    /// Where the operator's endpoints listen on their own (`[metrics] bind`), if they do.
    pub fn operator_addr(&self) -> Option<SocketAddr> {
        self.operator.as_ref().and_then(|l| l.local_addr().ok())
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .unwrap_or_else(|_| self.state.settings.bind)
    }

    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Serves until `shutdown` resolves, then finishes in-flight requests.
    pub async fn run_until(
        self,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let Self {
            listener,
            state,
            router,
            operator,
        } = self;
        let background = tokio::spawn(background_tasks(state.clone()));
        let (stop_operator, operator_stopped) = tokio::sync::oneshot::channel::<()>();
        let operator = operator.map(|listener| {
            let router = crate::http::telemetry::own_listener(state.clone());
            tokio::spawn(
                axum::serve(listener, router)
                    .with_graceful_shutdown(async {
                        let _ = operator_stopped.await;
                    })
                    .into_future(),
            )
        });
        // Answers often go out in two writes (the head, then a streamed body): without
        // TCP_NODELAY the second waits for the client's delayed ACK, about 40 ms.
        let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
            if let Err(error) = tcp.set_nodelay(true) {
                tracing::debug!(%error, "could not set TCP_NODELAY");
            }
        });
        let result = axum::serve(
            listener,
            router.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(shutdown)
        .await;
        let _ = stop_operator.send(());
        if let Some(operator) = operator {
            let _ = operator.await;
        }
        background.abort();
        state.gateway.shutdown().await;
        // Whatever was audited before the stop reaches the database.
        state.auditor.flush().await;
        result
    }
}

/// Keeps the revocation view fresh and purges expired rows.
async fn background_tasks(state: AppState) {
    let max_token_age = crate::config::chrono_duration(state.settings.tokens.access_ttl);
    let audit = state
        .settings
        .audit
        .retention
        .map(crate::config::chrono_duration);
    let unused_clients = state
        .settings
        .clients
        .purge_unused_after
        .map(crate::config::chrono_duration);
    let retention = Lifetimes::from(&state.settings.tokens).retention(audit, unused_clients);
    // Revocations and key changes published by the other instances and the operator's
    // commands; stopped with the other background tasks.
    let _subscription = state.redis.as_ref().map(|redis| {
        let (view, keys) = (state.revocations.clone(), state.api_keys.clone());
        AbortOnDrop(redis.subscribe(move |event| {
            view.apply(&event);
            if event == Event::KeysChanged {
                keys.forget_verdicts();
            }
        }))
    });
    let poll = state.settings.tokens.revocation_poll;
    // Expired rows are purged about once a minute, on the poll's ticks.
    let purge_every = (60 / poll.as_secs().max(1)).max(1);
    let mut ticks: u64 = 0;
    let mut interval = tokio::time::interval(poll);
    loop {
        interval.tick().await;
        crate::telemetry::metrics::upkeep();
        if let Err(error) = state
            .revocations
            .poll(state.store.as_ref(), state.now(), max_token_age)
            .await
        {
            tracing::warn!(%error, "refreshing the revocation view failed");
        }
        state.gateway.flush_rejections(state.now());
        if ticks.is_multiple_of(purge_every) {
            match state.store.purge_expired(state.now(), &retention).await {
                Ok(0) => {}
                Ok(rows) => tracing::debug!(rows, "purged expired rows"),
                Err(error) => tracing::warn!(%error, "purging expired rows failed"),
            }
        }
        ticks += 1;
    }
}

/// Ends a task when dropped (with the task that holds it).
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Resolves on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
}
