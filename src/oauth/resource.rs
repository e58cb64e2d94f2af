//! Protected resources (RFC 8707 resource indicators, RFC 9728 metadata): the MCP endpoints a
//! token can be for, each identified by its canonical URI.

use url::Url;

pub use crate::config::GrantMode;

/// One protected MCP endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resource {
    /// The canonical URI: the token's `aud`, and the `resource` of its metadata.
    pub uri: String,
    /// The path below the public base URL, such as `/mcp`.
    pub path: String,
    /// What the resource advertises in `scopes_supported`.
    pub scopes_supported: Vec<String>,
    /// Where its RFC 9728 metadata is served (the well-known segment goes between the origin
    /// and the resource's path, §3.1): what a 401 points clients to.
    pub metadata_url: String,
    /// What the 401 challenge asks for: enough for ordinary use. A call that needs more is
    /// answered with a step-up challenge (least privilege for clients that follow the hint).
    /// Only in [`GrantMode::Requested`]: in the default mode the challenge names no scope, so
    /// that clients which echo it do not ask for less than the person may have.
    pub basic_scopes: Vec<String>,
    /// What a sign-in for this resource grants.
    pub grant: GrantMode,
}

/// What [`Resources::new`] builds a resource from.
#[derive(Debug, Clone)]
pub struct ResourceSpec {
    /// Below the public base URL, such as `/mcp`.
    pub path: String,
    pub scopes_supported: Vec<String>,
    pub basic_scopes: Vec<String>,
    pub grant: GrantMode,
}

/// The protected resources, the first being the default for requests that name none.
#[derive(Debug, Clone)]
pub struct Resources {
    list: Vec<Resource>,
}

impl Resources {
    /// The resources, their paths below `base` (which may carry a path prefix).
    pub fn new(base: &Url, specs: impl IntoIterator<Item = ResourceSpec>) -> Self {
        let prefix = base.as_str().trim_end_matches('/');
        let origin = base.origin().ascii_serialization();
        let list = specs
            .into_iter()
            .map(|spec| {
                let ResourceSpec {
                    path,
                    scopes_supported,
                    basic_scopes,
                    grant,
                } = spec;
                let uri = format!("{prefix}{path}");
                let below_origin = uri.strip_prefix(&origin).unwrap_or(&path);
                Resource {
                    metadata_url: format!(
                        "{origin}{}{below_origin}",
                        crate::paths::PROTECTED_RESOURCE_METADATA
                    ),
                    uri,
                    path,
                    scopes_supported,
                    basic_scopes,
                    grant,
                }
            })
            .collect();
        Self { list }
    }

    pub fn all(&self) -> &[Resource] {
        &self.list
    }

    /// The resource a request without `resource` is for.
    pub fn default_resource(&self) -> Option<&Resource> {
        self.list.first()
    }

    /// Finds the resource `raw` names, tolerating what URI normalisation allows: an upper-case
    /// scheme or host, a default port, and a trailing slash.
    pub fn find(&self, raw: &str) -> Option<&Resource> {
        let canonical = canonicalize(raw)?;
        self.list.iter().find(|r| r.uri == canonical)
    }

    pub fn by_uri(&self, uri: &str) -> Option<&Resource> {
        self.list.iter().find(|r| r.uri == uri)
    }
}

/// RFC 8707 §2: an absolute URI without a fragment; normalised (scheme and host lower-cased by
/// the parser, default port dropped, one trailing slash removed).
pub fn canonicalize(raw: &str) -> Option<String> {
    let url = Url::parse(raw).ok()?;
    if url.fragment().is_some()
        || url.cannot_be_a_base()
        || !matches!(url.scheme(), "http" | "https")
    {
        return None;
    }
    let text = url.as_str();
    match url.query() {
        None => Some(text.strip_suffix('/').unwrap_or(text).to_owned()),
        Some(_) => Some(text.to_owned()),
    }
}

/// Resources below a path prefix, and lenient lookup.
#[cfg(test)]
mod tests {
    use super::*;

    fn resources() -> Resources {
        Resources::new(
            &Url::parse("https://example.com/auth").unwrap(),
            [ResourceSpec {
                path: "/mcp".to_owned(),
                scopes_supported: vec![],
                basic_scopes: vec![],
                grant: GrantMode::Requested,
            }],
        )
    }

    #[test]
    fn resources_are_built_below_a_path_prefix() {
        assert_eq!(resources().all()[0].uri, "https://example.com/auth/mcp");
    }

    #[test]
    fn resource_lookup_tolerates_case_trailing_slash_and_default_port() {
        let r = resources();
        for raw in [
            "https://example.com/auth/mcp",
            "https://example.com/auth/mcp/",
            "HTTPS://EXAMPLE.COM/auth/mcp",
            "https://example.com:443/auth/mcp",
        ] {
            assert!(r.find(raw).is_some(), "{raw}");
        }
        for raw in [
            "https://example.com/auth/MCP",
            "https://example.com/auth/mcp#x",
            "https://example.com/auth",
            "https://other.example.com/auth/mcp",
            "mcp",
        ] {
            assert!(r.find(raw).is_none(), "{raw}");
        }
    }
}
