//! API spec probes (docker-slim's `--http-probe-apispec` and `--http-probe-apispec-file`): an
//! OpenAPI 3.x or Swagger 2.0 document, JSON or YAML, turned into one concrete request per
//! operation, so that every documented route runs under the sensor — also those no page links
//! to and no probe file lists.
//!
//! Pure functions over plain values: [`parse`] reads and checks a document, [`requests`] builds
//! the requests. What a request holds:
//! - the path: the server's base path (OpenAPI `servers[0].url`'s path, Swagger `basePath`, or
//!   the user's prefix) and the template with its path parameters filled;
//! - required query, header and cookie parameters;
//! - a body for an operation that declares one: the media type's example if the spec has one,
//!   else a value generated from the schema (required properties, or every property of an
//!   object that lists none; nested objects and arrays; `allOf` merged, `oneOf`/`anyOf` first
//!   branch), with its `Content-Type`.
//!
//! A value comes from `example`, `examples`, `default`, `enum[0]` or `const`, else from the type
//! and format (`"x"`, `1`, `true`, a UUID, a date...). `$ref`s resolve within the document
//! (`#/components/...`, `#/definitions/...`, `#/parameters/...`); a schema that refers back to
//! itself stops at the repetition (an array of it is empty, a property of it is left out)
//! instead of looping. Requests come safe methods first (GET, HEAD, OPTIONS), then POST, PUT,
//! PATCH and DELETE last, each group in path order, so a DELETE does not take away what a GET
//! of the same resource would have read.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

/// A document that is not a usable API spec, naming where it came from (file or URL) and,
/// when it is inside the document, where.
#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    #[error("API spec {origin}: cannot read it: {source}")]
    Read {
        origin: String,
        #[source]
        source: std::io::Error,
    },
    #[error("API spec {origin}: neither JSON nor YAML: {source}")]
    Syntax {
        origin: String,
        /// serde_json's or serde_yaml's error (the document's first character picks the parser).
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The app answered the spec's URL with a status that is not a document.
    #[error("API spec {origin}: answered {status}, not a document")]
    NotServed { origin: String, status: u16 },
    #[error("API spec {origin}: not an OpenAPI 3.x or Swagger 2.0 document ({found})")]
    NotASpec { origin: String, found: String },
    #[error("API spec {origin}: {at}: {message}")]
    Invalid {
        origin: String,
        at: String,
        message: String,
    },
}

/// Which of the two formats a document is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SpecKind {
    OpenApi3,
    Swagger2,
}

/// A parsed, checked API spec.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiSpec {
    /// The file or URL it came from (for messages and the report).
    pub origin: String,
    pub kind: SpecKind,
    doc: Value,
}

/// One operation's request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiRequest {
    /// Uppercase.
    pub method: String,
    /// The path as the spec writes it, e.g. `/items/{itemId}`.
    pub template: String,
    /// What is sent: base path, filled template and query, e.g. `/api/v1/items/1?verbose=true`.
    pub path: String,
    pub headers: BTreeMap<String, String>,
    pub body: Option<String>,
}

/// The methods probed, in the order their groups are sent (safe ones first, DELETE last).
pub const METHODS: &[&str] = &["get", "head", "options", "post", "put", "patch", "delete"];

