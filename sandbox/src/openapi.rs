//! Validation of requests (and answers) against the providers' official
//! OpenAPI documents, so that the simulators reject what the real providers
//! reject.
//!
//! # Use from a simulator
//! ```no_run
//! # fn demo(specs: &passerelle_sandbox::SpecSource) -> std::io::Result<()> {
//! use passerelle_sandbox::openapi::ApiSpec;
//! // Once, in `X::new`: `None` when validation is off (no specs found).
//! let spec: Option<ApiSpec> = ApiSpec::load(specs, &["adyen/CheckoutService-v71.json"])?;
//! // In a handler: the path template exactly as the document writes it (a
//! // concrete path such as "/payments/ABC123/captures" works too).
//! let body = serde_json::json!({"amount": {"value": 500, "currency": "EUR"}});
//! if let Some(spec) = &spec {
//!     if let Err(violations) =
//!         spec.validate_request("POST", "/payments/{paymentPspReference}/captures", &body)
//!     {
//!         for v in &violations {
//!             // v.pointer: JSON pointer of the bad field ("/amount/currency"; for a
//!             // missing field, the pointer the field would have: "/merchantAccount");
//!             // v.kind: what is wrong (Required, Type, Enum, ...); v.message: English text.
//!             let _ = (&v.pointer, v.kind, &v.message, v.dotted());
//!         }
//!     }
//! }
//! # Ok(()) }
//! ```
//! Form-encoded providers (HiPay) decode the body into pairs and call
//! [`ApiSpec::validate_form`]: the form is checked as an object whose values
//! are strings, each coerced to a number/integer/boolean where the schema
//! says so. [`ApiSpec::validate_response`] checks an answer against the
//! documented response of that status (for tests), [`ApiSpec::validate_schema`]
//! checks any value against a named schema (`components/schemas/X` or
//! Swagger 2 `definitions/X`, e.g. webhook payloads).
//!
//! # Where the documents come from
//! [`SpecSource`]: `Auto` looks at `$PASSERELLE_PSP_SPECS`, then
//! `../shared/psp-specs` and `../../shared/psp-specs` (relative to the
//! current directory); when none exists validation is off and one warning is
//! logged. `Dir(path)` must hold the files (an error otherwise). `Off`
//! disables validation. A document is parsed once per process and shared.
//!
//! # What is checked
//! OpenAPI 3.0 and 3.1 (JSON or YAML) and Swagger 2.0 (`in: body` schemas
//! and `in: formData` parameters). Keywords: `$ref` (inside the same
//! document), `type` (string or 3.1 array, 3.0 `nullable`), `enum`, `const`,
//! `required`, `properties`, `additionalProperties`, `min/maxProperties`,
//! `items`, `min/maxItems`, `uniqueItems`, `allOf`, `anyOf`, `oneOf` (with
//! `discriminator.mapping` when present), `not`, `min/maxLength`, `pattern`
//! (skipped when the regex crate cannot compile it), `minimum`, `maximum`,
//! `exclusiveMinimum/Maximum` (3.0 booleans and 3.1 numbers), and the formats
//! `date`, `date-time`, `uri`, `uuid`, `email`, `int32`, `int64`; other
//! formats are not checked. In requests, `readOnly` properties are neither
//! required nor checked (providers ignore them); in answers, `writeOnly`
//! ones are not required.
//!
//! Deliberate leniency: `oneOf` passes when at least one alternative
//! matches (several of Adyen's payment-method schemas overlap); when none
//! does, the violations of the closest alternative are reported.
//! Query and path parameters and headers are not checked.

use std::{
    collections::HashMap,
    fmt, fs, io,
    path::{Path, PathBuf},
    sync::{Arc, Mutex, OnceLock},
};

use regex::Regex;
use serde_json::{Map, Value};

use crate::SpecSource;

/// One reason a value does not conform.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violation {
    /// JSON pointer (RFC 6901) of the offending field, `""` for the whole
    /// body; for a missing required field, the pointer it would have.
    pub pointer: String,
    /// What is wrong.
    pub kind: ViolationKind,
    /// Human-readable explanation (English).
    pub message: String,
}

/// The class of a [`Violation`], for mapping to a provider's error codes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ViolationKind {
    /// A required field (or the required body) is missing.
    Required,
    /// Wrong JSON type (for forms: not parseable as the number/boolean expected).
    Type,
    /// Not one of the allowed values (`enum`, `const`).
    Enum,
    /// Fails a `format` (date, date-time, uri, uuid, email, int32/int64 range).
    Format,
    /// String shorter/longer than allowed.
    Length,
    /// String does not match `pattern`.
    Pattern,
    /// Number out of `minimum`/`maximum`.
    Range,
    /// A property the schema forbids (`additionalProperties: false`).
    UnknownField,
    /// Array or object size or uniqueness (`minItems`, `maxProperties`, ...).
    Size,
    /// Matches none of the alternatives, or matches a `not`.
    NoMatch,
    /// The document has no such operation (a bug in the caller).
    UnknownOperation,
}

impl Violation {
    fn new(pointer: &str, kind: ViolationKind, message: impl Into<String>) -> Self {
        Violation {
            pointer: pointer.to_owned(),
            kind,
            message: message.into(),
        }
    }

    /// The field as a dotted path with array indexes in brackets
    /// (`"/lineItems/0/amountIncludingTax"` → `"lineItems[0].amountIncludingTax"`),
    /// the style of Adyen's and HiPay's messages; `""` for the whole body.
    pub fn dotted(&self) -> String {
        let mut out = String::new();
        for token in self.pointer.split('/').skip(1) {
            let token = token.replace("~1", "/").replace("~0", "~");
            if !token.is_empty() && token.bytes().all(|b| b.is_ascii_digit()) {
                out.push('[');
                out.push_str(&token);
                out.push(']');
            } else {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(&token);
            }
        }
        out
    }

    /// The last token of the pointer (the field's own name), `""` for the body.
    pub fn field_name(&self) -> String {
        self.pointer
            .rsplit('/')
            .next()
            .unwrap_or("")
            .replace("~1", "/")
            .replace("~0", "~")
    }
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.pointer.is_empty() {
            write!(f, "(body): {}", self.message)
        } else {
            write!(f, "{}: {}", self.pointer, self.message)
        }
    }
}

