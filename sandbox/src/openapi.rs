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
//! # How values are checked
//! The schemas are checked by the [`jsonschema`] crate (JSON Schema 2020-12,
//! which OpenAPI 3.1 uses). This module keeps only what no JSON Schema
//! library does: finding the documents, parsing YAML, finding the operation
//! (method and path template, or a concrete path), picking the body or
//! response schema, reading forms, and turning the library's errors into
//! [`Violation`]s.
//!
//! OpenAPI 3.0 and Swagger 2.0 schemas are not JSON Schema 2020-12, so each
//! document is rewritten once per direction (request, form, answer) before
//! the library sees it; the rewritten document is registered as one
//! resource, and each operation's schema is compiled on first use into a
//! validator cached with the document. The rewriting:
//! - `$ref`: kept (inside the document; one that does not resolve is
//!   dropped, as before). In 3.0 and Swagger 2 the siblings of a `$ref` are
//!   ignored, as those versions say; 3.1 applies them.
//! - `nullable: true` (3.0; honoured in 3.1 documents too, since Adyen's
//!   uses it): `null` is added to `type` (and to `enum`), or, for a schema
//!   built from `$ref`/`allOf`/`anyOf`/`not`/`const`, the schema becomes
//!   `if: {type: null}, else: <schema>`.
//! - Boolean `exclusiveMinimum`/`exclusiveMaximum` (3.0, Swagger 2) become
//!   the numeric form (`minimum: 5, exclusiveMinimum: true` →
//!   `exclusiveMinimum: 5`); `false` is dropped.
//! - Swagger 2 `type: file` and unknown types are dropped; `definitions`
//!   refs resolve like any pointer; `in: formData` parameters are gathered
//!   into an object schema.
//! - `discriminator` is dropped: it only names which alternative applies,
//!   and the alternatives are checked anyway (none of the documents puts one
//!   beside a `oneOf`/`anyOf`).
//! - `readOnly`/`writeOnly`: in requests and forms, a property that is
//!   `readOnly` (on the property or on the schema its `$ref` names) is
//!   neither required nor checked (providers ignore such fields); in answers
//!   a `writeOnly` one is not required.
//! - Annotations (`description`, `example`, `x-*`, ...) are dropped and
//!   malformed keyword values (a length that is not an integer, a `required`
//!   that is not a list) are left out rather than failing the compilation.
//! - Forms: numbers and booleans in `enum`/`const` also accept their text
//!   (`enum: [0, 1]` on a string field accepts `"1"`).
//!
//! Formats are asserted with the library's checks (`date`, `date-time`,
//! `email`, `uri`, `uuid`, ...; names it does not know, such as PayPal's
//! `ppaas_*` or Adyen's `byte`, are not checked), and `int32`/`int64` bound
//! numbers through a keyword of ours (`x-passerelle-integer-format`) so that
//! they still report [`ViolationKind::Format`]. The library's checks are
//! stricter than the hand-written ones were, as the standards say: a
//! `date-time` needs its `T` (`2024-01-31 10:00:00Z` is refused), a date
//! must exist (`2024-02-30` is refused), a `uri` may not hold a raw space.
//! Patterns use the `regex` crate engine, as before (linear time).
//!
//! Deliberate leniencies, kept from the hand-written validator:
//! - `oneOf` is rewritten to `anyOf`: it passes when at least one
//!   alternative matches, because several of Adyen's payment-method schemas
//!   overlap (strict `oneOf` refuses a value two alternatives accept). The
//!   rewriting keeps the library's own `anyOf` (which also dispatches on a
//!   tag such as Adyen's `type` instead of trying every alternative); the
//!   reporting is ours. When none matches,
//!   the violations of the closest alternative are reported: the one with no
//!   complaint about its `type` tag, then the fewest complaints.
//! - A `pattern` (or `patternProperties` key) that the engine cannot
//!   compile is dropped, rather than failing the whole document; a trailing
//!   newline (YAML block scalars) is trimmed first.
//! - In forms, a `minimum`/`maximum` is broken only when the submitted text
//!   also breaks it read as a length: HiPay's documents often write lengths
//!   that way (`screen_height: maximum 6`).
//!
//!
//! Each error of the library becomes a [`Violation`] at the pointer of the
//! value (a missing field at the pointer it would have, each unknown field
//! at its own), with our kind and English message. As the hand-written
//! validator did, a value of the wrong type gets that complaint only (not
//! also its `enum`, `pattern`, ...), and missing fields come first.
//!
//! Query and path parameters and headers are not checked.
//!
//! # Cost
//! Measured with `examples/openapi_bench.rs` (release, medians of 6 runs on
//! 2 busy shared cores), hand-written validator → this one:
//! - a valid Adyen `/payments` body: 63 µs → 1 µs; a PayPal order: 17 µs
//!   → 0.5 µs; a HiPay order form: 15 µs → 8 µs (the coercion walk is ours);
//! - an Adyen `/payments` body with 3 faults, one inside the payment-method
//!   `oneOf`: 0.30 ms → 0.40 ms (the library builds the errors of all 58
//!   alternatives, then we pick the closest);
//! - the first check of an operation compiles its validator, and the first
//!   of a document in a direction rewrites the document: 13 ms for Adyen's
//!   `/payments`, 12 ms for PayPal's orders, 1 ms for HiPay (was 0.1-0.3
//!   ms); parsing a document is unchanged (5-10 ms);
//! - memory of the bench (three providers): 15 MB → 32 MB peak;
//! - build: 34 more crates; a clean debug build of this crate took about
//!   47% more CPU time (332 s → 487 s user).

use std::{
    collections::HashMap,
    fmt, fs, io,
    path::{Path, PathBuf},
    sync::{Arc, Mutex, OnceLock},
};

use jsonschema::{error::ValidationErrorKind, Draft, Keyword, PatternCache, PatternOptions};
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

/// What is checked: each has its own rewriting of the documents.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    /// A JSON request: `readOnly` properties are ignored.
    Request = 0,
    /// A form-encoded request: as `Request`, values are text.
    Form = 1,
    /// An answer: `writeOnly` properties are not required.
    Response = 2,
}

