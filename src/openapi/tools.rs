//! Operations to tools: selection, naming, input schema, annotations, scope and call plan.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use globset::{Glob, GlobSet, GlobSetBuilder};
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

use super::refs::{Documents, Resolver};
use super::security;
use super::{
    Annotations, ArgumentValidator, CallPlan, Catalog, Location, OpenApiTool, Options,
    ParameterPlan, SpecError, SpecVersion, Unusable, UnusableOperation,
};

use plans::{body_plan, free_argument, parameter_plan};

/// Each argument's way into the request.
mod plans;

/// MCP tool names: `A-Z a-z 0-9 _ - .`, 1 to 64 characters (SEP-986). The spec also allows
/// `/`, but several clients reject it, and 64 keeps room under the 128 that others enforce for
/// the gateway's `{backend}__` prefix.
pub const MAX_TOOL_NAME_LEN: usize = 64;

const METHODS: [&str; 8] = [
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

/// The schema that accepts anything, for a parameter or body that declares none.
static ANY_SCHEMA: Value = Value::Bool(true);

/// The tool's argument that carries the request body.
const BODY_ARGUMENT: &str = "body";

/// Replaces every character MCP does not allow in a tool name with `_`, and shortens a name
/// that is too long to a prefix plus a hash of the whole, so distinct names stay distinct.
pub fn sanitize_tool_name(raw: &str) -> String {
    let clean = name_characters(raw);
    let clean = if clean.is_empty() { "_".into() } else { clean };
    if clean.len() <= MAX_TOOL_NAME_LEN {
        return clean;
    }
    let digest = hex::encode(Sha256::digest(raw.as_bytes()));
    format!("{}_{}", &clean[..MAX_TOOL_NAME_LEN - 9], &digest[..8])
}

pub(super) fn build(
    root: &Value,
    version: SpecVersion,
    options: &Options,
    external: &Documents,
) -> Result<Catalog, SpecError> {
    let include = glob_set(&options.include)?;
    let exclude = glob_set(&options.exclude)?;
    let resolver = Resolver::new(root, version, options.allow_remote_refs, external);
    let mut catalog = Catalog {
        version,
        tools: Vec::new(),
        unusable: Vec::new(),
        security_schemes_declared: security::schemes_declared(root),
    };
    let mut names = HashSet::new();
    let mut operation_ids = HashSet::new();
    let empty = Map::new();
    let paths = root
        .get("paths")
        .and_then(Value::as_object)
        .unwrap_or(&empty);
    for (path, item) in paths {
        let item = match resolver.follow(item) {
            Ok(item) => item,
            Err(reason) => {
                catalog.unusable.push(UnusableOperation {
                    method: "*".into(),
                    path: path.clone(),
                    reason,
                });
                continue;
            }
        };
        for method in METHODS {
            let Some(operation) = item.get(method) else {
                continue;
            };
            let selected = Operation::new(path, method, item, operation);
            if !selected.is_selected(include.as_ref(), exclude.as_ref()) {
                continue;
            }
            match selected.tool(root, &resolver, options, &mut names, &mut operation_ids) {
                Ok(tool) => catalog.tools.push(tool),
                Err(reason) => catalog.unusable.push(UnusableOperation {
                    method: method.to_ascii_uppercase(),
                    path: path.clone(),
                    reason,
                }),
            }
        }
    }
    Ok(catalog)
}

fn glob_set(patterns: &[String]) -> Result<Option<GlobSet>, SpecError> {
    if patterns.is_empty() {
        return Ok(None);
    }
    let mut builder = GlobSetBuilder::new();
    for pattern in patterns {
        let glob = Glob::new(pattern).map_err(|e| SpecError::Pattern {
            pattern: pattern.clone(),
            reason: e.kind().to_string(),
        })?;
        builder.add(glob);
    }
    builder.build().map(Some).map_err(|e| SpecError::Pattern {
        pattern: patterns.join(", "),
        reason: e.to_string(),
    })
}

struct Operation<'a> {
    path: &'a str,
    method: &'static str,
    item: &'a Value,
    operation: &'a Value,
    operation_id: Option<&'a str>,
    tags: Vec<String>,
}

