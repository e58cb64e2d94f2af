//! `[[backends]]` with `openapi = …`: a REST API described by an OpenAPI document, its
//! operations served as tools.

use std::path::PathBuf;
use std::time::Duration;

use secrecy::SecretString;
use serde::Deserialize;
use url::Url;

use super::backends::{ForwardMode, RawBackend, ToolPattern};
use super::{ConfigError, is_loopback_url};

/// An OpenAPI backend's settings.
#[derive(Debug, Clone)]
pub struct OpenApiSettings {
    /// Where the document is read from at start-up.
    pub document: DocumentSource,
    /// Where requests go; by default the document's first `servers` entry.
    pub base_url: Option<Url>,
    /// Globs over tags and operationIds: only these operations (all when empty).
    pub include: Vec<String>,
    /// Globs over tags and operationIds: never these operations.
    pub exclude: Vec<String>,
    /// Whether `$ref`s into other documents are followed (they are fetched at start-up).
    pub allow_remote_refs: bool,
    /// The credential the API receives.
    pub auth: ApiAuth,
    /// The most of a response a tool result carries; the rest is cut, with a notice.
    pub max_result_bytes: usize,
    /// How long a read-only operation's answer is reused (zero: not cached).
    pub cache_ttl: Duration,
    /// Per-tool cache lifetimes (name or glob), over `cache_ttl`.
    pub cache: Vec<(ToolPattern, Duration)>,
}

impl OpenApiSettings {
    /// How long `tool`'s answers are reused: its own rule (exact name first, then the most
    /// specific glob), else the backend's.
    pub fn cache_ttl_for(&self, tool: &str) -> Duration {
        let exact = self.cache.iter().find_map(|(pattern, ttl)| match pattern {
            ToolPattern::Exact(name) if name == tool => Some(*ttl),
            _ => None,
        });
        let glob = || {
            self.cache
                .iter()
                .filter_map(|(pattern, ttl)| match pattern {
                    ToolPattern::Glob {
                        matcher, literal, ..
                    } if matcher.is_match(tool) => Some((*literal, *ttl)),
                    _ => None,
                })
                .max_by_key(|(literal, _)| *literal)
                .map(|(_, ttl)| ttl)
        };
        exact.or_else(glob).unwrap_or(self.cache_ttl)
    }
}

/// Where an OpenAPI document comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DocumentSource {
    File(PathBuf),
    /// https, or http to a loopback address.
    Url(Url),
}

impl std::fmt::Display for DocumentSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::File(path) => write!(f, "{}", path.display()),
            Self::Url(url) => write!(f, "{url}"),
        }
    }
}

/// The credential an OpenAPI backend's requests carry. The client's Portcullis token never
/// reaches the API.
#[derive(Debug, Clone)]
pub enum ApiAuth {
    None,
    /// The caller's upstream access token, refreshed when expired, as `Authorization: Bearer`.
    UpstreamToken,
    /// Portcullis' signed identity assertion, in `X-Portcullis-Assertion`.
    Assertion,
    /// A secret read from an environment variable at start-up, placed where the document's
    /// security scheme says (bearer, basic, or an API key in a header, query or cookie).
    Static {
        variable: String,
        secret: SecretString,
    },
}

impl ApiAuth {
    /// The identity forwarding this credential is made of, if any.
    pub fn forward_mode(&self) -> Option<ForwardMode> {
        match self {
            Self::UpstreamToken => Some(ForwardMode::UpstreamToken),
            Self::Assertion => Some(ForwardMode::Assertion),
            Self::None | Self::Static { .. } => None,
        }
    }

    pub fn as_str(&self) -> &'static str {
        match self {
            Self::None => "none",
            Self::UpstreamToken => "upstream-token",
            Self::Assertion => "assertion",
            Self::Static { .. } => "static",
        }
    }
}

/// `auth` as written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RawAuth {
    None,
    UpstreamToken,
    Assertion,
    Static,
}

/// The most a result may be set to carry: beyond this a model is flooded anyway.
const MAX_RESULT_BYTES: usize = 16 * 1024 * 1024;
const DEFAULT_RESULT_BYTES: usize = 64 * 1024;
/// A day: answers older than that are not what a cache of live data is for.
const MAX_CACHE_SECS: u64 = 86_400;