impl SpecSource {
    /// The folder the documents are read from, or `None` when validation is
    /// off. `Auto` warns once per process when it finds nothing.
    pub fn resolve_dir(&self) -> Option<PathBuf> {
        match self {
            SpecSource::Off => None,
            SpecSource::Dir(dir) => Some(dir.clone()),
            SpecSource::Auto => {
                let found = auto_dir();
                if found.is_none() {
                    static WARNED: OnceLock<()> = OnceLock::new();
                    WARNED.get_or_init(|| {
                        tracing::warn!(
                            "no PSP OpenAPI documents found (PASSERELLE_PSP_SPECS, \
                             ../shared/psp-specs, ../../shared/psp-specs): \
                             sandbox request validation is off"
                        );
                    });
                }
                found
            }
        }
    }
}

fn auto_dir() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("PASSERELLE_PSP_SPECS") {
        if !dir.is_empty() {
            return Some(PathBuf::from(dir));
        }
    }
    ["../shared/psp-specs", "../../shared/psp-specs"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.is_dir())
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Dialect {
    Swagger2,
    OpenApi30,
    OpenApi31,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Direction {
    Request,
    Response,
}

/// One parsed document.
struct Doc {
    root: Value,
    dialect: Dialect,
}

struct Operation {
    doc: usize,
    method: String,
    template: String,
    segments: Vec<Segment>,
    operation_id: Option<String>,
    /// (media type, schema) of the request body.
    bodies: Vec<(String, Value)>,
    body_required: bool,
    responses: Value,
}

enum Segment {
    Literal(String),
    Param,
}

/// The operations of one provider's documents, loaded once and cheap to
/// clone.
#[derive(Clone)]
pub struct ApiSpec {
    inner: Arc<Inner>,
}

struct Inner {
    docs: Vec<Arc<Doc>>,
    operations: Vec<Operation>,
    regexes: RegexCache,
}

impl fmt::Debug for ApiSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ApiSpec")
            .field("documents", &self.inner.docs.len())
            .field("operations", &self.inner.operations.len())
            .finish()
    }
}

impl ApiSpec {
    /// Loads `files` (paths relative to the specs folder, e.g.
    /// `"paypal/checkout_orders_v2.json"`, `"hipay/gateway.yaml"`).
    /// `Ok(None)`: validation is off (`Off`, or `Auto` found no folder, or
    /// `Auto` found a folder lacking these files, with a warning).
    /// `Err`: a file is missing under an explicit `Dir`, or does not parse.
    pub fn load(source: &SpecSource, files: &[&str]) -> io::Result<Option<ApiSpec>> {
        let Some(dir) = source.resolve_dir() else {
            return Ok(None);
        };
        if matches!(source, SpecSource::Auto) {
            if let Some(missing) = files.iter().find(|f| !dir.join(f).is_file()) {
                tracing::warn!(
                    dir = %dir.display(),
                    file = %missing,
                    "PSP OpenAPI document not found: validation off for this simulator"
                );
                return Ok(None);
            }
        }
        let mut docs = Vec::with_capacity(files.len());
        for file in files {
            docs.push(load_doc(&dir.join(file))?);
        }
        Ok(Some(ApiSpec::from_docs(docs)))
    }

    /// Builds a spec from documents already in memory (JSON values of
    /// OpenAPI 3.x or Swagger 2.0 documents); for tests.
    pub fn from_values(documents: Vec<Value>) -> io::Result<ApiSpec> {
        let docs = documents
            .into_iter()
            .map(|root| {
                let dialect = dialect_of(&root).ok_or_else(|| {
                    io::Error::new(io::ErrorKind::InvalidData, "not an OpenAPI document")
                })?;
                Ok(Arc::new(Doc { root, dialect }))
            })
            .collect::<io::Result<Vec<_>>>()?;
        Ok(ApiSpec::from_docs(docs))
    }

    fn from_docs(docs: Vec<Arc<Doc>>) -> ApiSpec {
        let mut operations = Vec::new();
        for (index, doc) in docs.iter().enumerate() {
            collect_operations(index, doc, &mut operations);
        }
        ApiSpec {
            inner: Arc::new(Inner {
                docs,
                operations,
                regexes: RegexCache::default(),
            }),
        }
    }

    /// Whether the documents describe `method path` (template or concrete path).
    pub fn has_operation(&self, method: &str, path: &str) -> bool {
        self.find(method, path).is_some()
    }

    /// The `operationId` of `method path`, if documented.
    pub fn operation_id(&self, method: &str, path: &str) -> Option<&str> {
        self.find(method, path)
            .and_then(|op| op.operation_id.as_deref())
    }

    /// Checks a JSON request body (`Value::Null`: no body) against the
    /// operation's documented request body.
    pub fn validate_request(
        &self,
        method: &str,
        path: &str,
        body: &Value,
    ) -> Result<(), Vec<Violation>> {
        self.validate_body(method, path, body, false)
    }

    /// Checks a form-encoded request body, given as an object whose values
    /// are strings (see [`form_value`]); values are coerced to the
    /// number/integer/boolean the schema asks for before checking.
    pub fn validate_form(
        &self,
        method: &str,
        path: &str,
        form: &Value,
    ) -> Result<(), Vec<Violation>> {
        self.validate_body(method, path, form, true)
    }

    /// Checks an answer's JSON body against the documented response for
    /// `status` (falling back to `2XX`-style ranges, then `default`).
    /// `Ok` when nothing documents a JSON body for that status.
    pub fn validate_response(
        &self,
        method: &str,
        path: &str,
        status: u16,
        body: &Value,
    ) -> Result<(), Vec<Violation>> {
        let op = self.find(method, path).ok_or_else(|| {
            vec![Violation::new(
                "",
                ViolationKind::UnknownOperation,
                format!("no operation {method} {path} in the documents"),
            )]
        })?;
        let doc = &self.inner.docs[op.doc];
        let code = status.to_string();
        let range = format!("{}XX", status / 100);
        let response = [code.as_str(), range.as_str(), "default"]
            .iter()
            .find_map(|key| {
                op.responses.get(*key).or_else(|| {
                    op.responses
                        .as_object()
                        .and_then(|m| m.iter().find(|(k, _)| k.eq_ignore_ascii_case(key)))
                        .map(|(_, v)| v)
                })
            });
        let Some(response) = response else {
            return Ok(());
        };
        let response = resolve(&doc.root, response);
        let schema = match doc.dialect {
            Dialect::Swagger2 => response.get("schema"),
            _ => response.get("content").and_then(|c| pick_json(c)),
        };
        match schema {
            Some(schema) => self.run(op.doc, Direction::Response, false, schema, body),
            None => Ok(()),
        }
    }

