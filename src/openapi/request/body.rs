//! A request body in its media type: JSON, or a form with each field encoded as its Encoding
//! Object says (OpenAPI 3.1.1 §4.8.15).

use serde_json::Value;
use url::form_urlencoded;

use super::{Body, BuildError, Encoder, Shape, query_pairs, text};
use crate::openapi::{BodyPlan, ParameterEncoding};

/// `application/json` and any `+json` type.
pub(in crate::openapi) fn is_json(media_type: &str) -> bool {
    let essence = media_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    essence == "application/json" || essence.ends_with("+json")
}

pub(super) fn encode_body(plan: &BodyPlan, value: &Value) -> Result<Body, BuildError> {
    let (argument, media_type) = (plan.argument.as_str(), plan.media_type.as_str());
    if is_json(media_type) {
        let bytes = serde_json::to_vec(value)
            .map_err(|e| BuildError::new(argument, format!("cannot be written as JSON: {e}")))?;
        return Ok(Body {
            content_type: media_type.to_owned(),
            bytes,
        });
    }
    if !media_type
        .trim()
        .to_ascii_lowercase()
        .starts_with("application/x-www-form-urlencoded")
    {
        return Err(BuildError::new(
            argument,
            format!("media type {media_type:?} is not supported"),
        ));
    }
    let Value::Object(fields) = value else {
        return Err(BuildError::new(argument, "a form body must be an object"));
    };
    let field = |name: &str, value: &str| {
        let name: String = form_urlencoded::byte_serialize(name.as_bytes()).collect();
        let value: String = form_urlencoded::byte_serialize(value.as_bytes()).collect();
        format!("{name}={value}")
    };
    let mut pairs = Vec::new();
    for (name, value) in fields.iter().filter(|(_, v)| !v.is_null()) {
        match (plan.encoding.get(name), value) {
            (
                Some(ParameterEncoding::Style {
                    style,
                    explode,
                    allow_reserved,
                }),
                _,
            ) => {
                let encode = if *allow_reserved {
                    Encoder::AllowReserved
                } else {
                    Encoder::Component
                };
                pairs.extend(query_pairs(
                    *style,
                    *explode,
                    name,
                    &Shape::of(value),
                    encode,
                ));
            }
            (Some(ParameterEncoding::Content { media_type }), _) => {
                pairs.push(field(name, &media_text(value, media_type)));
            }
            // Without an Encoding Object: arrays repeat their field (form, explode) and
            // objects are JSON text (their default content type).
            (None, Value::Array(items)) => {
                pairs.extend(items.iter().map(|item| field(name, &text(item))));
            }
            (None, other) => pairs.push(field(name, &text(other))),
        }
    }
    Ok(Body {
        content_type: "application/x-www-form-urlencoded".into(),
        bytes: pairs.join("&").into_bytes(),
    })
}

/// A value as one media type's text: a string as it is for a non-JSON type, else JSON.
pub(super) fn media_text(value: &Value, media_type: &str) -> String {
    match value {
        Value::String(s) if !is_json(media_type) => s.clone(),
        other => other.to_string(),
    }
}
