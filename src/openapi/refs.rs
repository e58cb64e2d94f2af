//! `$ref` resolution. Component schemas are copied once into the tool schema's `$defs` and
//! referred to there, so recursive models stay finite; any other reference is inlined, with a
//! depth bound so a loop of non-schema references ends in an error.
//!
//! References into other documents are followed only into documents the caller fetched and
//! passed in: before resolving, every reference in those documents (and every non-local one in
//! the main document) is rewritten to an absolute URL, so a reference found inside an external
//! document keeps pointing into that document without the resolver tracking where it is.

use std::collections::{BTreeMap, HashMap, HashSet};

use serde_json::{Map, Value};
use url::Url;

use super::{SpecVersion, Unusable};

const MAX_DEPTH: usize = 64;
const SCHEMA_PREFIX: &str = "#/components/schemas/";

/// Keywords whose values are data, not schemas: a `$ref` key inside them is not a reference.
const DATA_KEYWORDS: &[&str] = &["example", "examples", "default", "const", "enum"];

/// Keywords whose values map names to schemas: the names are not keywords, so a property
/// called `default` or `$ref` is still a schema to walk.
const SCHEMA_MAPS: &[&str] = &[
    "properties",
    "patternProperties",
    "dependentSchemas",
    "$defs",
    "definitions",
];

/// The documents a resolver may follow references into, keyed by URL without fragment.
pub(super) type Documents = HashMap<Url, Value>;

pub(super) struct Resolver<'a> {
    root: &'a Value,
    version: SpecVersion,
    allow_remote: bool,
    external: &'a Documents,
}

impl<'a> Resolver<'a> {
    pub(super) fn new(
        root: &'a Value,
        version: SpecVersion,
        allow_remote: bool,
        external: &'a Documents,
    ) -> Self {
        Self {
            root,
            version,
            allow_remote,
            external,
        }
    }

    /// Follows `$ref` until an object without one (parameters, request bodies, path items).
    pub(super) fn follow(&self, mut value: &'a Value) -> Result<&'a Value, Unusable> {
        for _ in 0..MAX_DEPTH {
            match value.get("$ref").and_then(Value::as_str) {
                Some(reference) => value = self.target(reference)?,
                None => return Ok(value),
            }
        }
        let last = value.get("$ref").and_then(Value::as_str).unwrap_or("");
        Err(Unusable::RefTooDeep(last.to_owned()))
    }

    fn target(&self, reference: &str) -> Result<&'a Value, Unusable> {
        let (document, pointer) = match reference.strip_prefix('#') {
            Some(pointer) => (self.root, pointer),
            None if !self.allow_remote => {
                return Err(Unusable::RemoteRef(reference.to_owned()));
            }
            None => self.external_target(reference)?,
        };
        let decoded = percent_encoding::percent_decode_str(pointer).decode_utf8_lossy();
        document
            .pointer(&decoded)
            .ok_or_else(|| Unusable::MissingRef(reference.to_owned()))
    }

