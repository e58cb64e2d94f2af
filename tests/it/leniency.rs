//! What real clients send, accepted as they send it: claude.ai's `scope=offline_access` (once
//! seen with a leading space), OpenID scopes beside the resource's, stray spaces, and a resource
//! with a trailing slash. None of it is `invalid_scope` or `invalid_target`, in either grant mode,
//! and `offline_access` is never advertised as a resource's scope.

use reqwest::StatusCode;
use serde_json::Value;

use crate::gateway::rec_url;
use crate::people::app_with;
use crate::support::app::{Db, TestApp};

/// The scopes granted to `login` for `resource` when the client asks for `scope`.
async fn granted(app: &TestApp, login: &str, scope: &str, resource: String) -> String {
    let (_, tokens) = app
        .tokens_for_resource(login, Some(scope), Some(resource))
        .await;
    tokens["scope"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn loosely_asked_scopes_and_resources_are_served_in_both_grant_modes() {
    for mode in ["entitlement", "requested"] {
        let top = format!("default_role = \"engineer\"\ngrant = \"{mode}\"\n");
        let (app, _backend) = app_with(Db::Sqlite, &top, "", false).await;
        let everything = "rec:echo:call rec:tools:call";
        let slashed = format!("{}/", rec_url(&app));
        for (asked, resource, expected) in [
            ("offline_access", rec_url(&app), everything),
            (" offline_access", slashed.clone(), everything),
            ("openid  offline_access profile", rec_url(&app), everything),
            (
                "rec:tools:call  offline_access ",
                slashed.clone(),
                "rec:tools:call",
            ),
        ] {
            assert_eq!(
                granted(&app, "lenient", asked, resource.clone()).await,
                expected,
                "{mode}: scope={asked:?} resource={resource}"
            );
        }

        let prm: Value = app
            .get_json(&app.url("/.well-known/oauth-protected-resource/mcp/rec"))
            .await;
        let advertised: Vec<&str> = prm["scopes_supported"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(Value::as_str)
            .collect();
        assert_eq!(advertised, ["rec:echo:call", "rec:tools:call"], "{mode}");
        let slashed_prm = app
            .http
            .get(app.url("/.well-known/oauth-protected-resource/mcp/rec/"))
            .send()
            .await
            .unwrap();
        assert_eq!(slashed_prm.status(), StatusCode::OK);
        assert_eq!(slashed_prm.json::<Value>().await.unwrap(), prm);
    }
}