    /// Checks `value` against a named schema (`components/schemas/<name>`, or
    /// `definitions/<name>` in Swagger 2), searched in every document.
    pub fn validate_schema(&self, name: &str, value: &Value) -> Result<(), Vec<Violation>> {
        for (index, doc) in self.inner.docs.iter().enumerate() {
            let schema = doc
                .root
                .get("components")
                .and_then(|c| c.get("schemas"))
                .and_then(|s| s.get(name))
                .or_else(|| doc.root.get("definitions").and_then(|d| d.get(name)));
            if let Some(schema) = schema {
                return self.run(index, Direction::Request, false, schema, value);
            }
        }
        Err(vec![Violation::new(
            "",
            ViolationKind::UnknownOperation,
            format!("no schema named {name} in the documents"),
        )])
    }

    fn validate_body(
        &self,
        method: &str,
        path: &str,
        body: &Value,
        form: bool,
    ) -> Result<(), Vec<Violation>> {
        let op = self.find(method, path).ok_or_else(|| {
            vec![Violation::new(
                "",
                ViolationKind::UnknownOperation,
                format!("no operation {method} {path} in the documents"),
            )]
        })?;
        // No body: an error when the body is required; otherwise checked as
        // `{}` (Adyen marks no body required but rejects one missing its
        // required fields).
        let empty = Value::Object(Map::new());
        let body = if body.is_null() {
            if op.body_required {
                return Err(vec![Violation::new(
                    "",
                    ViolationKind::Required,
                    "a request body is required",
                )]);
            }
            &empty
        } else {
            body
        };
        let preferred: &[&str] = if form {
            &["application/x-www-form-urlencoded", "multipart/form-data"]
        } else {
            &["application/json"]
        };
        let schema = preferred
            .iter()
            .find_map(|want| {
                op.bodies
                    .iter()
                    .find(|(media, _)| media.eq_ignore_ascii_case(want))
            })
            .or_else(|| {
                op.bodies
                    .iter()
                    .find(|(media, _)| media.to_ascii_lowercase().contains("json"))
            })
            .or_else(|| op.bodies.first())
            .map(|(_, schema)| schema);
        match schema {
            Some(schema) => self.run(op.doc, Direction::Request, form, schema, body),
            None => Ok(()),
        }
    }

    fn run(
        &self,
        doc: usize,
        direction: Direction,
        coerce: bool,
        schema: &Value,
        value: &Value,
    ) -> Result<(), Vec<Violation>> {
        let doc = &self.inner.docs[doc];
        let ctx = Ctx {
            root: &doc.root,
            dialect: doc.dialect,
            direction,
            coerce,
            regexes: &self.inner.regexes,
        };
        let mut out = Vec::new();
        ctx.check(schema, value, "", 0, &mut out);
        if out.is_empty() {
            Ok(())
        } else {
            Err(out)
        }
    }

    fn find(&self, method: &str, path: &str) -> Option<&Operation> {
        let ops = &self.inner.operations;
        if let Some(op) = ops
            .iter()
            .find(|op| op.method.eq_ignore_ascii_case(method) && op.template == path)
        {
            return Some(op);
        }
        // A concrete path: the matching template with the most literal segments.
        let parts: Vec<&str> = split_path(path);
        ops.iter()
            .filter(|op| op.method.eq_ignore_ascii_case(method))
            .filter(|op| {
                op.segments.len() == parts.len()
                    && op.segments.iter().zip(&parts).all(|(seg, part)| match seg {
                        Segment::Literal(lit) => lit == part,
                        Segment::Param => !part.is_empty(),
                    })
            })
            .max_by_key(|op| {
                op.segments
                    .iter()
                    .filter(|s| matches!(s, Segment::Literal(_)))
                    .count()
            })
    }
}

/// Turns decoded form pairs into the object [`ApiSpec::validate_form`]
/// expects: `a=1` → `{"a": "1"}`; bracketed keys nest the way PHP (and so
/// HiPay) reads them: `browser_info[language]=fr` →
/// `{"browser_info": {"language": "fr"}}`, `list[]=x` appends to an array.
/// A repeated plain key keeps its last value.
pub fn form_value<K: AsRef<str>, V: AsRef<str>>(pairs: &[(K, V)]) -> Value {
    let mut root = Value::Object(Map::new());
    for (key, value) in pairs {
        let key = key.as_ref();
        let value = Value::String(value.as_ref().to_owned());
        let (head, rest) = match key.find('[') {
            Some(pos) if pos > 0 && key.ends_with(']') => (&key[..pos], &key[pos..]),
            _ => (key, ""),
        };
        let mut path: Vec<&str> = vec![head];
        if !rest.is_empty() {
            // "[a][b][]" → ["a", "b", ""]
            let inner = &rest[1..rest.len() - 1];
            path.extend(inner.split("]["));
        }
        insert_form(&mut root, &path, value);
    }
    root
}

fn insert_form(node: &mut Value, path: &[&str], value: Value) {
    let Some((first, rest)) = path.split_first() else {
        return;
    };
    if first.is_empty() {
        // Append to an array.
        if !node.is_array() {
            *node = Value::Array(Vec::new());
        }
        if let Value::Array(items) = node {
            if rest.is_empty() {
                items.push(value);
            } else {
                let mut fresh = Value::Object(Map::new());
                insert_form(&mut fresh, rest, value);
                items.push(fresh);
            }
        }
        return;
    }
    if !node.is_object() {
        *node = Value::Object(Map::new());
    }
    if let Value::Object(map) = node {
        if rest.is_empty() {
            map.insert((*first).to_owned(), value);
        } else {
            let next_is_array = rest.first().is_some_and(|r| r.is_empty());
            let entry = map.entry((*first).to_owned()).or_insert_with(|| {
                if next_is_array {
                    Value::Array(Vec::new())
                } else {
                    Value::Object(Map::new())
                }
            });
            insert_form(entry, rest, value);
        }
    }
}

fn split_path(path: &str) -> Vec<&str> {
    let path = path.split(['?', '#']).next().unwrap_or("");
    path.trim_matches('/').split('/').collect()
}

// ---------------------------------------------------------------------------
// Loading

