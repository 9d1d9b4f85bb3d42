use super::*;
use serde_json::json;

fn spec(text: &str) -> ApiSpec {
    parse(text, "test.json").unwrap()
}

fn summary(requests: &[ApiRequest]) -> Vec<String> {
    requests
        .iter()
        .map(|r| format!("{} {}", r.method, r.path))
        .collect()
}

fn body(request: &ApiRequest) -> Value {
    serde_json::from_str(request.body.as_deref().unwrap()).unwrap()
}

const PETS_JSON: &str = r#"{
  "openapi": "3.0.3",
  "info": {"title": "pets", "version": "1"},
  "servers": [{"url": "http://localhost:{port}/api/{version}",
               "variables": {"port": {"default": "8000"}, "version": {"default": "v1"}}}],
  "paths": {
    "/pets/{petId}": {
      "parameters": [{"name": "petId", "in": "path", "required": true,
                      "schema": {"type": "integer", "minimum": 7}}],
      "get": {"parameters": [
                {"name": "fields", "in": "query", "schema": {"type": "string"}},
                {"name": "lang", "in": "query", "required": true,
                 "schema": {"type": "string", "enum": ["en", "fr"]}},
                {"name": "X-Trace", "in": "header", "required": true, "example": "t 1"}]},
      "delete": {}
    },
    "/pets": {
      "get": {"parameters": [{"name": "since", "in": "query", "required": true,
                              "schema": {"type": "string", "format": "date"}}]},
      "post": {"requestBody": {"required": true, "content": {
                 "text/plain": {"schema": {"type": "string"}},
                 "application/json": {"schema": {"type": "object", "required": ["name"],
                    "properties": {"name": {"type": "string"}, "age": {"type": "integer"}}}}}}}
    },
    "/owners/{ownerId}/pets/{name}": {
      "put": {"parameters": [
                {"name": "ownerId", "in": "path", "required": true,
                 "schema": {"type": "string", "format": "uuid"}},
                {"name": "name", "in": "path", "required": true,
                 "examples": {"first": {"value": "rex the dog"}}}]}
    },
    "x-internal": {"get": {}}
  }
}"#;

#[test]
fn openapi3_json_fills_path_query_and_header_params_under_the_server_base_path() {
    let spec = spec(PETS_JSON);
    assert_eq!(spec.kind, SpecKind::OpenApi3);
    let requests = requests(&spec, None).unwrap();
    assert_eq!(
        summary(&requests),
        vec![
            "GET /api/v1/pets?since=2024-01-01",
            "GET /api/v1/pets/7?lang=en",
            "POST /api/v1/pets",
            "PUT /api/v1/owners/3fa85f64-5717-4562-b3fc-2c963f66afa6/pets/rex%20the%20dog",
            "DELETE /api/v1/pets/7",
        ],
        "safe methods first, DELETE last; optional query parameters left out"
    );
    let get = &requests[1];
    assert_eq!(get.template, "/pets/{petId}");
    assert_eq!(get.headers["X-Trace"], "t 1");
    let post = &requests[2];
    assert_eq!(post.headers["Content-Type"], "application/json");
    assert_eq!(body(post), json!({"name": "x"}), "only the required field");
    assert!(requests[0].body.is_none() && !requests[0].headers.contains_key("Content-Type"));
}

#[test]
fn openapi3_yaml_gives_the_same_requests_as_json() {
    let yaml = r#"
openapi: 3.1.0
info: {title: pets, version: "1"}
servers:
  - url: "http://localhost:{port}/api/{version}"
    variables:
      port: {default: "8000"}
      version: {default: v1}
paths:
  /pets/{petId}:
    parameters:
      - {name: petId, in: path, required: true, schema: {type: integer, minimum: 7}}
    get:
      parameters:
        - {name: fields, in: query, schema: {type: string}}
        - {name: lang, in: query, required: true, schema: {type: string, enum: [en, fr]}}
        - {name: X-Trace, in: header, required: true, example: "t 1"}
      responses:
        200: {description: ok}
    delete: {}
  /pets:
    get:
      parameters:
        - {name: since, in: query, required: true, schema: {type: string, format: date}}
    post:
      requestBody:
        required: true
        content:
          text/plain: {schema: {type: string}}
          application/json:
            schema:
              type: object
              required: [name]
              properties: {name: {type: string}, age: {type: integer}}
  /owners/{ownerId}/pets/{name}:
    put:
      parameters:
        - {name: ownerId, in: path, required: true, schema: {type: string, format: uuid}}
        - name: name
          in: path
          required: true
          examples: {first: {value: rex the dog}}
  x-internal: {get: {}}
"#;
    let from_yaml = parse(yaml, "spec.yaml").unwrap();
    assert_eq!(from_yaml.kind, SpecKind::OpenApi3);
    assert_eq!(
        requests(&from_yaml, None).unwrap(),
        requests(&spec(PETS_JSON), None).unwrap()
    );
}

