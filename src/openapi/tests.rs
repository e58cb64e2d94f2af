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
