//! OpenAPI documents as MCP tools: read an OpenAPI 3.0 or 3.1 document (JSON or YAML), resolve
//! its `$ref`s (local ones, and remote ones into documents the caller fetched), and turn each
//! selected operation into a tool definition with the plan for calling it. A call is then
//! checked with the tool's [`ArgumentValidator`], serialised by [`build`] and given its secret
//! by [`place_secret`]. Nothing here does I/O; the gateway's OpenAPI backend sends.
//!
//! The document is read with `serde_json` / `yaml_serde` into a JSON value and the parts a tool
//! needs (parameters, request bodies, schemas) are read from it: `oas3` reads only 3.1 and
//! `openapiv3` only 3.0, and the input schema is JSON Schema either way, so one reader over the
//! shared shape serves both versions (3.0's `nullable` and boolean exclusive bounds are
//! rewritten to their 3.1 form).

/// `$ref` resolution into the tool schema's `$defs`, local and remote.
mod refs;
/// Tool-call arguments to an HTTP request (OpenAPI 3.1 §4.8.12.4 serialization).
pub mod request;
/// The secret's place from an operation's security requirement.
mod security;
/// Operations to tools: selection, naming, input schema, annotations, scope and call plan.
mod tools;
/// Tool-call arguments against the tool's input schema.
pub mod validate;

/// Calling the FastAPI and Petstore documents' tools: validation, requests, secrets.
#[cfg(test)]
mod calls_tests;
/// Remote `$ref`s followed into documents fetched beforehand.
#[cfg(test)]
mod external_tests;
/// The FastAPI and Petstore documents as tools.
#[cfg(test)]
mod tests;
/// Documents with unusable or unusual parts.
#[cfg(test)]
mod unusual_tests;

use serde_json::{Map, Value};

pub use request::{Body, BuildError, HttpRequest, build, place_secret};
pub use tools::{MAX_TOOL_NAME_LEN, sanitize_tool_name};
pub use validate::{ArgumentValidator, InvalidArguments};

/// How a document is turned into tools.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// The backend's id: the first part of every default scope.
    pub backend_id: String,
    /// Globs over tags and operationIds; empty keeps every operation.
    pub include: Vec<String>,
    /// Globs over tags and operationIds; an operation matching one is left out.
    pub exclude: Vec<String>,
    /// Remote `$ref`s are refused unless this is set; then they are followed into the
    /// documents in `external` (see [`external_documents`]).
    pub allow_remote_refs: bool,
    /// The document's own URL (`https://…` or `file:///…`), against which its relative `$ref`s
    /// resolve. Without it only absolute remote references can be followed.
    pub document_url: Option<url::Url>,
    /// Documents the caller fetched for remote references, keyed by URL without fragment (as
    /// [`external_documents`] lists them), read with [`parse_document`]. Nothing here fetches.
    pub external: std::collections::HashMap<url::Url, Value>,
}

/// What a document yields: the tools, and the operations that could not become tools.
#[derive(Debug, Clone)]
pub struct Catalog {
    pub version: SpecVersion,
    pub tools: Vec<OpenApiTool>,
    pub unusable: Vec<UnusableOperation>,
    /// Whether `components.securitySchemes` declares any scheme.
    pub security_schemes_declared: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpecVersion {
    V3_0,
    V3_1,
}

/// One operation as an MCP tool.
#[derive(Debug, Clone)]
pub struct OpenApiTool {
    /// Unique in the catalog, within MCP's tool-name characters and [`MAX_TOOL_NAME_LEN`].
    pub name: String,
    /// The operationId as the document spells it, if it has one.
    pub operation_id: Option<String>,
    pub description: Option<String>,
    /// One JSON Schema object: each parameter is a property, the request body is `body`.
    pub input_schema: Map<String, Value>,
    pub annotations: Annotations,
    /// `{backend_id}:{first tag or first path segment}:{read|write}`.
    pub scope: String,
    pub tags: Vec<String>,
    pub plan: CallPlan,
    /// `input_schema`, compiled.
    pub validator: std::sync::Arc<ArgumentValidator>,
}

/// MCP tool annotations (hints only, never trusted for security).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Annotations {
    pub read_only_hint: Option<bool>,
    pub destructive_hint: Option<bool>,
}

/// How to call the operation with a tool call's arguments.
#[derive(Debug, Clone)]
pub struct CallPlan {
    pub method: http::Method,
    /// The path template as written in the document, e.g. `/items/{item_id}`.
    pub path: String,
    pub parameters: Vec<ParameterPlan>,
    pub body: Option<BodyPlan>,
    /// Where a static secret goes: every scheme of the first alternative of the operation's
    /// security requirement (else the document's) that can all be placed. Empty when the
    /// operation needs none, or when no alternative can be placed.
    pub security: Vec<SecretPlacement>,
}

/// Where one security scheme carries the secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretPlacement {
    /// `Authorization: Bearer {secret}` (http bearer, oauth2, openIdConnect).
    Bearer,
    /// `Authorization: Basic base64({secret})`, the secret being `user:password`.
    Basic,
    /// An apiKey header with this name.
    Header(String),
    /// An apiKey query parameter with this name.
    Query(String),
    /// An apiKey cookie with this name.
    Cookie(String),
}

