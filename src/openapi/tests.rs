//! Against two documents this project did not write: one FastAPI generated (3.1, JSON; see
//! scripts/openapi/README.md) and the Swagger Petstore 3.0 YAML. Small inline documents cover
//! only the broken cases a published document does not have.

use serde_json::{Value, json};

use super::*;

pub(super) const FASTAPI: &[u8] = include_bytes!("../../tests/fixtures/openapi/fastapi.json");
pub(super) const PETSTORE: &[u8] = include_bytes!("../../tests/fixtures/openapi/petstore.yaml");

pub(super) fn options(backend_id: &str) -> Options {
    Options {
        backend_id: backend_id.into(),
        ..Options::default()
    }
}

pub(super) fn load_ok(bytes: &[u8], options: &Options) -> Catalog {
    match load(bytes, options) {
        Ok(catalog) => catalog,
        Err(e) => panic!("the document should load: {e}"),
    }
}

pub(super) fn tool<'a>(catalog: &'a Catalog, name: &str) -> &'a OpenApiTool {
    match catalog.tools.iter().find(|t| t.name == name) {
        Some(tool) => tool,
        None => panic!(
            "no tool {name}; have {:?}",
            catalog.tools.iter().map(|t| &t.name).collect::<Vec<_>>()
        ),
    }
}

pub(super) fn names(catalog: &Catalog) -> Vec<&str> {
    catalog.tools.iter().map(|t| t.name.as_str()).collect()
}

pub(super) fn schema_of(tool: &OpenApiTool) -> Value {
    Value::Object(tool.input_schema.clone())
}

#[test]
fn every_fastapi_operation_becomes_a_tool_named_by_its_operation_id() {
    let catalog = load_ok(FASTAPI, &options("inv"));
    assert_eq!(catalog.version, SpecVersion::V3_1);
    assert!(catalog.unusable.is_empty(), "{:?}", catalog.unusable);
    assert_eq!(
        names(&catalog),
        // Paths in order of their text (serde_json's map), methods in OpenAPI's order.
        [
            "createCategory",
            "health_health_get",
            "list_items_items_get",
            "read_item_items__item_id__get",
            "put_item_items__item_id__put",
            "delete_item_items__item_id__delete",
        ]
    );
}

#[test]
fn the_description_joins_summary_and_description() {
    let catalog = load_ok(FASTAPI, &options("inv"));
    let list = tool(&catalog, "list_items_items_get");
    assert_eq!(
        list.description.as_deref(),
        Some("List items\n\nItems, optionally filtered by colour and tags.")
    );
    let delete = tool(&catalog, "delete_item_items__item_id__delete");
    assert_eq!(delete.description.as_deref(), Some("Delete an item"));
}

#[test]
fn query_parameters_arrays_and_enums_become_properties_with_their_component_schemas() {
    let catalog = load_ok(FASTAPI, &options("inv"));
    let schema = schema_of(tool(&catalog, "list_items_items_get"));
    assert_eq!(schema["type"], "object");
    assert_eq!(schema["additionalProperties"], false);
    assert_eq!(schema["required"], json!([]));
    let properties = schema["properties"]
        .as_object()
        .cloned()
        .unwrap_or_default();
    let keys: Vec<&String> = properties.keys().collect();
    assert_eq!(keys, ["colour", "limit", "tag"]);
    assert_eq!(schema["properties"]["tag"]["type"], "array");
    assert_eq!(schema["properties"]["tag"]["items"]["type"], "string");
    assert_eq!(
        schema["properties"]["colour"]["anyOf"][0]["$ref"],
        "#/$defs/Colour"
    );
    assert_eq!(
        schema["$defs"]["Colour"]["enum"],
        json!(["red", "green", "blue"])
    );
    // Only what this tool refers to is carried.
    assert!(schema["$defs"].get("Item").is_none());
}

