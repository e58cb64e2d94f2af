//! Reading OpenAPI backends' documents at start-up: from a file or a URL, with the documents
//! their remote `$ref`s point into when the operator allows them, turned into tools.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use url::Url;

use crate::config::{
    ApiAuth, BackendSettings, BackendTransport, DocumentSource, OpenApiSettings, Settings,
    is_loopback_url,
};
use crate::openapi::{self, Catalog};

/// The largest document read (a large API's is a few megabytes).
const MAX_DOCUMENT_BYTES: usize = 32 * 1024 * 1024;
const FETCH_TIMEOUT: Duration = Duration::from_secs(15);

/// One OpenAPI backend's document, read and turned into tools.
#[derive(Debug)]
pub struct LoadedApi {
    pub catalog: Catalog,
    /// Where requests go: `base_url`, else the document's first server.
    pub base_url: Url,
    /// `info.title` and `info.version`, as the backend's `serverInfo`.
    pub server_info: Value,
    /// `info.description`, as the backend's instructions.
    pub description: Option<String>,
}

/// Every OpenAPI backend's document, by backend id.
#[derive(Debug, Default, Clone)]
pub struct Apis {
    loaded: HashMap<String, Arc<LoadedApi>>,
}

impl Apis {
    /// Reads every OpenAPI backend's document. Fails when one cannot be read, or yields no
    /// usable operation; operations that cannot be tools are logged and left out.
    pub async fn load(settings: &Settings) -> anyhow::Result<Self> {
        let http = client()?;
        let mut loaded = HashMap::new();
        for (index, backend) in settings.backends.iter().enumerate() {
            let BackendTransport::OpenApi(api) = &backend.transport else {
                continue;
            };
            let api = load(&http, backend, api)
                .await
                .map_err(|error| anyhow::anyhow!("backends[{index}] ({}): {error}", backend.id))?;
            for unusable in &api.catalog.unusable {
                tracing::warn!(backend = %backend.id, operation = %unusable, "an OpenAPI operation is left out");
            }
            loaded.insert(backend.id.clone(), Arc::new(api));
        }
        Ok(Self { loaded })
    }

    pub fn get(&self, backend: &str) -> Option<&Arc<LoadedApi>> {
        self.loaded.get(backend)
    }
}

/// What `check-config` says of each OpenAPI backend: its tools and what was left out, or why
/// it cannot start.
pub async fn check(settings: &Settings) -> Vec<(usize, String, Result<LoadedApi, LoadError>)> {
    let http = match client() {
        Ok(http) => http,
        Err(error) => {
            return vec![(
                0,
                String::new(),
                Err(LoadError::Read("-".into(), error.to_string())),
            )];
        }
    };
    let mut reports = Vec::new();
    for (index, backend) in settings.backends.iter().enumerate() {
        if let BackendTransport::OpenApi(api) = &backend.transport {
            reports.push((index, backend.id.clone(), load(&http, backend, api).await));
        }
    }
    reports
}

/// Why a document gave no tools.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("reading {0}: {1}")]
    Read(String, String),
    #[error("{document}: {error}")]
    Spec {
        document: String,
        error: openapi::SpecError,
    },
    #[error("{0} has no usable operation ({1} left out; `portcullis check-config` lists them)")]
    NothingUsable(String, usize),
    #[error("{0}")]
    BaseUrl(String),
}

/// The HTTP client documents are fetched with: bounded in time, following no redirect to
/// somewhere the operator did not name.
fn client() -> anyhow::Result<reqwest::Client> {
    Ok(reqwest::Client::builder()
        .timeout(FETCH_TIMEOUT)
        .redirect(reqwest::redirect::Policy::none())
        .build()?)
}