/// One parsed document.
struct Doc {
    root: Value,
    dialect: Dialect,
    /// The document rewritten as JSON Schema 2020-12, per [`Mode`], built
    /// on first use; `None` when the library refused it.
    prepared: [OnceLock<Option<Prepared>>; 3],
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
                Ok(Arc::new(Doc::new(root, dialect)))
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
            inner: Arc::new(Inner { docs, operations }),
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
                op.responses.get(*key).map(|r| (*key, r)).or_else(|| {
                    op.responses
                        .as_object()
                        .and_then(|m| m.iter().find(|(k, _)| k.eq_ignore_ascii_case(key)))
                        .map(|(k, v)| (k.as_str(), v))
                })
            });
        let Some((status_key, response)) = response else {
            return Ok(());
        };
        let response = resolve(&doc.root, response);
        let schema = match doc.dialect {
            Dialect::Swagger2 => response.get("schema"),
            _ => response.get("content").and_then(|c| pick_json(c)),
        };
        match schema {
            Some(schema) => {
                let key = format!("{} {} -> {status_key}", op.method, op.template);
                self.run(op.doc, Mode::Response, &key, schema, body)
            }
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
                return self.run(
                    index,
                    Mode::Request,
                    &format!("schema {name}"),
                    schema,
                    value,
                );
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
            .or_else(|| op.bodies.first());
        match schema {
            Some((media, schema)) => {
                let mode = if form { Mode::Form } else { Mode::Request };
                let key = format!("{} {} {media}", op.method, op.template);
                self.run(op.doc, mode, &key, schema, body)
            }
            None => Ok(()),
        }
    }

    /// Checks `value` against `schema` (a schema of document `doc`),
    /// whose validator is cached under `key`.
    fn run(
        &self,
        doc: usize,
        mode: Mode,
        key: &str,
        schema: &Value,
        value: &Value,
    ) -> Result<(), Vec<Violation>> {
        let doc = &self.inner.docs[doc];
        let Some(prepared) = doc.prepared(mode) else {
            return Ok(());
        };
        let compiled = prepared.compiled(doc, mode, key, schema);
        let Some(validator) = &compiled.validator else {
            return Ok(());
        };
        let coerced;
        let instance = if mode == Mode::Form {
            coerced = prepared.coerce(&compiled.schema, value, 0);
            &coerced
        } else {
            value
        };
        if validator.is_valid(instance) {
            return Ok(());
        }
        let report = Report {
            form: (mode == Mode::Form).then_some(value),
        };
        let mut out = Vec::new();
        for err in validator.iter_errors(instance) {
            report.convert(&err, &mut out);
        }
        tidy(&mut out);
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
    let doc = Arc::new(Doc::new(root, dialect));
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
// Rewriting the documents as JSON Schema 2020-12

/// The URI the rewritten document is registered under; every `#...` `$ref`
/// is made absolute against it.
const DOC_URI: &str = "urn:passerelle:openapi-document";
/// The base URI of the small root schema each validator is compiled from.
const ROOT_URI: &str = "urn:passerelle:openapi-operation";
/// Our keyword bounding `int32`/`int64` numbers (the library checks formats
/// on strings only).
const INTEGER_FORMAT: &str = "x-passerelle-integer-format";
/// How deep `$ref` chains and nested schemas are followed by our own walks.
const MAX_DEPTH: u32 = 96;

/// Keywords whose value is a schema.
const SCHEMA_KEYWORDS: [&str; 9] = [
    "additionalProperties",
    "not",
    "if",
    "then",
    "else",
    "contains",
    "propertyNames",
    "unevaluatedProperties",
    "unevaluatedItems",
];
/// Keywords whose value is a map of schemas.
const SCHEMA_MAP_KEYWORDS: [&str; 4] = ["properties", "$defs", "definitions", "dependentSchemas"];
/// Keywords whose value is a non-negative integer.
const COUNT_KEYWORDS: [&str; 8] = [
    "minLength",
    "maxLength",
    "minItems",
    "maxItems",
    "minProperties",
    "maxProperties",
    "minContains",
    "maxContains",
];

struct Rewriter<'a> {
    /// The original document, for `readOnly`/`writeOnly` behind a `$ref`.
    root: &'a Value,
    dialect: Dialect,
    mode: Mode,
}

