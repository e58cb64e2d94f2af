//! Remote `$ref`s followed into documents the caller fetched, in memory.

use serde_json::json;

use super::tests::{load_ok, names, options, schema_of, tool};
use super::*;

const SPLIT_ROOT: &str = r##"
openapi: 3.1.0
info: { title: split, version: "1" }
paths:
  /pets:
    get:
      operationId: list
      parameters:
        - $ref: "common.yaml#/components/parameters/Limit"
        - $ref: "api.yaml#/components/parameters/Self"
    post:
      operationId: add
      requestBody:
        content:
          application/json:
            schema: { $ref: "./common.yaml#/components/schemas/Pet" }
  /missing:
    get:
      operationId: missing
      parameters:
        - $ref: "other.yaml#/x"
components:
  parameters:
    Self: { name: self, in: query, schema: { type: boolean } }
  schemas:
    Tag: { type: string, maxLength: 8 }
"##;

#[test]
fn remote_refs_are_followed_into_the_documents_the_caller_fetched() {
    let base = url::Url::parse("file:///specs/api.yaml").unwrap_or_else(|e| panic!("{e}"));
    let common_url = url::Url::parse("file:///specs/common.yaml").unwrap_or_else(|e| panic!("{e}"));
    let other_url = url::Url::parse("file:///specs/other.yaml").unwrap_or_else(|e| panic!("{e}"));
    // Paths in order of their text: /missing refers first.
    let listed = external_documents(SPLIT_ROOT.as_bytes(), &base).map_err(|e| e.to_string());
    assert_eq!(listed, Ok(vec![other_url.clone(), common_url.clone()]));

    // Inside common.yaml, `#/...` is common.yaml itself, and `api.yaml#/...` is the main one.
    let common = json!({ "components": {
        "parameters": { "Limit": {
            "name": "limit", "in": "query", "schema": { "$ref": "#/components/schemas/Limit" }
        }},
        "schemas": {
            "Limit": { "type": "integer", "maximum": 100 },
            "Pet": { "type": "object", "properties": {
                "tag": { "$ref": "api.yaml#/components/schemas/Tag" },
                "family": { "$ref": "#/components/schemas/Node" },
            }},
            "Node": { "type": "object", "properties": {
                "children": { "type": "array", "items": { "$ref": "#/components/schemas/Node" } }
            }},
        }
    }});
    let options = Options {
        allow_remote_refs: true,
        document_url: Some(base.clone()),
        external: [(common_url, common)].into_iter().collect(),
        ..options("s")
    };
    let catalog = load_ok(SPLIT_ROOT.as_bytes(), &options);
    assert_eq!(names(&catalog), ["list", "add"]);
    let list = schema_of(tool(&catalog, "list"));
    assert_eq!(list["properties"]["limit"]["$ref"], "#/$defs/common.Limit");
    assert_eq!(
        list["$defs"]["common.Limit"],
        json!({ "type": "integer", "maximum": 100 })
    );
    // `api.yaml#/...` from the main document is the main document itself.
    let wire: Vec<(&str, Location)> = tool(&catalog, "list")
        .plan
        .parameters
        .iter()
        .map(|p| (p.name.as_str(), p.location))
        .collect();
    assert_eq!(
        wire,
        [("limit", Location::Query), ("self", Location::Query)]
    );
    // Another document's component schemas become `$defs` too, named after their file, so a
    // recursive one stays finite; a reference back into the main document is local again.
    let add = schema_of(tool(&catalog, "add"));
    assert_eq!(add["properties"]["body"]["$ref"], "#/$defs/common.Pet");
    let pet = &add["$defs"]["common.Pet"]["properties"];
    assert_eq!(pet["tag"]["$ref"], "#/$defs/Tag");
    assert_eq!(pet["family"]["$ref"], "#/$defs/common.Node");
    assert_eq!(
        add["$defs"]["common.Node"]["properties"]["children"]["items"]["$ref"],
        "#/$defs/common.Node"
    );
    assert_eq!(
        add["$defs"]["Tag"],
        json!({ "type": "string", "maxLength": 8 })
    );
    let validator = &tool(&catalog, "add").validator;
    let deep =
        json!({ "body": { "family": { "children": [{ "children": [{ "children": 1 }] }] } } });
    assert_eq!(
        validator.validate(&deep).map_err(|e| e.path),
        Err("/body/family/children/0/children/0/children".to_owned())
    );
    assert_eq!(
        catalog.unusable,
        [UnusableOperation {
            method: "GET".into(),
            path: "/missing".into(),
            reason: Unusable::RemoteRefNotFetched(format!("{other_url}#/x")),
        }]
    );

    // Not allowed: refused as before, whatever was fetched.
    let refused = load_ok(
        SPLIT_ROOT.as_bytes(),
        &Options {
            allow_remote_refs: false,
            ..options
        },
    );
    assert!(refused.tools.is_empty());
    assert_eq!(
        refused.unusable[1].reason,
        Unusable::RemoteRef("common.yaml#/components/parameters/Limit".into())
    );
}
