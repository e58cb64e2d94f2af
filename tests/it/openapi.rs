//! A REST API behind Portcullis as MCP tools: the FastAPI app of `scripts/openapi`, whose
//! OpenAPI document FastAPI generates and serves, configured as `openapi = "<its URL>"`.

use crate::support::openapi;

#[tokio::test]
async fn the_fastapi_app_serves_the_document_it_generates() {
    let api = openapi::spawn().await;
    let document: serde_json::Value = reqwest::get(api.document_url())
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        document["openapi"].as_str().unwrap().starts_with("3.1"),
        "{document:#}"
    );
    assert_eq!(
        document["paths"]["/items/{item_id}"]["get"]["operationId"],
        "read_item_items__item_id__get"
    );
    let schemes = &document["components"]["securitySchemes"];
    assert_eq!(schemes["HTTPBearer"]["scheme"], "bearer", "{schemes:#}");
    assert_eq!(schemes["APIKeyHeader"]["name"], "X-API-Key", "{schemes:#}");
    assert_eq!(schemes["APIKeyQuery"]["in"], "query", "{schemes:#}");
    // What reached it is counted per path.
    assert_eq!(api.calls("/calls/harness").await, 0);
    assert_eq!(api.get("/calls/harness").await["calls"], 1);
    assert_eq!(api.calls("/calls/harness").await, 1);
}