impl Rewriter<'_> {
    /// The whole document, with every schema in it rewritten: the values of
    /// `components/schemas`, `definitions` and of every `schema` member.
    fn document(&self) -> Value {
        self.walk(self.root, 0)
    }

    fn walk(&self, value: &Value, depth: u32) -> Value {
        match value {
            Value::Object(map) => Value::Object(
                map.iter()
                    .map(|(key, item)| {
                        let rewritten = match key.as_str() {
                            "schema" => self.schema(item),
                            "schemas" | "definitions" if depth <= 1 => match item {
                                Value::Object(schemas) => Value::Object(
                                    schemas
                                        .iter()
                                        .map(|(name, s)| (name.clone(), self.schema(s)))
                                        .collect(),
                                ),
                                other => other.clone(),
                            },
                            _ => self.walk(item, depth + 1),
                        };
                        (key.clone(), rewritten)
                    })
                    .collect(),
            ),
            Value::Array(items) => {
                Value::Array(items.iter().map(|i| self.walk(i, depth + 1)).collect())
            }
            other => other.clone(),
        }
    }

    /// One schema as JSON Schema 2020-12 (see the module docs).
    fn schema(&self, schema: &Value) -> Value {
        let obj = match schema {
            Value::Object(obj) => obj,
            Value::Bool(_) => return schema.clone(),
            // Not a schema: constrains nothing (the old validator ignored it too).
            _ => return Value::Bool(true),
        };
        let nullable = obj.get("nullable").and_then(Value::as_bool) == Some(true);
        let reference = obj
            .get("$ref")
            .and_then(Value::as_str)
            .filter(|r| lookup(self.root, r).is_some());
        if self.dialect != Dialect::OpenApi31 && obj.contains_key("$ref") {
            // 3.0 and Swagger 2: the siblings of `$ref` are ignored.
            let mut out = Map::new();
            if let Some(reference) = reference {
                out.insert("$ref".into(), absolute(reference));
            }
            return self.nullable(out, nullable);
        }

        let mut out = Map::new();
        for (key, value) in obj {
            let key = key.as_str();
            match (key, value) {
                // The tuple form of older drafts: `items: [a, b]`, `additionalItems`.
                ("items", Value::Array(list)) => {
                    let list = list.iter().map(|s| self.schema(s)).collect();
                    out.insert("prefixItems".into(), Value::Array(list));
                }
                ("additionalItems", _) => {
                    if obj.get("items").is_some_and(Value::is_array) {
                        out.insert("items".into(), self.schema(value));
                    }
                }
                _ => {
                    if let Some(kept) = self.keyword(key, value) {
                        out.insert(key.to_owned(), kept);
                    }
                }
            }
        }
        if let Some(reference) = reference {
            out.insert("$ref".into(), absolute(reference));
        }
        // `oneOf` → `anyOf` (see the module docs), beside an existing `anyOf`.
        if let Some(one_of) = out.remove("oneOf") {
            if let Some(any_of) = out.remove("anyOf") {
                out.insert(
                    "allOf".into(),
                    Value::Array(
                        out.get("allOf")
                            .and_then(Value::as_array)
                            .cloned()
                            .unwrap_or_default()
                            .into_iter()
                            .chain([json_object("anyOf", any_of), json_object("anyOf", one_of)])
                            .collect(),
                    ),
                );
            } else {
                out.insert("anyOf".into(), one_of);
            }
        }
        // 3.0 / Swagger 2 boolean exclusive bounds → 2020-12 numbers.
        for (flag, bound) in [
            ("exclusiveMinimum", "minimum"),
            ("exclusiveMaximum", "maximum"),
        ] {
            match obj.get(flag) {
                Some(Value::Bool(true)) => {
                    if let Some(limit) = out.remove(bound) {
                        out.insert(flag.into(), limit);
                    }
                }
                Some(Value::Bool(false)) => {
                    out.remove(flag);
                }
                _ => {}
            }
        }
        if let Some(format @ ("int32" | "int64")) = obj.get("format").and_then(Value::as_str) {
            out.insert(INTEGER_FORMAT.into(), Value::String(format.into()));
        }
        self.read_write_only(obj, &mut out);
        if self.mode == Mode::Form {
            form_enums(&mut out);
        }
        self.nullable(out, nullable)
    }

    /// The 2020-12 value of one keyword, `None` to leave it out.
    fn keyword(&self, key: &str, value: &Value) -> Option<Value> {
        if SCHEMA_KEYWORDS.contains(&key) {
            return Some(self.schema(value));
        }
        if SCHEMA_MAP_KEYWORDS.contains(&key) {
            return Some(Value::Object(
                value
                    .as_object()?
                    .iter()
                    .map(|(name, s)| (name.clone(), self.schema(s)))
                    .collect(),
            ));
        }
        if COUNT_KEYWORDS.contains(&key) {
            return count(value);
        }
        match key {
            "allOf" | "anyOf" | "oneOf" | "prefixItems" => Some(Value::Array(
                value.as_array()?.iter().map(|s| self.schema(s)).collect(),
            )),
            "items" => Some(self.schema(value)),
            "patternProperties" => Some(Value::Object(
                value
                    .as_object()?
                    .iter()
                    .filter_map(|(pattern, s)| {
                        let pattern = usable_pattern(pattern)?;
                        Some((pattern, self.schema(s)))
                    })
                    .collect(),
            )),
            "type" => known_types(value),
            "required" => Some(Value::Array(
                value
                    .as_array()?
                    .iter()
                    .filter(|name| name.is_string())
                    .cloned()
                    .collect(),
            )),
            "enum" => value.is_array().then(|| value.clone()),
            "const" => Some(value.clone()),
            "pattern" => usable_pattern(value.as_str()?).map(Value::String),
            "format" => value.is_string().then(|| value.clone()),
            "minimum" | "maximum" | "exclusiveMinimum" | "exclusiveMaximum" => {
                value.is_number().then(|| value.clone())
            }
            "multipleOf" => value.as_f64().filter(|m| *m > 0.0).map(|_| value.clone()),
            "uniqueItems" => value.is_boolean().then(|| value.clone()),
            "dependentRequired" => value.is_object().then(|| value.clone()),
            // `$ref` is handled by the caller; everything else is an
            // annotation (description, example, readOnly, discriminator, x-*, ...).
            _ => None,
        }
    }

    /// Requests ignore `readOnly` properties; answers do not require
    /// `writeOnly` ones.
    fn read_write_only(&self, obj: &Map<String, Value>, out: &mut Map<String, Value>) {
        let Some(properties) = obj.get("properties").and_then(Value::as_object) else {
            return;
        };
        let flag = if self.mode == Mode::Response {
            "writeOnly"
        } else {
            "readOnly"
        };
        let skipped: Vec<&String> = properties
            .iter()
            .filter(|(_, s)| {
                let set = |s: &Value| s.get(flag).and_then(Value::as_bool) == Some(true);
                set(s) || set(resolve(self.root, s))
            })
            .map(|(name, _)| name)
            .collect();
        if skipped.is_empty() {
            return;
        }
        if let Some(Value::Array(required)) = out.get_mut("required") {
            required.retain(|name| !skipped.iter().any(|s| name.as_str() == Some(s.as_str())));
        }
        if self.mode != Mode::Response {
            if let Some(Value::Object(props)) = out.get_mut("properties") {
                for name in skipped {
                    props.insert(name.clone(), Value::Bool(true));
                }
            }
        }
    }

    /// `nullable: true`: `null` is allowed besides what the schema allows.
    fn nullable(&self, mut out: Map<String, Value>, nullable: bool) -> Value {
        if !nullable {
            return Value::Object(out);
        }
        let composed = ["$ref", "allOf", "anyOf", "not", "const", "if"]
            .iter()
            .any(|k| out.contains_key(*k));
        let types = out.get("type").cloned();
        match types {
            Some(types) if !composed => {
                let mut list = match types {
                    Value::Array(list) => list,
                    single => vec![single],
                };
                if !list.iter().any(|t| t == "null") {
                    list.push(Value::String("null".into()));
                }
                out.insert("type".into(), Value::Array(list));
                if let Some(Value::Array(allowed)) = out.get_mut("enum") {
                    if !allowed.contains(&Value::Null) {
                        allowed.push(Value::Null);
                    }
                }
                Value::Object(out)
            }
            _ => {
                let mut wrapper = Map::new();
                wrapper.insert("if".into(), json_object("type", "null".into()));
                wrapper.insert("else".into(), Value::Object(out));
                Value::Object(wrapper)
            }
        }
    }
}

fn json_object(key: &str, value: Value) -> Value {
    let mut map = Map::new();
    map.insert(key.to_owned(), value);
    Value::Object(map)
}

fn absolute(reference: &str) -> Value {
    Value::String(format!("{DOC_URI}{reference}"))
}

/// A count keyword's value as a non-negative integer (YAML may give `2.0`).
fn count(value: &Value) -> Option<Value> {
    if let Some(n) = value.as_u64() {
        return Some(Value::from(n));
    }
    value
        .as_f64()
        .filter(|f| *f >= 0.0 && f.fract() == 0.0 && *f < 9.0e15)
        .map(|f| Value::from(f as u64))
}

/// The JSON Schema types among `type` (a name or a list); `None` when none
/// is left (Swagger 2 `file`, typos): the value is then not type-checked.
fn known_types(value: &Value) -> Option<Value> {
    const KNOWN: [&str; 7] = [
        "null", "boolean", "integer", "number", "string", "array", "object",
    ];
    match value {
        Value::String(t) if KNOWN.contains(&t.as_str()) => Some(value.clone()),
        Value::Array(list) => {
            let kept: Vec<Value> = list
                .iter()
                .filter(|t| t.as_str().is_some_and(|t| KNOWN.contains(&t)))
                .cloned()
                .collect();
            (!kept.is_empty()).then_some(Value::Array(kept))
        }
        _ => None,
    }
}

