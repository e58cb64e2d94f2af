//! The `portcullis` command as an operator meets it: configuration layering and the messages
//! that name what is wrong.

use std::process::{Command, Output};

/// Runs the built `portcullis` in `dir` with `args` and nothing in its environment but `PATH`
/// and `env`.
pub(crate) fn portcullis(dir: &std::path::Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_portcullis"));
    command
        .args(args)
        .current_dir(dir)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default());
    for (key, value) in env {
        command.env(key, value);
    }
    command.output().unwrap()
}

/// Everything the command printed, stdout then stderr.
pub(crate) fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

#[test]
fn check_config_reads_the_file_then_the_environment() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("portcullis.toml"),
        "bind = \"127.0.0.1:9100\"\n",
    )
    .unwrap();
    let output = portcullis(dir.path(), &["check-config"], &[]);
    assert!(output.status.success(), "{}", text(&output));
    assert!(
        text(&output).contains("127.0.0.1:9100"),
        "the file is read by default"
    );

    let output = portcullis(
        dir.path(),
        &["check-config"],
        &[
            ("PORTCULLIS_BIND", "127.0.0.1:9200"),
            // Loopback: the development provider (the default) refuses a public address.
            ("PUBLIC_BASE_URL", "http://localhost:9200/auth"),
        ],
    );
    assert!(output.status.success(), "{}", text(&output));
    let said = text(&output);
    assert!(
        said.contains("127.0.0.1:9200") && said.contains("http://localhost:9200/auth"),
        "{said}"
    );
}

#[test]
fn check_config_names_the_key_that_is_wrong() {
    let dir = tempfile::tempdir().unwrap();
    // (file contents, environment, the key the message must name)
    type Case<'a> = (&'a str, &'a [(&'a str, &'a str)], &'a str);
    let cases: [Case; 4] = [
        ("bnid = \"127.0.0.1:1\"\n", &[], "bnid"),
        ("", &[("PORTCULLIS_TOKENS__ACCESS_TTL", "5")], "access_ttl"),
        (
            "",
            &[("PUBLIC_BASE_URL", "ftp://example.com")],
            "public_base_url",
        ),
        (
            "[[providers]]\nid = \"corp\"\nkind = \"oidc\"\nissuer = \"https://idp.example.com\"\nclient_id = \"x\"\n",
            &[("PORTCULLIS_FERNET_KEYS", "not-a-key")],
            "providers[0].client_secret",
        ),
    ];
    for (file, env, key) in cases {
        std::fs::write(dir.path().join("portcullis.toml"), file).unwrap();
        let output = portcullis(dir.path(), &["check-config"], env);
        assert_eq!(output.status.code(), Some(2), "{key}: {}", text(&output));
        assert!(
            text(&output).contains(key),
            "the message names {key}: {}",
            text(&output)
        );
    }
}

#[test]
fn a_bad_fernet_key_is_named_and_a_good_one_passes() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("corp.toml"),
        "[[providers]]\nid = \"corp\"\nkind = \"oidc\"\nissuer = \"https://idp.example.com\"\nclient_id = \"x\"\nclient_secret = \"s\"\n",
    )
    .unwrap();
    let output = portcullis(
        dir.path(),
        &["--config", "corp.toml", "check-config"],
        &[("PORTCULLIS_FERNET_KEYS", "nope")],
    );
    assert_eq!(output.status.code(), Some(2));
    assert!(text(&output).contains("fernet_keys"), "{}", text(&output));
    let key = String::from_utf8(portcullis(dir.path(), &["keys", "generate"], &[]).stdout).unwrap();
    let output = portcullis(
        dir.path(),
        &["--config", "corp.toml", "check-config"],
        &[("PORTCULLIS_FERNET_KEYS", key.trim())],
    );
    assert!(output.status.success(), "{}", text(&output));
}

#[test]
fn migrate_creates_the_sqlite_database() {
    let dir = tempfile::tempdir().unwrap();
    let output = portcullis(
        dir.path(),
        &["migrate"],
        &[("DATABASE_URL", "sqlite:state.db")],
    );
    assert!(output.status.success(), "{}", text(&output));
    assert!(dir.path().join("state.db").is_file());
    let missing = portcullis(
        dir.path(),
        &["--config", "absent.toml", "check-config"],
        &[],
    );
    assert_eq!(missing.status.code(), Some(2));
    assert!(text(&missing).contains("absent.toml"));
}