/// The OpenAPI settings of `backend`, whose `openapi` is `document`.
pub(super) fn parse(
    key: &dyn Fn(&str) -> String,
    document: &str,
    backend: &RawBackend,
) -> Result<OpenApiSettings, ConfigError> {
    let document =
        parse_source(document).map_err(|reason| ConfigError::invalid(key("openapi"), reason))?;
    if let Some(url) = &backend.base_url
        && (!matches!(url.scheme(), "http" | "https") || url.host().is_none())
    {
        return Err(ConfigError::invalid(
            key("base_url"),
            "must be an http or https URL",
        ));
    }
    if backend.forward.contains(&ForwardMode::UpstreamToken) {
        return Err(ConfigError::invalid(
            key("forward"),
            "an OpenAPI backend receives the upstream token with auth = \"upstream-token\"",
        ));
    }
    let auth = match (backend.auth.unwrap_or(RawAuth::None), &backend.secret_env) {
        (RawAuth::Static, Some(variable)) => {
            let secret = std::env::var(variable)
                .ok()
                .filter(|v| !v.is_empty())
                .ok_or_else(|| {
                    ConfigError::invalid(
                        key("secret_env"),
                        format!("the environment variable {variable} is not set"),
                    )
                })?;
            // It goes into a header or a query: a line break would split the request.
            if http::HeaderValue::from_str(&secret).is_err() {
                return Err(ConfigError::invalid(
                    key("secret_env"),
                    format!("{variable} holds characters a header cannot carry"),
                ));
            }
            ApiAuth::Static {
                variable: variable.clone(),
                secret: SecretString::from(secret),
            }
        }
        (RawAuth::Static, None) => {
            return Err(ConfigError::invalid(
                key("secret_env"),
                "auth = \"static\" needs secret_env, the environment variable holding the secret",
            ));
        }
        (_, Some(_)) => {
            return Err(ConfigError::invalid(
                key("secret_env"),
                "only used with auth = \"static\"",
            ));
        }
        (RawAuth::None, None) => ApiAuth::None,
        (RawAuth::UpstreamToken, None) => ApiAuth::UpstreamToken,
        (RawAuth::Assertion, None) => ApiAuth::Assertion,
    };
    if matches!(auth, ApiAuth::UpstreamToken | ApiAuth::Static { .. })
        && let Some(url) = &backend.base_url
        && url.scheme() != "https"
        && !is_loopback_url(url)
    {
        return Err(ConfigError::invalid(
            key("base_url"),
            "credentials are only sent over https (or to loopback)",
        ));
    }
    let max_result_bytes = backend.max_result_bytes.unwrap_or(DEFAULT_RESULT_BYTES);
    if !(1024..=MAX_RESULT_BYTES).contains(&max_result_bytes) {
        return Err(ConfigError::invalid(
            key("max_result_bytes"),
            format!("use 1024 to {MAX_RESULT_BYTES} bytes"),
        ));
    }
    let seconds = |name: &str, secs: u64| {
        if secs > MAX_CACHE_SECS {
            return Err(ConfigError::invalid(
                key(name),
                format!("use 0 (off) to {MAX_CACHE_SECS} seconds"),
            ));
        }
        Ok(Duration::from_secs(secs))
    };
    let cache_ttl = seconds("cache_ttl_secs", backend.cache_ttl_secs)?;
    let mut cache = Vec::with_capacity(backend.cache.len());
    for (pattern, secs) in &backend.cache {
        let parsed = ToolPattern::parse_at(&key("cache"), pattern)?;
        cache.push((parsed, seconds("cache", *secs)?));
    }
    for (name, patterns) in [("include", &backend.include), ("exclude", &backend.exclude)] {
        for pattern in patterns {
            globset::Glob::new(pattern).map_err(|e| {
                ConfigError::invalid(key(name), format!("`{pattern}`: {}", e.kind()))
            })?;
        }
    }
    Ok(OpenApiSettings {
        document,
        base_url: backend.base_url.clone(),
        include: backend.include.clone(),
        exclude: backend.exclude.clone(),
        allow_remote_refs: backend.allow_remote_refs,
        auth,
        max_result_bytes,
        cache_ttl,
        cache,
    })
}

