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

#[test]
fn check_config_lists_each_openapi_operation_left_out_and_fails_only_on_nothing_usable() {
    let dir = tempfile::tempdir().unwrap();
    let fixtures = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/openapi");
    std::fs::copy(
        format!("{fixtures}/petstore.yaml"),
        dir.path().join("petstore.yaml"),
    )
    .unwrap();
    // The Petstore's upload takes application/octet-stream, which no tool argument carries.
    std::fs::write(
        dir.path().join("portcullis.toml"),
        "[[backends]]\nid = \"petstore\"\nopenapi = \"petstore.yaml\"\nbase_url = \"https://petstore.example.com/api/v3\"\n",
    )
    .unwrap();
    let output = portcullis(dir.path(), &["check-config"], &[]);
    let said = text(&output);
    assert!(output.status.success(), "{said}");
    assert!(
        said.contains("backend:    petstore (OpenAPI 3.0, 18 tools, requests to https://petstore.example.com/api/v3)"),
        "{said}"
    );
    assert!(
        said.contains("left out: backends[0] (petstore): POST /pet/{petId}/uploadImage: no supported request body type"),
        "{said}"
    );

    // A static secret goes where each operation's security scheme says; those that declare
    // none get nothing, and the operator is told which.
    std::fs::write(
        dir.path().join("portcullis.toml"),
        "[[backends]]\nid = \"petstore\"\nopenapi = \"petstore.yaml\"\nauth = \"static\"\nsecret_env = \"PETSTORE_KEY\"\n",
    )
    .unwrap();
    let output = portcullis(dir.path(), &["check-config"], &[("PETSTORE_KEY", "k")]);
    let said = text(&output);
    assert!(output.status.success(), "{said}");
    let line = said
        .lines()
        .find(|line| line.contains("no secret: backends[0] (petstore)"))
        .unwrap_or_else(|| panic!("{said}"));
    assert!(line.contains("loginUser"), "{line}");
    assert!(!line.contains("getPetById"), "{line}");
    let output = portcullis(dir.path(), &["check-config"], &[]);
    assert_eq!(output.status.code(), Some(2));
    assert!(text(&output).contains("PETSTORE_KEY is not set"));
    let output = portcullis(
        dir.path(),
        &["check-config"],
        &[("PETSTORE_KEY", "k\r\nX: y")],
    );
    assert_eq!(output.status.code(), Some(2));
    assert!(text(&output).contains("PETSTORE_KEY holds characters a header cannot carry"));
    // Nor does a secret go to a server the document names over plain http.
    let petstore = std::fs::read_to_string(dir.path().join("petstore.yaml")).unwrap();
    let plain = petstore.replace(
        "https://petstore3.swagger.io",
        "http://petstore3.swagger.io",
    );
    std::fs::write(dir.path().join("plain.yaml"), plain).unwrap();
    std::fs::write(
        dir.path().join("portcullis.toml"),
        "[[backends]]\nid = \"petstore\"\nopenapi = \"plain.yaml\"\nauth = \"static\"\nsecret_env = \"PETSTORE_KEY\"\n",
    )
    .unwrap();
    let output = portcullis(dir.path(), &["check-config"], &[("PETSTORE_KEY", "k")]);
    let said = text(&output);
    assert_eq!(output.status.code(), Some(2), "{said}");
    assert!(said.contains("only sent over https"), "{said}");

    // Only the upload selected: nothing usable remains, which stops start-up.
    std::fs::write(
        dir.path().join("portcullis.toml"),
        "[[backends]]\nid = \"petstore\"\nopenapi = \"petstore.yaml\"\ninclude = [\"uploadFile\"]\nbase_url = \"https://petstore.example.com\"\n",
    )
    .unwrap();
    let output = portcullis(dir.path(), &["check-config"], &[]);
    let said = text(&output);
    assert_eq!(output.status.code(), Some(2), "{said}");
    assert!(
        said.contains("backends[0] (petstore): petstore.yaml has no usable operation (1 left out"),
        "{said}"
    );

    // Without base_url the document's server is used; a relative one in a file cannot say
    // where requests go.
    std::fs::write(
        dir.path().join("portcullis.toml"),
        "[[backends]]\nid = \"petstore\"\nopenapi = \"petstore.yaml\"\n",
    )
    .unwrap();
    let said = text(&portcullis(dir.path(), &["check-config"], &[]));
    assert!(
        said.contains("requests to https://petstore3.swagger.io/api/v3)"),
        "{said}"
    );
    let petstore = std::fs::read_to_string(dir.path().join("petstore.yaml")).unwrap();
    let relative = petstore.replace("https://petstore3.swagger.io/api/v3", "/api/v3");
    assert_ne!(petstore, relative);
    std::fs::write(dir.path().join("petstore.yaml"), relative).unwrap();
    let output = portcullis(dir.path(), &["check-config"], &[]);
    let said = text(&output);
    assert_eq!(output.status.code(), Some(2), "{said}");
    assert!(said.contains("set base_url"), "{said}");

    std::fs::write(
        dir.path().join("portcullis.toml"),
        "[[backends]]\nid = \"petstore\"\nopenapi = \"absent.yaml\"\nbase_url = \"https://petstore.example.com\"\n",
    )
    .unwrap();
    let output = portcullis(dir.path(), &["check-config"], &[]);
    let said = text(&output);
    assert_eq!(output.status.code(), Some(2), "{said}");
    assert!(
        said.contains("backends[0] (petstore): reading file://"),
        "{said}"
    );
}