#[test]
fn swagger2_uses_base_path_body_parameters_and_forms() {
    let spec = spec(
        r##"{
      "swagger": "2.0",
      "basePath": "/v2/",
      "consumes": ["application/json"],
      "parameters": {"id": {"name": "id", "in": "path", "required": true, "type": "integer",
                            "default": 42}},
      "definitions": {"Order": {"type": "object", "required": ["qty", "ship"],
          "properties": {"qty": {"type": "integer", "maximum": 0},
                         "ship": {"$ref": "#/definitions/Address"},
                         "note": {"type": "string"}}},
        "Address": {"type": "object", "properties": {"zip": {"type": "string", "minLength": 5}}}},
      "paths": {
        "/orders/{id}": {"parameters": [{"$ref": "#/parameters/id"}],
          "put": {"parameters": [{"name": "order", "in": "body", "required": true,
                                  "schema": {"$ref": "#/definitions/Order"}}]},
          "get": {"parameters": [{"name": "flag", "in": "query", "required": true,
                                  "type": "boolean"}]}},
        "/login": {"post": {"consumes": ["application/x-www-form-urlencoded"],
          "parameters": [{"name": "user", "in": "formData", "required": true, "type": "string",
                          "format": "email"},
                         {"name": "pass", "in": "formData", "required": true, "type": "string"}]}}
      }}"##,
    );
    assert_eq!(spec.kind, SpecKind::Swagger2);
    let requests = requests(&spec, None).unwrap();
    assert_eq!(
        summary(&requests),
        vec![
            "GET /v2/orders/42?flag=true",
            "POST /v2/login",
            "PUT /v2/orders/42"
        ]
    );
    assert_eq!(
        requests[1].headers["Content-Type"],
        "application/x-www-form-urlencoded"
    );
    assert_eq!(
        requests[1].body.as_deref(),
        Some("pass=x&user=user%40example.com")
    );
    assert_eq!(requests[2].headers["Content-Type"], "application/json");
    assert_eq!(
        body(&requests[2]),
        json!({"qty": 0, "ship": {"zip": "xxxxx"}})
    );
}

#[test]
fn refs_resolve_through_components_parameters_request_bodies_and_path_items() {
    let spec = spec(
        r##"{"openapi": "3.0.0", "paths": {
      "/a/{id}": {"$ref": "#/components/pathItems/A"},
      "/b": {"post": {"requestBody": {"$ref": "#/components/requestBodies/B"}}}},
     "components": {
      "pathItems": {"A": {"get": {"parameters": [{"$ref": "#/components/parameters/Id"}]}}},
      "parameters": {"Id": {"name": "id", "in": "path", "required": true,
                            "schema": {"$ref": "#/components/schemas/Id"}}},
      "schemas": {"Id": {"type": "string", "example": "abc"},
                  "B": {"type": "object", "properties": {"id": {"$ref": "#/components/schemas/Id"},
                        "when": {"type": "string", "format": "date-time"}}}},
      "requestBodies": {"B": {"content": {"application/json": {"schema":
                               {"$ref": "#/components/schemas/B"}}}}}}}"##,
    );
    let requests = requests(&spec, None).unwrap();
    assert_eq!(summary(&requests), vec!["GET /a/abc", "POST /b"]);
    assert_eq!(
        body(&requests[1]),
        json!({"id": "abc", "when": "2024-01-01T00:00:00Z"}),
        "no required list: every property"
    );
}

#[test]
fn a_schema_that_refers_to_itself_stops_instead_of_looping() {
    let spec = spec(
        r##"{"openapi": "3.0.0", "paths": {"/tree": {"post": {"requestBody": {"content": {
        "application/json": {"schema": {"$ref": "#/components/schemas/Node"}}}}}}},
      "components": {"schemas": {
        "Node": {"type": "object", "required": ["name", "children", "parent"], "properties": {
          "name": {"type": "string"},
          "children": {"type": "array", "items": {"$ref": "#/components/schemas/Node"}},
          "parent": {"$ref": "#/components/schemas/Wrapper"}}},
        "Wrapper": {"allOf": [{"$ref": "#/components/schemas/Node"}]}}}}"##,
    );
    let requests = requests(&spec, None).unwrap();
    let value = body(&requests[0]);
    assert_eq!(value["name"], "x");
    assert_eq!(
        value["children"],
        json!([]),
        "the cycle ends in an empty list"
    );
    assert_eq!(value["parent"], json!({}), "and a cyclic object is empty");
}

#[test]
fn a_ref_chain_that_never_ends_or_points_nowhere_is_an_error_naming_the_place() {
    let looping = spec(
        r##"{"openapi": "3.0.0", "paths": {"/x": {"get": {"parameters": [
        {"$ref": "#/components/parameters/A"}]}}},
      "components": {"parameters": {"A": {"$ref": "#/components/parameters/B"},
                                    "B": {"$ref": "#/components/parameters/A"}}}}"##,
    );
    let err = requests(&looping, None).unwrap_err();
    assert!(
        matches!(&err, SpecError::Invalid { at, .. } if at == "paths./x.get.parameters[0]"),
        "{err}"
    );
    assert!(err.to_string().contains("refers to itself"), "{err}");

    let dangling = spec(
        r##"{"openapi": "3.0.0", "paths": {"/x": {"post": {"requestBody": {"content": {
        "application/json": {"schema": {"$ref": "#/components/schemas/Missing"}}}}}}}}"##,
    );
    let err = requests(&dangling, None).unwrap_err().to_string();
    assert!(
        err.contains("test.json") && err.contains("#/components/schemas/Missing"),
        "{err}"
    );
    let external = spec(
        r##"{"openapi": "3.0.0", "paths": {"/x": {"get": {"parameters": [
        {"$ref": "common.yaml#/Id"}]}}}}"##,
    );
    assert!(requests(&external, None)
        .unwrap_err()
        .to_string()
        .contains("within the document"));
}