/// A URL when it has a scheme (https, or http to loopback), else a file path.
fn parse_source(document: &str) -> Result<DocumentSource, String> {
    let document = document.trim();
    if document.is_empty() {
        return Err("name the OpenAPI document: a file or an https URL".into());
    }
    match Url::parse(document) {
        Ok(url) if url.scheme() == "https" && url.host().is_some() => Ok(DocumentSource::Url(url)),
        Ok(url) if url.scheme() == "http" && is_loopback_url(&url) => Ok(DocumentSource::Url(url)),
        Ok(url) if url.scheme() == "http" => {
            Err("fetch the document over https (http only from loopback)".into())
        }
        Ok(url) if url.scheme() == "file" => url
            .to_file_path()
            .map(DocumentSource::File)
            .map_err(|()| "not a local file URL".into()),
        // A Windows drive letter or any other scheme-less text is a path.
        Ok(url) if url.scheme().len() > 1 => Err(format!(
            "a {} URL cannot be read: use a file or an https URL",
            url.scheme()
        )),
        _ => Ok(DocumentSource::File(PathBuf::from(document))),
    }
}

/// The OpenAPI-only keys, refused on other backends so a typo in `openapi` is not silently a
/// different backend.
pub(super) fn reject_on_other_backends(
    key: &dyn Fn(&str) -> String,
    backend: &RawBackend,
) -> Result<(), ConfigError> {
    let set = [
        ("base_url", backend.base_url.is_some()),
        ("include", !backend.include.is_empty()),
        ("exclude", !backend.exclude.is_empty()),
        ("allow_remote_refs", backend.allow_remote_refs),
        ("auth", backend.auth.is_some()),
        ("secret_env", backend.secret_env.is_some()),
        ("max_result_bytes", backend.max_result_bytes.is_some()),
        ("cache_ttl_secs", backend.cache_ttl_secs > 0),
        ("cache", !backend.cache.is_empty()),
    ];
    match set.iter().find(|(_, set)| *set) {
        Some((name, _)) => Err(ConfigError::invalid(
            key(name),
            "only for an OpenAPI backend (openapi = …)",
        )),
        None => Ok(()),
    }
}

/// OpenAPI backends' settings: defaults, credentials and refusals.
#[cfg(test)]
mod tests {
    use std::time::Duration;

    use secrecy::ExposeSecret;

    use super::{ApiAuth, DocumentSource};
    use crate::config::{BackendTransport, ForwardMode, OpenApiSettings, Settings};

    fn error(toml: &str) -> String {
        Settings::from_toml(toml).unwrap_err().to_string()
    }

    fn api(extra: &str) -> (OpenApiSettings, Vec<ForwardMode>) {
        let settings = Settings::from_toml(&format!(
            "[[backends]]\nid = \"billing\"\nopenapi = \"specs/billing.yaml\"\n{extra}"
        ))
        .unwrap();
        let backend = &settings.backends[0];
        let BackendTransport::OpenApi(api) = &backend.transport else {
            panic!("openapi makes an OpenAPI backend");
        };
        ((**api).clone(), backend.forward.clone())
    }

    #[test]
    fn the_issue_example_parses_with_its_defaults() {
        let (api, forward) = api("base_url = \"https://billing.internal/v1\"\n");
        assert_eq!(
            api.document,
            DocumentSource::File("specs/billing.yaml".into())
        );
        assert_eq!(
            api.base_url.as_ref().map(url::Url::as_str),
            Some("https://billing.internal/v1")
        );
        assert!(matches!(api.auth, ApiAuth::None));
        assert!(forward.is_empty());
        assert_eq!(api.max_result_bytes, 64 * 1024);
        assert_eq!(api.cache_ttl_for("anything"), Duration::ZERO);
        assert!(!api.allow_remote_refs);
    }

