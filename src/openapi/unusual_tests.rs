//! Documents with unusable or unusual parts: the Petstore's binary upload and each broken
//! operation reported with its reason while the rest load, clashing and keyword-like names,
//! 3.0 upgrades, and what is not OpenAPI 3.

use serde_json::json;

use super::tests::{PETSTORE, load_ok, names, options, schema_of, tool};
use super::*;

#[test]
fn the_petstore_3_0_yaml_loads_and_its_binary_upload_is_reported_unusable() {
    let catalog = load_ok(PETSTORE, &options("pets"));
    assert_eq!(catalog.version, SpecVersion::V3_0);
    assert_eq!(
        catalog.unusable,
        [UnusableOperation {
            method: "POST".into(),
            path: "/pet/{petId}/uploadImage".into(),
            reason: Unusable::UnsupportedBody(vec!["application/octet-stream".into()]),
        }]
    );
    assert_eq!(
        catalog.unusable[0].to_string(),
        "POST /pet/{petId}/uploadImage: no supported request body type (JSON or form) among \
         [\"application/octet-stream\"]"
    );
    assert_eq!(catalog.tools.len(), 18);
    let add = tool(&catalog, "addPet");
    assert_eq!(add.scope, "pets:pet:write");
    let schema = schema_of(add);
    assert_eq!(schema["required"], json!(["body"]));
    assert_eq!(
        schema["$defs"]["Pet"]["properties"]["category"]["$ref"],
        "#/$defs/Category"
    );
    let by_tags = tool(&catalog, "findPetsByTags");
    assert_eq!(by_tags.annotations.read_only_hint, Some(true));
    assert_eq!(
        schema_of(by_tags)["properties"]["tags"]["description"],
        "Tags to filter by"
    );
    let delete = tool(&catalog, "deletePet");
    assert_eq!(delete.annotations.destructive_hint, Some(true));
    let header = delete.plan.parameters.iter().find(|p| p.name == "api_key");
    assert_eq!(header.map(|p| p.location), Some(Location::Header));
    assert_eq!(schema_of(delete)["required"], json!(["petId"]));
}

const BROKEN: &str = r##"
openapi: 3.0.3
info: { title: broken, version: "1" }
paths:
  /remote:
    get:
      operationId: remote
      parameters:
        - $ref: "https://specs.invalid/common.yaml#/parameters/Page"
  /missing:
    get:
      operationId: missing
      responses: {}
      requestBody:
        content:
          application/json:
            schema: { $ref: "#/components/schemas/Nowhere" }
  /loop:
    get:
      operationId: loop
      parameters:
        - $ref: "#/components/parameters/A"
  /missing-again:
    get:
      operationId: missing
  /fine/{id}:
    parameters:
      - { name: id, in: path, schema: { type: string } }
    post:
      summary: Fine
      parameters:
        - { name: body, in: query, schema: { type: integer, nullable: true, minimum: 0, exclusiveMinimum: true } }
        - { name: Authorization, in: header, required: true, schema: { type: string } }
      requestBody:
        content:
          application/x-www-form-urlencoded:
            schema: { type: object, properties: { note: { type: string } } }
components:
  parameters:
    A: { $ref: "#/components/parameters/B" }
    B: { $ref: "#/components/parameters/A" }
"##;

#[test]
fn each_unusable_operation_is_reported_with_its_reason_and_the_rest_still_load() {
    let catalog = load_ok(BROKEN.as_bytes(), &options("b"));
    let reported: Vec<(&str, &str, &Unusable)> = catalog
        .unusable
        .iter()
        .map(|u| (u.method.as_str(), u.path.as_str(), &u.reason))
        .collect();
    assert_eq!(
        reported,
        [
            (
                "GET",
                "/loop",
                &Unusable::RefTooDeep("#/components/parameters/A".into())
            ),
            (
                "GET",
                "/missing",
                &Unusable::MissingRef("#/components/schemas/Nowhere".into())
            ),
            (
                "GET",
                "/missing-again",
                &Unusable::DuplicateOperationId("missing".into())
            ),
            (
                "GET",
                "/remote",
                &Unusable::RemoteRef("https://specs.invalid/common.yaml#/parameters/Page".into())
            ),
        ]
    );
    assert_eq!(names(&catalog), ["post_fine_id"]);
}

#[test]
fn allowing_remote_refs_keeps_the_flag_but_does_not_fetch() {
    let allowed = Options {
        allow_remote_refs: true,
        ..options("b")
    };
    let catalog = load_ok(BROKEN.as_bytes(), &allowed);
    assert_eq!(
        catalog.unusable[3].reason,
        Unusable::RemoteRefNotFetched("https://specs.invalid/common.yaml#/parameters/Page".into())
    );
}

