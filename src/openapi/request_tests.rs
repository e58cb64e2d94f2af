//! The style table of OpenAPI 3.1.1 §4.8.12.4 as test vectors, then real operations.
//!
//! serde_json keeps object keys sorted here (no `preserve_order`), so the table's object
//! `{"R": 100, "G": 200, "B": 150}` is written B, G, R; the table's rows are otherwise verbatim.

use http::Method;
use serde_json::{Map, Value, json};

use super::*;
use crate::openapi::{BodyPlan, CallPlan, Location, ParameterEncoding, ParameterPlan, Style};

fn parameter(location: Location, style: Style, explode: bool) -> ParameterPlan {
    ParameterPlan {
        argument: "color".into(),
        name: "color".into(),
        location,
        required: false,
        encoding: ParameterEncoding::Style {
            style,
            explode,
            allow_reserved: false,
        },
    }
}

fn plan(path: &str, parameters: Vec<ParameterPlan>, body: Option<BodyPlan>) -> CallPlan {
    CallPlan {
        method: Method::GET,
        path: path.into(),
        parameters,
        body,
        security: Vec::new(),
    }
}

fn arguments(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        other => panic!("arguments must be an object, not {other}"),
    }
}

fn build_ok(plan: &CallPlan, args: Value) -> HttpRequest {
    match build(plan, &arguments(args)) {
        Ok(request) => request,
        Err(e) => panic!("the request should build: {e}"),
    }
}

/// The serialised `color` for one style, as the table shows it: the path segment, the query
/// string, the header value, or the cookie header.
fn render(location: Location, style: Style, explode: bool, value: Value) -> String {
    let path = if location == Location::Path {
        "/{color}"
    } else {
        "/"
    };
    let plan = plan(path, vec![parameter(location, style, explode)], None);
    let request = build_ok(&plan, json!({ "color": value }));
    let header = |name| {
        request
            .headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned()
    };
    match location {
        Location::Path => request.path_and_query[1..].to_owned(),
        Location::Query => request
            .path_and_query
            .strip_prefix("/?")
            .unwrap_or("")
            .to_owned(),
        Location::Header => header("color"),
        Location::Cookie => header("cookie"),
    }
}

fn row(location: Location, style: Style, explode: bool, expected: [&str; 4]) {
    let values = [
        json!(""),
        json!("blue"),
        json!(["blue", "black", "brown"]),
        json!({ "R": 100, "G": 200, "B": 150 }),
    ];
    for (value, expected) in values.into_iter().zip(expected) {
        if expected == "n/a" {
            continue;
        }
        let shown = value.to_string();
        assert_eq!(
            render(location, style, explode, value),
            expected,
            "{style:?} explode={explode} {shown}"
        );
    }
}

#[test]
fn path_styles_follow_the_spec_table() {
    use Location::Path;
    #[rustfmt::skip]
    let table = [
        (Style::Matrix, false, [";color", ";color=blue", ";color=blue,black,brown", ";color=B,150,G,200,R,100"]),
        (Style::Matrix, true, [";color", ";color=blue", ";color=blue;color=black;color=brown", ";B=150;G=200;R=100"]),
        (Style::Label, false, [".", ".blue", ".blue,black,brown", ".B,150,G,200,R,100"]),
        (Style::Label, true, [".", ".blue", ".blue.black.brown", ".B=150.G=200.R=100"]),
        (Style::Simple, false, ["", "blue", "blue,black,brown", "B,150,G,200,R,100"]),
        (Style::Simple, true, ["", "blue", "blue,black,brown", "B=150,G=200,R=100"]),
    ];
    for (style, explode, expected) in table {
        row(Path, style, explode, expected);
    }
}