    /// The fetched document an absolute reference points into, and the pointer in it.
    fn external_target<'r>(&self, reference: &'r str) -> Result<(&'a Value, &'r str), Unusable> {
        let not_fetched = || Unusable::RemoteRefNotFetched(reference.to_owned());
        let mut url = Url::parse(reference).map_err(|_| not_fetched())?;
        url.set_fragment(None);
        let document = self.external.get(&url).ok_or_else(not_fetched)?;
        let pointer = reference.split_once('#').map_or("", |(_, p)| p);
        Ok((document, pointer))
    }

    /// A schema with its references resolved: component schemas go to `defs` (keyed by
    /// component name) and are referred to as `#/$defs/{name}`.
    pub(super) fn schema(
        &self,
        schema: &Value,
        defs: &mut BTreeMap<String, Value>,
    ) -> Result<Value, Unusable> {
        self.walk(schema, defs, 0)
    }

    fn walk(
        &self,
        value: &Value,
        defs: &mut BTreeMap<String, Value>,
        depth: usize,
    ) -> Result<Value, Unusable> {
        if depth > MAX_DEPTH {
            return Err(Unusable::RefTooDeep(String::new()));
        }
        match value {
            Value::Array(items) => items
                .iter()
                .map(|item| self.walk(item, defs, depth + 1))
                .collect::<Result<Vec<_>, _>>()
                .map(Value::Array),
            Value::Object(object) => self.walk_object(object, defs, depth),
            other => Ok(other.clone()),
        }
    }

    fn walk_object(
        &self,
        object: &Map<String, Value>,
        defs: &mut BTreeMap<String, Value>,
        depth: usize,
    ) -> Result<Value, Unusable> {
        let mut out = Map::with_capacity(object.len());
        for (key, value) in object {
            if key == "$ref"
                && let Some(reference) = value.as_str()
            {
                if let Some(name) = reference.strip_prefix(SCHEMA_PREFIX)
                    && !name.contains('/')
                {
                    self.define(reference, name, defs, depth)?;
                    out.insert(key.clone(), Value::String(format!("#/$defs/{name}")));
                } else {
                    // Inlined: its keywords join this object's (siblings of `$ref` are allowed
                    // in 3.1; in 3.0 there are none to clash with).
                    let target = self.target(reference)?;
                    let inlined = self.walk(target, defs, depth + 1).map_err(|e| match e {
                        Unusable::RefTooDeep(inner) if inner.is_empty() => {
                            Unusable::RefTooDeep(reference.to_owned())
                        }
                        other => other,
                    })?;
                    if let Value::Object(inlined) = inlined {
                        out.extend(inlined);
                    }
                }
            } else if DATA_KEYWORDS.contains(&key.as_str()) || key.starts_with("x-") {
                out.insert(key.clone(), value.clone());
            } else if let (true, Value::Object(schemas)) =
                (SCHEMA_MAPS.contains(&key.as_str()), value)
            {
                let mut walked = Map::with_capacity(schemas.len());
                for (name, schema) in schemas {
                    walked.insert(name.clone(), self.walk(schema, defs, depth + 1)?);
                }
                out.insert(key.clone(), Value::Object(walked));
            } else {
                out.insert(key.clone(), self.walk(value, defs, depth + 1)?);
            }
        }
        if self.version == SpecVersion::V3_0 {
            upgrade_3_0(&mut out);
        }
        Ok(Value::Object(out))
    }

    fn define(
        &self,
        reference: &str,
        name: &str,
        defs: &mut BTreeMap<String, Value>,
        depth: usize,
    ) -> Result<(), Unusable> {
        // `name` stays escaped in the rewritten `$ref`; the `$defs` key is the name itself.
        let key = percent_encoding::percent_decode_str(name)
            .decode_utf8_lossy()
            .replace("~1", "/")
            .replace("~0", "~");
        if defs.contains_key(&key) {
            return Ok(());
        }
        let target = self.target(reference)?;
        // A placeholder first, so a model that refers to itself stops here.
        defs.insert(key.clone(), Value::Bool(true));
        let resolved = self.walk(target, defs, depth + 1)?;
        defs.insert(key, resolved);
        Ok(())
    }
}

/// OpenAPI 3.0's schema dialect differs from JSON Schema 2020-12 in `nullable` and in boolean
/// `exclusiveMinimum`/`exclusiveMaximum`; rewrite both so one validator reads every schema.
fn upgrade_3_0(schema: &mut Map<String, Value>) {
    if schema.remove("nullable") == Some(Value::Bool(true))
        && let Some(Value::String(kind)) = schema.get("type").cloned()
    {
        schema.insert(
            "type".into(),
            Value::Array(vec![Value::String(kind), Value::String("null".into())]),
        );
    }
    for (exclusive, bound) in [
        ("exclusiveMinimum", "minimum"),
        ("exclusiveMaximum", "maximum"),
    ] {
        if let Some(Value::Bool(flag)) = schema.get(exclusive).cloned() {
            schema.remove(exclusive);
            if flag && let Some(limit) = schema.remove(bound) {
                schema.insert(exclusive.into(), limit);
            }
        }
    }
}

/// Calls `visit` with every `$ref` string in a document, skipping data (examples, defaults,
/// constants, extensions) where a `$ref` key is not a reference.
pub(super) fn visit_refs(value: &mut Value, visit: &mut impl FnMut(&mut String)) {
    match value {
        Value::Array(items) => items.iter_mut().for_each(|item| visit_refs(item, visit)),
        Value::Object(object) => {
            for (key, value) in object.iter_mut() {
                if key == "$ref" {
                    if let Value::String(reference) = value {
                        visit(reference);
                    }
                } else if let (true, Value::Object(named)) =
                    (SCHEMA_MAPS.contains(&key.as_str()), &mut *value)
                {
                    named.values_mut().for_each(|v| visit_refs(v, visit));
                } else if !DATA_KEYWORDS.contains(&key.as_str()) && !key.starts_with("x-") {
                    visit_refs(value, visit);
                }
            }
        }
        _ => {}
    }
}