    #[test]
    fn documents_are_files_or_https_urls() {
        let source = |document: &str| {
            let toml = format!("[[backends]]\nid = \"b\"\nopenapi = \"{document}\"\n");
            match &Settings::from_toml(&toml).map(|s| s.backends[0].transport.clone()) {
                Ok(BackendTransport::OpenApi(api)) => Ok(api.document.clone()),
                Ok(_) => panic!("not an OpenAPI backend"),
                Err(error) => Err(error.to_string()),
            }
        };
        assert!(matches!(
            source("https://api.example.com/openapi.json"),
            Ok(DocumentSource::Url(_))
        ));
        assert!(matches!(
            source("http://127.0.0.1:8000/openapi.json"),
            Ok(DocumentSource::Url(_))
        ));
        assert_eq!(
            source("file:///etc/specs/a.yaml"),
            Ok(DocumentSource::File("/etc/specs/a.yaml".into()))
        );
        assert!(
            source("http://api.example.com/openapi.json")
                .unwrap_err()
                .contains("backends[0].openapi")
        );
        assert!(source("ftp://x/y.json").unwrap_err().contains("ftp"));
        assert!(source(" ").unwrap_err().contains("backends[0].openapi"));
    }

    #[test]
    fn credentials_become_forwarding_or_a_static_secret() {
        let (upstream, forward) = api("auth = \"upstream-token\"\n");
        assert!(matches!(upstream.auth, ApiAuth::UpstreamToken));
        assert_eq!(forward, [ForwardMode::UpstreamToken]);
        let (_, forward) = api("auth = \"assertion\"\nforward = [\"identity-headers\"]\n");
        assert_eq!(
            forward,
            [ForwardMode::IdentityHeaders, ForwardMode::Assertion]
        );
        // PATH is set wherever tests run; its value stands in for a secret.
        let (stat, forward) = api("auth = \"static\"\nsecret_env = \"PATH\"\n");
        let ApiAuth::Static { variable, secret } = &stat.auth else {
            panic!("static auth");
        };
        assert_eq!(variable, "PATH");
        assert_eq!(secret.expose_secret(), std::env::var("PATH").unwrap());
        assert!(forward.is_empty());
        assert!(!format!("{stat:?}").contains(&std::env::var("PATH").unwrap()));
    }

    #[test]
    fn cache_lifetimes_take_the_most_specific_rule() {
        let (api, _) = api(
            "cache_ttl_secs = 30\n[backends.cache]\n\"get_*\" = 10\n\"get_item*\" = 5\n\"get_item\" = 0\n",
        );
        assert_eq!(api.cache_ttl_for("list_items"), Duration::from_secs(30));
        assert_eq!(api.cache_ttl_for("get_user"), Duration::from_secs(10));
        assert_eq!(api.cache_ttl_for("get_items"), Duration::from_secs(5));
        assert_eq!(api.cache_ttl_for("get_item"), Duration::ZERO);
    }

    #[test]
    fn mistakes_are_named_by_key() {
        let base = "[[backends]]\nid = \"b\"\nopenapi = \"a.yaml\"\n";
        for (extra, key) in [
            ("auth = \"static\"\n", "backends[0].secret_env"),
            (
                "auth = \"static\"\nsecret_env = \"PORTCULLIS_TEST_NEVER_SET_9F2\"\n",
                "PORTCULLIS_TEST_NEVER_SET_9F2 is not set",
            ),
            ("secret_env = \"PATH\"\n", "only used with auth"),
            ("auth = \"bearer\"\n", "auth"),
            ("forward = [\"upstream-token\"]\n", "backends[0].forward"),
            ("base_url = \"ftp://x\"\n", "backends[0].base_url"),
            (
                "auth = \"upstream-token\"\nbase_url = \"http://api.internal\"\n",
                "https",
            ),
            ("max_result_bytes = 10\n", "backends[0].max_result_bytes"),
            ("cache_ttl_secs = 100000\n", "backends[0].cache_ttl_secs"),
            ("[backends.cache]\n\"[x\" = 5\n", "backends[0].cache"),
            ("include = [\"[a\"]\n", "backends[0].include"),
            ("url = \"http://127.0.0.1:1/mcp\"\n", "not both"),
        ] {
            let said = error(&format!("{base}{extra}"));
            assert!(said.contains(key), "{extra}: {said}");
        }
        let http = "[[backends]]\nid = \"h\"\nurl = \"http://127.0.0.1:1/mcp\"\n";
        for extra in [
            "cache_ttl_secs = 5\n",
            "auth = \"none\"\n",
            "base_url = \"http://127.0.0.1:2\"\n",
        ] {
            let said = error(&format!("{http}{extra}"));
            assert!(
                said.contains("only for an OpenAPI backend"),
                "{extra}: {said}"
            );
        }
    }
}
