use crate::config::{BackendTransport, ForwardMode, Settings};

fn error(toml: &str) -> String {
    Settings::from_toml(toml).unwrap_err().to_string()
}

#[test]
fn server_streams_have_an_idle_timeout_and_a_per_person_cap() {
    let defaults = Settings::from_toml("").unwrap().gateway;
    assert_eq!(defaults.sse_idle_timeout.as_secs(), 300);
    assert_eq!(defaults.max_streams_per_person, 8);
    let set =
        Settings::from_toml("[gateway]\nsse_idle_timeout_secs = 30\nmax_streams_per_person = 2\n")
            .unwrap()
            .gateway;
    assert_eq!(set.sse_idle_timeout.as_secs(), 30);
    assert_eq!(set.max_streams_per_person, 2);
    for (toml, key) in [
        ("sse_idle_timeout_secs = 0", "gateway.sse_idle_timeout_secs"),
        (
            "max_streams_per_person = 0",
            "gateway.max_streams_per_person",
        ),
        (
            "max_streams_per_person = 100000",
            "gateway.max_streams_per_person",
        ),
    ] {
        let said = error(&format!("[gateway]\n{toml}\n"));
        assert!(said.contains(key), "{toml}: {said}");
    }
}

#[test]
fn the_issue_example_parses() {
    let settings = Settings::from_toml(
        r#"
        [[backends]]
        id = "everything"
        command = ["npx", "-y", "@modelcontextprotocol/server-everything"]
        scope = "everything:tools:call"
        forward = ["identity-headers"]
        [backends.tools]
        "echo" = "everything:echo:call"
        "trigger-*" = "everything:admin:call"
        "#,
    )
    .unwrap();
    let backend = &settings.backends[0];
    assert_eq!(backend.forward, [ForwardMode::IdentityHeaders]);
    assert_eq!(
        backend.tool_scope("trigger-*"),
        Some("everything:admin:call")
    );
    assert_eq!(
        backend.assertion_audience,
        "urn:portcullis:backend:everything"
    );
    let BackendTransport::Stdio(stdio) = &backend.transport else {
        panic!("a command makes a stdio backend");
    };
    assert_eq!((stdio.program.as_str(), stdio.args.len()), ("npx", 2));
    assert_eq!(settings.gateway.tool_separator, "__");
}

#[test]
fn allowed_origins_are_origins_only() {
    let settings = Settings::from_toml(
        "[gateway]\nallowed_origins = [\"https://app.example.com\", \"http://localhost:6274/\"]\n",
    )
    .unwrap();
    assert_eq!(
        settings.gateway.allowed_origins,
        ["https://app.example.com", "http://localhost:6274"]
    );
    for bad in ["https://app.example.com/path", "app.example.com", "null"] {
        let toml = format!("[gateway]\nallowed_origins = [\"{bad}\"]\n");
        assert!(error(&toml).contains("gateway.allowed_origins[0]"), "{bad}");
    }
}

#[test]
fn a_backend_needs_exactly_one_of_url_and_command() {
    assert!(error("[[backends]]\nid = \"a\"\n").contains("backends[0].url"));
    let both = "[[backends]]\nid = \"a\"\nurl = \"http://127.0.0.1:1/mcp\"\ncommand = [\"x\"]\n";
    assert!(error(both).contains("not both"));
    assert!(error("[[backends]]\nid = \"a\"\ncommand = []\n").contains("backends[0].command"));
}

#[test]
fn backend_mistakes_are_named_by_key() {
    let stdio = "[[backends]]\nid = \"s\"\ncommand = [\"x\"]\n";
    assert!(error(&format!("{stdio}forward = [\"assertion\"]\n")).contains("backends[0].forward"));
    assert!(
        error(&format!(
            "{stdio}shared = true\nforward = [\"identity-headers\"]\n"
        ))
        .contains("per-user")
    );
    assert!(Settings::from_toml(&format!("{stdio}forward = [\"identity-headers\"]\n")).is_ok());
    let base = "[[backends]]\nid = \"a\"\nurl = \"http://127.0.0.1:1/mcp\"\n";
    assert!(error(&format!("{base}forward = [\"the-token\"]\n")).contains("forward"));
    assert!(
        error(&format!("{base}[backends.tools]\n\"x\" = \"two scopes\"\n"))
            .contains("backends[0].tools")
    );
    assert!(
        error(&format!("{base}[backends.tools]\n\"[x\" = \"a:b:c\"\n"))
            .contains("not a valid tool pattern")
    );
    assert!(
        error(&format!(
            "{base}[[backends]]\nid = \"a\"\nurl = \"http://127.0.0.1:2/mcp\"\n"
        ))
        .contains("used twice")
    );
    assert!(error(&format!("{base}timeout_secs = 0\n")).contains("backends[0].timeout_secs"));
    let remote_upstream = "[[backends]]\nid = \"a\"\nurl = \"http://mcp.internal/mcp\"\nforward = [\"upstream-token\"]\n";
    assert!(error(remote_upstream).contains("https"));
    assert!(
        error("[[backends]]\nid = \"a__b\"\nurl = \"http://127.0.0.1:1/mcp\"\n")
            .contains("tool_separator")
    );
}