/// Parses `text` (JSON if it starts with `{`, else YAML) as an OpenAPI 3.x or Swagger 2.0
/// document; `origin` names it in errors.
pub fn parse(text: &str, origin: &str) -> Result<ApiSpec, SpecError> {
    let syntax = |source: Box<dyn std::error::Error + Send + Sync>| SpecError::Syntax {
        origin: origin.to_string(),
        source,
    };
    let doc: Value = if text.trim_start().starts_with('{') {
        serde_json::from_str(text).map_err(|e| syntax(e.into()))?
    } else {
        let yaml: serde_yaml::Value = serde_yaml::from_str(text).map_err(|e| syntax(e.into()))?;
        yaml_to_json(yaml)
    };
    let not_a_spec = |found: String| SpecError::NotASpec {
        origin: origin.to_string(),
        found,
    };
    let Some(top) = doc.as_object() else {
        return Err(not_a_spec(format!("the top level is {}", type_name(&doc))));
    };
    let version = |key: &str| {
        top.get(key).map(|v| match v {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        })
    };
    let kind = match (version("openapi"), version("swagger")) {
        (Some(v), _) if v.starts_with("3.") => SpecKind::OpenApi3,
        (Some(v), _) => return Err(not_a_spec(format!("openapi: {v:?}"))),
        (None, Some(v)) if v == "2.0" || v == "2" => SpecKind::Swagger2,
        (None, Some(v)) => return Err(not_a_spec(format!("swagger: {v:?}"))),
        (None, None) => {
            return Err(not_a_spec(
                "it has neither an `openapi` nor a `swagger` key".into(),
            ))
        }
    };
    match top.get("paths") {
        None | Some(Value::Object(_)) => {}
        Some(other) => {
            return Err(SpecError::Invalid {
                origin: origin.to_string(),
                at: "paths".into(),
                message: format!("expected a map of paths, got {}", type_name(other)),
            })
        }
    }
    Ok(ApiSpec {
        origin: origin.to_string(),
        kind,
        doc,
    })
}

/// YAML to JSON values; keys that are not strings (`200:`, `true:`) become their text.
fn yaml_to_json(yaml: serde_yaml::Value) -> Value {
    use serde_yaml::Value as Y;
    match yaml {
        Y::Null => Value::Null,
        Y::Bool(b) => Value::Bool(b),
        Y::Number(n) => {
            if let Some(i) = n.as_i64() {
                Value::from(i)
            } else if let Some(u) = n.as_u64() {
                Value::from(u)
            } else {
                n.as_f64()
                    .and_then(serde_json::Number::from_f64)
                    .map_or(Value::Null, Value::Number)
            }
        }
        Y::String(s) => Value::String(s),
        Y::Sequence(items) => Value::Array(items.into_iter().map(yaml_to_json).collect()),
        Y::Mapping(map) => Value::Object(
            map.into_iter()
                .map(|(k, v)| {
                    let key = match k {
                        Y::String(s) => s,
                        Y::Bool(b) => b.to_string(),
                        Y::Number(n) => n.to_string(),
                        other => serde_yaml::to_string(&other)
                            .unwrap_or_default()
                            .trim()
                            .to_string(),
                    };
                    (key, yaml_to_json(v))
                })
                .collect(),
        ),
        Y::Tagged(tagged) => yaml_to_json(tagged.value),
    }
}

fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a map",
    }
}

/// How deep generated bodies nest before the generator stops (cycles stop earlier).
const MAX_DEPTH: usize = 12;

/// The requests of every operation of `spec`. `prefix` replaces the spec's base path (docker-
/// slim's `PATH:PREFIX`).
pub fn requests(spec: &ApiSpec, prefix: Option<&str>) -> Result<Vec<ApiRequest>, SpecError> {
    let gen = Generator { spec };
    let empty = Map::new();
    let paths = spec
        .doc
        .get("paths")
        .and_then(Value::as_object)
        .unwrap_or(&empty);
    let mut groups: Vec<Vec<ApiRequest>> = vec![Vec::new(); METHODS.len()];
    for (template, item) in paths {
        if template.starts_with("x-") {
            continue;
        }
        let at = format!("paths.{template}");
        if !template.starts_with('/') {
            return Err(gen.invalid(&at, "a path must start with '/'"));
        }
        let item = gen.deref(item, &at)?;
        let Some(item) = item.as_object() else {
            return Err(gen.invalid(&at, "expected a path item (a map of operations)"));
        };
        for (group, method) in METHODS.iter().enumerate() {
            let Some(operation) = item.get(*method) else {
                continue;
            };
            let at = format!("{at}.{method}");
            let Some(operation) = operation.as_object() else {
                return Err(gen.invalid(&at, "expected an operation (a map)"));
            };
            let base = match prefix {
                Some(prefix) => prefix.trim_end_matches('/').to_string(),
                None => gen.base_path(operation, item),
            };
            groups[group].push(gen.request(method, template, &base, item, operation, &at)?);
        }
    }
    Ok(groups.into_iter().flatten().collect())
}