/// Reads one backend's document and makes its tools; the catalog may list unusable operations
/// (the caller reports them), but has at least one tool.
pub async fn load(
    http: &reqwest::Client,
    backend: &BackendSettings,
    api: &OpenApiSettings,
) -> Result<LoadedApi, LoadError> {
    let source = api.document.to_string();
    let location = location(&api.document)?;
    let bytes = read(http, &location).await?;
    let root = openapi::parse_document(&bytes).map_err(|error| LoadError::Spec {
        document: source.clone(),
        error,
    })?;
    let external = if api.allow_remote_refs {
        fetch_external(http, &bytes, &location).await?
    } else {
        HashMap::new()
    };
    let options = openapi::Options {
        backend_id: backend.id.clone(),
        include: api.include.clone(),
        exclude: api.exclude.clone(),
        allow_remote_refs: api.allow_remote_refs,
        document_url: Some(location.clone()),
        external,
    };
    let catalog = openapi::load(&bytes, &options).map_err(|error| LoadError::Spec {
        document: source.clone(),
        error,
    })?;
    if catalog.tools.is_empty() {
        return Err(LoadError::NothingUsable(source, catalog.unusable.len()));
    }
    let base_url = match &api.base_url {
        Some(url) => url.clone(),
        None => first_server(&root, &location).ok_or_else(|| {
            LoadError::BaseUrl(format!(
                "{source} names no absolute server URL: set base_url"
            ))
        })?,
    };
    let sends_credentials = matches!(api.auth, ApiAuth::UpstreamToken | ApiAuth::Static { .. });
    if sends_credentials && base_url.scheme() != "https" && !is_loopback_url(&base_url) {
        return Err(LoadError::BaseUrl(format!(
            "credentials are only sent over https (or to loopback), not to {base_url}"
        )));
    }
    let info = root.get("info");
    let text = |field: &str| info.and_then(|i| i.get(field)).and_then(Value::as_str);
    Ok(LoadedApi {
        catalog,
        base_url,
        server_info: json!({
            "name": text("title").unwrap_or(&backend.id),
            "version": text("version").unwrap_or(""),
        }),
        description: text("description").map(str::to_owned),
    })
}

/// The documents the remote `$ref`s of the document at `location` point into, and those they
/// point into, read the way the document was: files only for a document that is a file (a
/// fetched document never makes Portcullis read a local file), https (or loopback http) URLs.
async fn fetch_external(
    http: &reqwest::Client,
    bytes: &[u8],
    location: &Url,
) -> Result<HashMap<Url, Value>, LoadError> {
    let spec_error = |document: &Url, error| LoadError::Spec {
        document: document.to_string(),
        error,
    };
    let mut fetched = HashMap::new();
    let mut wanted: Vec<Url> =
        openapi::external_documents(bytes, location).map_err(|e| spec_error(location, e))?;
    while let Some(url) = wanted.pop() {
        if fetched.contains_key(&url) || &url == location {
            continue;
        }
        if fetched.len() == MAX_EXTERNAL_DOCUMENTS {
            return Err(LoadError::Read(
                url.to_string(),
                format!("more than {MAX_EXTERNAL_DOCUMENTS} referenced documents"),
            ));
        }
        let allowed = match url.scheme() {
            "file" => location.scheme() == "file",
            "https" => true,
            "http" => is_loopback_url(&url),
            _ => false,
        };
        if !allowed {
            return Err(LoadError::Read(
                url.to_string(),
                format!("a reference from {location} may not be read from there"),
            ));
        }
        let bytes = read(http, &url).await?;
        let document = openapi::parse_document(&bytes).map_err(|e| spec_error(&url, e))?;
        wanted.extend(openapi::external_documents(&bytes, &url).map_err(|e| spec_error(&url, e))?);
        fetched.insert(url, document);
    }
    Ok(fetched)
}

/// The most documents one backend's references may bring in.
const MAX_EXTERNAL_DOCUMENTS: usize = 64;

/// The document's own URL (`file:` for a file), against which relative references and server
/// URLs resolve.
fn location(source: &DocumentSource) -> Result<Url, LoadError> {
    match source {
        DocumentSource::Url(url) => Ok(url.clone()),
        DocumentSource::File(path) => {
            let absolute = std::path::absolute(path)
                .map_err(|e| LoadError::Read(path.display().to_string(), e.to_string()))?;
            Url::from_file_path(&absolute).map_err(|()| {
                LoadError::Read(path.display().to_string(), "not a usable path".into())
            })
        }
    }
}

