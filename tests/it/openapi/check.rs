//! The live document at start-up: `portcullis check-config` lists the backend's tools and each
//! operation left out with why, and what would stop start-up stops it, with a message naming
//! the backend.

use portcullis::config::Settings;
use portcullis::startup::Application;

use super::backend_toml;
use crate::cli::{portcullis, text};
use crate::support::db;
use crate::support::openapi::{self, Api};
use crate::support::process::free_port;

/// `portcullis check-config` on a configuration of the development provider and `backend`:
/// whether it passed, and what it said.
fn check_config(backend: &str) -> (Option<i32>, String) {
    let dir = tempfile::tempdir().unwrap();
    let toml = format!("bind = \"127.0.0.1:9100\"\n{backend}");
    std::fs::write(dir.path().join("portcullis.toml"), toml).unwrap();
    let output = portcullis(dir.path(), &["check-config"], &[]);
    (output.status.code(), text(&output))
}

fn inventory(api: &Api, keys: &str) -> String {
    backend_toml(api, Some(&api.base), keys, "")
}

#[tokio::test]
async fn check_config_lists_the_tools_and_each_operation_left_out_with_why() {
    let api = openapi::spawn().await;
    let (status, said) = check_config(&inventory(&api, ""));
    assert_eq!(status, Some(0), "{said}");
    assert!(
        said.contains(&format!(
            "inventory (OpenAPI 3.1, 15 tools, requests to {}",
            api.base
        )),
        "{said}"
    );
    // The raw image upload: FastAPI declares an `image/jpeg` body, which a tool cannot carry.
    let left_out = said
        .lines()
        .find(|line| line.contains("backends[0] (inventory): POST /items/{item_id}/photo: "))
        .unwrap_or_else(|| panic!("{said}"));
    assert!(left_out.contains("image/jpeg"), "{left_out}");
    assert_eq!(said.matches("left out").count(), 1, "{said}");
}

#[tokio::test]
async fn what_would_stop_start_up_is_named_by_check_config() {
    let api = openapi::spawn().await;
    let nowhere = format!("http://127.0.0.1:{}/openapi.json", free_port());
    let cases = [
        // (the backend table, what the message must say)
        (
            inventory(&api, r#"include = ["no-such-tag"]"#),
            ["backends[0] (inventory)", "no usable operation"],
        ),
        (
            inventory(
                &api,
                "auth = \"static\"\nsecret_env = \"INVENTORY_API_KEY\"",
            ),
            ["backends[0].secret_env", "INVENTORY_API_KEY is not set"],
        ),
        (
            format!("[[backends]]\nid = \"inventory\"\nopenapi = \"{nowhere}\"\n"),
            ["backends[0] (inventory)", nowhere.as_str()],
        ),
    ];
    for (backend, expected) in &cases {
        let (status, said) = check_config(backend);
        assert_eq!(status, Some(2), "{backend}: {said}");
        for part in expected {
            assert!(said.contains(part), "{part} in {said}");
        }
    }
}

#[tokio::test]
async fn start_up_fails_when_no_operation_is_usable() {
    let api = openapi::spawn().await;
    let (_, db_url, dir) = db::fresh_sqlite().await;
    let toml = format!(
        "bind = \"127.0.0.1:0\"\ndatabase_url = \"{db_url}\"\ndev_key_file = \"{}\"\n{}",
        dir.path().join("dev.key").display(),
        inventory(&api, r#"exclude = ["*"]"#)
    );
    let error = match Application::build(Settings::from_toml(&toml).unwrap()).await {
        Ok(_) => panic!("started with no usable operation"),
        Err(error) => format!("{error:#}"),
    };
    assert!(
        error.contains("inventory") && error.contains("no usable operation"),
        "{error}"
    );
}
