//! How each argument of a tool reaches the request: parameters by location, style and
//! encoding, and the body by media type.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use super::{ANY_SCHEMA, BODY_ARGUMENT, describe};
use crate::openapi::refs::Resolver;
use crate::openapi::request::is_json;
use crate::openapi::{BodyPlan, Location, ParameterEncoding, ParameterPlan, Style, Unusable};

/// The parameter's name as its argument, or `{in}_{name}` when another parameter (or the
/// body) has it already.
pub(super) fn free_argument(
    properties: &Map<String, Value>,
    plan: &ParameterPlan,
) -> Result<String, Unusable> {
    let taken = |name: &str| properties.contains_key(name) || name == BODY_ARGUMENT;
    if !taken(&plan.name) {
        return Ok(plan.name.clone());
    }
    let qualified = format!("{}_{}", location_name(plan.location), plan.name);
    if taken(&qualified) {
        Err(Unusable::ArgumentClash(qualified))
    } else {
        Ok(qualified)
    }
}

pub(super) fn location_name(location: Location) -> &'static str {
    match location {
        Location::Path => "path",
        Location::Query => "query",
        Location::Header => "header",
        Location::Cookie => "cookie",
    }
}

pub(super) fn parameter_plan(
    parameter: &Value,
    resolver: &Resolver<'_>,
    defs: &mut BTreeMap<String, Value>,
) -> Result<(ParameterPlan, Value), Unusable> {
    let malformed = |what: &str| Unusable::Malformed(format!("a parameter has no valid `{what}`"));
    let name = parameter
        .get("name")
        .and_then(Value::as_str)
        .ok_or_else(|| malformed("name"))?;
    let location = match parameter.get("in").and_then(Value::as_str) {
        Some("path") => Location::Path,
        Some("query") => Location::Query,
        Some("header") => Location::Header,
        Some("cookie") => Location::Cookie,
        _ => return Err(malformed("in")),
    };
    let required = location == Location::Path
        || parameter.get("required").and_then(Value::as_bool) == Some(true);
    let (raw_schema, encoding) = match (parameter.get("schema"), parameter.get("content")) {
        (Some(schema), _) => (schema, style_encoding(parameter, location)?),
        (None, Some(Value::Object(content))) => {
            let (media_type, media) = content.iter().next().ok_or_else(|| malformed("content"))?;
            let schema = media.get("schema").unwrap_or(&ANY_SCHEMA);
            let media_type = media_type.clone();
            (schema, ParameterEncoding::Content { media_type })
        }
        _ => return Err(malformed("schema")),
    };
    let mut schema = resolver.schema(raw_schema, defs)?;
    describe(&mut schema, parameter.get("description"));
    let plan = ParameterPlan {
        argument: name.to_owned(),
        name: name.to_owned(),
        location,
        required,
        encoding,
    };
    Ok((plan, schema))
}

/// `style`/`explode` as declared, with OpenAPI's defaults (form for query and cookie, simple for
/// path and header; explode defaults to true only for form).
pub(super) fn style_encoding(
    parameter: &Value,
    location: Location,
) -> Result<ParameterEncoding, Unusable> {
    let style = match parameter.get("style").and_then(Value::as_str) {
        None => match location {
            Location::Query | Location::Cookie => Style::Form,
            Location::Path | Location::Header => Style::Simple,
        },
        Some("matrix") => Style::Matrix,
        Some("label") => Style::Label,
        Some("form") => Style::Form,
        Some("simple") => Style::Simple,
        Some("spaceDelimited") => Style::SpaceDelimited,
        Some("pipeDelimited") => Style::PipeDelimited,
        Some("deepObject") => Style::DeepObject,
        Some(other) => return Err(Unusable::Malformed(format!("unknown style {other:?}"))),
    };
    let explode = parameter
        .get("explode")
        .and_then(Value::as_bool)
        .unwrap_or(style == Style::Form);
    let allow_reserved = parameter.get("allowReserved").and_then(Value::as_bool) == Some(true);
    Ok(ParameterEncoding::Style {
        style,
        explode,
        allow_reserved,
    })
}

/// The body's schema under the first JSON media type, else a form one.
pub(super) fn body_plan(
    body: &Value,
    resolver: &Resolver<'_>,
    defs: &mut BTreeMap<String, Value>,
) -> Result<(BodyPlan, Value), Unusable> {
    let empty = Map::new();
    let content = body
        .get("content")
        .and_then(Value::as_object)
        .unwrap_or(&empty);
    let chosen = content
        .keys()
        .find(|m| is_json(m))
        .or_else(|| {
            content
                .keys()
                .find(|m| m.starts_with("application/x-www-form-urlencoded"))
        })
        .ok_or_else(|| Unusable::UnsupportedBody(content.keys().cloned().collect()))?;
    let raw_schema = content
        .get(chosen)
        .and_then(|media| media.get("schema"))
        .unwrap_or(&ANY_SCHEMA);
    let mut schema = resolver.schema(raw_schema, defs)?;
    describe(&mut schema, body.get("description"));
    let encoding = match content.get(chosen).and_then(|media| media.get("encoding")) {
        Some(Value::Object(encoding)) if !is_json(chosen) => form_encoding(encoding)?,
        _ => BTreeMap::new(),
    };
    let plan = BodyPlan {
        argument: BODY_ARGUMENT.into(),
        media_type: chosen.clone(),
        required: body.get("required").and_then(Value::as_bool) == Some(true),
        encoding,
    };
    Ok((plan, schema))
}

/// A form body's Encoding Object (OpenAPI 3.1.1 §4.8.15): `style`, `explode` or
/// `allowReserved` serialise a property as a query parameter would be (form by default);
/// otherwise `contentType` names its media type.
pub(super) fn form_encoding(
    encoding: &Map<String, Value>,
) -> Result<BTreeMap<String, ParameterEncoding>, Unusable> {
    let mut plans = BTreeMap::new();
    for (property, encoding) in encoding {
        let by_style = ["style", "explode", "allowReserved"]
            .iter()
            .any(|key| encoding.get(key).is_some());
        let plan = if by_style {
            style_encoding(encoding, Location::Query)?
        } else if let Some(media_type) = encoding.get("contentType").and_then(Value::as_str) {
            ParameterEncoding::Content {
                media_type: media_type.to_owned(),
            }
        } else {
            continue;
        };
        plans.insert(property.clone(), plan);
    }
    Ok(plans)
}