/// Where one argument goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParameterPlan {
    /// The property in the tool's input schema.
    pub argument: String,
    /// The parameter's name on the wire.
    pub name: String,
    pub location: Location,
    pub required: bool,
    pub encoding: ParameterEncoding,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Location {
    Path,
    Query,
    Header,
    Cookie,
}

/// A parameter is serialised either by `style`/`explode` (its `schema`) or as a media type
/// (its `content`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParameterEncoding {
    Style {
        style: Style,
        explode: bool,
        allow_reserved: bool,
    },
    Content {
        media_type: String,
    },
}

/// OpenAPI's parameter styles (OpenAPI 3.1 §4.8.12.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    Matrix,
    Label,
    Form,
    Simple,
    SpaceDelimited,
    PipeDelimited,
    DeepObject,
}

/// The request body: the tool's `body` argument, sent as `media_type`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BodyPlan {
    pub argument: String,
    pub media_type: String,
    pub required: bool,
    /// For a form body, the properties its Encoding Object serialises by style (as a query
    /// parameter would be) or as a media type; the others go as text, objects as JSON text.
    pub encoding: std::collections::BTreeMap<String, ParameterEncoding>,
}

/// An operation left out, with why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnusableOperation {
    /// Upper case, or `*` when a whole path item was unusable.
    pub method: String,
    pub path: String,
    pub reason: Unusable,
}

impl std::fmt::Display for UnusableOperation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}: {}", self.method, self.path, self.reason)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Unusable {
    #[error("remote reference {0:?} refused (set allow_remote_refs to allow it)")]
    RemoteRef(String),
    #[error("remote reference {0:?} points into a document that was not fetched")]
    RemoteRefNotFetched(String),
    #[error("reference {0:?} points at nothing in the document")]
    MissingRef(String),
    #[error("reference {0:?} is nested too deeply or loops")]
    RefTooDeep(String),
    #[error("no supported request body type (JSON or form) among {0:?}")]
    UnsupportedBody(Vec<String>),
    #[error("operationId {0:?} is already used by another operation")]
    DuplicateOperationId(String),
    #[error("two parameters would both be the argument {0:?}")]
    ArgumentClash(String),
    #[error("malformed operation: {0}")]
    Malformed(String),
    #[error("the input schema does not compile: {0}")]
    Schema(String),
}

/// A document that cannot be read at all.
#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    #[error("the document is neither JSON nor YAML: {0}")]
    Syntax(String),
    #[error("the document is not an OpenAPI 3.0 or 3.1 document (openapi = {0:?})")]
    Version(String),
    #[error("invalid selection pattern {pattern:?}: {reason}")]
    Pattern { pattern: String, reason: String },
}

/// Reads a document (JSON or YAML) and turns its selected operations into tools.
pub fn load(bytes: &[u8], options: &Options) -> Result<Catalog, SpecError> {
    let mut root = parse_document(bytes)?;
    let version = match root.get("openapi").and_then(Value::as_str) {
        Some(v) if v.starts_with("3.0.") => SpecVersion::V3_0,
        Some(v) if v.starts_with("3.1.") => SpecVersion::V3_1,
        other => return Err(SpecError::Version(other.unwrap_or("").to_owned())),
    };
    let mut external = refs::Documents::new();
    if options.allow_remote_refs {
        for (url, document) in &options.external {
            let mut document = document.clone();
            refs::absolutize(&mut document, url, true);
            external.insert(url.clone(), document);
        }
        if let Some(base) = &options.document_url {
            refs::absolutize(&mut root, base, false);
        }
        refs::bundle_schemas(&mut root, &mut external, options.document_url.as_ref());
        if let Some(base) = &options.document_url {
            // An external document may refer back into this one.
            external
                .entry(without_fragment(base))
                .or_insert(root.clone());
        }
    }
    tools::build(&root, version, options, &external)
}

/// The documents the remote `$ref`s of a document point into, as absolute URLs without
/// fragment (relative references resolved against `base`, the document's own URL), in the
/// order first referred to, without the document itself. One level only: the listed documents may refer to further ones;
/// call this again on each fetched document with its own URL to find those (the resolver
/// follows references through every document passed in [`Options::external`]).
pub fn external_documents(bytes: &[u8], base: &url::Url) -> Result<Vec<url::Url>, SpecError> {
    let mut document = parse_document(bytes)?;
    let itself = without_fragment(base);
    let mut urls = Vec::new();
    refs::visit_refs(&mut document, &mut |reference| {
        if !reference.starts_with('#')
            && let Ok(url) = base.join(reference)
        {
            let url = without_fragment(&url);
            if url != itself && !urls.contains(&url) {
                urls.push(url);
            }
        }
    });
    Ok(urls)
}

fn without_fragment(url: &url::Url) -> url::Url {
    let mut url = url.clone();
    url.set_fragment(None);
    url
}

/// Reads a document, JSON or YAML, whose top level is an object (an OpenAPI document, or a
/// document its references point into).
pub fn parse_document(bytes: &[u8]) -> Result<Value, SpecError> {
    let first = bytes.iter().find(|b| !b.is_ascii_whitespace());
    let root: Value = if first == Some(&b'{') {
        serde_json::from_slice(bytes).map_err(|e| SpecError::Syntax(e.to_string()))?
    } else {
        yaml_serde::from_slice(bytes).map_err(|e| SpecError::Syntax(e.to_string()))?
    };
    if root.is_object() {
        Ok(root)
    } else {
        Err(SpecError::Syntax("the top level is not an object".into()))
    }
}