#[test]
fn check_config_reads_referenced_documents_only_when_allowed() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("api.yaml"),
        r##"openapi: 3.1.0
info: { title: Split, version: "1" }
servers: [{ url: "https://api.example.com" }]
paths:
  /pets:
    post:
      operationId: addPet
      requestBody:
        content:
          application/json:
            schema: { $ref: "schemas/common.yaml#/components/schemas/Pet" }
      responses: { "200": { description: ok } }
  /health:
    get:
      operationId: health
      responses: { "200": { description: ok } }
"##,
    )
    .unwrap();
    std::fs::create_dir(dir.path().join("schemas")).unwrap();
    std::fs::write(
        dir.path().join("schemas/common.yaml"),
        r##"components:
  schemas:
    Pet:
      type: object
      required: [name]
      properties:
        name: { type: string }
        owner: { $ref: "people.yaml#/components/schemas/Person" }
"##,
    )
    .unwrap();
    std::fs::write(
        dir.path().join("schemas/people.yaml"),
        "components:\n  schemas:\n    Person: { type: object, properties: { name: { type: string } } }\n",
    )
    .unwrap();
    let config = "[[backends]]\nid = \"split\"\nopenapi = \"api.yaml\"\n";
    std::fs::write(dir.path().join("portcullis.toml"), config).unwrap();
    let said = text(&portcullis(dir.path(), &["check-config"], &[]));
    assert!(said.contains("split (OpenAPI 3.1, 1 tools"), "{said}");
    assert!(
        said.contains("left out: backends[0] (split): POST /pets: remote reference"),
        "{said}"
    );

    std::fs::write(
        dir.path().join("portcullis.toml"),
        format!("{config}allow_remote_refs = true\n"),
    )
    .unwrap();
    let output = portcullis(dir.path(), &["check-config"], &[]);
    let said = text(&output);
    assert!(output.status.success(), "{said}");
    assert!(said.contains("split (OpenAPI 3.1, 2 tools"), "{said}");
    assert!(!said.contains("left out"), "{said}");

    // A document that cannot be read stops start-up, naming it.
    std::fs::remove_file(dir.path().join("schemas/people.yaml")).unwrap();
    let output = portcullis(dir.path(), &["check-config"], &[]);
    let said = text(&output);
    assert_eq!(output.status.code(), Some(2), "{said}");
    assert!(said.contains("schemas/people.yaml"), "{said}");
}