/// Forms carry text: a number or boolean of `enum`/`const` also accepts the
/// same thing written as a string.
fn form_enums(out: &mut Map<String, Value>) {
    let as_text = |v: &Value| match v {
        Value::Number(_) | Value::Bool(_) => Some(Value::String(v.to_string())),
        _ => None,
    };
    if let Some(Value::Array(allowed)) = out.get_mut("enum") {
        let extra: Vec<Value> = allowed
            .iter()
            .filter_map(as_text)
            .filter(|t| !allowed.contains(t))
            .collect();
        allowed.extend(extra);
    }
    if let Some(text) = out.get("const").and_then(as_text) {
        if let Some(constant) = out.remove("const") {
            out.insert("enum".into(), Value::Array(vec![constant, text]));
        }
    }
}

/// The options every validator is compiled with.
fn options<'r>(registry: &'r jsonschema::Registry<'r>) -> jsonschema::ValidationOptions<'r> {
    jsonschema::options()
        .with_draft(Draft::Draft202012)
        .should_validate_formats(true)
        .should_ignore_unknown_formats(true)
        .with_pattern_options(PatternOptions::regex())
        .with_pattern_cache(patterns())
        .with_keyword(INTEGER_FORMAT, integer_format)
        .with_registry(registry)
}

/// The regular expressions compiled so far, shared by every build.
fn patterns() -> PatternCache {
    static PATTERNS: OnceLock<PatternCache> = OnceLock::new();
    PATTERNS.get_or_init(PatternCache::new).clone()
}

/// `pattern` trimmed of a trailing newline, or `None` when the regex
/// engine cannot compile it (the pattern is then not checked).
fn usable_pattern(pattern: &str) -> Option<String> {
    static CHECKED: OnceLock<Mutex<HashMap<String, bool>>> = OnceLock::new();
    let pattern = pattern.trim_end_matches(['\n', '\r']);
    let checked = CHECKED.get_or_init(Mutex::default);
    if let Some(ok) = checked.lock().ok().and_then(|c| c.get(pattern).copied()) {
        return ok.then(|| pattern.to_owned());
    }
    let ok = jsonschema::options()
        .with_draft(Draft::Draft202012)
        .with_pattern_options(PatternOptions::regex())
        .with_pattern_cache(patterns())
        .build(&json_object("pattern", Value::String(pattern.to_owned())))
        .is_ok();
    if !ok {
        tracing::debug!(pattern, "openapi: pattern not compilable, not checked");
    }
    if let Ok(mut checked) = checked.lock() {
        checked.insert(pattern.to_owned(), ok);
    }
    ok.then(|| pattern.to_owned())
}

/// The `x-passerelle-integer-format` keyword: a number within the range of
/// `int32` or `int64`.
struct IntegerFormat {
    low: f64,
    high: f64,
}

impl<'i> Keyword<'i> for IntegerFormat {
    fn validate(&self, instance: &'i Value) -> Result<(), jsonschema::ValidationError<'i>> {
        if Keyword::is_valid(self, instance) {
            Ok(())
        } else {
            Err(jsonschema::ValidationError::custom(
                "is out of the integer range of its format",
            ))
        }
    }

    fn is_valid(&self, instance: &'i Value) -> bool {
        instance
            .as_f64()
            .is_none_or(|x| (self.low..=self.high).contains(&x))
    }
}

type KeywordResult<'a> = Result<Box<dyn for<'i> Keyword<'i>>, jsonschema::ValidationError<'a>>;

fn integer_format<'a>(
    _parent: &'a Map<String, Value>,
    value: &'a Value,
    _path: jsonschema::paths::Location,
) -> KeywordResult<'a> {
    let (low, high) = match value.as_str() {
        Some("int32") => (f64::from(i32::MIN), f64::from(i32::MAX)),
        _ => (-9.223_372_036_854_776e18, 9.223_372_036_854_776e18),
    };
    Ok(Box::new(IntegerFormat { low, high }))
}

// ---------------------------------------------------------------------------
// Compiled validators

/// A document rewritten for one [`Mode`], registered for the library, with
/// the validators compiled from it so far.
struct Prepared {
    document: Arc<Value>,
    registry: jsonschema::Registry<'static>,
    validators: Mutex<HashMap<String, Arc<Compiled>>>,
}

/// One operation's (or named) schema, rewritten and compiled.
struct Compiled {
    /// The rewritten root schema (form coercion walks it).
    schema: Value,
    /// `None` when the library refused the schema (logged once): not checked.
    validator: Option<jsonschema::Validator>,
}

