//! Calling the tools of the FastAPI and Petstore documents: arguments validated against each
//! tool's compiled schema, serialised into requests, and the secret's place from the security
//! requirement.

use serde_json::{Map, Value, json};

use super::tests::{FASTAPI, PETSTORE, load_ok, options, tool};
use super::*;

fn catalog(bytes: &[u8]) -> Catalog {
    load_ok(bytes, &options("t"))
}

fn object(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        other => panic!("not an object: {other}"),
    }
}

/// Validates, then builds, as the gateway does.
fn request(tool: &OpenApiTool, arguments: Value) -> HttpRequest {
    if let Err(e) = tool.validator.validate(&arguments) {
        panic!("{} should accept {arguments}: {e}", tool.name);
    }
    match build(&tool.plan, &object(arguments)) {
        Ok(request) => request,
        Err(e) => panic!("{} should build: {e}", tool.name),
    }
}

fn refusal(tool: &OpenApiTool, arguments: Value) -> (String, String) {
    match tool.validator.validate(&arguments) {
        Ok(()) => panic!("{} should refuse {arguments}", tool.name),
        Err(InvalidArguments { path, message }) => (path, message),
    }
}

fn body_text(request: &HttpRequest) -> Option<(String, String)> {
    request.body.as_ref().map(|b| {
        (
            b.content_type.clone(),
            String::from_utf8_lossy(&b.bytes).into_owned(),
        )
    })
}

#[test]
fn every_tool_of_both_documents_has_a_compiled_validator() {
    for bytes in [FASTAPI, PETSTORE] {
        let catalog = catalog(bytes);
        assert!(
            !catalog
                .unusable
                .iter()
                .any(|u| matches!(u.reason, Unusable::Schema(_))),
            "{:?}",
            catalog.unusable
        );
    }
}