#[test]
fn bodies_follow_required_fields_nesting_compositions_and_formats() {
    let spec = spec(
        r##"{"openapi": "3.0.0", "paths": {"/p": {"post": {"requestBody": {"content": {
        "application/json": {"schema": {
          "type": "object",
          "required": ["id", "mail", "tags", "size", "pick", "maybe", "meta", "both", "ratio"],
          "properties": {
            "id": {"type": "string", "format": "uuid", "readOnly": true},
            "mail": {"type": "string", "format": "email"},
            "tags": {"type": "array", "items": {"type": "string", "enum": ["a", "b"]}},
            "size": {"type": "integer", "minimum": 10, "maximum": 20},
            "pick": {"oneOf": [{"type": "boolean"}, {"type": "string"}]},
            "maybe": {"anyOf": [{"type": "null"}, {"type": "number", "default": 2.5}]},
            "meta": {"type": "object", "required": ["deep"],
                     "properties": {"deep": {"type": "array", "items": {"type": "object",
                       "properties": {"on": {"type": "boolean"}}}}}},
            "both": {"allOf": [{"type": "object", "properties": {"a": {"type": "integer"}}},
                               {"type": "object", "properties": {"b": {"type": "string"}}}]},
            "ratio": {"type": ["number", "null"], "exclusiveMinimum": 1},
            "optional": {"type": "string"}}}}}}}}}}"##,
    );
    let value = body(&requests(&spec, None).unwrap()[0]);
    assert_eq!(
        value,
        json!({
            "mail": "user@example.com",
            "tags": ["a"],
            "size": 10,
            "pick": true,
            "maybe": 2.5,
            "meta": {"deep": [{"on": true}]},
            "both": {"a": 1, "b": "x"},
            "ratio": 2.0
        }),
        "read-only and optional fields left out"
    );
}

#[test]
fn the_media_type_example_is_sent_as_is_and_a_prefix_replaces_the_base_path() {
    let spec = spec(
        r##"{"openapi": "3.0.0", "servers": [{"url": "/api"}], "paths": {"/p": {"patch": {
        "requestBody": {"content": {"application/merge-patch+json": {
          "example": {"name": "from the spec"},
          "schema": {"type": "object", "properties": {"name": {"type": "string"}}}}}}}}}}"##,
    );
    let with_base = requests(&spec, None).unwrap();
    assert_eq!(summary(&with_base), vec!["PATCH /api/p"]);
    assert_eq!(
        with_base[0].headers["Content-Type"],
        "application/merge-patch+json"
    );
    assert_eq!(body(&with_base[0]), json!({"name": "from the spec"}));
    let overridden = requests(&spec, Some("/v9/")).unwrap();
    assert_eq!(summary(&overridden), vec!["PATCH /v9/p"]);
}

#[test]
fn bad_documents_are_typed_errors_naming_where_they_came_from() {
    let origin = "http://127.0.0.1:8000/openapi.json";
    type Expected = fn(&SpecError) -> bool;
    let cases: [(&str, Expected); 6] = [
        ("{\"openapi\": ", |e| matches!(e, SpecError::Syntax { .. })),
        ("openapi: [unclosed", |e| {
            matches!(e, SpecError::Syntax { .. })
        }),
        ("<html>not found</html>", |e| {
            matches!(e, SpecError::NotASpec { .. })
        }),
        (
            "{\"swagger\": \"1.2\", \"paths\": {}}",
            |e| matches!(e, SpecError::NotASpec { found, .. } if found.contains("1.2")),
        ),
        ("{\"info\": {}}", |e| {
            matches!(e, SpecError::NotASpec { .. })
        }),
        (
            "openapi: 3.0.0\npaths: [a, b]\n",
            |e| matches!(e, SpecError::Invalid { at, .. } if at == "paths"),
        ),
    ];
    for (text, expected) in cases {
        let err = parse(text, origin).unwrap_err();
        assert!(expected(&err), "{text:?}: {err:?}");
        assert!(err.to_string().contains(origin), "{err}");
    }
    let no_name = spec(
        r#"{"openapi": "3.0.0", "paths": {"/x": {"get": {"parameters": [{"in": "query"}]}}}}"#,
    );
    let err = requests(&no_name, None).unwrap_err();
    assert!(
        err.to_string().contains("paths./x.get.parameters[0]"),
        "{err}"
    );
}

#[test]
fn a_spec_without_paths_has_no_requests() {
    let spec = spec(r#"{"openapi": "3.1.0", "webhooks": {}}"#);
    assert!(requests(&spec, None).unwrap().is_empty());
}