#[test]
fn path_parameters_merge_clashes_are_qualified_authorization_is_ignored_3_0_is_upgraded() {
    let catalog = load_ok(BROKEN.as_bytes(), &options("b"));
    let fine = tool(&catalog, "post_fine_id");
    assert_eq!(fine.scope, "b:fine:write");
    let schema = schema_of(fine);
    assert_eq!(schema["required"], json!(["id"]));
    assert_eq!(
        schema["properties"]["query_body"],
        json!({ "type": ["integer", "null"], "exclusiveMinimum": 0 })
    );
    assert_eq!(schema["properties"]["body"]["type"], "object");
    let args: Vec<(&str, &str)> = fine
        .plan
        .parameters
        .iter()
        .map(|p| (p.argument.as_str(), p.name.as_str()))
        .collect();
    assert_eq!(args, [("id", "id"), ("query_body", "body")]);
    assert_eq!(
        fine.plan.body.as_ref().map(|b| b.media_type.as_str()),
        Some("application/x-www-form-urlencoded")
    );
}

#[test]
fn names_are_sanitised_shortened_and_made_unique() {
    assert_eq!(sanitize_tool_name("list items/{id}!"), "list_items__id__");
    assert_eq!(sanitize_tool_name("v2.get-user"), "v2.get-user");
    let long = "a".repeat(100);
    let other = format!("{}b", "a".repeat(99));
    let (short, short_other) = (sanitize_tool_name(&long), sanitize_tool_name(&other));
    assert_eq!(short.len(), MAX_TOOL_NAME_LEN);
    assert_ne!(short, short_other);

    let doc = json!({
        "openapi": "3.1.0",
        "info": { "title": "t", "version": "1" },
        "paths": {
            "/a": {
                "get": { "operationId": "list users" },
                "post": { "operationId": "list_users" },
                "put": { "operationId": long },
            },
            "/b": { "put": { "operationId": other } },
        }
    });
    let catalog = load_ok(doc.to_string().as_bytes(), &options("t"));
    assert!(catalog.unusable.is_empty());
    // Methods in OpenAPI's order: get, put, post.
    assert_eq!(
        names(&catalog),
        [
            "list_users",
            short.as_str(),
            "list_users_2",
            short_other.as_str()
        ]
    );
    assert_eq!(catalog.tools[0].operation_id.as_deref(), Some("list users"));
}

#[test]
fn a_document_that_is_not_openapi_3_is_refused() {
    let swagger = b"swagger: '2.0'\ninfo: { title: t, version: '1' }\npaths: {}\n";
    assert!(matches!(load(swagger, &options("x")), Err(SpecError::Version(v)) if v.is_empty()));
    let future = br#"{"openapi": "4.0.0", "paths": {}}"#;
    assert!(matches!(load(future, &options("x")), Err(SpecError::Version(v)) if v == "4.0.0"));
    assert!(matches!(
        load(b"{ not json", &options("x")),
        Err(SpecError::Syntax(_))
    ));
    assert!(matches!(
        load(b"- a list\n", &options("x")),
        Err(SpecError::Syntax(_))
    ));
}

#[test]
fn yaml_with_unquoted_status_code_keys_loads() {
    let doc = b"openapi: 3.0.0\ninfo: { title: t, version: 1 }\npaths:\n  /s:\n    get:\n      operationId: s\n      responses:\n        200: { description: ok }\n";
    assert_eq!(names(&load_ok(doc, &options("t"))), ["s"]);
}

#[test]
fn properties_named_like_keywords_are_still_resolved_and_a_local_ref_loop_is_reported() {
    let doc = json!({
        "openapi": "3.1.0",
        "info": { "title": "t", "version": "1" },
        "paths": {
            "/settings": { "put": {
                "operationId": "put_settings",
                "requestBody": { "required": true, "content": { "application/json": {
                    "schema": { "type": "object", "properties": {
                        "default": { "$ref": "#/components/schemas/Setting" },
                        "example": { "$ref": "#/components/schemas/Setting/properties/value" },
                    }}
                }}}
            }},
            "/loop": { "post": {
                "operationId": "loop",
                "requestBody": { "content": { "application/json": {
                    "schema": { "$ref": "#/components/schemas/Loop/properties/again" }
                }}}
            }},
        },
        "components": { "schemas": {
            "Setting": { "type": "object", "properties": { "value": { "type": "string" } } },
            "Loop": { "type": "object", "properties": {
                "again": { "$ref": "#/components/schemas/Loop/properties/again" }
            }},
        }}
    });
    let catalog = load_ok(doc.to_string().as_bytes(), &options("t"));
    let schema = schema_of(tool(&catalog, "put_settings"));
    let body = &schema["properties"]["body"]["properties"];
    assert_eq!(body["default"]["$ref"], "#/$defs/Setting");
    assert_eq!(body["example"], json!({ "type": "string" }));
    assert_eq!(
        schema["$defs"]["Setting"]["properties"]["value"]["type"],
        "string"
    );
    assert_eq!(
        catalog.unusable,
        [UnusableOperation {
            method: "POST".into(),
            path: "/loop".into(),
            reason: Unusable::RefTooDeep("#/components/schemas/Loop/properties/again".into()),
        }]
    );
}
