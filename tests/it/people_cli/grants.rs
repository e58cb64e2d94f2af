//! `portcullis grants` and `portcullis clients`.

use chrono::Utc;
use portcullis::store::{AuditFilter, AuditKind};
use serde_json::json;

use super::{admin_reasons, client, grant, ids, revoked, signed_in, sqlite};
use crate::cli::text;

#[tokio::test]
async fn grants_are_listed_by_person_client_and_revocation() {
    let (store, sh, _db) = sqlite().await;
    let ada = signed_in(&*store, "ada", "ada@example.com").await;
    let bo = signed_in(&*store, "bo", "bo@example.com").await;
    grant(&*store, "g-ada-1", &ada, "client-1", 30).await;
    grant(&*store, "g-ada-2", &ada, "client-2", 20).await;
    grant(&*store, "g-bo", &bo, "client-1", 10).await;
    store.revoke_grant("g-ada-1", Utc::now()).await.unwrap();

    assert_eq!(ids(&sh.json(&["grants", "list"])), ["g-bo", "g-ada-2"]);
    assert_eq!(
        ids(&sh.json(&["grants", "list", "--all"])),
        ["g-bo", "g-ada-2", "g-ada-1"]
    );
    assert_eq!(
        ids(&sh.json(&["grants", "list", "--user", "ada@example.com"])),
        ["g-ada-2"]
    );
    assert_eq!(
        ids(&sh.json(&["grants", "list", "--user", &ada.id, "--all"])),
        ["g-ada-2", "g-ada-1"]
    );
    assert_eq!(
        ids(&sh.json(&["grants", "list", "--client", "client-1"])),
        ["g-bo"]
    );
    let line = &sh.json(&["grants", "list", "--client", "client-2"])[0];
    assert_eq!(line["user_email"], "ada@example.com");
    assert_eq!(line["resource"], "https://mcp.example/mcp");
    assert!(line.get("upstream").is_none(), "{line}");
    let table = sh.ok(&["grants", "list", "--all"]);
    let row = table.lines().find(|l| l.starts_with("g-ada-1")).unwrap();
    assert!(
        row.contains("ada@example.com") && row.contains("client-1"),
        "{table}"
    );
    assert!(
        !row.trim_end().ends_with('-'),
        "a revoked grant shows when: {table}"
    );
}

#[tokio::test]
async fn grants_are_revoked_one_at_a_time_or_all_of_a_person() {
    let (store, sh, _db) = sqlite().await;
    let ada = signed_in(&*store, "ada", "ada@example.com").await;
    grant(&*store, "g-1", &ada, "client-1", 3).await;
    grant(&*store, "g-2", &ada, "client-1", 2).await;
    grant(&*store, "g-3", &ada, "client-2", 1).await;

    assert!(
        sh.ok(&["grants", "revoke", "g-1"])
            .starts_with("revoked grant g-1 of ada@example.com")
    );
    assert!(
        sh.ok(&["grants", "revoke", "g-1"])
            .contains("revoked already")
    );
    let all = sh.json(&["grants", "revoke", "--user", "ada@example.com"]);
    let unknown = sh.fails(&["grants", "revoke", "g-404"]);
    let neither = sh.run(&["grants", "revoke"]);

    assert_eq!(all[0]["grants_revoked"], json!(["g-2", "g-3"]));
    for id in ["g-1", "g-2", "g-3"] {
        assert!(
            revoked(&store.get_grant(id).await.unwrap()).is_some(),
            "{id}"
        );
    }
    assert_eq!(unknown, "portcullis: no grant with id \"g-404\"");
    assert_eq!(neither.status.code(), Some(2), "{}", text(&neither));
    assert_eq!(
        admin_reasons(&*store).await,
        [
            "grant g-1 revoked by the operator",
            "2 grants revoked by the operator"
        ]
    );
}

#[tokio::test]
async fn clients_are_listed_shown_and_deleted_with_their_grants_revoked() {
    let (store, sh, _db) = sqlite().await;
    store.insert_client(&client("client-1")).await.unwrap();
    store.insert_client(&client("client-2")).await.unwrap();
    let ada = signed_in(&*store, "ada", "ada@example.com").await;
    grant(&*store, "g-1", &ada, "client-1", 2).await;
    grant(&*store, "g-2", &ada, "client-2", 1).await;

    let table = sh.ok(&["clients", "list"]);
    let listed = sh.json(&["clients", "list"]);
    let shown = sh.json(&["clients", "show", "client-1"]);
    let shown_table = sh.ok(&["clients", "show", "client-1"]);

    assert!(
        table.lines().next().unwrap().contains("AUTH METHOD"),
        "{table}"
    );
    assert!(
        table.contains("client_secret_basic") && table.contains("127.0.0.1:6274"),
        "{table}"
    );
    assert_eq!(listed.len(), 2);
    assert_eq!(
        shown[0]["metadata"]["logo_uri"],
        "https://app.example/logo.png"
    );
    assert!(shown[0].get("secret_hash").is_none(), "{}", shown[0]);
    assert!(!shown_table.contains("5ec7e7"), "{shown_table}");
    assert!(shown_table.contains("logo_uri"), "{shown_table}");

    let said = sh.ok(&["clients", "delete", "client-1"]);

    assert_eq!(
        said.trim_end(),
        "deleted client client-1 (Inspector); 1 grant revoked"
    );
    assert!(store.get_client("client-1").await.unwrap().is_none());
    assert!(revoked(&store.get_grant("g-1").await.unwrap()).is_some());
    assert!(revoked(&store.get_grant("g-2").await.unwrap()).is_none());
    let filter = AuditFilter {
        kind: Some(AuditKind::Admin),
        ..AuditFilter::default()
    };
    let events = store.audit_events(&filter).await.unwrap();
    assert_eq!(events[0].client_id.as_deref(), Some("client-1"));
    assert_eq!(
        sh.fails(&["clients", "show", "client-1"]),
        "portcullis: no client with id \"client-1\""
    );
    assert!(
        sh.fails(&["clients", "delete", "client-1"])
            .contains("no client with id")
    );
    // A generated client id may begin with `-`: it is still an id, not an option.
    store.insert_client(&client("-Zq9client")).await.unwrap();
    let dashed = sh.json(&["clients", "show", "-Zq9client"]);
    assert_eq!(dashed[0]["client_id"], "-Zq9client");
    assert_eq!(
        sh.json(&["grants", "list", "--client", "-Zq9client"]).len(),
        0
    );
    let said = sh.ok(&["clients", "delete", "-Zq9client"]);
    assert!(said.starts_with("deleted client -Zq9client"), "{said}");
}