impl<'a> Operation<'a> {
    fn new(path: &'a str, method: &'static str, item: &'a Value, operation: &'a Value) -> Self {
        let operation_id = operation
            .get("operationId")
            .and_then(Value::as_str)
            .filter(|id| !id.is_empty());
        let tags = operation
            .get("tags")
            .and_then(Value::as_array)
            .map(|tags| {
                tags.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default();
        Self {
            path,
            method,
            item,
            operation,
            operation_id,
            tags,
        }
    }

    /// The name before sanitising: the operationId, else method and path.
    fn raw_name(&self) -> String {
        match self.operation_id {
            Some(id) => id.to_owned(),
            None => {
                let words: Vec<&str> = self
                    .path
                    .split(|c: char| !c.is_ascii_alphanumeric())
                    .filter(|w| !w.is_empty())
                    .collect();
                format!("{}_{}", self.method, words.join("_"))
            }
        }
    }

    fn is_selected(&self, include: Option<&GlobSet>, exclude: Option<&GlobSet>) -> bool {
        let name = self.raw_name();
        let matches =
            |set: &GlobSet| set.is_match(&name) || self.tags.iter().any(|tag| set.is_match(tag));
        include.is_none_or(matches) && !exclude.is_some_and(matches)
    }

    fn tool(
        &self,
        root: &'a Value,
        resolver: &Resolver<'a>,
        options: &Options,
        names: &mut HashSet<String>,
        operation_ids: &mut HashSet<String>,
    ) -> Result<OpenApiTool, Unusable> {
        // An operationId is taken even when its operation turns out unusable: it names that
        // operation, and a later one must not quietly become it.
        if let Some(id) = self.operation_id
            && !operation_ids.insert(id.to_owned())
        {
            return Err(Unusable::DuplicateOperationId(id.to_owned()));
        }
        let mut defs = BTreeMap::new();
        let mut properties = Map::new();
        let mut required = Vec::new();
        let mut parameters = Vec::new();
        for parameter in self.parameters(resolver)? {
            let (plan, schema) = parameter_plan(parameter, resolver, &mut defs)?;
            let argument = free_argument(&properties, &plan)?;
            if plan.required {
                required.push(Value::String(argument.clone()));
            }
            properties.insert(argument.clone(), schema);
            parameters.push(ParameterPlan { argument, ..plan });
        }
        if let Some(name) = undeclared_path_parameter(self.path, &parameters) {
            return Err(Unusable::Malformed(format!(
                "the path names {{{name}}} but no path parameter declares it"
            )));
        }
        let body = match self.operation.get("requestBody") {
            Some(body) => {
                let (plan, schema) = body_plan(resolver.follow(body)?, resolver, &mut defs)?;
                if plan.required {
                    required.push(Value::String(plan.argument.clone()));
                }
                properties.insert(plan.argument.clone(), schema);
                Some(plan)
            }
            None => None,
        };
        let mut input_schema = Map::new();
        input_schema.insert("type".into(), json!("object"));
        input_schema.insert("properties".into(), Value::Object(properties));
        input_schema.insert("required".into(), Value::Array(required));
        input_schema.insert("additionalProperties".into(), Value::Bool(false));
        if !defs.is_empty() {
            input_schema.insert("$defs".into(), Value::Object(defs.into_iter().collect()));
        }

        let validator = ArgumentValidator::new(&input_schema).map_err(Unusable::Schema)?;

        let name = unique_name(&sanitize_tool_name(&self.raw_name()), names);
        let method = http::Method::from_bytes(self.method.to_ascii_uppercase().as_bytes())
            .map_err(|e| Unusable::Malformed(e.to_string()))?;
        Ok(OpenApiTool {
            name,
            operation_id: self.operation_id.map(str::to_owned),
            description: self.description(),
            input_schema,
            annotations: annotations(&method),
            scope: self.scope(&options.backend_id, &method),
            tags: self.tags.clone(),
            plan: CallPlan {
                method,
                path: self.path.to_owned(),
                parameters,
                body,
                security: security::placements(root, self.operation, resolver),
            },
            validator: Arc::new(validator),
        })
    }

    /// The path item's parameters, overridden by the operation's with the same name and place.
    fn parameters(&self, resolver: &Resolver<'a>) -> Result<Vec<&'a Value>, Unusable> {
        let mut merged: Vec<&'a Value> = Vec::new();
        for source in [self.item, self.operation] {
            let Some(list) = source.get("parameters") else {
                continue;
            };
            let list = list
                .as_array()
                .ok_or_else(|| Unusable::Malformed("`parameters` is not a list".into()))?;
            for parameter in list {
                let parameter = resolver.follow(parameter)?;
                let key = (parameter.get("name"), parameter.get("in"));
                merged.retain(|p| (p.get("name"), p.get("in")) != key);
                if !is_ignored_header(parameter) {
                    merged.push(parameter);
                }
            }
        }
        Ok(merged)
    }

    fn description(&self) -> Option<String> {
        let text = |key| {
            self.operation
                .get(key)
                .and_then(Value::as_str)
                .map(str::trim)
                .filter(|s| !s.is_empty())
        };
        match (text("summary"), text("description")) {
            (Some(summary), Some(description)) if summary != description => {
                Some(format!("{summary}\n\n{description}"))
            }
            (Some(one), _) | (None, Some(one)) => Some(one.to_owned()),
            (None, None) => None,
        }
    }

    fn scope(&self, backend_id: &str, method: &http::Method) -> String {
        let group = self
            .tags
            .first()
            .map(String::as_str)
            .or_else(|| {
                self.path
                    .split('/')
                    .find(|s| !s.is_empty() && !s.starts_with('{'))
            })
            .map(name_characters)
            .unwrap_or_else(|| "root".into());
        let access = if method.is_safe() { "read" } else { "write" };
        format!("{backend_id}:{group}:{access}")
    }
}

/// `raw` with every character outside `A-Z a-z 0-9 _ - .` replaced by `_`: MCP's tool-name
/// characters, and safe in a scope part (no space or quote, RFC 6749 §3.3, and no `:`, which
/// separates the parts).
fn name_characters(raw: &str) -> String {
    raw.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.') {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// A `{name}` in the path template that no path parameter fills: the request could not be
/// built.
fn undeclared_path_parameter<'p>(path: &'p str, parameters: &[ParameterPlan]) -> Option<&'p str> {
    path.split('{')
        .skip(1)
        .filter_map(|rest| rest.split_once('}').map(|(name, _)| name))
        .find(|name| {
            !parameters
                .iter()
                .any(|p| p.location == Location::Path && p.name == *name)
        })
}

/// Header parameters named `Accept`, `Content-Type` or `Authorization` "SHALL be ignored"
/// (OpenAPI 3.1 §4.8.12.1): the gateway sets those, and a model never supplies credentials.
fn is_ignored_header(parameter: &Value) -> bool {
    parameter.get("in").and_then(Value::as_str) == Some("header")
        && parameter
            .get("name")
            .and_then(Value::as_str)
            .is_some_and(|name| {
                ["accept", "content-type", "authorization"]
                    .iter()
                    .any(|h| name.eq_ignore_ascii_case(h))
            })
}

fn annotations(method: &http::Method) -> Annotations {
    let read_only = *method == http::Method::GET || *method == http::Method::HEAD;
    Annotations {
        read_only_hint: Some(read_only),
        destructive_hint: (*method == http::Method::DELETE).then_some(true),
    }
}

/// `base`, or `base_2`, `base_3`, … when it is taken.
fn unique_name(base: &str, names: &mut HashSet<String>) -> String {
    let mut candidate = base.to_owned();
    let mut n = 2;
    while names.contains(&candidate) {
        let suffix = format!("_{n}");
        let keep = base.len().min(MAX_TOOL_NAME_LEN - suffix.len());
        candidate = format!("{}{suffix}", &base[..keep]);
        n += 1;
    }
    names.insert(candidate.clone());
    candidate
}

/// Adds the parameter's or body's description to its schema when the schema has none.
fn describe(schema: &mut Value, description: Option<&Value>) {
    if let (Value::Object(schema), Some(Value::String(text))) = (schema, description)
        && !text.is_empty()
        && !schema.contains_key("description")
    {
        schema.insert("description".into(), Value::String(text.clone()));
    }
}
