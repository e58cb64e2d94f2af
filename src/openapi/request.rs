//! A tool call's arguments as an HTTP request, serialised as the operation's parameters say
//! (OpenAPI 3.1.1 §4.8.12.4, "Style Examples" is the reference table), and the static secret
//! placed where its security scheme says.
//!
//! Parameter values are percent-encoded with `percent-encoding` rather than `form_urlencoded`:
//! the styles keep their own delimiters (`,` `;` `=` `.` `&`) literal while the values' own
//! characters are encoded, which a whole-pair form encoder cannot do. Form body fields without
//! an Encoding Object use `form_urlencoded`.

use base64::Engine;
use http::header::{AUTHORIZATION, COOKIE};
use http::{HeaderMap, HeaderName, HeaderValue};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use serde_json::{Map, Value};

use super::{CallPlan, Location, ParameterEncoding, ParameterPlan, SecretPlacement, Style};
pub(super) use body::is_json;
use body::{encode_body, media_text};

/// A body in its media type.
mod body;

/// A request ready to send, relative to the backend's base URL.
#[derive(Debug, Clone)]
pub struct HttpRequest {
    pub method: http::Method,
    /// The path with its parameters substituted and percent-encoded, then `?query` when there
    /// is one; appended to the base URL's path by the caller (always starts with '/').
    pub path_and_query: String,
    /// Header parameters, and cookie parameters as one `Cookie` header.
    pub headers: HeaderMap,
    pub body: Option<Body>,
}

#[derive(Debug, Clone)]
pub struct Body {
    pub content_type: String,
    pub bytes: Vec<u8>,
}

/// Why arguments cannot be sent (the validator catches most cases first; this covers what a
/// schema cannot say, such as a header value with a line break).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{argument}: {message}")]
pub struct BuildError {
    pub argument: String,
    pub message: String,
}

impl BuildError {
    fn new(argument: &str, message: impl Into<String>) -> Self {
        Self {
            argument: argument.to_owned(),
            message: message.into(),
        }
    }
}

/// Everything but RFC 3986's unreserved characters is percent-encoded.
const COMPONENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// `allowReserved`: RFC 3986's reserved characters pass, except those a query string or form
/// parser gives a meaning (`[ ] # & = +`), which OpenAPI 3.1.1 Appendix E says to encode still.
const RESERVED_KEPT: &AsciiSet = &COMPONENT
    .remove(b':')
    .remove(b'/')
    .remove(b'?')
    .remove(b'@')
    .remove(b'!')
    .remove(b'$')
    .remove(b'\'')
    .remove(b'(')
    .remove(b')')
    .remove(b'*')
    .remove(b',')
    .remove(b';');

/// How one location encodes a name or value.
#[derive(Clone, Copy)]
enum Encoder {
    Component,
    AllowReserved,
    /// Header values are sent as they are (and must be valid header values).
    Raw,
}

impl Encoder {
    fn apply(self, text: &str) -> String {
        match self {
            Self::Component => utf8_percent_encode(text, COMPONENT).to_string(),
            Self::AllowReserved => encode_allow_reserved(text),
            Self::Raw => text.to_owned(),
        }
    }

    fn pair(self, name: &str, value: &str) -> String {
        format!("{}={}", self.apply(name), self.apply(value))
    }
}

/// Reserved expansion (RFC 6570 §3.2.3): percent-encoded triples pass through unchanged, any
/// other `%` is encoded.
fn encode_allow_reserved(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find('%') {
        out.extend(utf8_percent_encode(&rest[..at], RESERVED_KEPT));
        let triple = rest
            .get(at..at + 3)
            .filter(|t| t.bytes().skip(1).all(|b| b.is_ascii_hexdigit()));
        match triple {
            Some(triple) => {
                out.push_str(triple);
                rest = &rest[at + 3..];
            }
            None => {
                out.push_str("%25");
                rest = &rest[at + 1..];
            }
        }
    }
    out.extend(utf8_percent_encode(rest, RESERVED_KEPT));
    out
}

/// A value as the style table sees it. Nested arrays and objects, which the table does not
/// cover, are carried as JSON text.
enum Shape {
    Primitive(String),
    Array(Vec<String>),
    Object(Vec<(String, String)>),
}

impl Shape {
    fn of(value: &Value) -> Self {
        match value {
            Value::Array(items) => Self::Array(items.iter().map(text).collect()),
            Value::Object(fields) => {
                Self::Object(fields.iter().map(|(k, v)| (k.clone(), text(v))).collect())
            }
            other => Self::Primitive(text(other)),
        }
    }