/// Why a rewritten document could not be registered.
#[derive(Debug, thiserror::Error)]
#[error("registering the rewritten OpenAPI document: {0}")]
struct PrepareError(#[from] jsonschema::ReferencingError);

impl Doc {
    fn new(root: Value, dialect: Dialect) -> Doc {
        Doc {
            root,
            dialect,
            prepared: Default::default(),
        }
    }

    /// The document rewritten for `mode`, built on first use.
    fn prepared(&self, mode: Mode) -> Option<&Prepared> {
        self.prepared[mode as usize]
            .get_or_init(|| {
                let rewriter = Rewriter {
                    root: &self.root,
                    dialect: self.dialect,
                    mode,
                };
                let document = Arc::new(rewriter.document());
                let registry = jsonschema::Registry::new()
                    .draft(Draft::Draft202012)
                    .add(DOC_URI, document.clone())
                    .and_then(|builder| builder.prepare())
                    .map_err(PrepareError::from);
                match registry {
                    Ok(registry) => Some(Prepared {
                        document,
                        registry,
                        validators: Mutex::default(),
                    }),
                    Err(err) => {
                        tracing::warn!(%err, "openapi: document not usable, validation off");
                        None
                    }
                }
            })
            .as_ref()
    }
}

impl Prepared {
    /// The validator of `schema` (a schema of the original document),
    /// compiled on first use under `key`.
    fn compiled(&self, doc: &Doc, mode: Mode, key: &str, schema: &Value) -> Arc<Compiled> {
        if let Some(found) = self
            .validators
            .lock()
            .ok()
            .and_then(|v| v.get(key).cloned())
        {
            return found;
        }
        let rewriter = Rewriter {
            root: &doc.root,
            dialect: doc.dialect,
            mode,
        };
        let schema = rewriter.schema(schema);
        let validator = match options(&self.registry)
            .with_base_uri(ROOT_URI)
            .build(&schema)
        {
            Ok(validator) => Some(validator),
            Err(err) => {
                tracing::warn!(
                    operation = key,
                    %err,
                    "openapi: the schema does not compile, not checked"
                );
                None
            }
        };
        let compiled = Arc::new(Compiled { schema, validator });
        if let Ok(mut validators) = self.validators.lock() {
            validators.insert(key.to_owned(), compiled.clone());
        }
        compiled
    }

    /// The schema a rewritten `$ref` names.
    fn target(&self, reference: &str) -> Option<&Value> {
        lookup(&self.document, reference.strip_prefix(DOC_URI)?)
    }

    /// The schemas that apply to a value together with `schema` (through
    /// `$ref`, `allOf`, `anyOf` and the `else` of a nullable wrapper), for
    /// form coercion.
    fn applicable<'s>(
        &'s self,
        schema: &'s Value,
        out: &mut Vec<&'s Map<String, Value>>,
        depth: u32,
    ) {
        let Some(obj) = schema.as_object() else {
            return;
        };
        if depth > MAX_DEPTH {
            return;
        }
        out.push(obj);
        if let Some(target) = obj
            .get("$ref")
            .and_then(Value::as_str)
            .and_then(|r| self.target(r))
        {
            self.applicable(target, out, depth + 1);
        }
        for key in ["allOf", "anyOf"] {
            if let Some(Value::Array(items)) = obj.get(key) {
                for item in items {
                    self.applicable(item, out, depth + 1);
                }
            }
        }
        if let Some(other) = obj.get("else") {
            self.applicable(other, out, depth + 1);
        }
    }

    /// A form (strings) with each value read as the type its schema asks
    /// for, when it parses as that type.
    fn coerce(&self, schema: &Value, value: &Value, depth: u32) -> Value {
        let mut schemas = Vec::new();
        self.applicable(schema, &mut schemas, depth);
        match value {
            Value::String(text) => {
                let mut types: Vec<&str> = Vec::new();
                for s in &schemas {
                    match s.get("type") {
                        Some(Value::String(t)) => types.push(t),
                        Some(Value::Array(ts)) => types.extend(ts.iter().filter_map(Value::as_str)),
                        _ => {}
                    }
                }
                if types.is_empty() {
                    return value.clone();
                }
                coerce_scalar(&types, text).unwrap_or_else(|| value.clone())
            }
            Value::Object(map) => Value::Object(
                map.iter()
                    .map(|(key, item)| {
                        let sub = schemas
                            .iter()
                            .find_map(|s| s.get("properties").and_then(|p| p.get(key)))
                            .or_else(|| {
                                schemas
                                    .iter()
                                    .find_map(|s| s.get("additionalProperties"))
                                    .filter(|s| s.is_object())
                            });
                        let coerced = match sub {
                            Some(sub) => self.coerce(sub, item, depth + 1),
                            None => item.clone(),
                        };
                        (key.clone(), coerced)
                    })
                    .collect(),
            ),
            Value::Array(items) => match schemas.iter().find_map(|s| s.get("items")) {
                Some(sub) => Value::Array(
                    items
                        .iter()
                        .map(|item| self.coerce(sub, item, depth + 1))
                        .collect(),
                ),
                None => value.clone(),
            },
            _ => value.clone(),
        }
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

// ---------------------------------------------------------------------------
// The library's errors as violations

/// Turns the library's errors into [`Violation`]s.
struct Report<'a> {
    /// The form as submitted (before coercion), for the length leniency.
    form: Option<&'a Value>,
}

/// Puts the library's findings in the order callers expect: a value of the
/// wrong type gets no other complaint (its `enum`, `pattern`, ... say the
/// same thing again), missing fields come first (Adyen reports the first
/// violation), duplicates (from `allOf`) are dropped. Otherwise the
/// library's order is kept.
fn tidy(out: &mut Vec<Violation>) {
    let mistyped: Vec<String> = out
        .iter()
        .filter(|v| v.kind == ViolationKind::Type)
        .map(|v| v.pointer.clone())
        .collect();
    let mut seen = Vec::with_capacity(out.len());
    out.retain(|v| {
        let redundant = v.kind != ViolationKind::Type && mistyped.contains(&v.pointer);
        if redundant || seen.contains(v) {
            return false;
        }
        seen.push(v.clone());
        true
    });
    out.sort_by_key(|v| v.kind != ViolationKind::Required);
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

fn short(value: &Value) -> String {
    let text = value.to_string();
    if text.chars().count() > 60 {
        let cut: String = text.chars().take(57).collect();
        format!("{cut}...")
    } else {
        text
    }
}

fn count_of(value: &Value) -> usize {
    match value {
        Value::Array(items) => items.len(),
        Value::Object(map) => map.len(),
        Value::String(text) => text.chars().count(),
        _ => 0,
    }
}

impl Report<'_> {
    fn convert(&self, err: &jsonschema::ValidationError<'_>, out: &mut Vec<Violation>) {
        use ValidationErrorKind as K;
        let ptr = err.instance_path().as_str();
        // The offending value, materialised only by the messages that show it.
        let value = || -> &Value { err.instance() };
        let mut push = |kind, message: String| out.push(Violation::new(ptr, kind, message));
        match err.kind() {
            K::Required { property } => {
                let name = property
                    .as_str()
                    .map_or_else(|| property.to_string(), str::to_owned);
                out.push(Violation::new(
                    &child(ptr, &name),
                    ViolationKind::Required,
                    format!("required field {name} is missing"),
                ));
            }
            K::AdditionalProperties { unexpected } | K::UnevaluatedProperties { unexpected } => {
                for key in unexpected {
                    out.push(Violation::new(
                        &child(ptr, key),
                        ViolationKind::UnknownField,
                        format!("unknown field {key}"),
                    ));
                }
            }
            K::Type { kind } => {
                let expected: Vec<String> = match kind {
                    jsonschema::error::TypeKind::Single(t) => vec![t.to_string()],
                    jsonschema::error::TypeKind::Multiple(set) => {
                        set.iter().map(|t| t.to_string()).collect()
                    }
                };
                push(
                    ViolationKind::Type,
                    format!(
                        "expected {}, found {}",
                        expected.join(" or "),
                        type_name(value())
                    ),
                );
            }
            K::Enum { options } => {
                // Forms list `1` and `"1"`: shown once.
                let mut allowed: Vec<String> = Vec::new();
                for option in options.as_array().into_iter().flatten() {
                    let text = match option {
                        Value::String(s) => s.clone(),
                        other => other.to_string(),
                    };
                    if !allowed.contains(&text) {
                        allowed.push(text);
                    }
                }
                let more = if allowed.len() > 12 { ", ..." } else { "" };
                let list = &allowed[..allowed.len().min(12)];
                push(
                    ViolationKind::Enum,
                    format!(
                        "{} is not one of: {}{more}",
                        short(value()),
                        list.join(", ")
                    ),
                );
            }
            K::Constant { expected_value } => {
                push(ViolationKind::Enum, format!("must be {expected_value}"));
            }
            K::Format { format } => push(ViolationKind::Format, format!("is not a valid {format}")),
            K::Custom { keyword, message } if keyword.as_str() == INTEGER_FORMAT => {
                push(ViolationKind::Format, message.clone());
            }
            K::MinLength { limit } => push(
                ViolationKind::Length,
                format!(
                    "length {} is shorter than the minimum {limit}",
                    count_of(value())
                ),
            ),
            K::MaxLength { limit } => push(
                ViolationKind::Length,
                format!(
                    "length {} is longer than the maximum {limit}",
                    count_of(value())
                ),
            ),
            K::Pattern { pattern } => push(
                ViolationKind::Pattern,
                format!("does not match the pattern {}", pattern.trim()),
            ),
            K::Minimum { limit } => self.range(ptr, limit, |x, l| x >= l, "at least", out),
            K::Maximum { limit } => self.range(ptr, limit, |x, l| x <= l, "at most", out),
            K::ExclusiveMinimum { limit } => {
                self.range(ptr, limit, |x, l| x > l, "greater than", out)
            }
            K::ExclusiveMaximum { limit } => self.range(ptr, limit, |x, l| x < l, "less than", out),
            K::MultipleOf { multiple_of } => push(
                ViolationKind::Range,
                format!("must be a multiple of {multiple_of}"),
            ),
            K::MinItems { limit } => push(
                ViolationKind::Size,
                format!("has {} items, fewer than {limit}", count_of(value())),
            ),
            K::MaxItems { limit } => push(
                ViolationKind::Size,
                format!(
                    "has {} items, more than the maximum {limit}",
                    count_of(value())
                ),
            ),
            K::MinProperties { limit } => push(
                ViolationKind::Size,
                format!("has {} fields, fewer than {limit}", count_of(value())),
            ),
            K::MaxProperties { limit } => push(
                ViolationKind::Size,
                format!(
                    "has {} fields, more than the maximum {limit}",
                    count_of(value())
                ),
            ),
            K::UniqueItems => push(ViolationKind::Size, "items are not unique".into()),
            K::Not { .. } => push(
                ViolationKind::NoMatch,
                "matches a schema it must not match".into(),
            ),
            K::FalseSchema => push(ViolationKind::NoMatch, "no value is allowed here".into()),
            K::AnyOf { context } | K::OneOfNotValid { context } => {
                self.closest(ptr, context, out);
            }
            // A pattern the engine gave up on, a reference that does not
            // resolve: not the value's fault (the old validator skipped both).
            K::BacktrackLimitExceeded { .. } | K::RegexEngineFailure { .. } | K::Referencing(_) => {
                tracing::debug!(%err, "openapi: check skipped");
            }
            _ => push(ViolationKind::NoMatch, err.to_string()),
        }
    }

    /// A bound; in forms, broken only when the text read as a length breaks
    /// it too (see the module docs).
    fn range(
        &self,
        ptr: &str,
        limit: &Value,
        holds: fn(f64, f64) -> bool,
        words: &str,
        out: &mut Vec<Violation>,
    ) {
        let Some(limit_f) = limit.as_f64() else {
            return;
        };
        let text_len = self
            .form
            .and_then(|form| form.pointer(ptr))
            .and_then(Value::as_str)
            .map(|text| text.trim().chars().count() as f64);
        if text_len.is_some_and(|len| holds(len, limit_f)) {
            return;
        }
        out.push(Violation::new(
            ptr,
            ViolationKind::Range,
            format!("must be {words} {limit}"),
        ));
    }

    /// `anyOf` (and `oneOf`, rewritten to it) that no alternative matched:
    /// the violations of the closest one.
    fn closest(
        &self,
        ptr: &str,
        context: &[Vec<jsonschema::ValidationError<'static>>],
        out: &mut Vec<Violation>,
    ) {
        let type_ptr = child(ptr, "type");
        let mut best: Option<(usize, Vec<Violation>)> = None;
        for branch in context {
            let mut sub = Vec::new();
            for err in branch {
                self.convert(err, &mut sub);
            }
            tidy(&mut sub);
            if sub.is_empty() {
                // Only leniencies of ours failed it: it matches.
                return;
            }
            // Closest: no complaint about a `type` tag, then fewest complaints.
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
            if context.len() > 1 && sub.iter().all(|v| v.pointer == ptr) {
                out.push(Violation::new(
                    ptr,
                    ViolationKind::NoMatch,
                    format!("matches none of the {} allowed forms", context.len()),
                ));
            } else {
                out.extend(sub);
            }
        }
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
        let v = Violation::new("/lineItems/0/id", ViolationKind::Type, "x");
        assert_eq!(v.dotted(), "lineItems[0].id");
        assert_eq!(v.field_name(), "id");
        assert_eq!(percent_decode("/a%7Bb%7D"), "/a{b}");
    }

    /// A one-operation document of `dialect` ("3.0.3", "3.1.0" or Swagger
    /// "2.0") whose `POST /x` body is `body` (with `schemas` as its
    /// components or definitions), answering 200 with the same schema.
    fn doc(version: &str, body: Value, schemas: Value) -> ApiSpec {
        let document = if version == "2.0" {
            json!({
                "swagger": "2.0",
                "paths": {"/x": {"post": {
                    "parameters": [{"in": "body", "name": "body", "required": true, "schema": body}],
                    "responses": {"200": {"schema": body}}
                }}},
                "definitions": schemas
            })
        } else {
            json!({
                "openapi": version,
                "paths": {"/x": {"post": {
                    "requestBody": {"content": {"application/json": {"schema": body}}},
                    "responses": {"200": {"content": {"application/json": {"schema": body}}}}
                }}},
                "components": {"schemas": schemas}
            })
        };
        ApiSpec::from_values(vec![document]).unwrap()
    }

    /// The violations as (pointer, kind), sorted by pointer.
    fn kinds(result: Result<(), Vec<Violation>>) -> Vec<(String, ViolationKind)> {
        let mut found: Vec<(String, ViolationKind)> = match result {
            Ok(()) => Vec::new(),
            Err(errors) => errors.into_iter().map(|v| (v.pointer, v.kind)).collect(),
        };
        found.sort_by(|a, b| a.0.cmp(&b.0));
        found
    }

    #[test]
    fn nullable_of_openapi_30() {
        let spec = doc(
            "3.0.3",
            json!({"type": "object", "properties": {
                "plain": {"type": "string"},
                "text": {"type": "string", "nullable": true, "maxLength": 2},
                "choice": {"type": "string", "enum": ["a"], "nullable": true},
                "sub": {"$ref": "#/components/schemas/Sub", "nullable": true},
                "all": {"allOf": [{"$ref": "#/components/schemas/Sub"}], "nullable": true}
            }}),
            json!({"Sub": {"type": "object", "required": ["id"],
                           "properties": {"id": {"type": "integer"}}}}),
        );
        let check = |body: Value| kinds(spec.validate_request("POST", "/x", &body));
        let nulls = json!({"text": null, "choice": null, "sub": null, "all": null});
        assert_eq!(check(nulls), vec![]);
        assert_eq!(
            check(json!({"plain": null})),
            vec![("/plain".into(), ViolationKind::Type)]
        );
        // Besides null, the schema still applies.
        assert_eq!(
            check(json!({"text": "abc", "choice": "b", "sub": {}, "all": {"id": "1"}})),
            vec![
                ("/all/id".into(), ViolationKind::Type),
                ("/choice".into(), ViolationKind::Enum),
                ("/sub/id".into(), ViolationKind::Required),
                ("/text".into(), ViolationKind::Length),
            ]
        );
    }

    #[test]
    fn boolean_exclusive_bounds_of_swagger_2() {
        let spec = doc(
            "2.0",
            json!({"$ref": "#/definitions/Range"}),
            json!({"Range": {"type": "object", "properties": {
                "below": {"type": "integer", "maximum": 10, "exclusiveMaximum": true},
                "from": {"type": "integer", "minimum": 1, "exclusiveMinimum": false},
                "above": {"type": "number", "minimum": 0, "exclusiveMinimum": true}
            }}}),
        );
        let check = |body: Value| kinds(spec.validate_request("POST", "/x", &body));
        assert_eq!(check(json!({"below": 9, "from": 1, "above": 0.5})), vec![]);
        assert_eq!(
            check(json!({"below": 10, "from": 0, "above": 0})),
            vec![
                ("/above".into(), ViolationKind::Range),
                ("/below".into(), ViolationKind::Range),
                ("/from".into(), ViolationKind::Range),
            ]
        );
        let message = spec
            .validate_request("POST", "/x", &json!({"below": 10}))
            .unwrap_err()
            .remove(0)
            .message;
        assert_eq!(message, "must be less than 10");
    }

    #[test]
    fn read_only_and_write_only() {
        let spec = doc(
            "3.0.3",
            json!({"$ref": "#/components/schemas/Thing"}),
            json!({
                "Thing": {"type": "object", "additionalProperties": false,
                    "required": ["id", "created", "secret", "name"],
                    "properties": {
                        "id": {"type": "string", "readOnly": true},
                        "created": {"$ref": "#/components/schemas/Stamp"},
                        "secret": {"type": "string", "writeOnly": true},
                        "name": {"type": "string"}
                    }},
                "Stamp": {"type": "string", "format": "date-time", "readOnly": true}
            }),
        );
        // A request needs neither readOnly field (even behind a $ref), and
        // does not check them when sent.
        assert_eq!(
            kinds(spec.validate_request(
                "POST",
                "/x",
                &json!({"secret": "s", "name": "n", "id": 12, "created": "yesterday"})
            )),
            vec![]
        );
        assert_eq!(
            kinds(spec.validate_request("POST", "/x", &json!({"name": "n"}))),
            vec![("/secret".into(), ViolationKind::Required)]
        );
        // An answer needs them, but not the writeOnly one.
        assert_eq!(
            kinds(spec.validate_response("POST", "/x", 200, &json!({"name": "n"}))),
            vec![
                ("/created".into(), ViolationKind::Required),
                ("/id".into(), ViolationKind::Required),
            ]
        );
        assert_eq!(
            kinds(spec.validate_response(
                "POST",
                "/x",
                200,
                &json!({"name": "n", "id": 1, "created": "2024-01-31T10:20:30Z"})
            )),
            vec![("/id".into(), ViolationKind::Type)]
        );
    }

    #[test]
    fn ref_siblings_by_version() {
        let schemas = json!({"Name": {"type": "string"}});
        let body = json!({"type": "object", "properties": {
            "name": {"$ref": "#/components/schemas/Name", "maxLength": 2}
        }});
        let value = json!({"name": "abcd"});
        let v30 = doc("3.0.3", body.clone(), schemas.clone());
        assert_eq!(kinds(v30.validate_request("POST", "/x", &value)), vec![]);
        let v31 = doc("3.1.0", body, schemas);
        assert_eq!(
            kinds(v31.validate_request("POST", "/x", &value)),
            vec![("/name".into(), ViolationKind::Length)]
        );
    }

    #[test]
    fn one_of_passes_when_alternatives_overlap() {
        let spec = doc(
            "3.1.0",
            json!({"type": "object", "properties": {"method": {
                "oneOf": [
                    {"$ref": "#/components/schemas/Card"},
                    {"$ref": "#/components/schemas/Stored"}
                ],
                "discriminator": {"propertyName": "type"}
            }}}),
            json!({
                "Card": {"type": "object", "additionalProperties": false,
                         "required": ["type"],
                         "properties": {"type": {"enum": ["scheme"]},
                                        "number": {"type": "string"},
                                        "storedId": {"type": "string"}}},
                "Stored": {"type": "object", "required": ["type", "storedId"],
                           "properties": {"type": {"enum": ["scheme", "stored"]},
                                          "storedId": {"type": "string"}}}
            }),
        );
        let check = |body: Value| kinds(spec.validate_request("POST", "/x", &body));
        // Both alternatives match: strict oneOf would refuse it.
        assert_eq!(
            check(json!({"method": {"type": "scheme", "storedId": "7"}})),
            vec![]
        );
        // None matches: the closest alternative's complaint (Card has no
        // complaint about `type`), not a bare "no match".
        assert_eq!(
            check(json!({"method": {"type": "scheme", "numbr": "4111"}})),
            vec![("/method/numbr".into(), ViolationKind::UnknownField)]
        );
        // Every alternative refuses the value itself.
        assert_eq!(
            check(json!({"method": "scheme"})),
            vec![("/method".into(), ViolationKind::NoMatch)]
        );
    }

    #[test]
    fn patterns_formats_and_pointers() {
        let spec = doc(
            "3.0.3",
            json!({"type": "object", "properties": {
                // Look-ahead: the regex engine cannot compile it, not checked.
                "lookahead": {"type": "string", "pattern": "^(?=a)a+$"},
                // A YAML block scalar leaves a newline at the end.
                "code": {"type": "string", "pattern": "^[A-Z]{3}$\n"},
                "small": {"type": "integer", "format": "int32"},
                "day": {"type": "string", "format": "date"},
                "link": {"type": "string", "format": "uri"},
                "a/b": {"type": "string"},
                "list": {"type": "array", "maxItems": 1, "items": {"type": "string"}}
            }}),
            json!({}),
        );
        let check = |body: Value| kinds(spec.validate_request("POST", "/x", &body));
        assert_eq!(
            check(
                json!({"lookahead": "b", "code": "EUR", "small": 5, "day": "2024-02-29",
                         "link": "https://shop.example/return?x=1"})
            ),
            vec![]
        );
        assert_eq!(
            check(
                json!({"code": "EURO", "small": 3_000_000_000_i64, "day": "2024-13-01",
                         "link": "not a uri", "a/b": 1, "list": ["x", "y"]})
            ),
            vec![
                ("/a~1b".into(), ViolationKind::Type),
                ("/code".into(), ViolationKind::Pattern),
                ("/day".into(), ViolationKind::Format),
                ("/link".into(), ViolationKind::Format),
                ("/list".into(), ViolationKind::Size),
                ("/small".into(), ViolationKind::Format),
            ]
        );
        let errors = spec
            .validate_request("POST", "/x", &json!({"list": ["x", "y"]}))
            .unwrap_err();
        // PayPal tells INVALID_ARRAY_MAX_ITEMS from MIN_ITEMS by the words.
        assert!(errors[0].message.contains("max"), "{errors:?}");
        assert_eq!(errors[0].dotted(), "list");
    }

    #[test]
    fn forms_read_text_as_the_schema_says() {
        let spec = ApiSpec::from_values(vec![json!({
            "swagger": "2.0",
            "consumes": ["application/x-www-form-urlencoded"],
            "paths": {"/pay": {"post": {"parameters": [
                {"in": "formData", "name": "amount", "type": "number", "minimum": 1,
                 "required": true},
                {"in": "formData", "name": "flag", "type": "string", "enum": [0, 1]},
                {"in": "formData", "name": "height", "type": "integer", "maximum": 6},
                {"in": "formData", "name": "multi", "type": "boolean"},
                {"in": "formData", "name": "count", "type": "integer",
                 "maximum": 10, "exclusiveMaximum": true}
            ], "responses": {}}}}
        })])
        .unwrap();
        let check =
            |pairs: &[(&str, &str)]| kinds(spec.validate_form("POST", "/pay", &form_value(pairs)));
        // "1" matches the number 1 of the enum; 1080 is six digits at most
        // (a bound is broken only when the text's length breaks it too).
        assert_eq!(
            check(&[
                ("amount", "12.50"),
                ("flag", "1"),
                ("height", "1080"),
                ("multi", "true"),
                ("count", "9")
            ]),
            vec![]
        );
        assert_eq!(
            check(&[
                ("amount", "twelve"),
                ("flag", "2"),
                ("height", "1234567"),
                ("multi", "maybe"),
                ("count", "10000000000")
            ]),
            vec![
                ("/amount".into(), ViolationKind::Type),
                ("/count".into(), ViolationKind::Range),
                ("/flag".into(), ViolationKind::Enum),
                ("/height".into(), ViolationKind::Range),
                ("/multi".into(), ViolationKind::Type),
            ]
        );
        assert_eq!(
            check(&[]),
            vec![("/amount".into(), ViolationKind::Required)]
        );
    }

    #[test]
    fn one_complaint_per_mistyped_value_and_missing_fields_first() {
        let spec = doc(
            "3.1.0",
            json!({"type": "object", "required": ["z"], "properties": {
                "b": {"type": "string", "enum": ["x"], "maxLength": 1},
                "c": {"allOf": [{"type": "string"}, {"type": "string"}]}
            }}),
            json!({}),
        );
        let errors = spec
            .validate_request("POST", "/x", &json!({"b": 5, "c": 1}))
            .unwrap_err();
        let found: Vec<(&str, ViolationKind)> = errors
            .iter()
            .map(|v| (v.pointer.as_str(), v.kind))
            .collect();
        assert_eq!(found[0], ("/z", ViolationKind::Required));
        assert_eq!(found.len(), 3, "{errors:#?}");
        assert!(found.contains(&("/b", ViolationKind::Type)));
        assert!(found.contains(&("/c", ViolationKind::Type)));
        assert_eq!(errors[0].message, "required field z is missing");
        let b = errors.iter().find(|v| v.pointer == "/b").unwrap();
        assert_eq!(b.message, "expected string, found integer");
    }

    /// Every body and answer schema of the providers' documents compiles
    /// (a schema the library refused would silently not be checked).
    #[test]
    fn every_documented_schema_compiles() {
        let Some(dir) = crate::test_specs::specs_for("adyen/CheckoutService-v71.json") else {
            return;
        };
        let files = [
            "adyen/CheckoutService-v71.json",
            "adyen/Webhooks-v1.json",
            "paypal/checkout_orders_v2.json",
            "paypal/payments_payment_v2.json",
            "paypal/notifications_webhooks_v1.json",
            "hipay/gateway.yaml",
            "hipay/hpayment.yaml",
            "hipay/tokenization.yaml",
        ];
        let mut compiled = 0;
        let mut refused = Vec::new();
        for file in files {
            let spec = ApiSpec::load(&SpecSource::Dir(dir.clone()), &[file])
                .unwrap()
                .unwrap();
            let doc = &spec.inner.docs[0];
            for op in &spec.inner.operations {
                let mut schemas: Vec<(Mode, String, &Value)> = Vec::new();
                for (media, schema) in &op.bodies {
                    let key = format!("{} {} {media}", op.method, op.template);
                    schemas.push((Mode::Request, key.clone(), schema));
                    schemas.push((Mode::Form, key, schema));
                }
                for (status, response) in op.responses.as_object().into_iter().flatten() {
                    let response = resolve(&doc.root, response);
                    let schema = match doc.dialect {
                        Dialect::Swagger2 => response.get("schema"),
                        _ => response.get("content").and_then(pick_json),
                    };
                    if let Some(schema) = schema {
                        let key = format!("{} {} -> {status}", op.method, op.template);
                        schemas.push((Mode::Response, key, schema));
                    }
                }
                for (mode, key, schema) in schemas {
                    let prepared = doc.prepared(mode).expect("document registers");
                    if prepared
                        .compiled(doc, mode, &key, schema)
                        .validator
                        .is_some()
                    {
                        compiled += 1;
                    } else {
                        refused.push(format!("{file} {key} ({mode:?})"));
                    }
                }
            }
        }
        assert!(refused.is_empty(), "schemas refused: {refused:#?}");
        assert!(compiled > 100, "only {compiled} schemas compiled");
    }
}
