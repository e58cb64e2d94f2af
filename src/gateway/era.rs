//! The two eras of MCP and the bridge between them. Legacy revisions (2025-11-25 and earlier)
//! open with `initialize` and may keep a session; modern ones (2026-07-28) carry the protocol
//! version and the client's capabilities in every request's `_meta`, mirror the method and name
//! into `Mcp-Method` / `Mcp-Name` headers, mark every result with `resultType`, and put caching
//! hints on lists. The gateway answers each request in its client's era, whatever era the
//! backend behind speaks.
//!
//! <https://modelcontextprotocol.io/specification/2026-07-28/basic/versioning>

use axum::http::{HeaderMap, HeaderName};
use base64::Engine;
use serde_json::{Map, Value, json};

use super::error::GatewayError;
use super::message::{Incoming, Message, Request};

/// The modern revisions the gateway speaks, newest first.
pub const MODERN_VERSIONS: [&str; 1] = ["2026-07-28"];
/// The legacy revisions the gateway speaks, newest first (all with `initialize`).
pub const LEGACY_VERSIONS: [&str; 4] = ["2025-11-25", "2025-06-18", "2025-03-26", "2024-11-05"];

/// `_meta` keys of a modern request and result.
pub mod meta {
    pub const PROTOCOL_VERSION: &str = "io.modelcontextprotocol/protocolVersion";
    pub const CLIENT_INFO: &str = "io.modelcontextprotocol/clientInfo";
    pub const CLIENT_CAPABILITIES: &str = "io.modelcontextprotocol/clientCapabilities";
    pub const SERVER_INFO: &str = "io.modelcontextprotocol/serverInfo";
    /// Every key the protocol itself puts in a request's `_meta` begins so.
    pub const PROTOCOL_PREFIX: &str = "io.modelcontextprotocol/";
    /// W3C Trace Context in `_meta`, unprefixed (SEP-414).
    pub const TRACEPARENT: &str = "traceparent";
    pub const TRACESTATE: &str = "tracestate";
}

/// Request headers of the 2026-07-28 Streamable HTTP transport.
pub mod headers {
    use axum::http::HeaderName;

    pub const PROTOCOL_VERSION: HeaderName = HeaderName::from_static("mcp-protocol-version");
    pub const METHOD: HeaderName = HeaderName::from_static("mcp-method");
    pub const NAME: HeaderName = HeaderName::from_static("mcp-name");
    /// `Mcp-Param-{name}`: tool parameters a server asked clients to mirror.
    pub const PARAM_PREFIX: &str = "mcp-param-";
}

/// Which era a peer speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Era {
    /// `initialize`, sessions, server-initiated requests.
    Legacy,
    /// Stateless: `server/discover`, per-request `_meta`, MRTR.
    Modern,
}

/// Results that carry caching hints in the modern era (`CacheableResult`).
const CACHEABLE: [&str; 6] = [
    "server/discover",
    "tools/list",
    "prompts/list",
    "resources/list",
    "resources/templates/list",
    "resources/read",
];

/// Result fields only the modern era knows.
const MODERN_RESULT_FIELDS: [&str; 3] = ["resultType", "ttlMs", "cacheScope"];

/// The modern protocol version a request claims in its `_meta`, if it claims one.
pub fn claimed_version(params: Option<&Value>) -> Option<&str> {
    params?.get("_meta")?.get(meta::PROTOCOL_VERSION)?.as_str()
}

impl Request {
    /// The era the request was sent in: modern when its `_meta` claims a version.
    pub fn era(&self) -> Era {
        if claimed_version(self.params.as_ref()).is_some() {
            Era::Modern
        } else {
            Era::Legacy
        }
    }

    /// The client's capabilities as a modern request declares them.
    pub fn client_capabilities(&self) -> Option<&Value> {
        self.params
            .as_ref()?
            .get("_meta")?
            .get(meta::CLIENT_CAPABILITIES)
    }