    /// The values joined by `separator`; an object as `k,v,k,v` or, exploded, `k=v` pairs.
    fn joined(&self, explode: bool, separator: &str, encode: Encoder) -> String {
        match self {
            Self::Primitive(value) => encode.apply(value),
            Self::Array(items) => join(items.iter().map(|i| encode.apply(i)), separator),
            Self::Object(fields) if explode => {
                join(fields.iter().map(|(k, v)| encode.pair(k, v)), separator)
            }
            Self::Object(fields) => join(
                fields
                    .iter()
                    .flat_map(|(k, v)| [encode.apply(k), encode.apply(v)]),
                separator,
            ),
        }
    }
}

fn join(parts: impl Iterator<Item = String>, separator: &str) -> String {
    parts.collect::<Vec<_>>().join(separator)
}

/// A primitive's text: strings as they are, numbers and booleans as JSON writes them.
fn text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// matrix, label and simple (RFC 6570 §3.2.7, §3.2.5, §3.2.2): the text that replaces
/// `{name}` in the path, or a header's value.
fn path_value(style: Style, explode: bool, name: &str, shape: &Shape, encode: Encoder) -> String {
    match style {
        Style::Label => {
            let separator = if explode { "." } else { "," };
            format!(".{}", shape.joined(explode, separator, encode))
        }
        Style::Matrix => {
            let name = encode.apply(name);
            let named = |value: String| {
                if value.is_empty() {
                    format!(";{name}")
                } else {
                    format!(";{name}={value}")
                }
            };
            match shape {
                Shape::Array(items) if explode && !items.is_empty() => {
                    items.iter().map(|i| named(encode.apply(i))).collect()
                }
                Shape::Object(_) if explode => format!(";{}", shape.joined(true, ";", encode)),
                _ => named(shape.joined(false, ",", encode)),
            }
        }
        // simple, and any query style a document puts in a path or header.
        _ => shape.joined(explode, ",", encode),
    }
}

/// form, spaceDelimited, pipeDelimited and deepObject: `name=value` pairs, to be joined by `&`
/// (query) or `; ` (cookie). A combination the table marks n/a (a primitive in a delimited
/// style, an array in deepObject) is sent as form.
fn query_pairs(
    style: Style,
    explode: bool,
    name: &str,
    shape: &Shape,
    encode: Encoder,
) -> Vec<String> {
    let key = encode.apply(name);
    let delimiter = match style {
        Style::SpaceDelimited => Some("%20"),
        Style::PipeDelimited => Some("%7C"),
        _ => None,
    };
    match (shape, delimiter) {
        (Shape::Array(_) | Shape::Object(_), Some(delimiter)) if !explode => {
            vec![format!("{key}={}", shape.joined(false, delimiter, encode))]
        }
        (Shape::Object(fields), None) if style == Style::DeepObject => fields
            .iter()
            .map(|(k, v)| format!("{key}%5B{}%5D={}", encode.apply(k), encode.apply(v)))
            .collect(),
        (Shape::Array(items), _) if explode => items
            .iter()
            .map(|i| format!("{key}={}", encode.apply(i)))
            .collect(),
        (Shape::Object(fields), _) if explode => {
            fields.iter().map(|(k, v)| encode.pair(k, v)).collect()
        }
        _ => vec![format!("{key}={}", shape.joined(false, ",", encode))],
    }
}

/// Everything one request collects while its parameters are serialised.
#[derive(Default)]
struct Parts {
    path: String,
    query: Vec<String>,
    headers: HeaderMap,
    cookies: Vec<String>,
}

/// Serialises the arguments into a request. Missing optional arguments and `null` ones are
/// left out; a missing required one is an error (the validator normally says so first).
pub fn build(plan: &CallPlan, arguments: &Map<String, Value>) -> Result<HttpRequest, BuildError> {
    let mut parts = Parts {
        path: plan.path.clone(),
        ..Parts::default()
    };
    for parameter in &plan.parameters {
        match arguments.get(&parameter.argument) {
            Some(Value::Null) | None if parameter.required => {
                return Err(BuildError::new(&parameter.argument, "is required"));
            }
            Some(Value::Null) | None => {}
            Some(value) => add_parameter(&mut parts, parameter, value)?,
        }
    }
    if !parts.cookies.is_empty() {
        let cookie = header_value("cookie parameters", &parts.cookies.join("; "))?;
        parts.headers.insert(COOKIE, cookie);
    }
    let body = match &plan.body {
        None => None,
        Some(body) => match arguments.get(&body.argument) {
            Some(Value::Null) | None if body.required => {
                return Err(BuildError::new(&body.argument, "is required"));
            }
            Some(Value::Null) | None => None,
            Some(value) => Some(encode_body(body, value)?),
        },
    };
    let mut path_and_query = parts.path;
    if !path_and_query.starts_with('/') {
        path_and_query.insert(0, '/');
    }
    if !parts.query.is_empty() {
        path_and_query.push('?');
        path_and_query.push_str(&parts.query.join("&"));
    }
    Ok(HttpRequest {
        method: plan.method.clone(),
        path_and_query,
        headers: parts.headers,
        body,
    })
}