fn doc_cache() -> &'static Mutex<HashMap<PathBuf, Arc<Doc>>> {
    static CACHE: OnceLock<Mutex<HashMap<PathBuf, Arc<Doc>>>> = OnceLock::new();
    CACHE.get_or_init(|| Mutex::new(HashMap::new()))
}

fn load_doc(path: &Path) -> io::Result<Arc<Doc>> {
    let key = fs::canonicalize(path).unwrap_or_else(|_| path.to_owned());
    if let Ok(cache) = doc_cache().lock() {
        if let Some(doc) = cache.get(&key) {
            return Ok(doc.clone());
        }
    }
    let text = fs::read_to_string(path)
        .map_err(|err| io::Error::new(err.kind(), format!("reading {}: {err}", path.display())))?;
    let invalid = |msg: String| io::Error::new(io::ErrorKind::InvalidData, msg);
    let is_yaml = path
        .extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| e.eq_ignore_ascii_case("yaml") || e.eq_ignore_ascii_case("yml"));
    let root: Value = if is_yaml {
        let yaml: serde_yaml_ng::Value = serde_yaml_ng::from_str(&text)
            .map_err(|err| invalid(format!("parsing {}: {err}", path.display())))?;
        yaml_to_json(yaml)
    } else {
        serde_json::from_str(&text)
            .map_err(|err| invalid(format!("parsing {}: {err}", path.display())))?
    };
    let dialect = dialect_of(&root).ok_or_else(|| {
        invalid(format!(
            "{} is not an OpenAPI 3 or Swagger 2 document",
            path.display()
        ))
    })?;
    let doc = Arc::new(Doc { root, dialect });
    if let Ok(mut cache) = doc_cache().lock() {
        cache.insert(key, doc.clone());
    }
    Ok(doc)
}

fn dialect_of(root: &Value) -> Option<Dialect> {
    if let Some(version) = root.get("openapi").and_then(Value::as_str) {
        return Some(if version.starts_with("3.0") {
            Dialect::OpenApi30
        } else {
            Dialect::OpenApi31
        });
    }
    root.get("swagger").map(|_| Dialect::Swagger2)
}

fn yaml_to_json(value: serde_yaml_ng::Value) -> Value {
    use serde_yaml_ng::Value as Y;
    match value {
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
        Y::Mapping(map) => {
            let mut out = Map::new();
            for (k, v) in map {
                let key = match k {
                    Y::String(s) => s,
                    Y::Bool(b) => b.to_string(),
                    Y::Number(n) => n.to_string(),
                    Y::Null => "null".to_owned(),
                    other => serde_yaml_ng::to_string(&other)
                        .unwrap_or_default()
                        .trim()
                        .to_owned(),
                };
                out.insert(key, yaml_to_json(v));
            }
            Value::Object(out)
        }
        Y::Tagged(tagged) => yaml_to_json(tagged.value),
    }
}