    /// What `Mcp-Name` mirrors: `params.uri` of `resources/read`, else `params.name`.
    fn name(&self) -> Option<&str> {
        let key = if self.method.as_str() == "resources/read" {
            "uri"
        } else {
            "name"
        };
        self.params.as_ref()?.get(key)?.as_str()
    }
}

/// True for a version of the modern era (one not in the legacy list, and 2026 or later).
pub fn is_modern(version: &str) -> bool {
    !LEGACY_VERSIONS.contains(&version) && version >= MODERN_VERSIONS[MODERN_VERSIONS.len() - 1]
}

/// Every version the gateway speaks, newest first: what `server/discover` and a refusal of an
/// unsupported version list.
pub fn supported_versions() -> Vec<&'static str> {
    MODERN_VERSIONS
        .iter()
        .chain(&LEGACY_VERSIONS)
        .copied()
        .collect()
}

/// A modern request's version and `_meta`, and the headers that mirror its body, checked the
/// way the 2026-07-28 Streamable HTTP transport requires of a server that reads the body. A
/// legacy request carries none of these, but when it does send `Mcp-Method` / `Mcp-Name` they
/// must still match, since whatever routes or authorizes on them must see what runs.
///
/// <https://modelcontextprotocol.io/specification/2026-07-28/basic/transports/streamable-http#server-validation>
pub fn check_request_headers(
    headers: &HeaderMap,
    incoming: &Incoming,
) -> Result<(), (GatewayError, Value)> {
    let header = |name: &HeaderName| headers.get(name).map(|v| v.to_str().map_err(|_| ()));
    let single = match incoming.messages.as_slice() {
        [Message::Request(request)] if !incoming.batch => Some(request),
        _ => None,
    };
    let id = single.map_or(Value::Null, |r| r.id.clone());
    let mismatch = |why: String| (GatewayError::HeaderMismatch(why), id.clone());

    let version_header = header(&headers::PROTOCOL_VERSION);
    if let Some(request) = single
        && let Some(claimed) = claimed_version(request.params.as_ref())
    {
        if !MODERN_VERSIONS.contains(&claimed) {
            let error = GatewayError::UnsupportedVersion {
                requested: claimed.to_owned(),
            };
            return Err((error, id));
        }
        if request.client_capabilities().is_none_or(|c| !c.is_object()) {
            let why = format!("_meta[\"{}\"] is required", meta::CLIENT_CAPABILITIES);
            return Err((GatewayError::InvalidMeta(why), id));
        }
        match version_header {
            Some(Ok(version)) if version == claimed => {}
            Some(Ok(version)) => {
                return Err(mismatch(format!(
                    "MCP-Protocol-Version header value '{version}' does not match body value '{claimed}'"
                )));
            }
            _ => {
                return Err(mismatch(
                    "the MCP-Protocol-Version header is missing or malformed".into(),
                ));
            }
        }
        if header(&headers::METHOD).is_none() {
            return Err(mismatch("the Mcp-Method header is missing".into()));
        }
        let named = matches!(
            request.method.as_str(),
            "tools/call" | "resources/read" | "prompts/get"
        );
        if named && header(&headers::NAME).is_none() {
            return Err(mismatch("the Mcp-Name header is missing".into()));
        }
    } else if let Some(Ok(version)) = version_header
        && is_modern(version)
        && single.is_some()
    {
        return Err(mismatch(format!(
            "MCP-Protocol-Version header value '{version}' is not claimed in the body's _meta"
        )));
    }

    if let Some(method) = header(&headers::METHOD) {
        let method = method.map_err(|()| mismatch("the Mcp-Method header is malformed".into()))?;
        let body = incoming.messages.as_slice();
        let body_method = match body {
            [Message::Request(request)] if !incoming.batch => Some(request.method.as_str()),
            [Message::Notification { method }] if !incoming.batch => Some(method.as_str()),
            _ => None,
        };
        if body_method != Some(method) {
            return Err(mismatch(format!(
                "Mcp-Method header value '{method}' does not match body value '{}'",
                body_method.unwrap_or("")
            )));
        }
    }
    if let Some(name) = header(&headers::NAME) {
        let name = name
            .ok()
            .and_then(decode_header_value)
            .ok_or_else(|| mismatch("the Mcp-Name header is malformed".into()))?;
        let body_name = single.and_then(Request::name);
        if body_name != Some(name.as_str()) {
            return Err(mismatch(format!(
                "Mcp-Name header value '{name}' does not match body value '{}'",
                body_name.unwrap_or("")
            )));
        }
    }
    Ok(())
}