fn add_parameter(
    parts: &mut Parts,
    parameter: &ParameterPlan,
    value: &Value,
) -> Result<(), BuildError> {
    let (style, explode, allow_reserved, shape) = match &parameter.encoding {
        ParameterEncoding::Style {
            style,
            explode,
            allow_reserved,
        } => (*style, *explode, *allow_reserved, Shape::of(value)),
        // The value as its media type (JSON unless it is plain text), then encoded as one
        // primitive with the location's default style.
        ParameterEncoding::Content { media_type } => {
            let serialized = media_text(value, media_type);
            let style = match parameter.location {
                Location::Path | Location::Header => Style::Simple,
                Location::Query | Location::Cookie => Style::Form,
            };
            (style, false, false, Shape::Primitive(serialized))
        }
    };
    let name = parameter.name.as_str();
    match parameter.location {
        Location::Path => {
            let text = path_value(style, explode, name, &shape, Encoder::Component);
            parts.path = parts.path.replace(&format!("{{{name}}}"), &text);
        }
        Location::Query => {
            let encode = if allow_reserved {
                Encoder::AllowReserved
            } else {
                Encoder::Component
            };
            parts
                .query
                .extend(query_pairs(style, explode, name, &shape, encode));
        }
        Location::Header => {
            let header = HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| BuildError::new(&parameter.argument, "is not a valid header name"))?;
            let text = path_value(Style::Simple, explode, name, &shape, Encoder::Raw);
            let value = header_value(&parameter.argument, &text)?;
            parts.headers.append(header, value);
        }
        Location::Cookie => {
            parts.cookies.extend(query_pairs(
                Style::Form,
                explode,
                name,
                &shape,
                Encoder::Component,
            ));
        }
    }
    Ok(())
}

fn header_value(argument: &str, text: &str) -> Result<HeaderValue, BuildError> {
    HeaderValue::from_str(text).map_err(|_| {
        BuildError::new(
            argument,
            "cannot be sent in a header (control characters or line breaks)",
        )
    })
}

/// Adds the static secret where `placement` says (query appends to `path_and_query`). A secret
/// that cannot be a header value (a line break) is not placed, and a warning says so without
/// the secret; check secrets with [`HeaderValue::from_str`] at start-up to refuse them early.
pub fn place_secret(request: &mut HttpRequest, placement: &SecretPlacement, secret: &str) {
    let header = |text: String| match HeaderValue::from_str(&text) {
        Ok(mut value) => {
            value.set_sensitive(true);
            Some(value)
        }
        Err(_) => {
            tracing::warn!(target: "security", "the static secret is not a valid header value; not sent");
            None
        }
    };
    match placement {
        SecretPlacement::Bearer => {
            if let Some(value) = header(format!("Bearer {secret}")) {
                request.headers.insert(AUTHORIZATION, value);
            }
        }
        SecretPlacement::Basic => {
            let encoded = base64::engine::general_purpose::STANDARD.encode(secret);
            if let Some(value) = header(format!("Basic {encoded}")) {
                request.headers.insert(AUTHORIZATION, value);
            }
        }
        SecretPlacement::Header(name) => {
            if let (Ok(name), Some(value)) = (
                HeaderName::from_bytes(name.as_bytes()),
                header(secret.to_owned()),
            ) {
                request.headers.insert(name, value);
            }
        }
        SecretPlacement::Query(name) => {
            let separator = if request.path_and_query.contains('?') {
                '&'
            } else {
                '?'
            };
            request.path_and_query.push(separator);
            request
                .path_and_query
                .push_str(&Encoder::Component.pair(name, secret));
        }
        SecretPlacement::Cookie(name) => {
            let pair = format!("{name}={secret}");
            let cookie = match request.headers.get(COOKIE).and_then(|v| v.to_str().ok()) {
                Some(existing) => format!("{existing}; {pair}"),
                None => pair,
            };
            if let Some(value) = header(cookie) {
                request.headers.insert(COOKIE, value);
            }
        }
    }
}

/// The style table of OpenAPI 3.1.1 as test vectors, then real operations.
#[cfg(test)]
#[path = "request_tests.rs"]
mod tests;