/// Rewrites the document's references to absolute URLs against `base`: the remote ones, and
/// with `local` the ones within the document too (an external document's `#/...` means itself).
pub(super) fn absolutize(document: &mut Value, base: &Url, local: bool) {
    visit_refs(document, &mut |reference| {
        if (local || !reference.starts_with('#'))
            && let Ok(absolute) = base.join(reference)
        {
            *reference = absolute.to_string();
        }
    });
}

/// Copies the component schemas of the external documents into the main document's, as
/// `{file stem}.{name}` (made unique), and points every reference to them at the copy: they
/// then become `$defs` like local components, so a recursive model in another file stays
/// finite instead of being inlined until the depth bound.
/// References to the main document's own schemas by its URL (`root_url`) become local.
pub(super) fn bundle_schemas(root: &mut Value, external: &mut Documents, root_url: Option<&Url>) {
    let mut taken: HashSet<String> = root
        .pointer("/components/schemas")
        .and_then(Value::as_object)
        .map(|schemas| schemas.keys().cloned().collect())
        .unwrap_or_default();
    let mut renamed = HashMap::new();
    for name in taken.iter().filter(|_| root_url.is_some()) {
        if let Some(Ok(absolute)) = root_url.map(|url| url.join(&schema_fragment(name))) {
            renamed.insert(absolute.to_string(), schema_fragment(name));
        }
    }
    let mut copies = Vec::new();
    let mut urls: Vec<&Url> = external.keys().collect();
    urls.sort();
    for url in urls {
        let Some(schemas) = external[url]
            .pointer("/components/schemas")
            .and_then(Value::as_object)
        else {
            continue;
        };
        let stem = document_stem(url);
        for (name, schema) in schemas {
            let Ok(absolute) = url.join(&schema_fragment(name)) else {
                continue;
            };
            let mut key = format!("{stem}.{name}");
            let mut n = 2;
            while taken.contains(&key) {
                key = format!("{stem}.{name}_{n}");
                n += 1;
            }
            taken.insert(key.clone());
            renamed.insert(absolute.to_string(), schema_fragment(&key));
            copies.push((key, schema.clone()));
        }
    }
    if copies.is_empty() {
        return;
    }
    let mut rename = |reference: &mut String| {
        if let Some(local) = renamed.get(reference.as_str()) {
            reference.clone_from(local);
        }
    };
    visit_refs(root, &mut rename);
    external
        .values_mut()
        .for_each(|document| visit_refs(document, &mut rename));
    let components = root.as_object_mut().map(|root| {
        root.entry("components")
            .or_insert_with(|| Value::Object(Map::new()))
    });
    let schemas = components
        .and_then(Value::as_object_mut)
        .map(|c| {
            c.entry("schemas")
                .or_insert_with(|| Value::Object(Map::new()))
        })
        .and_then(Value::as_object_mut);
    if let Some(schemas) = schemas {
        for (key, mut schema) in copies {
            visit_refs(&mut schema, &mut rename);
            schemas.insert(key, schema);
        }
    }
}

/// The local reference of a component schema: the name escaped for a JSON pointer, then for a
/// URI fragment (RFC 6901 §6).
fn schema_fragment(name: &str) -> String {
    let escaped = name.replace('~', "~0").replace('/', "~1");
    format!(
        "#/components/schemas/{}",
        percent_encoding::utf8_percent_encode(&escaped, FRAGMENT)
    )
}

/// Characters a component name may not carry unescaped in a URI fragment.
const FRAGMENT: &percent_encoding::AsciiSet = &percent_encoding::CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'%')
    .add(b'<')
    .add(b'>')
    .add(b'`');

/// `common` for `https://h/specs/common.yaml`: the file name up to its first dot, in
/// component-name characters.
fn document_stem(url: &Url) -> String {
    let file = url
        .path_segments()
        .and_then(|mut segments| segments.next_back())
        .unwrap_or("");
    let stem: String = file
        .split('.')
        .next()
        .unwrap_or("")
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if stem.is_empty() {
        "external".into()
    } else {
        stem
    }
}