#[test]
fn path_parameters_and_a_required_body_are_required_and_nested_refs_are_collected() {
    let catalog = load_ok(FASTAPI, &options("inv"));
    let put = tool(&catalog, "put_item_items__item_id__put");
    let schema = schema_of(put);
    assert_eq!(schema["required"], json!(["item_id", "body"]));
    assert_eq!(schema["properties"]["body"]["$ref"], "#/$defs/Item");
    let defs = schema["$defs"].as_object().cloned().unwrap_or_default();
    let mut defined: Vec<&String> = defs.keys().collect();
    defined.sort();
    assert_eq!(defined, ["Address", "Colour", "Item", "Owner"]);
    assert_eq!(
        schema["$defs"]["Owner"]["properties"]["address"]["$ref"],
        "#/$defs/Address"
    );
    let body = put.plan.body.clone();
    assert_eq!(
        body,
        Some(BodyPlan {
            argument: "body".into(),
            media_type: "application/json".into(),
            required: true,
            encoding: Default::default(),
        })
    );
    assert_eq!(put.plan.method, http::Method::PUT);
    assert_eq!(put.plan.path, "/items/{item_id}");
}

#[test]
fn a_recursive_model_refers_to_itself_through_defs() {
    let catalog = load_ok(FASTAPI, &options("inv"));
    let schema = schema_of(tool(&catalog, "createCategory"));
    assert_eq!(
        schema["properties"]["body"]["$ref"],
        "#/$defs/Category-Input"
    );
    assert_eq!(
        schema["$defs"]["Category-Input"]["properties"]["children"]["items"]["$ref"],
        "#/$defs/Category-Input"
    );
}

#[test]
fn the_call_plan_keeps_where_each_argument_goes_and_its_style() {
    let catalog = load_ok(FASTAPI, &options("inv"));
    let read = tool(&catalog, "read_item_items__item_id__get");
    assert_eq!(
        read.plan.parameters,
        [
            ParameterPlan {
                argument: "item_id".into(),
                name: "item_id".into(),
                location: Location::Path,
                required: true,
                encoding: ParameterEncoding::Style {
                    style: Style::Simple,
                    explode: false,
                    allow_reserved: false,
                },
            },
            ParameterPlan {
                argument: "x-request-note".into(),
                name: "x-request-note".into(),
                location: Location::Header,
                required: false,
                encoding: ParameterEncoding::Style {
                    style: Style::Simple,
                    explode: false,
                    allow_reserved: false,
                },
            },
        ]
    );
    let list = tool(&catalog, "list_items_items_get");
    assert_eq!(
        list.plan.parameters[1].encoding,
        ParameterEncoding::Style {
            style: Style::Form,
            explode: true,
            allow_reserved: false,
        }
    );
}

#[test]
fn reads_are_read_only_deletes_destructive_and_scopes_follow_the_first_tag_or_segment() {
    let catalog = load_ok(FASTAPI, &options("inv"));
    let expect = [
        ("list_items_items_get", Some(true), None, "inv:items:read"),
        (
            "put_item_items__item_id__put",
            Some(false),
            None,
            "inv:items:write",
        ),
        (
            "delete_item_items__item_id__delete",
            Some(false),
            Some(true),
            "inv:items:write",
        ),
        ("createCategory", Some(false), None, "inv:categories:write"),
        // No tag: the first path segment.
        ("health_health_get", Some(true), None, "inv:health:read"),
    ];
    for (name, read_only, destructive, scope) in expect {
        let t = tool(&catalog, name);
        assert_eq!(t.annotations.read_only_hint, read_only, "{name}");
        assert_eq!(t.annotations.destructive_hint, destructive, "{name}");
        assert_eq!(t.scope, scope, "{name}");
    }
}

#[test]
fn include_and_exclude_select_by_tag_or_operation_id_glob() {
    let by_tag = Options {
        include: vec!["items".into()],
        exclude: vec!["delete_*".into()],
        ..options("inv")
    };
    assert_eq!(
        names(&load_ok(FASTAPI, &by_tag)),
        [
            "list_items_items_get",
            "read_item_items__item_id__get",
            "put_item_items__item_id__put",
        ]
    );
    let by_id = Options {
        include: vec!["create*".into(), "health_*".into()],
        ..options("inv")
    };
    assert_eq!(
        names(&load_ok(FASTAPI, &by_id)),
        ["createCategory", "health_health_get"]
    );
    let bad = Options {
        include: vec!["a[".into()],
        ..options("inv")
    };
    assert!(matches!(
        load(FASTAPI, &bad),
        Err(SpecError::Pattern { pattern, .. }) if pattern == "a["
    ));
}

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