struct Generator<'a> {
    spec: &'a ApiSpec,
}

impl Generator<'_> {
    fn invalid(&self, at: &str, message: impl Into<String>) -> SpecError {
        SpecError::Invalid {
            origin: self.spec.origin.clone(),
            at: at.to_string(),
            message: message.into(),
        }
    }

    /// Follows `$ref`s from `value` until a value without one; a chain that comes back to a
    /// ref it followed is an error (there is nothing at its end).
    fn deref<'v>(&'v self, value: &'v Value, at: &str) -> Result<&'v Value, SpecError> {
        let mut current = value;
        let mut followed: Vec<&str> = Vec::new();
        while let Some(reference) = current.get("$ref").and_then(Value::as_str) {
            if followed.contains(&reference) {
                return Err(self.invalid(at, format!("$ref {reference:?} refers to itself")));
            }
            followed.push(reference);
            current = self.lookup(reference, at)?;
        }
        Ok(current)
    }

    fn lookup(&self, reference: &str, at: &str) -> Result<&Value, SpecError> {
        let Some(pointer) = reference.strip_prefix('#') else {
            return Err(self.invalid(
                at,
                format!(
                    "$ref {reference:?}: only references within the document (#/...) are supported"
                ),
            ));
        };
        let pointer = percent_decode(pointer);
        self.spec
            .doc
            .pointer(&pointer)
            .ok_or_else(|| self.invalid(at, format!("$ref {reference:?} points to nothing")))
    }

    /// The path part of the first server of the operation, its path item or the document
    /// (OpenAPI), or `basePath` (Swagger); no trailing slash.
    fn base_path(&self, operation: &Map<String, Value>, item: &Map<String, Value>) -> String {
        let base = match self.spec.kind {
            SpecKind::Swagger2 => self
                .spec
                .doc
                .get("basePath")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string(),
            SpecKind::OpenApi3 => [operation.get("servers"), item.get("servers")]
                .into_iter()
                .flatten()
                .chain(self.spec.doc.get("servers"))
                .find_map(|servers| servers.get(0))
                .map(server_path)
                .unwrap_or_default(),
        };
        let base = base.trim_end_matches('/');
        if base.is_empty() || base.starts_with('/') {
            base.to_string()
        } else {
            format!("/{base}")
        }
    }

    fn request(
        &self,
        method: &str,
        template: &str,
        base: &str,
        item: &Map<String, Value>,
        operation: &Map<String, Value>,
        at: &str,
    ) -> Result<ApiRequest, SpecError> {
        // Operation parameters override path-level ones of the same name and location.
        let mut params: Vec<(String, String, &Value, String)> = Vec::new();
        let path_at = format!("paths.{template}");
        for (owner_at, list) in [
            (path_at.as_str(), item.get("parameters")),
            (at, operation.get("parameters")),
        ] {
            let Some(list) = list else { continue };
            let Some(list) = list.as_array() else {
                return Err(self.invalid(&format!("{owner_at}.parameters"), "expected a list"));
            };
            for (i, param) in list.iter().enumerate() {
                let param_at = format!("{owner_at}.parameters[{i}]");
                let param = self.deref(param, &param_at)?;
                let name = param.get("name").and_then(Value::as_str);
                let location = param.get("in").and_then(Value::as_str);
                let (Some(name), Some(location)) = (name, location) else {
                    return Err(self.invalid(&param_at, "a parameter needs a `name` and an `in`"));
                };
                params.retain(|(n, l, _, _)| !(n == name && l == location));
                params.push((name.to_string(), location.to_string(), param, param_at));
            }
        }
        let mut path = template.to_string();
        let mut query = Vec::new();
        let mut headers = BTreeMap::new();
        let mut cookies = Vec::new();
        let mut form = Map::new();
        let mut body = None;
        for (name, location, param, param_at) in &params {
            let required =
                location == "path" || param.get("required").and_then(Value::as_bool) == Some(true);
            if location == "body" {
                // Swagger 2: the body is a parameter with a schema.
                let schema = param.get("schema").unwrap_or(&Value::Null);
                let value =
                    self.value(schema, &format!("{param_at}.schema"), &mut Vec::new(), 0)?;
                body = Some(("application/json".to_string(), value.unwrap_or(Value::Null)));
                continue;
            }
            if !required {
                continue;
            }
            let value = self.parameter_value(param, param_at)?;
            match location.as_str() {
                "path" => {
                    let text = encode(&scalar_text(&value), false);
                    path = path.replace(&format!("{{{name}}}"), &text);
                }
                "query" => match &value {
                    Value::Array(items) => {
                        for item in items {
                            query.push(format!(
                                "{}={}",
                                encode(name, true),
                                encode(&scalar_text(item), true)
                            ));
                        }
                    }
                    other => query.push(format!(
                        "{}={}",
                        encode(name, true),
                        encode(&scalar_text(other), true)
                    )),
                },
                "header" => {
                    headers.insert(name.clone(), scalar_text(&value));
                }
                "cookie" => cookies.push(format!("{name}={}", scalar_text(&value))),
                "formData" => {
                    form.insert(name.clone(), value);
                }
                other => {
                    return Err(self.invalid(
                        param_at,
                        format!("unknown parameter location `in: {other}`"),
                    ))
                }
            }
        }
        // A template parameter the spec does not declare still needs a value.
        while let Some(start) = path.find('{') {
            let Some(len) = path[start..].find('}') else {
                break;
            };
            path.replace_range(start..start + len + 1, "1");
        }
        if !cookies.is_empty() {
            headers.insert("Cookie".into(), cookies.join("; "));
        }
        if let Some(request_body) = operation.get("requestBody") {
            body = self.request_body(request_body, &format!("{at}.requestBody"))?;
        } else if !form.is_empty() && body.is_none() {
            let consumes = operation
                .get("consumes")
                .or_else(|| self.spec.doc.get("consumes"))
                .and_then(Value::as_array)
                .and_then(|c| {
                    c.iter()
                        .filter_map(Value::as_str)
                        .find(|c| c.contains("form"))
                })
                .unwrap_or("application/x-www-form-urlencoded");
            body = Some((consumes.to_string(), Value::Object(form)));
        } else if body.is_some() {
            // Swagger 2: the body's media type is the first of `consumes` (JSON if none).
            let consumes = operation
                .get("consumes")
                .or_else(|| self.spec.doc.get("consumes"))
                .and_then(Value::as_array)
                .and_then(|c| c.first())
                .and_then(Value::as_str);
            if let (Some(media), Some((current, _))) = (consumes, body.as_mut()) {
                *current = media.to_string();
            }
        }
        let body = body.map(|(media, value)| {
            let (content_type, text) = render_body(&media, &value);
            headers.insert("Content-Type".into(), content_type);
            text
        });
        let mut full = format!("{base}{path}");
        if !query.is_empty() {
            full.push('?');
            full.push_str(&query.join("&"));
        }
        Ok(ApiRequest {
            method: method.to_ascii_uppercase(),
            template: template.to_string(),
            path: full,
            headers,
            body,
        })
    }

    /// A parameter's value: its example(s), else its schema's (OpenAPI), else the parameter
    /// read as a schema (Swagger 2 writes `type`, `format`, `enum`, `default` on it).
    fn parameter_value(&self, param: &Value, at: &str) -> Result<Value, SpecError> {
        if let Some(example) = first_example(param) {
            return Ok(example);
        }
        if let Some(example) = param.get("x-example") {
            return Ok(example.clone());
        }
        let schema = match param.get("schema") {
            Some(schema) => schema,
            None => param,
        };
        Ok(self
            .value(schema, &format!("{at}.schema"), &mut Vec::new(), 0)?
            .unwrap_or_else(|| Value::String("x".into())))
    }

    /// The media type and value of an OpenAPI request body: JSON preferred, then forms, then
    /// anything; the media type's example, else one generated from its schema.
    fn request_body(
        &self,
        request_body: &Value,
        at: &str,
    ) -> Result<Option<(String, Value)>, SpecError> {
        let request_body = self.deref(request_body, at)?;
        let Some(content) = request_body.get("content").and_then(Value::as_object) else {
            return Ok(None);
        };
        let rank = |media: &str| {
            let media = media.to_ascii_lowercase();
            if media == "application/json" {
                0
            } else if media.ends_with("+json") || media.contains("/json") {
                1
            } else if media == "application/x-www-form-urlencoded" {
                2
            } else if media == "multipart/form-data" {
                3
            } else if media.starts_with("text/") {
                4
            } else {
                5
            }
        };
        let Some((media, entry)) = content.iter().min_by_key(|(media, _)| rank(media)) else {
            return Ok(None);
        };
        let at = format!("{at}.content.{media}");
        let value = match first_example(entry) {
            Some(example) => example,
            None => match entry.get("schema") {
                Some(schema) => self
                    .value(schema, &format!("{at}.schema"), &mut Vec::new(), 0)?
                    .unwrap_or(Value::Null),
                None => Value::Null,
            },
        };
        Ok(Some((media.clone(), value)))
    }

    /// A value valid for `schema`. `None`: leave it out (a cycle, or too deep).
    fn value(
        &self,
        schema: &Value,
        at: &str,
        stack: &mut Vec<String>,
        depth: usize,
    ) -> Result<Option<Value>, SpecError> {
        if depth > MAX_DEPTH {
            return Ok(None);
        }
        if let Some(reference) = schema.get("$ref").and_then(Value::as_str) {
            if stack.iter().any(|r| r == reference) {
                return Ok(None);
            }
            let target = self.lookup(reference, at)?;
            stack.push(reference.to_string());
            let value = self.value(target, at, stack, depth + 1);
            stack.pop();
            return value;
        }
        let Some(object) = schema.as_object() else {
            // `true`/`{}` (anything goes) and malformed schemas: a string will do.
            return Ok(Some(Value::String("x".into())));
        };
        if let Some(example) = first_example(schema) {
            return Ok(Some(example));
        }
        for key in ["default", "const"] {
            if let Some(value) = object.get(key) {
                return Ok(Some(value.clone()));
            }
        }
        if let Some(first) = object
            .get("enum")
            .and_then(Value::as_array)
            .and_then(|e| e.first())
        {
            return Ok(Some(first.clone()));
        }
        if let Some(all) = object.get("allOf").and_then(Value::as_array) {
            let mut merged = Map::new();
            let mut last = None;
            for (i, branch) in all.iter().enumerate() {
                match self.value(branch, &format!("{at}.allOf[{i}]"), stack, depth + 1)? {
                    Some(Value::Object(fields)) => merged.extend(fields),
                    Some(other) => last = Some(other),
                    None => {}
                }
            }
            // Siblings of allOf (properties next to it) belong to the same object.
            if object.contains_key("properties") {
                if let Some(Value::Object(fields)) = self.object(object, at, stack, depth)? {
                    merged.extend(fields);
                }
            }
            return Ok(Some(if merged.is_empty() {
                last.unwrap_or(Value::Object(merged))
            } else {
                Value::Object(merged)
            }));
        }
        for key in ["oneOf", "anyOf"] {
            if let Some(branches) = object.get(key).and_then(Value::as_array) {
                let first = branches
                    .iter()
                    .enumerate()
                    .find(|(_, b)| b.get("type").and_then(Value::as_str) != Some("null"));
                if let Some((i, branch)) = first {
                    return self.value(branch, &format!("{at}.{key}[{i}]"), stack, depth + 1);
                }
                return Ok(Some(Value::Null));
            }
        }
        let kind = match object.get("type") {
            Some(Value::String(kind)) => kind.as_str(),
            // OpenAPI 3.1: `type: [string, "null"]`.
            Some(Value::Array(kinds)) => kinds
                .iter()
                .filter_map(Value::as_str)
                .find(|k| *k != "null")
                .unwrap_or("null"),
            _ if object.contains_key("properties") => "object",
            _ if object.contains_key("items") => "array",
            _ => "string",
        };
        Ok(match kind {
            "object" => return self.object(object, at, stack, depth),
            "array" => {
                let item = match object.get("items") {
                    Some(items) => self.value(items, &format!("{at}.items"), stack, depth + 1)?,
                    None => Some(Value::String("x".into())),
                };
                Some(Value::Array(item.into_iter().collect()))
            }
            "integer" => Some(Value::from(number_in_range(object).round() as i64)),
            "number" => Some(
                serde_json::Number::from_f64(number_in_range(object))
                    .map_or(Value::from(1), Value::Number),
            ),
            "boolean" => Some(Value::Bool(true)),
            "null" => Some(Value::Null),
            _ => Some(Value::String(string_for(object))),
        })
    }

    /// An object with the required properties (every property when none is required),
    /// read-only ones left out: they are the server's to fill.
    fn object(
        &self,
        object: &Map<String, Value>,
        at: &str,
        stack: &mut Vec<String>,
        depth: usize,
    ) -> Result<Option<Value>, SpecError> {
        let empty = Map::new();
        let properties = object
            .get("properties")
            .and_then(Value::as_object)
            .unwrap_or(&empty);
        let required: Vec<&str> = object
            .get("required")
            .and_then(Value::as_array)
            .map(|r| r.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        let mut out = Map::new();
        for (name, property) in properties {
            if !required.is_empty() && !required.contains(&name.as_str()) {
                continue;
            }
            let property_at = format!("{at}.properties.{name}");
            let resolved = self.deref(property, &property_at);
            if resolved.is_ok_and(|p| p.get("readOnly").and_then(Value::as_bool) == Some(true)) {
                continue;
            }
            if let Some(value) = self.value(property, &property_at, stack, depth + 1)? {
                out.insert(name.clone(), value);
            }
        }
        // A required property with no schema of its own still gets a value.
        for name in required {
            if !properties.contains_key(name) {
                out.insert(name.to_string(), Value::String("x".into()));
            }
        }
        Ok(Some(Value::Object(out)))
    }
}