#[test]
fn query_styles_follow_the_spec_table() {
    use Location::Query;
    #[rustfmt::skip]
    let table = [
        (Style::Form, false, ["color=", "color=blue", "color=blue,black,brown", "color=B,150,G,200,R,100"]),
        (Style::Form, true, ["color=", "color=blue", "color=blue&color=black&color=brown", "B=150&G=200&R=100"]),
        (Style::SpaceDelimited, false, ["n/a", "n/a", "color=blue%20black%20brown", "color=B%20150%20G%20200%20R%20100"]),
        (Style::PipeDelimited, false, ["n/a", "n/a", "color=blue%7Cblack%7Cbrown", "color=B%7C150%7CG%7C200%7CR%7C100"]),
        (Style::DeepObject, true, ["n/a", "n/a", "n/a", "color%5BB%5D=150&color%5BG%5D=200&color%5BR%5D=100"]),
    ];
    for (style, explode, expected) in table {
        row(Query, style, explode, expected);
    }
}

#[test]
fn headers_are_simple_and_cookies_are_form_joined_into_one_cookie_header() {
    row(
        Location::Header,
        Style::Simple,
        false,
        ["", "blue", "blue,black,brown", "B,150,G,200,R,100"],
    );
    row(
        Location::Header,
        Style::Simple,
        true,
        ["", "blue", "blue,black,brown", "B=150,G=200,R=100"],
    );
    row(
        Location::Cookie,
        Style::Form,
        false,
        [
            "color=",
            "color=blue",
            "color=blue,black,brown",
            "color=B,150,G,200,R,100",
        ],
    );
    row(
        Location::Cookie,
        Style::Form,
        true,
        [
            "color=",
            "color=blue",
            "color=blue; color=black; color=brown",
            "B=150; G=200; R=100",
        ],
    );
}

#[test]
fn values_are_percent_encoded_and_delimiters_inside_values_are_not_confused() {
    assert_eq!(
        render(
            Location::Path,
            Style::Simple,
            false,
            json!(["a b", "c,d/e"])
        ),
        "a%20b,c%2Cd%2Fe"
    );
    assert_eq!(
        render(Location::Query, Style::Form, true, json!("x&y=z é")),
        "color=x%26y%3Dz%20%C3%A9"
    );
    assert_eq!(
        render(Location::Query, Style::Form, false, json!([1, 2.5, true])),
        "color=1,2.5,true"
    );
}

#[test]
fn allow_reserved_keeps_reserved_characters_but_not_those_a_query_parser_reads() {
    let mut reserved = parameter(Location::Query, Style::Form, true);
    reserved.encoding = ParameterEncoding::Style {
        style: Style::Form,
        explode: true,
        allow_reserved: true,
    };
    let plan = plan("/", vec![reserved], None);
    let request = build_ok(&plan, json!({ "color": "a/b:c?d@e,f;g&h=i+j#k %41 %zz" }));
    assert_eq!(
        request.path_and_query,
        "/?color=a/b:c?d@e,f;g%26h%3Di%2Bj%23k%20%41%20%25zz"
    );
}

#[test]
fn missing_and_null_optional_arguments_are_left_out_and_a_missing_required_one_is_named() {
    let mut id = parameter(Location::Path, Style::Simple, false);
    id.argument = "id".into();
    id.name = "id".into();
    id.required = true;
    let plan = plan(
        "/items/{id}",
        vec![id, parameter(Location::Query, Style::Form, true)],
        None,
    );
    let request = build_ok(&plan, json!({ "id": 7, "color": null }));
    assert_eq!(request.path_and_query, "/items/7");
    assert!(request.headers.is_empty());
    assert!(request.body.is_none());
    assert_eq!(
        build(&plan, &arguments(json!({ "color": "red" }))).err(),
        Some(BuildError {
            argument: "id".into(),
            message: "is required".into()
        })
    );
}

#[test]
fn a_header_value_with_a_line_break_is_refused_by_name() {
    let plan = plan(
        "/",
        vec![parameter(Location::Header, Style::Simple, false)],
        None,
    );
    let error = build(&plan, &arguments(json!({ "color": "a\r\nX-Evil: 1" })));
    assert!(
        matches!(&error, Err(e) if e.argument == "color" && e.message.contains("header")),
        "{error:?}"
    );
}

#[test]
fn content_parameters_are_json_text_encoded_as_one_value() {
    let mut coordinates = parameter(Location::Query, Style::Form, true);
    coordinates.encoding = ParameterEncoding::Content {
        media_type: "application/json".into(),
    };
    let plan = plan("/", vec![coordinates], None);
    let request = build_ok(&plan, json!({ "color": { "lat": 1.5, "long": -2 } }));
    assert_eq!(
        request.path_and_query,
        "/?color=%7B%22lat%22%3A1.5%2C%22long%22%3A-2%7D"
    );
}