/// A header value as sent, or decoded from the `=?base64?…?=` sentinel form.
fn decode_header_value(value: &str) -> Option<String> {
    match value
        .strip_prefix("=?base64?")
        .and_then(|v| v.strip_suffix("?="))
    {
        Some(encoded) => {
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(encoded)
                .ok()?;
            String::from_utf8(bytes).ok()
        }
        None => Some(value.to_owned()),
    }
}

/// A backend's (or the gateway's own) `result` to `method`, as a client of `era` expects it.
/// Modern clients get `resultType` and, on lists, caching hints: `private`, since the gateway
/// filters every list to what the caller may call, and no longer fresh than the backend said.
/// Legacy clients get neither, and an `input_required` result, which they cannot read, becomes
/// an error that says so.
pub fn for_client(era: Era, method: &str, mut result: Value) -> Result<Value, GatewayError> {
    let Some(object) = result.as_object_mut() else {
        return Err(GatewayError::Malformed);
    };
    match era {
        Era::Modern => {
            object
                .entry("resultType")
                .or_insert_with(|| json!("complete"));
            let complete = object.get("resultType").and_then(Value::as_str) == Some("complete");
            if CACHEABLE.contains(&method) && complete {
                object.entry("ttlMs").or_insert_with(|| json!(0));
                object.insert("cacheScope".into(), json!("private"));
            }
        }
        Era::Legacy => {
            if object.get("resultType").and_then(Value::as_str) == Some("input_required") {
                return Err(GatewayError::InputRequired);
            }
            for field in MODERN_RESULT_FIELDS {
                object.remove(field);
            }
        }
    }
    Ok(result)
}

/// A request's params with the protocol's own `_meta` keys removed: they describe the hop from
/// the client, and the gateway states its own on the hop to the backend.
pub fn without_protocol_meta(params: Option<Value>) -> Option<Value> {
    let mut params = params?;
    if let Some(meta) = params.get_mut("_meta").and_then(Value::as_object_mut) {
        meta.retain(|key, _| !key.starts_with(meta::PROTOCOL_PREFIX));
        if meta.is_empty()
            && let Some(object) = params.as_object_mut()
        {
            object.remove("_meta");
        }
    }
    Some(params)
}

/// Adds a modern request's `_meta` to `params`: the version, the gateway as the client, the
/// capabilities the gateway declares on behalf of its client, and (inside a request) the trace
/// context, under the W3C names SEP-414 reserves, replacing the client's: the gateway is the
/// backend's parent now.
pub fn with_modern_meta(params: Option<Value>, version: &str, capabilities: &Value) -> Value {
    let mut params = params.unwrap_or_else(|| Value::Object(Map::new()));
    if !params.is_object() {
        params = Value::Object(Map::new());
    }
    let meta = params
        .as_object_mut()
        .map(|object| object.entry("_meta").or_insert_with(|| json!({})));
    if let Some(Value::Object(meta)) = meta {
        meta.insert(meta::PROTOCOL_VERSION.into(), json!(version));
        meta.insert(
            meta::CLIENT_INFO.into(),
            json!({ "name": "portcullis", "version": env!("CARGO_PKG_VERSION") }),
        );
        meta.insert(meta::CLIENT_CAPABILITIES.into(), capabilities.clone());
        let trace = crate::telemetry::trace::outgoing();
        if !trace.is_empty() {
            meta.remove(meta::TRACEPARENT);
            meta.remove(meta::TRACESTATE);
            for (key, value) in trace {
                meta.insert(key, Value::String(value));
            }
        }
    }
    params
}