/// `example`, else the first of `examples` (a map of `{value}` objects in OpenAPI, a list in
/// JSON Schema).
fn first_example(value: &Value) -> Option<Value> {
    if let Some(example) = value.get("example") {
        return Some(example.clone());
    }
    match value.get("examples")? {
        Value::Array(list) => list.first().cloned(),
        Value::Object(map) => map
            .values()
            .next()
            .and_then(|e| e.get("value").cloned().or_else(|| Some(e.clone()))),
        _ => None,
    }
}

/// 1, moved into `[minimum, maximum]` (exclusive bounds nudged by one).
fn number_in_range(schema: &Map<String, Value>) -> f64 {
    let get = |key: &str| schema.get(key).and_then(Value::as_f64);
    let mut value: f64 = 1.0;
    if let Some(min) = get("minimum") {
        let exclusive = schema.get("exclusiveMinimum").and_then(Value::as_bool) == Some(true);
        value = value.max(if exclusive { min + 1.0 } else { min });
    }
    if let Some(min) = get("exclusiveMinimum") {
        value = value.max(min + 1.0);
    }
    if let Some(max) = get("maximum") {
        let exclusive = schema.get("exclusiveMaximum").and_then(Value::as_bool) == Some(true);
        value = value.min(if exclusive { max - 1.0 } else { max });
    }
    if let Some(max) = get("exclusiveMaximum") {
        value = value.min(max - 1.0);
    }
    value
}