fn body_plan(media_type: &str, required: bool) -> Option<BodyPlan> {
    Some(BodyPlan {
        argument: "body".into(),
        media_type: media_type.into(),
        required,
        encoding: Default::default(),
    })
}

#[test]
fn json_bodies_are_json_and_form_bodies_repeat_arrays_and_carry_objects_as_json() {
    let json_plan = plan(
        "/",
        Vec::new(),
        body_plan("application/merge-patch+json", true),
    );
    let request = build_ok(&json_plan, json!({ "body": { "a": [1, 2] } }));
    let body = request.body.clone();
    assert_eq!(
        body.as_ref().map(|b| b.content_type.as_str()),
        Some("application/merge-patch+json")
    );
    assert_eq!(body.map(|b| b.bytes), Some(br#"{"a":[1,2]}"#.to_vec()));
    assert_eq!(
        build(&json_plan, &Map::new())
            .map_err(|e| e.to_string())
            .err(),
        Some("body: is required".to_owned())
    );

    let form_plan = plan(
        "/",
        Vec::new(),
        body_plan("application/x-www-form-urlencoded", false),
    );
    let request = build_ok(
        &form_plan,
        json!({ "body": { "name": "a b&c", "tags": ["x", "y"], "meta": { "k": 1 }, "gone": null, "n": 3 } }),
    );
    let body = request.body.clone();
    assert_eq!(
        body.as_ref().map(|b| b.content_type.as_str()),
        Some("application/x-www-form-urlencoded")
    );
    assert_eq!(
        body.map(|b| String::from_utf8_lossy(&b.bytes).into_owned()),
        Some("meta=%7B%22k%22%3A1%7D&n=3&name=a+b%26c&tags=x&tags=y".to_owned())
    );
    assert!(build_ok(&form_plan, json!({})).body.is_none());
    assert!(build(&form_plan, &arguments(json!({ "body": [1] }))).is_err());
}

#[test]
fn secrets_go_where_the_scheme_says() {
    let base = || HttpRequest {
        method: Method::GET,
        path_and_query: "/items".into(),
        headers: http::HeaderMap::new(),
        body: None,
    };
    let header = |request: &HttpRequest, name: &str| {
        request
            .headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };

    let mut request = base();
    place_secret(&mut request, &SecretPlacement::Bearer, "tok");
    assert_eq!(
        header(&request, "authorization").as_deref(),
        Some("Bearer tok")
    );
    assert!(
        request
            .headers
            .get("authorization")
            .is_some_and(|v| v.is_sensitive())
    );

    let mut request = base();
    place_secret(&mut request, &SecretPlacement::Basic, "user:pass");
    assert_eq!(
        header(&request, "authorization").as_deref(),
        Some("Basic dXNlcjpwYXNz")
    );

    let mut request = base();
    place_secret(
        &mut request,
        &SecretPlacement::Header("X-API-Key".into()),
        "k",
    );
    assert_eq!(header(&request, "x-api-key").as_deref(), Some("k"));

    let mut request = base();
    place_secret(
        &mut request,
        &SecretPlacement::Query("api key".into()),
        "a&b",
    );
    assert_eq!(request.path_and_query, "/items?api%20key=a%26b");
    place_secret(&mut request, &SecretPlacement::Query("k2".into()), "v");
    assert_eq!(request.path_and_query, "/items?api%20key=a%26b&k2=v");

    let mut request = base();
    request
        .headers
        .insert(http::header::COOKIE, http::HeaderValue::from_static("a=1"));
    place_secret(
        &mut request,
        &SecretPlacement::Cookie("session".into()),
        "s",
    );
    assert_eq!(
        header(&request, "cookie").as_deref(),
        Some("a=1; session=s")
    );

    let mut request = base();
    place_secret(&mut request, &SecretPlacement::Bearer, "bad\nsecret");
    assert!(request.headers.is_empty());
}