/// The value of `Mcp-Name` for `name`: as it is when it is a plain header value, else in the
/// Base64 sentinel form.
pub fn encode_header_value(name: &str) -> String {
    let plain = name.bytes().all(|b| (0x20..0x7f).contains(&b))
        && name.trim() == name
        && !(name.starts_with("=?base64?") && name.ends_with("?="));
    if plain {
        name.to_owned()
    } else {
        format!(
            "=?base64?{}?=",
            base64::engine::general_purpose::STANDARD.encode(name)
        )
    }
}

/// What a server says about itself, in whichever era: the facts both `initialize` and
/// `server/discover` answer with.
#[derive(Debug, Clone, PartialEq)]
pub struct ServerFacts {
    pub era: Era,
    /// The version spoken with it: negotiated (legacy) or chosen from its list (modern).
    pub version: String,
    pub server_info: Value,
    pub capabilities: Value,
    pub instructions: Option<String>,
}

impl ServerFacts {
    /// From a legacy `InitializeResult`.
    pub fn from_initialize(result: &Value) -> Self {
        Self {
            era: Era::Legacy,
            version: result
                .get("protocolVersion")
                .and_then(Value::as_str)
                .unwrap_or(LEGACY_VERSIONS[1])
                .to_owned(),
            server_info: result.get("serverInfo").cloned().unwrap_or(Value::Null),
            capabilities: result.get("capabilities").cloned().unwrap_or(json!({})),
            instructions: instructions(result),
        }
    }

    /// From a modern `DiscoverResult`, if it offers a version the gateway speaks.
    pub fn from_discover(result: &Value) -> Option<Self> {
        let offered = result.get("supportedVersions")?.as_array()?;
        let version = MODERN_VERSIONS
            .iter()
            .find(|v| offered.iter().any(|o| o.as_str() == Some(v)))?;
        Some(Self {
            era: Era::Modern,
            version: (*version).to_owned(),
            server_info: result
                .pointer("/_meta/io.modelcontextprotocol~1serverInfo")
                .cloned()
                .unwrap_or(Value::Null),
            capabilities: result.get("capabilities").cloned().unwrap_or(json!({})),
            instructions: instructions(result),
        })
    }
}

fn instructions(result: &Value) -> Option<String> {
    result
        .get("instructions")
        .and_then(Value::as_str)
        .map(str::to_owned)
}

/// True when a JSON-RPC error comes from a modern server: the codes the 2026-07-28 revision
/// defines (`UnsupportedProtocolVersion` names the versions to retry with).
pub fn is_modern_error(error: &Value) -> bool {
    let code = error.get("code").and_then(Value::as_i64);
    code == Some(UNSUPPORTED_PROTOCOL_VERSION)
        && error
            .pointer("/data/supported")
            .and_then(Value::as_array)
            .is_some()
}

/// A modern error's supported versions that the gateway speaks too.
pub fn mutual_modern_version(error: &Value) -> Option<&'static str> {
    let supported = error.pointer("/data/supported")?.as_array()?;
    MODERN_VERSIONS
        .iter()
        .find(|v| supported.iter().any(|s| s.as_str() == Some(v)))
        .copied()
}

/// `UnsupportedProtocolVersionError` (2026-07-28 schema).
pub const UNSUPPORTED_PROTOCOL_VERSION: i64 = -32022;
/// `HeaderMismatchError`.
pub const HEADER_MISMATCH: i64 = -32020;

/// Each era's shaping of requests, answers and errors.
#[cfg(test)]
mod tests;