/// A string of the schema's format, at least `minLength` long, at most `maxLength`.
fn string_for(schema: &Map<String, Value>) -> String {
    let format = schema.get("format").and_then(Value::as_str).unwrap_or("");
    let mut text = match format {
        "uuid" => "3fa85f64-5717-4562-b3fc-2c963f66afa6",
        "date" => "2024-01-01",
        "date-time" => "2024-01-01T00:00:00Z",
        "time" => "00:00:00Z",
        "email" | "idn-email" => "user@example.com",
        "uri" | "url" | "iri" => "https://example.com/",
        "hostname" | "idn-hostname" => "example.com",
        "ipv4" => "192.0.2.1",
        "ipv6" => "2001:db8::1",
        "byte" => "eA==",
        "binary" => "minify probe\n",
        _ => "x",
    }
    .to_string();
    if format.is_empty() {
        let min = schema.get("minLength").and_then(Value::as_u64).unwrap_or(1);
        let max = schema
            .get("maxLength")
            .and_then(Value::as_u64)
            .unwrap_or(u64::MAX);
        let len = min.clamp(1, 1024).min(max.max(1));
        text = "x".repeat(len as usize);
    }
    text
}

/// The path part of an OpenAPI server object's URL, variables filled from their defaults.
fn server_path(server: &Value) -> String {
    let mut url = server
        .get("url")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    if let Some(variables) = server.get("variables").and_then(Value::as_object) {
        for (name, variable) in variables {
            let value = variable
                .get("default")
                .or_else(|| variable.get("enum").and_then(|e| e.get(0)))
                .map(scalar_text)
                .unwrap_or_default();
            url = url.replace(&format!("{{{name}}}"), &value);
        }
    }
    let after_authority = match url.find("://") {
        Some(scheme_end) => {
            let rest = &url[scheme_end + 3..];
            rest.find('/')
                .map_or("", |slash| &rest[slash..])
                .to_string()
        }
        None => url,
    };
    let path = after_authority
        .split(['?', '#'])
        .next()
        .unwrap_or("")
        .to_string();
    // A variable without a default leaves `{name}` behind: not a usable path segment.
    path.split('/')
        .filter(|segment| !segment.contains('{'))
        .collect::<Vec<_>>()
        .join("/")
}