/// The bytes at `url`: a local file, or an http(s) answer of at most [`MAX_DOCUMENT_BYTES`].
async fn read(http: &reqwest::Client, url: &Url) -> Result<Vec<u8>, LoadError> {
    let failed = |reason: String| LoadError::Read(url.to_string(), reason);
    if url.scheme() == "file" {
        let path = url
            .to_file_path()
            .map_err(|()| failed("not a local path".into()))?;
        let bytes = tokio::fs::read(&path)
            .await
            .map_err(|e| failed(e.to_string()))?;
        if bytes.len() > MAX_DOCUMENT_BYTES {
            return Err(failed(format!("larger than {MAX_DOCUMENT_BYTES} bytes")));
        }
        return Ok(bytes);
    }
    if !matches!(url.scheme(), "http" | "https") {
        return Err(failed("only files and http(s) URLs are read".into()));
    }
    let mut response = http
        .get(url.clone())
        .header(
            reqwest::header::ACCEPT,
            "application/json, application/yaml;q=0.9, */*;q=0.5",
        )
        .send()
        .await
        .map_err(|e| failed(without_url(e)))?;
    if !response.status().is_success() {
        return Err(failed(format!("the server answered {}", response.status())));
    }
    let mut bytes = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|e| failed(without_url(e)))? {
        if bytes.len() + chunk.len() > MAX_DOCUMENT_BYTES {
            return Err(failed(format!("larger than {MAX_DOCUMENT_BYTES} bytes")));
        }
        bytes.extend_from_slice(&chunk);
    }
    Ok(bytes)
}

fn without_url(error: reqwest::Error) -> String {
    let error = error.without_url();
    let mut text = error.to_string();
    let mut source = std::error::Error::source(&error);
    while let Some(cause) = source {
        text = format!("{text}: {cause}");
        source = cause.source();
    }
    text
}

/// The first `servers` entry (a document without one means `/`, OpenAPI 3.1 §4.8.1), its
/// variables at their defaults, resolved against the document's URL; `None` when that gives
/// no http(s) URL.
fn first_server(root: &Value, location: &Url) -> Option<Url> {
    let root_server = json!({ "url": "/" });
    let server = match root.get("servers").and_then(Value::as_array) {
        Some(servers) if !servers.is_empty() => &servers[0],
        _ => &root_server,
    };
    let mut url = server.get("url")?.as_str()?.to_owned();
    if let Some(variables) = server.get("variables").and_then(Value::as_object) {
        for (name, variable) in variables {
            if let Some(default) = variable.get("default").and_then(Value::as_str) {
                url = url.replace(&format!("{{{name}}}"), default);
            }
        }
    }
    let resolved = location.join(&url).ok()?;
    matches!(resolved.scheme(), "http" | "https").then_some(resolved)
}

/// A document's first server resolved against its URL.
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_server_resolves_against_the_document() {
        let document = Url::parse("https://api.example.com/specs/openapi.json").unwrap();
        let relative = json!({ "servers": [{ "url": "/api/v3" }] });
        assert_eq!(
            first_server(&relative, &document).unwrap().as_str(),
            "https://api.example.com/api/v3"
        );
        let variables = json!({ "servers": [{
            "url": "https://{region}.example.com/{base}",
            "variables": { "region": { "default": "eu" }, "base": { "default": "v1" } },
        }]});
        assert_eq!(
            first_server(&variables, &document).unwrap().as_str(),
            "https://eu.example.com/v1"
        );
        let file = Url::parse("file:///etc/portcullis/billing.yaml").unwrap();
        assert_eq!(first_server(&relative, &file), None, "a file has no host");
        for none in [json!({}), json!({ "servers": [] })] {
            assert_eq!(
                first_server(&none, &document).unwrap().as_str(),
                "https://api.example.com/",
                "no server is the document's own root"
            );
            assert_eq!(first_server(&none, &file), None);
        }
    }
}