#[test]
fn bad_fastapi_arguments_are_refused_with_the_path_of_the_failing_value() {
    let catalog = catalog(FASTAPI);
    let put = tool(&catalog, "put_item_items__item_id__put");
    let good = json!({ "item_id": 3, "body": { "name": "lamp", "price": 9.5, "colour": "blue",
        "owner": { "name": "Ann", "address": { "street": "Main", "city": "X" } } } });
    request(put, good);

    let (path, message) = refusal(
        put,
        json!({ "item_id": 3, "body": { "name": "lamp", "price": "x" } }),
    );
    assert_eq!(path, "/body/price");
    assert_eq!(message, r#""x" is not of type "number""#);
    let error = InvalidArguments { path, message };
    assert_eq!(
        error.to_string(),
        r#"/body/price: "x" is not of type "number""#
    );

    let (path, message) = refusal(put, json!({ "item_id": 3 }));
    assert_eq!(
        (path.as_str(), message.as_str()),
        ("", r#""body" is a required property"#)
    );
    assert_eq!(
        InvalidArguments { path, message }.to_string(),
        r#"arguments: "body" is a required property"#
    );

    let (path, _) = refusal(
        put,
        json!({ "item_id": "three", "body": { "name": "a", "price": 1 } }),
    );
    assert_eq!(path, "/item_id");
    let (path, _) = refusal(
        put,
        json!({ "item_id": 1, "body": { "name": "a", "price": 1, "colour": "purple" } }),
    );
    assert_eq!(path, "/body/colour");
    let (path, _) = refusal(
        put,
        json!({ "item_id": 1, "body": { "name": "a", "price": 1, "owner": { "name": "A" } } }),
    );
    assert_eq!(path, "/body/owner");
    let (path, message) = refusal(
        put,
        json!({ "item_id": 1, "body": { "name": "a", "price": 1 }, "extra": 1 }),
    );
    assert_eq!(path, "");
    assert!(message.contains("extra"), "{message}");

    let category = tool(&catalog, "createCategory");
    let (path, _) = refusal(
        category,
        json!({ "body": { "name": "a", "children": [{ "name": "b", "children": [{}] }] } }),
    );
    assert_eq!(path, "/body/children/0/children/0");
}

#[test]
fn fastapi_calls_become_requests_with_path_query_header_and_json_body() {
    let catalog = catalog(FASTAPI);
    let read = request(
        tool(&catalog, "read_item_items__item_id__get"),
        json!({ "item_id": 42, "x-request-note": "hi there" }),
    );
    assert_eq!(read.method, http::Method::GET);
    assert_eq!(read.path_and_query, "/items/42");
    assert_eq!(
        read.headers
            .get("x-request-note")
            .and_then(|v| v.to_str().ok()),
        Some("hi there")
    );

    let list = tool(&catalog, "list_items_items_get");
    let listed = request(
        list,
        json!({ "colour": "red", "tag": ["a b", "c"], "limit": 3 }),
    );
    assert_eq!(
        listed.path_and_query,
        "/items?colour=red&tag=a%20b&tag=c&limit=3"
    );
    assert_eq!(
        request(list, json!({ "colour": null })).path_and_query,
        "/items"
    );

    let put = request(
        tool(&catalog, "put_item_items__item_id__put"),
        json!({ "item_id": 7, "body": { "name": "lamp", "price": 9.5 } }),
    );
    assert_eq!(put.method, http::Method::PUT);
    assert_eq!(put.path_and_query, "/items/7");
    assert_eq!(
        body_text(&put),
        Some((
            "application/json".into(),
            r#"{"name":"lamp","price":9.5}"#.into()
        ))
    );
}

#[test]
fn petstore_calls_become_requests_and_carry_their_security_placement() {
    let catalog = catalog(PETSTORE);
    assert!(catalog.security_schemes_declared);
    let by_status = tool(&catalog, "findPetsByStatus");
    assert_eq!(
        request(by_status, json!({ "status": "sold" })).path_and_query,
        "/pet/findByStatus?status=sold"
    );
    let (path, _) = refusal(by_status, json!({ "status": "lost" }));
    assert_eq!(path, "/status");

    let update = tool(&catalog, "updatePetWithForm");
    assert_eq!(
        request(update, json!({ "petId": 5, "name": "Rex" })).path_and_query,
        "/pet/5?name=Rex"
    );

    let delete = request(
        tool(&catalog, "deletePet"),
        json!({ "petId": 5, "api_key": "k" }),
    );
    assert_eq!(delete.method, http::Method::DELETE);
    assert_eq!(delete.path_and_query, "/pet/5");
    assert_eq!(
        delete.headers.get("api_key").and_then(|v| v.to_str().ok()),
        Some("k")
    );

    let add = tool(&catalog, "addPet");
    let pet = json!({ "body": { "name": "Rex", "photoUrls": ["u"], "status": "available" } });
    assert_eq!(
        body_text(&request(add, pet)).map(|(t, _)| t),
        Some("application/json".into())
    );
    let (path, _) = refusal(add, json!({ "body": { "name": "Rex" } }));
    assert_eq!(path, "/body");

    assert_eq!(add.plan.security, [SecretPlacement::Bearer]);
    // `api_key` is the first alternative of getPetById's requirement.
    assert_eq!(
        tool(&catalog, "getPetById").plan.security,
        [SecretPlacement::Header("api_key".into())]
    );
    assert_eq!(tool(&catalog, "loginUser").plan.security, []);
}

#[test]
fn the_security_requirement_is_the_operations_else_the_documents_first_placeable_alternative() {
    let doc = json!({
        "openapi": "3.1.0",
        "info": { "title": "t", "version": "1" },
        "security": [{ "basic": [] }],
        "paths": {
            "/inherit": { "get": { "operationId": "inherit" } },
            "/none": { "get": { "operationId": "none", "security": [] } },
            "/optional": { "get": { "operationId": "optional", "security": [{}, { "basic": [] }] } },
            "/skip": { "get": { "operationId": "skip", "security": [
                { "mtls": [], "basic": [] },
                { "key": [], "session": [] },
            ]}},
            "/nothing": { "get": { "operationId": "nothing", "security": [
                { "mtls": [] }, { "undeclared": [] }, { "digest": [] },
            ]}},
            "/oidc": { "get": { "operationId": "oidc", "security": [{ "oidc": [] }] } },
            "/referred": { "get": { "operationId": "referred", "security": [{ "bearer": [] }] } },
        },
        "components": {
            "securitySchemes": {
                "basic": { "type": "http", "scheme": "Basic" },
                "digest": { "type": "http", "scheme": "digest" },
                "mtls": { "type": "mutualTLS" },
                "key": { "type": "apiKey", "in": "query", "name": "api_key" },
                "session": { "type": "apiKey", "in": "cookie", "name": "sid" },
                "oidc": { "type": "openIdConnect", "openIdConnectUrl": "https://id.invalid/.well-known/openid-configuration" },
                "bearer": { "$ref": "#/components/securitySchemes/jwt" },
                "jwt": { "type": "http", "scheme": "bearer", "bearerFormat": "JWT" },
            }
        }
    });
    let secured = catalog(doc.to_string().as_bytes());
    assert!(secured.security_schemes_declared);
    let placements = |name: &str| tool(&secured, name).plan.security.clone();
    assert_eq!(placements("inherit"), [SecretPlacement::Basic]);
    assert_eq!(placements("none"), []);
    assert_eq!(placements("optional"), []);
    assert_eq!(
        placements("skip"),
        [
            SecretPlacement::Query("api_key".into()),
            SecretPlacement::Cookie("sid".into())
        ]
    );
    assert_eq!(placements("nothing"), []);
    assert_eq!(placements("oidc"), [SecretPlacement::Bearer]);
    assert_eq!(placements("referred"), [SecretPlacement::Bearer]);

    let fastapi = catalog(FASTAPI);
    assert!(!fastapi.security_schemes_declared);
    assert!(fastapi.tools.iter().all(|t| t.plan.security.is_empty()));
}

#[test]
fn an_operation_whose_schema_does_not_compile_or_whose_path_cannot_be_filled_is_unusable() {
    let doc = json!({
        "openapi": "3.1.0",
        "info": { "title": "t", "version": "1" },
        "paths": {
            "/bad": { "get": { "operationId": "bad", "parameters": [
                { "name": "q", "in": "query", "schema": { "type": "strin" } }
            ]}},
            "/good": { "get": { "operationId": "good" } },
            "/items/{id}": { "get": { "operationId": "undeclared" } },
        }
    });
    let catalog = catalog(doc.to_string().as_bytes());
    assert_eq!(catalog.tools.len(), 1);
    assert_eq!(catalog.unusable.len(), 2);
    assert!(
        matches!(&catalog.unusable[0].reason, Unusable::Schema(why) if why.contains("strin")),
        "{:?}",
        catalog.unusable
    );
    assert_eq!(
        catalog.unusable[1].to_string(),
        "GET /items/{id}: malformed operation: the path names {id} but no path parameter \
         declares it"
    );
}

#[test]
fn formats_are_asserted_and_no_schema_is_fetched() {
    let schema = object(json!({
        "type": "object",
        "properties": {
            "when": { "type": "string", "format": "date-time" },
            "remote": { "$ref": "https://schemas.invalid/thing.json" },
        },
    }));
    match ArgumentValidator::new(&schema) {
        Ok(_) => panic!("a remote reference must not compile"),
        Err(why) => assert!(why.contains("schemas.invalid"), "{why}"),
    }
    let schema = object(json!({
        "type": "object",
        "properties": { "when": { "type": "string", "format": "date-time" } },
    }));
    let validator = match ArgumentValidator::new(&schema) {
        Ok(validator) => validator,
        Err(why) => panic!("{why}"),
    };
    assert!(
        validator
            .validate(&json!({ "when": "2026-12-01T05:00:00Z" }))
            .is_ok()
    );
    let refused = validator.validate(&json!({ "when": "yesterday" }));
    assert!(
        matches!(&refused, Err(e) if e.path == "/when"),
        "{refused:?}"
    );
}

#[test]
fn a_form_body_follows_its_encoding_object_and_defaults_elsewhere() {
    let doc = json!({
        "openapi": "3.1.0",
        "info": { "title": "t", "version": "1" },
        "paths": { "/form": { "post": {
            "operationId": "form",
            "requestBody": { "content": { "application/x-www-form-urlencoded": {
                "schema": { "type": "object", "properties": {
                    "filter": { "type": "object" },
                    "meta": { "type": "object" },
                    "note": { "type": "string" },
                    "plain": { "type": "array", "items": { "type": "string" } },
                    "tags": { "type": "array", "items": { "type": "string" } },
                }},
                "encoding": {
                    "filter": { "style": "deepObject", "explode": true },
                    "meta": { "contentType": "application/json" },
                    "note": { "contentType": "text/plain" },
                    "plain": { "headers": {} },
                    "tags": { "explode": false },
                },
            }}},
        }}},
    });
    let catalog = catalog(doc.to_string().as_bytes());
    let form = tool(&catalog, "form");
    let encoding = form.plan.body.as_ref().map(|b| b.encoding.clone());
    assert_eq!(
        encoding.map(|e| e.into_iter().collect::<Vec<_>>()),
        Some(vec![
            (
                "filter".to_owned(),
                ParameterEncoding::Style {
                    style: Style::DeepObject,
                    explode: true,
                    allow_reserved: false
                }
            ),
            (
                "meta".to_owned(),
                ParameterEncoding::Content {
                    media_type: "application/json".into()
                }
            ),
            (
                "note".to_owned(),
                ParameterEncoding::Content {
                    media_type: "text/plain".into()
                }
            ),
            (
                "tags".to_owned(),
                ParameterEncoding::Style {
                    style: Style::Form,
                    explode: false,
                    allow_reserved: false
                }
            ),
        ])
    );
    let sent = request(
        form,
        json!({ "body": {
            "filter": { "a": "x y", "b": 1 },
            "meta": { "k": [1] },
            "note": "a+b",
            "plain": ["p", "q r"],
            "tags": ["a", "b c"],
        }}),
    );
    assert_eq!(
        body_text(&sent),
        Some((
            "application/x-www-form-urlencoded".into(),
            "filter%5Ba%5D=x%20y&filter%5Bb%5D=1&meta=%7B%22k%22%3A%5B1%5D%7D&note=a%2Bb\
             &plain=p&plain=q+r&tags=a,b%20c"
                .into()
        ))
    );
}
