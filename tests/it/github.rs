//! `kind = "github"` against a local stand-in for GitHub's documented API: the numeric id is the
//! person, the primary verified email theirs, organisations and teams admit them and give roles.

use reqwest::StatusCode;

use crate::people::{callback, claims_of, rec_config, tokens};
use crate::support::app::{Db, Options, TestApp, spawn};
use crate::support::github::{Account, CLIENT_ID, CLIENT_SECRET, FakeGithub};
use crate::support::recorder;

on_both!(github_organisations_and_teams_admit_people_and_give_roles,);

async fn app(db: Db, github: &FakeGithub) -> (TestApp, recorder::Recorder) {
    let backend = recorder::spawn().await;
    let extra = format!(
        r#"
[[providers]]
id = "gh"
kind = "github"
base_url = "{base}"
client_id = "{CLIENT_ID}"
client_secret = "{CLIENT_SECRET}"
[providers.allow]
orgs = ["Acme", "partner/ops"]
[providers.claim_roles.teams]
"acme/platform" = "engineer"
{rec}
"#,
        base = github.base_url,
        rec = rec_config(&backend.url),
    );
    let app = spawn(Options {
        db,
        second_provider: false,
        top_toml: "default_role = \"reader\"\n".into(),
        grant_scopes: r#"["rec:*:call"]"#,
        extra_toml: extra,
        ..Options::default()
    })
    .await;
    (app, backend)
}

async fn github_organisations_and_teams_admit_people_and_give_roles(db: Db) {
    let github = FakeGithub::start(vec![
        Account {
            id: 1,
            login: "octocat",
            orgs: vec!["acme"],
            teams: vec![("acme", "platform")],
            verified_email: true,
        },
        Account {
            id: 2,
            login: "hubot",
            orgs: vec!["acme"],
            teams: vec![],
            verified_email: false,
        },
        Account {
            id: 3,
            login: "opsie",
            orgs: vec!["partner"],
            teams: vec![("partner", "ops")],
            verified_email: true,
        },
        Account {
            id: 4,
            login: "mona",
            orgs: vec!["elsewhere"],
            teams: vec![],
            verified_email: true,
        },
    ])
    .await;
    let (app, _backend) = app(db, &github).await;

    github.sign_in_next("octocat");
    let (_, octocat) = tokens(&app, "gh", "octocat").await;
    assert_eq!(
        octocat["scope"], "rec:echo:call rec:tools:call",
        "engineer by team"
    );
    assert_eq!(claims_of(&octocat)["email"], "octocat@github.test");
    let identity = app.state.store.find_identity("gh", "1").await.unwrap();
    assert!(identity.is_some(), "the numeric id is the subject");

    github.sign_in_next("hubot");
    let (_, hubot) = tokens(&app, "gh", "hubot").await;
    assert_eq!(hubot["scope"], "rec:tools:call", "a reader");
    assert!(
        claims_of(&hubot).get("email").is_none(),
        "an unverified primary email is not kept"
    );

    github.sign_in_next("opsie");
    tokens(&app, "gh", "opsie").await;

    github.sign_in_next("mona");
    let (_, _, refused) = callback(&app, "gh", "mona").await;
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    assert!(
        refused
            .text()
            .await
            .unwrap()
            .contains("GitHub signed you in")
    );
    app.stop().await;
}