const METHODS: [&str; 8] = [
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

fn collect_operations(index: usize, doc: &Doc, out: &mut Vec<Operation>) {
    let root = &doc.root;
    let Some(paths) = root.get("paths").and_then(Value::as_object) else {
        return;
    };
    let doc_consumes = string_list(root.get("consumes"));
    for (template, item) in paths {
        let item = resolve(root, item);
        let shared_params = item.get("parameters");
        for method in METHODS {
            let Some(op) = item.get(method) else {
                continue;
            };
            let (bodies, body_required) = match doc.dialect {
                Dialect::Swagger2 => swagger2_body(root, op, shared_params, &doc_consumes),
                _ => openapi3_body(root, op),
            };
            out.push(Operation {
                doc: index,
                method: method.to_ascii_uppercase(),
                template: template.clone(),
                segments: split_path(template)
                    .into_iter()
                    .map(|s| {
                        if s.starts_with('{') && s.ends_with('}') {
                            Segment::Param
                        } else {
                            Segment::Literal(s.to_owned())
                        }
                    })
                    .collect(),
                operation_id: op
                    .get("operationId")
                    .and_then(Value::as_str)
                    .map(str::to_owned),
                bodies,
                body_required,
                responses: op.get("responses").cloned().unwrap_or(Value::Null),
            });
        }
    }
}

fn string_list(value: Option<&Value>) -> Vec<String> {
    value
        .and_then(Value::as_array)
        .map(|items| {
            items
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

fn openapi3_body(root: &Value, op: &Value) -> (Vec<(String, Value)>, bool) {
    let Some(body) = op.get("requestBody") else {
        return (Vec::new(), false);
    };
    let body = resolve(root, body);
    let required = body.get("required").and_then(Value::as_bool) == Some(true);
    let bodies = body
        .get("content")
        .and_then(Value::as_object)
        .map(|content| {
            content
                .iter()
                .filter_map(|(media, m)| Some((media.clone(), m.get("schema")?.clone())))
                .collect()
        })
        .unwrap_or_default();
    (bodies, required)
}

/// Swagger 2: the `in: body` schema, or an object schema synthesised from
/// the `in: formData` parameters.
fn swagger2_body(
    root: &Value,
    op: &Value,
    shared: Option<&Value>,
    doc_consumes: &[String],
) -> (Vec<(String, Value)>, bool) {
    let mut params: Vec<&Value> = Vec::new();
    for list in [shared, op.get("parameters")].into_iter().flatten() {
        if let Some(items) = list.as_array() {
            params.extend(items.iter().map(|p| resolve(root, p)));
        }
    }
    let mut consumes = string_list(op.get("consumes"));
    if consumes.is_empty() {
        consumes = doc_consumes.to_vec();
    }
    if let Some(body) = params
        .iter()
        .find(|p| p.get("in").and_then(Value::as_str) == Some("body"))
    {
        let required = body.get("required").and_then(Value::as_bool) == Some(true);
        let schema = body.get("schema").cloned().unwrap_or(Value::Bool(true));
        if consumes.is_empty() {
            consumes.push("application/json".to_owned());
        }
        return (
            consumes.into_iter().map(|m| (m, schema.clone())).collect(),
            required,
        );
    }
    let form: Vec<&&Value> = params
        .iter()
        .filter(|p| p.get("in").and_then(Value::as_str) == Some("formData"))
        .collect();
    if form.is_empty() {
        return (Vec::new(), false);
    }
    let mut properties = Map::new();
    let mut required = Vec::new();
    for param in form {
        let Some(name) = param.get("name").and_then(Value::as_str) else {
            continue;
        };
        let mut schema = param.as_object().cloned().unwrap_or_default();
        for key in ["name", "in", "required", "description", "allowEmptyValue"] {
            schema.remove(key);
        }
        if param.get("required").and_then(Value::as_bool) == Some(true) {
            required.push(Value::String(name.to_owned()));
        }
        properties.insert(name.to_owned(), Value::Object(schema));
    }
    let any_required = !required.is_empty();
    let schema = serde_json::json!({
        "type": "object",
        "properties": properties,
        "required": required,
    });
    if consumes.is_empty() {
        consumes.push("application/x-www-form-urlencoded".to_owned());
    }
    (
        consumes.into_iter().map(|m| (m, schema.clone())).collect(),
        any_required,
    )
}

fn pick_json(content: &Value) -> Option<&Value> {
    let content = content.as_object()?;
    content
        .iter()
        .find(|(media, _)| media.to_ascii_lowercase().contains("json"))
        .or_else(|| content.iter().next())
        .and_then(|(_, m)| m.get("schema"))
}

/// Follows `$ref` chains (inside the document) of a non-schema object.
fn resolve<'a>(root: &'a Value, mut value: &'a Value) -> &'a Value {
    for _ in 0..16 {
        match value.get("$ref").and_then(Value::as_str) {
            Some(reference) => match lookup(root, reference) {
                Some(target) => value = target,
                None => return value,
            },
            None => return value,
        }
    }
    value
}

fn lookup<'a>(root: &'a Value, reference: &str) -> Option<&'a Value> {
    let pointer = reference.strip_prefix('#')?;
    if pointer.contains('%') {
        let decoded = percent_decode(pointer);
        return root.pointer(&decoded);
    }
    root.pointer(pointer)
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("");
            if let Ok(byte) = u8::from_str_radix(hex, 16) {
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

// ---------------------------------------------------------------------------
// Checking

#[derive(Default)]
struct RegexCache(Mutex<HashMap<String, Option<Regex>>>);

impl RegexCache {
    /// `Some(matches)`, or `None` when the pattern cannot be compiled.
    fn is_match(&self, pattern: &str, text: &str) -> Option<bool> {
        let Ok(mut cache) = self.0.lock() else {
            return None;
        };
        let compiled = cache
            .entry(pattern.to_owned())
            .or_insert_with(|| Regex::new(pattern.trim_end_matches(['\n', '\r'])).ok());
        compiled.as_ref().map(|re| re.is_match(text))
    }
}

const MAX_DEPTH: u32 = 96;

struct Ctx<'a> {
    root: &'a Value,
    dialect: Dialect,
    direction: Direction,
    coerce: bool,
    regexes: &'a RegexCache,
}

fn child(pointer: &str, key: &str) -> String {
    format!("{pointer}/{}", key.replace('~', "~0").replace('/', "~1"))
}

fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn is_integer(value: &Value) -> bool {
    match value {
        Value::Number(n) => {
            n.is_i64() || n.is_u64() || n.as_f64().is_some_and(|f| f.fract() == 0.0)
        }
        _ => false,
    }
}

fn type_matches(ty: &str, value: &Value) -> bool {
    match ty {
        "null" => value.is_null(),
        "boolean" => value.is_boolean(),
        "integer" => is_integer(value),
        "number" => value.is_number(),
        "string" => value.is_string(),
        "array" => value.is_array(),
        "object" => value.is_object(),
        // "file" (Swagger 2) and unknown types: not checked.
        _ => true,
    }
}

/// A form value parsed as the schema's scalar type, when it parses.
fn coerce_scalar(types: &[&str], text: &str) -> Option<Value> {
    if types.contains(&"string") {
        return None;
    }
    let text = text.trim();
    if types.contains(&"object") || types.contains(&"array") {
        // A JSON document in a form field.
        if let Ok(parsed @ (Value::Object(_) | Value::Array(_))) =
            serde_json::from_str::<Value>(text)
        {
            return Some(parsed);
        }
    }
    if types.contains(&"integer") {
        if let Ok(i) = text.parse::<i64>() {
            return Some(Value::from(i));
        }
    }
    if types.contains(&"number") {
        if let Some(n) = text
            .parse::<f64>()
            .ok()
            .filter(|f| f.is_finite())
            .and_then(serde_json::Number::from_f64)
        {
            return Some(Value::Number(n));
        }
    }
    if types.contains(&"boolean") {
        match text {
            "true" | "1" => return Some(Value::Bool(true)),
            "false" | "0" => return Some(Value::Bool(false)),
            _ => {}
        }
    }
    None
}

fn numbers_equal(a: &Value, b: &Value) -> bool {
    match (a.as_f64(), b.as_f64()) {
        (Some(x), Some(y)) => x == y,
        _ => false,
    }
}

impl Ctx<'_> {
    fn check(
        &self,
        schema: &Value,
        value: &Value,
        ptr: &str,
        depth: u32,
        out: &mut Vec<Violation>,
    ) {
        if depth > MAX_DEPTH {
            return;
        }
        let obj = match schema {
            Value::Object(obj) => obj,
            Value::Bool(false) => {
                out.push(Violation::new(
                    ptr,
                    ViolationKind::NoMatch,
                    "no value is allowed here",
                ));
                return;
            }
            _ => return,
        };

        let nullable = obj.get("nullable").and_then(Value::as_bool) == Some(true);
        if value.is_null() && nullable {
            return;
        }
        if let Some(reference) = obj.get("$ref").and_then(Value::as_str) {
            if let Some(target) = lookup(self.root, reference) {
                self.check(target, value, ptr, depth + 1, out);
            }
            // OpenAPI 3.0 ignores siblings of $ref (they are descriptions in
            // practice); 3.1 and JSON Schema apply them.
            if self.dialect != Dialect::OpenApi31 {
                return;
            }
        }

        let types: Vec<&str> = match obj.get("type") {
            Some(Value::String(t)) => vec![t.as_str()],
            Some(Value::Array(ts)) => ts.iter().filter_map(Value::as_str).collect(),
            _ => Vec::new(),
        };

        // Forms carry strings: read them as the type the schema asks for.
        let original = value;
        let coerced;
        let value = match value {
            Value::String(text) if self.coerce && !types.is_empty() => {
                match coerce_scalar(&types, text) {
                    Some(v) => {
                        coerced = v;
                        &coerced
                    }
                    None => value,
                }
            }
            _ => value,
        };

        if !types.is_empty() && !types.iter().any(|t| type_matches(t, value)) {
            let expected = types.join(" or ");
            out.push(Violation::new(
                ptr,
                ViolationKind::Type,
                format!("expected {expected}, found {}", type_name(value)),
            ));
            return;
        }

        if let Some(Value::Array(allowed)) = obj.get("enum") {
            if !allowed.iter().any(|a| self.same(a, value)) {
                let list: Vec<String> = allowed
                    .iter()
                    .take(12)
                    .map(|a| match a {
                        Value::String(s) => s.clone(),
                        other => other.to_string(),
                    })
                    .collect();
                let more = if allowed.len() > 12 { ", ..." } else { "" };
                out.push(Violation::new(
                    ptr,
                    ViolationKind::Enum,
                    format!("{} is not one of: {}{more}", short(value), list.join(", ")),
                ));
            }
        }
        if let Some(constant) = obj.get("const") {
            if !self.same(constant, value) {
                out.push(Violation::new(
                    ptr,
                    ViolationKind::Enum,
                    format!("must be {constant}"),
                ));
            }
        }

        match value {
            Value::String(text) => self.check_string(obj, text, ptr, out),
            Value::Number(_) => self.check_number(obj, value, original, ptr, out),
            Value::Object(map) => self.check_object(obj, map, ptr, depth, out),
            Value::Array(items) => self.check_array(obj, items, ptr, depth, out),
            _ => {}
        }

        if let Some(Value::Array(all)) = obj.get("allOf") {
            for sub in all {
                self.check(sub, value, ptr, depth + 1, out);
            }
        }
        for key in ["oneOf", "anyOf"] {
            if let Some(Value::Array(alternatives)) = obj.get(key) {
                self.check_alternatives(obj, alternatives, value, ptr, depth, out);
            }
        }
        if let Some(not) = obj.get("not") {
            let mut sub = Vec::new();
            self.check(not, value, ptr, depth + 1, &mut sub);
            if sub.is_empty() {
                out.push(Violation::new(
                    ptr,
                    ViolationKind::NoMatch,
                    "matches a schema it must not match",
                ));
            }
        }
    }

    /// Equality for `enum`/`const`: numbers compare numerically; in forms a
    /// string equals a number or boolean written the same way.
    fn same(&self, allowed: &Value, value: &Value) -> bool {
        if allowed == value || numbers_equal(allowed, value) {
            return true;
        }
        if self.coerce {
            if let Value::String(text) = value {
                return match allowed {
                    Value::Number(_) | Value::Bool(_) => {
                        text.as_str() == allowed.to_string().as_str()
                    }
                    _ => false,
                };
            }
        }
        false
    }

    fn check_string(
        &self,
        obj: &Map<String, Value>,
        text: &str,
        ptr: &str,
        out: &mut Vec<Violation>,
    ) {
        let len = text.chars().count() as u64;
        if let Some(min) = obj.get("minLength").and_then(Value::as_u64) {
            if len < min {
                out.push(Violation::new(
                    ptr,
                    ViolationKind::Length,
                    format!("length {len} is shorter than the minimum {min}"),
                ));
            }
        }
        if let Some(max) = obj.get("maxLength").and_then(Value::as_u64) {
            if len > max {
                out.push(Violation::new(
                    ptr,
                    ViolationKind::Length,
                    format!("length {len} is longer than the maximum {max}"),
                ));
            }
        }
        if let Some(pattern) = obj.get("pattern").and_then(Value::as_str) {
            if self.regexes.is_match(pattern, text) == Some(false) {
                out.push(Violation::new(
                    ptr,
                    ViolationKind::Pattern,
                    format!("does not match the pattern {}", pattern.trim()),
                ));
            }
        }
        if let Some(format) = obj.get("format").and_then(Value::as_str) {
            if !format_ok(format, text) {
                out.push(Violation::new(
                    ptr,
                    ViolationKind::Format,
                    format!("is not a valid {format}"),
                ));
            }
        }
    }

    fn check_number(
        &self,
        obj: &Map<String, Value>,
        value: &Value,
        original: &Value,
        ptr: &str,
        out: &mut Vec<Violation>,
    ) {
        let Some(x) = value.as_f64() else {
            return;
        };
        // HiPay's documents often write lengths as minimum/maximum
        // ("screen_height": maximum 6): in forms, a bound is broken only
        // when the submitted text also breaks it read as a length.
        let form_len = match original {
            Value::String(text) if self.coerce => Some(text.trim().chars().count() as f64),
            _ => None,
        };
        let mut bound = |test: &dyn Fn(f64) -> bool, text: String| {
            if !test(x) && !form_len.is_some_and(test) {
                out.push(Violation::new(ptr, ViolationKind::Range, text));
            }
        };
        let excl_min_flag = obj.get("exclusiveMinimum").and_then(Value::as_bool) == Some(true);
        let excl_max_flag = obj.get("exclusiveMaximum").and_then(Value::as_bool) == Some(true);
        if let Some(min) = obj.get("minimum").and_then(Value::as_f64) {
            if excl_min_flag {
                bound(&|v| v > min, format!("must be greater than {min}"));
            } else {
                bound(&|v| v >= min, format!("must be at least {min}"));
            }
        }
        if let Some(max) = obj.get("maximum").and_then(Value::as_f64) {
            if excl_max_flag {
                bound(&|v| v < max, format!("must be less than {max}"));
            } else {
                bound(&|v| v <= max, format!("must be at most {max}"));
            }
        }
        if let Some(min) = obj.get("exclusiveMinimum").and_then(Value::as_f64) {
            bound(&|v| v > min, format!("must be greater than {min}"));
        }
        if let Some(max) = obj.get("exclusiveMaximum").and_then(Value::as_f64) {
            bound(&|v| v < max, format!("must be less than {max}"));
        }
        let bounds = match obj.get("format").and_then(Value::as_str) {
            Some("int32") => Some((f64::from(i32::MIN), f64::from(i32::MAX))),
            Some("int64") => Some((-9.223_372_036_854_776e18, 9.223_372_036_854_776e18)),
            _ => None,
        };
        if let Some((lo, hi)) = bounds {
            if x < lo || x > hi {
                out.push(Violation::new(
                    ptr,
                    ViolationKind::Format,
                    "is out of the integer range of its format",
                ));
            }
        }
    }

    fn is_skipped_property(&self, schema: Option<&Value>) -> (bool, bool) {
        // (readOnly, writeOnly), looking through one $ref.
        let Some(schema) = schema else {
            return (false, false);
        };
        let flag = |s: &Value, key: &str| s.get(key).and_then(Value::as_bool) == Some(true);
        let target = resolve(self.root, schema);
        (
            flag(schema, "readOnly") || flag(target, "readOnly"),
            flag(schema, "writeOnly") || flag(target, "writeOnly"),
        )
    }

    fn check_object(
        &self,
        obj: &Map<String, Value>,
        map: &Map<String, Value>,
        ptr: &str,
        depth: u32,
        out: &mut Vec<Violation>,
    ) {
        let properties = obj.get("properties").and_then(Value::as_object);
        if let Some(Value::Array(required)) = obj.get("required") {
            for name in required.iter().filter_map(Value::as_str) {
                if map.contains_key(name) {
                    continue;
                }
                let (read_only, write_only) =
                    self.is_skipped_property(properties.and_then(|p| p.get(name)));
                let skip = match self.direction {
                    Direction::Request => read_only,
                    Direction::Response => write_only,
                };
                if !skip {
                    out.push(Violation::new(
                        &child(ptr, name),
                        ViolationKind::Required,
                        format!("required field {name} is missing"),
                    ));
                }
            }
        }
        let pattern_props = obj.get("patternProperties").and_then(Value::as_object);
        let additional = obj.get("additionalProperties");
        for (key, item) in map {
            let item_ptr = child(ptr, key);
            if let Some(schema) = properties.and_then(|p| p.get(key)) {
                let (read_only, _) = self.is_skipped_property(Some(schema));
                if read_only && self.direction == Direction::Request {
                    continue;
                }
                self.check(schema, item, &item_ptr, depth + 1, out);
                continue;
            }
            let mut matched = false;
            if let Some(patterns) = pattern_props {
                for (pattern, schema) in patterns {
                    if self.regexes.is_match(pattern, key) == Some(true) {
                        matched = true;
                        self.check(schema, item, &item_ptr, depth + 1, out);
                    }
                }
            }
            if matched {
                continue;
            }
            match additional {
                Some(Value::Bool(false)) => out.push(Violation::new(
                    &item_ptr,
                    ViolationKind::UnknownField,
                    format!("unknown field {key}"),
                )),
                Some(schema @ Value::Object(_)) => {
                    self.check(schema, item, &item_ptr, depth + 1, out)
                }
                _ => {}
            }
        }
        let count = map.len() as u64;
        if let Some(min) = obj.get("minProperties").and_then(Value::as_u64) {
            if count < min {
                out.push(Violation::new(
                    ptr,
                    ViolationKind::Size,
                    format!("has {count} fields, fewer than {min}"),
                ));
            }
        }
        if let Some(max) = obj.get("maxProperties").and_then(Value::as_u64) {
            if count > max {
                out.push(Violation::new(
                    ptr,
                    ViolationKind::Size,
                    format!("has {count} fields, more than {max}"),
                ));
            }
        }
    }

    fn check_array(
        &self,
        obj: &Map<String, Value>,
        items: &[Value],
        ptr: &str,
        depth: u32,
        out: &mut Vec<Violation>,
    ) {
        if let Some(schema) = obj.get("items") {
            for (i, item) in items.iter().enumerate() {
                self.check(schema, item, &child(ptr, &i.to_string()), depth + 1, out);
            }
        }
        let count = items.len() as u64;
        if let Some(min) = obj.get("minItems").and_then(Value::as_u64) {
            if count < min {
                out.push(Violation::new(
                    ptr,
                    ViolationKind::Size,
                    format!("has {count} items, fewer than {min}"),
                ));
            }
        }
        if let Some(max) = obj.get("maxItems").and_then(Value::as_u64) {
            if count > max {
                out.push(Violation::new(
                    ptr,
                    ViolationKind::Size,
                    format!("has {count} items, more than {max}"),
                ));
            }
        }
        if obj.get("uniqueItems").and_then(Value::as_bool) == Some(true) {
            let duplicate = items
                .iter()
                .enumerate()
                .any(|(i, a)| items[..i].iter().any(|b| a == b));
            if duplicate {
                out.push(Violation::new(
                    ptr,
                    ViolationKind::Size,
                    "items are not unique",
                ));
            }
        }
    }

    fn check_alternatives(
        &self,
        obj: &Map<String, Value>,
        alternatives: &[Value],
        value: &Value,
        ptr: &str,
        depth: u32,
        out: &mut Vec<Violation>,
    ) {
        // A discriminator with a mapping picks the alternative.
        if let Some(disc) = obj.get("discriminator") {
            let property = disc.get("propertyName").and_then(Value::as_str);
            let tag = property.and_then(|p| value.get(p)).and_then(Value::as_str);
            if let Some(target) = tag
                .and_then(|t| disc.get("mapping").and_then(|m| m.get(t)))
                .and_then(Value::as_str)
            {
                let schema = serde_json::json!({ "$ref": target });
                self.check(&schema, value, ptr, depth + 1, out);
                return;
            }
        }
        let mut best: Option<(usize, Vec<Violation>)> = None;
        for alternative in alternatives {
            let mut sub = Vec::new();
            self.check(alternative, value, ptr, depth + 1, &mut sub);
            if sub.is_empty() {
                return;
            }
            // Closest: no complaint about a `type` tag, then fewest complaints.
            let type_ptr = child(ptr, "type");
            let tag_penalty = if sub.iter().any(|v| v.pointer == type_ptr) {
                1000
            } else {
                0
            };
            let score = tag_penalty + sub.len();
            if best.as_ref().is_none_or(|(s, _)| score < *s) {
                best = Some((score, sub));
            }
        }
        if let Some((_, sub)) = best {
            if alternatives.len() > 1 && sub.iter().all(|v| v.pointer == ptr) {
                out.push(Violation::new(
                    ptr,
                    ViolationKind::NoMatch,
                    format!("matches none of the {} allowed forms", alternatives.len()),
                ));
            } else {
                out.extend(sub);
            }
        }
    }
}

fn short(value: &Value) -> String {
    let text = value.to_string();
    if text.chars().count() > 60 {
        let cut: String = text.chars().take(57).collect();
        format!("{cut}...")
    } else {
        text
    }
}

fn all_digits(text: &str) -> bool {
    !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit())
}

fn date_ok(text: &str) -> bool {
    let parts: Vec<&str> = text.split('-').collect();
    match parts.as_slice() {
        [y, m, d] if y.len() == 4 && m.len() == 2 && d.len() == 2 => {
            all_digits(y)
                && all_digits(m)
                && all_digits(d)
                && matches!(m.parse::<u32>(), Ok(1..=12))
                && matches!(d.parse::<u32>(), Ok(1..=31))
        }
        _ => false,
    }
}

fn time_ok(text: &str) -> bool {
    // hh:mm:ss[.frac](Z|±hh:mm)
    let (clock, zone) = if let Some(clock) = text.strip_suffix(['Z', 'z']) {
        (clock, None)
    } else if let Some(pos) = text.rfind(['+', '-']) {
        (&text[..pos], Some(&text[pos + 1..]))
    } else {
        return false;
    };
    if let Some(zone) = zone {
        let ok = zone.len() == 5
            && zone.as_bytes()[2] == b':'
            && all_digits(&zone[..2])
            && all_digits(&zone[3..]);
        if !ok {
            return false;
        }
    }
    let (hms, frac) = match clock.split_once('.') {
        Some((hms, frac)) => (hms, Some(frac)),
        None => (clock, None),
    };
    if frac.is_some_and(|f| !all_digits(f)) {
        return false;
    }
    let fields: Vec<&str> = hms.split(':').collect();
    fields.len() == 3 && fields.iter().all(|f| f.len() == 2 && all_digits(f))
}

fn format_ok(format: &str, text: &str) -> bool {
    match format {
        "date" => date_ok(text),
        "date-time" => match text.find(['T', 't', ' ']) {
            Some(pos) => date_ok(&text[..pos]) && time_ok(&text[pos + 1..]),
            None => false,
        },
        "uri" => url::Url::parse(text).is_ok(),
        "uuid" => {
            let groups: Vec<&str> = text.split('-').collect();
            groups.len() == 5
                && groups
                    .iter()
                    .zip([8, 4, 4, 4, 12])
                    .all(|(g, n)| g.len() == n && g.bytes().all(|b| b.is_ascii_hexdigit()))
        }
        "email" => match text.split_once('@') {
            Some((local, domain)) => {
                !local.is_empty() && !domain.is_empty() && !domain.contains('@')
            }
            None => false,
        },
        _ => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn spec() -> ApiSpec {
        ApiSpec::from_values(vec![json!({
            "openapi": "3.0.3",
            "paths": {
                "/things/{id}/parts": {"post": {
                    "requestBody": {"required": true, "content": {"application/json": {
                        "schema": {"$ref": "#/components/schemas/Part"}}}},
                    "responses": {"201": {"content": {"application/json": {
                        "schema": {"$ref": "#/components/schemas/Part"}}}}}
                }}
            },
            "components": {"schemas": {"Part": {
                "type": "object",
                "additionalProperties": false,
                "required": ["id", "name", "count"],
                "properties": {
                    "id": {"type": "string", "readOnly": true},
                    "name": {"type": "string", "maxLength": 5, "pattern": "^[a-z]+$"},
                    "count": {"type": "integer", "minimum": 1},
                    "kind": {"type": "string", "enum": ["a", "b"], "nullable": true},
                    "when": {"type": "string", "format": "date-time"}
                }
            }}}
        })])
        .unwrap()
    }

    #[test]
    fn request_checks() {
        let spec = spec();
        assert!(spec
            .validate_request(
                "POST",
                "/things/{id}/parts",
                &json!({"name": "ab", "count": 2})
            )
            .is_ok());
        assert!(spec
            .validate_request(
                "post",
                "/things/x1/parts",
                &json!({"name": "ab", "count": 2, "kind": null})
            )
            .is_ok());
        let errors = spec
            .validate_request(
                "POST",
                "/things/x/parts",
                &json!({"name": "ABCDEFG", "count": 0, "kind": "c", "x": 1, "when": "2024-13-01T00:00:00Z"}),
            )
            .unwrap_err();
        let kinds: Vec<(String, ViolationKind)> =
            errors.iter().map(|v| (v.pointer.clone(), v.kind)).collect();
        assert!(kinds.contains(&("/name".into(), ViolationKind::Length)));
        assert!(kinds.contains(&("/name".into(), ViolationKind::Pattern)));
        assert!(kinds.contains(&("/count".into(), ViolationKind::Range)));
        assert!(kinds.contains(&("/kind".into(), ViolationKind::Enum)));
        assert!(kinds.contains(&("/x".into(), ViolationKind::UnknownField)));
        assert!(kinds.contains(&("/when".into(), ViolationKind::Format)));
        let missing = spec
            .validate_request("POST", "/things/x/parts", &json!({"count": "2"}))
            .unwrap_err();
        assert!(missing.contains(&Violation::new(
            "/name",
            ViolationKind::Required,
            "required field name is missing"
        )));
        assert!(missing
            .iter()
            .any(|v| v.pointer == "/count" && v.kind == ViolationKind::Type));
        // Response: readOnly id is required there.
        assert!(spec
            .validate_response(
                "POST",
                "/things/{id}/parts",
                201,
                &json!({"name": "ab", "count": 2})
            )
            .is_err());
        assert!(spec
            .validate_request("GET", "/nothing", &Value::Null)
            .is_err_and(|v| v[0].kind == ViolationKind::UnknownOperation));
    }

    #[test]
    fn forms_coerce() {
        let spec = spec();
        let form = form_value(&[("name", "ab"), ("count", "3")]);
        assert!(spec.validate_form("POST", "/things/1/parts", &form).is_ok());
        let form = form_value(&[("name", "ab"), ("count", "three")]);
        assert!(spec
            .validate_form("POST", "/things/1/parts", &form)
            .is_err());
    }

    #[test]
    fn formats_and_paths() {
        assert!(format_ok("date-time", "2024-01-31T10:20:30.123+01:00"));
        assert!(format_ok("date-time", "2024-01-31T10:20:30Z"));
        assert!(!format_ok("date-time", "2024-01-31"));
        assert!(format_ok("date", "2024-01-31"));
        assert!(format_ok("uuid", "123e4567-e89b-12d3-a456-426614174000"));
        let v = Violation::new("/lineItems/0/id", ViolationKind::Type, "x");
        assert_eq!(v.dotted(), "lineItems[0].id");
        assert_eq!(v.field_name(), "id");
        assert_eq!(percent_decode("/a%7Bb%7D"), "/a{b}");
    }
}
