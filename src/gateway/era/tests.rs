use axum::http::HeaderValue;

use super::*;

fn modern_call(name: &str) -> Incoming {
    let body = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {
        "name": name, "arguments": {},
        "_meta": {
            meta::PROTOCOL_VERSION: "2026-07-28",
            meta::CLIENT_CAPABILITIES: {},
        }
    }});
    Incoming::parse(body.to_string().as_bytes()).unwrap()
}

fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
    let mut map = HeaderMap::new();
    for (name, value) in pairs {
        map.insert(*name, HeaderValue::from_str(value).unwrap());
    }
    map
}

fn code(result: Result<(), (GatewayError, Value)>) -> i64 {
    result.unwrap_err().0.rpc_code()
}

#[test]
fn a_modern_request_needs_its_headers_and_they_must_match_the_body() {
    let call = modern_call("echo");
    let good = [
        ("mcp-protocol-version", "2026-07-28"),
        ("mcp-method", "tools/call"),
        ("mcp-name", "echo"),
    ];
    assert!(check_request_headers(&headers(&good), &call).is_ok());
    assert_eq!(
        code(check_request_headers(&headers(&good[..2]), &call)),
        -32020,
        "Mcp-Name is required of tools/call"
    );
    let wrong_name = [good[0], good[1], ("mcp-name", "admin")];
    let (error, id) = check_request_headers(&headers(&wrong_name), &call).unwrap_err();
    assert_eq!((error.rpc_code(), id), (-32020, json!(1)));
    let wrong_method = [good[0], ("mcp-method", "tools/list"), good[2]];
    assert_eq!(
        code(check_request_headers(&headers(&wrong_method), &call)),
        -32020
    );
    let wrong_version = [("mcp-protocol-version", "2025-06-18"), good[1], good[2]];
    assert_eq!(
        code(check_request_headers(&headers(&wrong_version), &call)),
        -32020
    );
    let encoded = [good[0], good[1], ("mcp-name", "=?base64?ZWNobw==?=")];
    assert!(check_request_headers(&headers(&encoded), &call).is_ok());
}

#[test]
fn an_unknown_modern_version_is_refused_with_the_supported_ones() {
    let body = json!({"jsonrpc": "2.0", "id": 2, "method": "tools/list", "params": {
        "_meta": { meta::PROTOCOL_VERSION: "2099-01-01", meta::CLIENT_CAPABILITIES: {} }
    }});
    let incoming = Incoming::parse(body.to_string().as_bytes()).unwrap();
    let (error, _) = check_request_headers(&HeaderMap::new(), &incoming).unwrap_err();
    let message = error.to_message(&json!(2));
    assert_eq!(message["error"]["code"], -32022);
    assert_eq!(message["error"]["data"]["requested"], "2099-01-01");
    assert_eq!(message["error"]["data"]["supported"][0], "2026-07-28");
}

#[test]
fn a_legacy_request_may_omit_the_headers_but_not_contradict_them() {
    let body =
        json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "echo"}});
    let call = Incoming::parse(body.to_string().as_bytes()).unwrap();
    let legacy = [("mcp-protocol-version", "2025-06-18")];
    assert!(check_request_headers(&headers(&legacy), &call).is_ok());
    let lying = [
        ("mcp-protocol-version", "2025-06-18"),
        ("mcp-name", "other"),
    ];
    assert_eq!(code(check_request_headers(&headers(&lying), &call)), -32020);
    let modern_header = [("mcp-protocol-version", "2026-07-28")];
    assert_eq!(
        code(check_request_headers(&headers(&modern_header), &call)),
        -32020,
        "a modern version header needs the body's claim"
    );
}

#[test]
fn results_are_shaped_for_the_clients_era() {
    let list = json!({"tools": []});
    let modern = for_client(Era::Modern, "tools/list", list.clone()).unwrap();
    assert_eq!(modern["resultType"], "complete");
    assert_eq!(
        (modern["ttlMs"].clone(), modern["cacheScope"].clone()),
        (json!(0), json!("private"))
    );
    let call = for_client(Era::Modern, "tools/call", json!({"content": []})).unwrap();
    assert_eq!(call["resultType"], "complete");
    assert!(call.get("ttlMs").is_none());
    let legacy = for_client(Era::Legacy, "tools/list", modern).unwrap();
    assert_eq!(legacy, list);
    let asks = json!({"resultType": "input_required", "requestState": "s"});
    assert_eq!(
        for_client(Era::Legacy, "tools/call", asks),
        Err(GatewayError::InputRequired)
    );
}

#[test]
fn names_are_sent_plain_or_in_the_base64_sentinel() {
    assert_eq!(encode_header_value("echo"), "echo");
    assert_eq!(encode_header_value(" x"), "=?base64?IHg=?=");
    assert_eq!(decode_header_value(&encode_header_value("é")).unwrap(), "é");
}