/// The text of a scalar parameter value (strings unquoted; a list comma-joined, OpenAPI's
/// `simple` style).
fn scalar_text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        Value::Array(items) => items.iter().map(scalar_text).collect::<Vec<_>>().join(","),
        Value::Object(map) => map
            .iter()
            .flat_map(|(k, v)| [k.clone(), scalar_text(v)])
            .collect::<Vec<_>>()
            .join(","),
        other => other.to_string(),
    }
}

/// The `Content-Type` and text of a body of media type `media`.
fn render_body(media: &str, value: &Value) -> (String, String) {
    let lower = media.to_ascii_lowercase();
    if lower == "application/x-www-form-urlencoded" {
        let pairs = match value {
            Value::Object(map) => map
                .iter()
                .map(|(k, v)| format!("{}={}", encode(k, true), encode(&scalar_text(v), true)))
                .collect::<Vec<_>>()
                .join("&"),
            other => encode(&scalar_text(other), true),
        };
        return (media.to_string(), pairs);
    }
    if lower == "multipart/form-data" {
        const BOUNDARY: &str = "minify-probe-boundary";
        let mut text = String::new();
        let fields: Vec<(String, String)> = match value {
            Value::Object(map) => map
                .iter()
                .map(|(k, v)| (k.clone(), scalar_text(v)))
                .collect(),
            other => vec![("file".into(), scalar_text(other))],
        };
        for (name, content) in fields {
            text.push_str(&format!(
                "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"{name}\"; filename=\"{name}.txt\"\r\nContent-Type: text/plain\r\n\r\n{content}\r\n"
            ));
        }
        text.push_str(&format!("--{BOUNDARY}--\r\n"));
        return (format!("multipart/form-data; boundary={BOUNDARY}"), text);
    }
    let text = match value {
        Value::String(s) if !lower.contains("json") => s.clone(),
        other => serde_json::to_string(other).unwrap_or_default(),
    };
    (media.to_string(), text)
}

/// Percent-encodes all but RFC 3986's unreserved characters (and, in a path segment, the
/// sub-delimiters and `:@` it may hold).
fn encode(text: &str, query: bool) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        let keep = byte.is_ascii_alphanumeric()
            || matches!(byte, b'-' | b'.' | b'_' | b'~')
            || (!query
                && matches!(
                    byte,
                    b':' | b'@'
                        | b'!'
                        | b'$'
                        | b'\''
                        | b'('
                        | b')'
                        | b'*'
                        | b'+'
                        | b','
                        | b';'
                        | b'='
                ));
        if keep {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// `%7B` → `{` in a `$ref` pointer (the pointer's own `~0`/`~1` escapes stay for serde_json).
fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let Ok(byte) = u8::from_str_radix(&text[i + 1..i + 3], 16) {
                out.push(byte);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests;
