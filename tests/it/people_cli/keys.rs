//! `portcullis api-keys create`, `list`, `revoke`.

use portcullis::oauth::api_keys;

use super::sqlite;

#[tokio::test]
async fn a_key_is_created_for_a_person_shown_once_listed_and_revoked() {
    let (store, shell, _db) = sqlite().await;
    shell.ok(&[
        "users",
        "add",
        "--email",
        "bot@example.com",
        "--role",
        "reader",
    ]);

    let created = shell.json(&[
        "api-keys",
        "create",
        "--user",
        "bot@example.com",
        "--scopes",
        "tools:read  tools:list",
        "--expires",
        "90d",
        "--name",
        "ci",
    ]);
    assert_eq!(created.len(), 1);
    let key = created[0]["key"].as_str().unwrap().to_owned();
    let id = created[0]["id"].as_str().unwrap().to_owned();
    assert!(key.starts_with(api_keys::PREFIX), "{key}");
    assert_eq!(created[0]["scopes"], "tools:list tools:read");
    assert!(created[0]["expires_at"].is_string());

    // Only the hash is stored; the listing shows the prefix, never the key.
    let stored = store
        .api_key_by_hash(&api_keys::hash(&key))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.id, id);
    let table = shell.ok(&["api-keys", "list"]);
    assert!(
        table.contains("bot@example.com") && table.contains(&stored.prefix),
        "{table}"
    );
    assert!(!table.contains(&key), "{table}");
    let listed = shell.json(&["api-keys", "list", "--user", "bot@example.com"]);
    assert_eq!(listed.len(), 1);
    assert!(listed[0].get("key").is_none() && listed[0].get("key_hash").is_none());

    let said = shell.ok(&["api-keys", "revoke", &id]);
    assert!(said.contains("revoked"), "{said}");
    assert!(
        store
            .api_key_by_hash(&api_keys::hash(&key))
            .await
            .unwrap()
            .unwrap()
            .revoked_at
            .is_some()
    );
    assert!(shell.ok(&["api-keys", "revoke", &id]).contains("already"));

    // Audited, as the operator's changes are.
    let reasons: Vec<String> = super::admin_reasons(&*store).await;
    assert!(
        reasons
            .iter()
            .any(|r| r.contains("API key ci") && r.contains("created")),
        "{reasons:?}"
    );
    assert!(reasons.iter().any(|r| r.contains("revoked")), "{reasons:?}");
}

#[tokio::test]
async fn creating_a_key_refuses_what_it_cannot_do() {
    let (_store, shell, _db) = sqlite().await;
    shell.ok(&["users", "add", "--email", "bot@example.com"]);
    let base = [
        "api-keys",
        "create",
        "--user",
        "bot@example.com",
        "--name",
        "ci",
    ];
    let with = |extra: &[&'static str]| {
        let mut args = base.to_vec();
        args.extend_from_slice(extra);
        args
    };
    assert!(shell.fails(&with(&["--scopes", ""])).contains("--scopes"));
    assert!(
        shell
            .fails(&with(&["--scopes", "a", "--expires", "soon"]))
            .contains("--expires")
    );
    assert!(
        shell
            .fails(&[
                "api-keys",
                "create",
                "--user",
                "nobody@example.com",
                "--scopes",
                "a",
                "--name",
                "x"
            ])
            .contains("no person")
    );
    shell.ok(&["users", "disable", "bot@example.com"]);
    assert!(shell.fails(&with(&["--scopes", "a"])).contains("disabled"));
    assert!(
        shell
            .fails(&["api-keys", "revoke", "nope"])
            .contains("no API key")
    );
}
