//! Where a static secret goes, from the operation's security requirement (OpenAPI 3.1
//! §4.8.30) and the document's security schemes (§4.8.27).

use serde_json::Value;

use super::SecretPlacement;
use super::refs::Resolver;

/// Whether `components.securitySchemes` declares any scheme.
pub(super) fn schemes_declared(root: &Value) -> bool {
    root.pointer("/components/securitySchemes")
        .and_then(Value::as_object)
        .is_some_and(|schemes| !schemes.is_empty())
}

/// The placements of the first alternative whose schemes can all be placed. The operation's
/// `security` overrides the document's, and an explicit empty list means none.
pub(super) fn placements(
    root: &Value,
    operation: &Value,
    resolver: &Resolver<'_>,
) -> Vec<SecretPlacement> {
    let requirement = operation
        .get("security")
        .or_else(|| root.get("security"))
        .and_then(Value::as_array);
    let Some(alternatives) = requirement else {
        return Vec::new();
    };
    alternatives
        .iter()
        .filter_map(Value::as_object)
        .find_map(|alternative| {
            // An empty alternative (`{}`) makes security optional: nothing to place.
            alternative
                .keys()
                .map(|name| scheme(root, name, resolver).and_then(placement))
                .collect::<Option<Vec<_>>>()
        })
        .unwrap_or_default()
}

fn scheme<'a>(root: &'a Value, name: &str, resolver: &Resolver<'a>) -> Option<&'a Value> {
    let scheme = root.get("components")?.get("securitySchemes")?.get(name)?;
    resolver.follow(scheme).ok()
}

/// mutualTLS and unknown types cannot carry a static secret.
fn placement(scheme: &Value) -> Option<SecretPlacement> {
    let text = |key| scheme.get(key).and_then(Value::as_str);
    match text("type")? {
        "http" => match text("scheme")?.to_ascii_lowercase().as_str() {
            "bearer" => Some(SecretPlacement::Bearer),
            "basic" => Some(SecretPlacement::Basic),
            _ => None,
        },
        "oauth2" | "openIdConnect" => Some(SecretPlacement::Bearer),
        "apiKey" => {
            let name = text("name").filter(|n| !n.is_empty())?.to_owned();
            match text("in")? {
                "header" => http::HeaderName::from_bytes(name.as_bytes())
                    .ok()
                    .map(|_| SecretPlacement::Header(name)),
                "query" => Some(SecretPlacement::Query(name)),
                "cookie" => Some(SecretPlacement::Cookie(name)),
                _ => None,
            }
        }
        _ => None,
    }
}
