//! The `portcullis` command: serve, migrate, check-config, keys, audit, users, grants, clients.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use portcullis::admin::{self, Admin};
use portcullis::audit::cli::AuditArgs;
use portcullis::clock::Clock;
use portcullis::config::{ApiAuth, BackendTransport, ProviderKind, Settings, chrono_duration};
use portcullis::openapi::SpecVersion;
use portcullis::startup::{Application, load_secrets, open_store, shutdown_signal};
use portcullis::{crypto, telemetry};

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "portcullis",
    version,
    about = "OAuth 2.1 authorization-server proxy and gateway for MCP servers"
)]
struct Cli {
    /// The configuration file (default: ./portcullis.toml when present).
    #[arg(long, short, global = true)]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server.
    Serve,
    /// Apply database migrations and exit.
    Migrate,
    /// Validate the configuration and say exactly what is wrong.
    CheckConfig,
    /// Key management.
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
    },
    /// List the audit trail, newest first.
    Audit(AuditArgs),
    #[command(flatten)]
    Admin(admin::Command),
}

#[derive(Subcommand)]
enum KeysCommand {
    /// Print a new Fernet key for PORTCULLIS_FERNET_KEYS.
    Generate,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Command::Keys {
        command: KeysCommand::Generate,
    } = cli.command
    {
        println!("{}", crypto::Secrets::generate_key());
        return ExitCode::SUCCESS;
    }
    let settings = match Settings::load(cli.config.as_deref()) {
        Ok(settings) => settings,
        Err(error) => {
            eprintln!("portcullis: invalid configuration: {error}");
            return ExitCode::from(2);
        }
    };
    if let Command::CheckConfig = cli.command {
        return check_config(&settings);
    }
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    // Spans are exported only by the server, and only when the OTEL_* variables ask for it.
    let otlp = matches!(cli.command, Command::Serve)
        .then(telemetry::Otlp::from_env)
        .flatten();
    let _telemetry = telemetry::init(
        settings.log.format,
        &settings.log.filter,
        std::io::stderr,
        ansi,
        otlp.as_ref(),
    );
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("portcullis: cannot start the runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async move {
        match cli.command {
            Command::Serve => serve(settings).await,
            Command::Migrate => open_store(&settings.database_url)
                .await
                .map(|_| println!("migrations applied")),
            Command::Audit(args) => audit(&settings, &args).await,
            Command::Admin(command) => administer(&settings, &command).await,
            Command::CheckConfig | Command::Keys { .. } => Ok(()),
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("portcullis: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn check_config(settings: &Settings) -> ExitCode {
    if let Err(error) = load_secrets(settings) {
        eprintln!("portcullis: invalid configuration: {error:#}");
        return ExitCode::from(2);
    }
    let openapi = match check_openapi(settings) {
        Ok(lines) => lines,
        Err(error) => {
            eprintln!("portcullis: invalid configuration: {error}");
            return ExitCode::from(2);
        }
    };
    println!("configuration is valid");
    println!("  listen:     {}", settings.bind);
    println!("  public URL: {}", settings.public_url());
    println!(
        "  database:   {}",
        if settings.database_url.starts_with("sqlite:") {
            "SQLite"
        } else {
            "Postgres"
        }
    );
    for provider in &settings.providers {
        let kind = match &provider.kind {
            ProviderKind::Dev => "development sign-in".to_owned(),
            ProviderKind::Oidc(oidc) => format!("OpenID Connect at {}", oidc.issuer),
            ProviderKind::Github(github) => format!("GitHub at {}", github.base_url),
        };
        println!("  provider:   {} ({kind})", provider.id);
    }
    for line in openapi {
        println!("{line}");
    }
    ExitCode::SUCCESS
}

/// Reads each OpenAPI backend's document as start-up would: the lines that list its tools and
/// every operation left out (with why), or what stops it from starting.
fn check_openapi(settings: &Settings) -> Result<Vec<String>, String> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|error| format!("cannot start the runtime: {error}"))?;
    let reports = runtime.block_on(portcullis::gateway::openapi::document::check(settings));
    let mut lines = Vec::new();
    let mut errors = Vec::new();
    for (index, id, report) in reports {
        match report {
            Ok(api) => {
                let version = match api.catalog.version {
                    SpecVersion::V3_0 => "3.0",
                    SpecVersion::V3_1 => "3.1",
                };
                lines.push(format!(
                    "  backend:    {id} (OpenAPI {version}, {} tools, requests to {})",
                    api.catalog.tools.len(),
                    api.base_url
                ));
                for unusable in &api.catalog.unusable {
                    lines.push(format!(
                        "    left out: backends[{index}] ({id}): {unusable}"
                    ));
                }
                let static_secret = matches!(
                    &settings.backends[index].transport,
                    BackendTransport::OpenApi(api) if matches!(api.auth, ApiAuth::Static { .. })
                );
                let without: Vec<&str> = api
                    .catalog
                    .tools
                    .iter()
                    .filter(|tool| tool.plan.security.is_empty())
                    .map(|tool| tool.name.as_str())
                    .collect();
                if static_secret && !without.is_empty() {
                    lines.push(format!(
                        "    no secret: backends[{index}] ({id}): auth = \"static\", but these declare no security scheme, so they get no secret: {}",
                        without.join(", ")
                    ));
                }
            }
            Err(error) => errors.push(format!("backends[{index}] ({id}): {error}")),
        }
    }
    if errors.is_empty() {
        Ok(lines)
    } else {
        Err(errors.join("\n"))
    }
}

async fn audit(settings: &Settings, args: &AuditArgs) -> anyhow::Result<()> {
    let store = open_store(&settings.database_url).await?;
    let mut out = std::io::stdout().lock();
    portcullis::audit::cli::run(store.as_ref(), args, Clock::default().now(), &mut out).await?;
    Ok(())
}

async fn administer(settings: &Settings, command: &admin::Command) -> anyhow::Result<()> {
    let store = open_store(&settings.database_url).await?;
    let admin = Admin {
        store: store.as_ref(),
        access: &settings.access,
        access_ttl: chrono_duration(settings.tokens.access_ttl),
        now: Clock::default().now(),
        redis: settings
            .redis_url
            .as_ref()
            .map(|url| portcullis::cluster::Redis::new(url, &settings.redis_prefix))
            .transpose()?,
    };
    let mut out = std::io::stdout().lock();
    admin::run(&admin, command, &mut out).await?;
    Ok(())
}

async fn serve(settings: Settings) -> anyhow::Result<()> {
    let app = Application::build(settings).await?;
    let state = app.state().clone();
    let mcp = state.public.url(portcullis::paths::MCP);
    let issuer = state.public.issuer();
    tracing::info!(address = %app.local_addr(), public_url = %issuer, "portcullis is listening");
    println!(
        "Portcullis is listening on http://{} (public URL {issuer})",
        app.local_addr(),
    );
    println!("Connect an MCP client to {mcp}");
    if state.auth.providers.has_dev() {
        println!(
            "Development sign-in is enabled: any email signs in. Do not expose this instance."
        );
    }
    app.run_until(shutdown_signal()).await?;
    Ok(())
}
