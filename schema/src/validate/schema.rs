//! The schema phase: the YAML (as JSON) against the generated JSON Schema,
//! with each raw `jsonschema` error turned into a located, human message.
//!
//! `oneOf`/`anyOf` failures are not reported as such: the branch the user
//! meant is chosen by its discriminator (`plugin`, `provider`, `name`) or
//! by type, and only that branch's errors are reported.

use std::sync::OnceLock;

use jsonschema::error::{TypeKind, ValidationError, ValidationErrorKind as Kind};
use jsonschema::{JsonType, Validator};
use serde_json::Value as Json;

use super::instance::{YNode, Yaml};
use super::locate::{self, Seg, anchor_span, find, find_closest, from_location, provider_span};
use super::nav::{DISCRIMINATORS, Nav, StrKind};
use super::{Finding, Phase};
use crate::config::{
    MISSING_CONNECTION_STRING, MISSING_PUBLIC_KEY, MISSING_SECRET_KEY, langfuse_environment_problem,
};
use crate::diagnostic::Severity;
use crate::span::Span;
use crate::suggest::{did_you_mean, list, list_or};
use crate::yaml::{Node, Value};

/// The generated schema, built once per process.
pub(crate) fn schema() -> &'static Json {
    static SCHEMA: OnceLock<Json> = OnceLock::new();
    SCHEMA.get_or_init(crate::schema_gen::pipeline_schema)
}

/// The compiled validator, built once per process. It reads the YAML tree
/// directly (see [`super::instance`]).
fn validator() -> &'static Validator<Yaml> {
    static VALIDATOR: OnceLock<Validator<Yaml>> = OnceLock::new();
    VALIDATOR.get_or_init(|| {
        jsonschema::options_for::<Yaml>()
            .with_draft(jsonschema::Draft::Draft7)
            .build(schema())
            .expect("the generated schema is valid draft-07")
    })
}

/// Runs the schema phase: findings go to `phase`, and the instance paths
/// with structural problems to `phase.bad_paths` (so later phases skip
/// those parts).
pub(super) fn check(phase: &mut Phase<'_>) {
    let validator = validator();
    let instance = YNode(phase.root);
    if validator.is_valid(instance) {
        return;
    }
    let errors: Vec<ValidationError<'_>> = validator.iter_errors(instance).collect();
    let mut checker = Checker {
        nav: Nav::new(schema()),
        phase,
    };
    for error in &errors {
        checker.error(error);
    }
}

struct Checker<'p, 'a> {
    nav: Nav<'static>,
    phase: &'p mut Phase<'a>,
}

impl<'a> Checker<'_, 'a> {
    fn root(&self) -> &'a Node {
        self.phase.root
    }

    /// Reports a structural problem (wrong type, unknown or missing key,
    /// unknown plugin...): the part at `path` cannot be read as typed config.
    fn push(&mut self, path: &[Seg], span: Span, message: String) -> &mut Finding {
        self.phase.bad_paths.push(path.to_vec());
        self.phase
            .push(Finding::new(span, Severity::Error, message))
    }

    /// Reports a value outside its constraints (range, length, pattern):
    /// the part still reads as typed config, so the semantic rules run on
    /// it too (and report the same problem with the same message at most).
    fn push_value(&mut self, span: Span, message: String) -> &mut Finding {
        self.phase
            .push(Finding::new(span, Severity::Error, message))
    }

    fn error(&mut self, error: &ValidationError<'_>) {
        let path = from_location(error.instance_path());
        let schema_path = error.schema_path().as_str().to_string();
        if let Some((message, help)) = self.string_rule(&path, error.kind()) {
            let span = find_closest(self.root(), &path).node.span;
            let f = self.push_value(span, message);
            f.help = help;
            return;
        }
        match error.kind() {
            Kind::OneOfNotValid { context } | Kind::AnyOf { context } => {
                self.branching(&path, &schema_path, context);
            }
            Kind::AdditionalProperties { unexpected } => {
                for name in unexpected {
                    self.unknown_field(&path, &schema_path, name);
                }
            }
            Kind::Required { property } => {
                let name = property.as_str().unwrap_or_default().to_string();
                self.missing(&path, &schema_path, &name);
            }
            Kind::Type { kind } => self.wrong_type(&path, &schema_path, kind),
            Kind::Enum { options } => self.not_in_enum(&path, options),
            Kind::Constant { expected_value } => {
                let (span, field, found) = self.value_parts(&path, &schema_path);
                let msg = format!(
                    "invalid value for {field}: expected `{}`, found {found}",
                    json_text(expected_value)
                );
                self.push(&path, span, msg);
            }
            Kind::Minimum { .. }
            | Kind::Maximum { .. }
            | Kind::ExclusiveMinimum { .. }
            | Kind::ExclusiveMaximum { .. } => self.out_of_range(&path, &schema_path),
            Kind::MinLength { limit } | Kind::MaxLength { limit } => {
                self.bad_length(&path, &schema_path, error.kind(), *limit)
            }
            Kind::MinItems { limit } => {
                let (span, field, _) = self.value_parts(&path, &schema_path);
                let what = if *limit == 1 {
                    "at least one item".to_string()
                } else {
                    format!("at least {limit} items")
                };
                let help = self.description_help(&path);
                let f = self.push_value(span, format!("{field} needs {what}"));
                f.help = help;
            }
            Kind::MaxItems { limit } => {
                let (span, field, _) = self.value_parts(&path, &schema_path);
                self.push_value(span, format!("{field} has more than {limit} items"));
            }
            Kind::MinProperties { limit } => {
                let (span, field, _) = self.value_parts(&path, &schema_path);
                let help = self.description_help(&path);
                let f = self.push_value(
                    span,
                    if *limit == 1 {
                        format!("{field} must not be empty")
                    } else {
                        format!("{field} needs at least {limit} entries")
                    },
                );
                f.help = help;
            }
            Kind::Pattern { pattern } => {
                let (span, field, found) = self.value_parts(&path, &schema_path);
                let help = self.description_help(&path);
                let f = self.push_value(
                    span,
                    format!("invalid {field}: {found} does not match `{pattern}`"),
                );
                f.help = help;
            }
            Kind::UniqueItems => {
                let (span, field, _) = self.value_parts(&path, &schema_path);
                self.push_value(span, format!("{field} lists the same item twice"));
            }
            _ => {
                let span = locate::value_span(find_closest(self.root(), &path));
                let msg = error.to_string();
                self.push(&path, span, msg);
            }
        }
    }

    /// Precise messages for the string fields with a pattern: the same
    /// text the semantic rules use, one message per value.
    fn string_rule(&self, path: &[Seg], kind: &Kind) -> Option<(String, Option<String>)> {
        if !matches!(
            kind,
            Kind::Pattern { .. } | Kind::MinLength { .. } | Kind::MaxLength { .. }
        ) {
            return None;
        }
        let value = find(self.root(), path)?.node.as_str()?;
        match path {
            [Seg::Key(k)] if k == "name" => Some((
                format!(
                    "pipeline `name` must start with a letter and hold only letters, digits, `-` and `_`, found `{}`",
                    shorten(value)
                ),
                Some(
                    "e.g. `ticket-triage`; it names logs, traces and the generated Rust module"
                        .into(),
                ),
            )),
            [.., Seg::Key(t), Seg::Key(e)] if t == "tracing" && e == "environment" => {
                let problem = langfuse_environment_problem(value)?;
                Some((
                    format!("Langfuse `environment` {problem}"),
                    Some("e.g. `production`, `staging` or `dev`".into()),
                ))
            }
            [.., Seg::Key(k)] if k == "api_version" => Some((
                format!(
                    "`api_version` must be a date such as `2024-10-21` (optionally with `-preview`), found `{}`",
                    shorten(value)
                ),
                Some("see the Azure OpenAI REST API versions".into()),
            )),
            [.., Seg::Key(q), Seg::Key(_), Seg::Index(_), Seg::Key(n)]
                if q == "queries" && n == "name" =>
            {
                Some((
                    format!(
                        "query item name `{}` must be letters, digits and `_`",
                        shorten(value)
                    ),
                    Some("it becomes part of output field names (`<query>_<field>`)".into()),
                ))
            }
            _ => None,
        }
    }

    // ---- oneOf / anyOf ----

    fn branching(
        &mut self,
        path: &[Seg],
        schema_path: &str,
        context: &[Vec<ValidationError<'static>>],
    ) {
        let Some(found) = find(self.root(), path) else {
            return;
        };
        let node = found.node;
        let branches: Vec<&'static Json> = self
            .nav
            .document()
            .pointer(schema_path)
            .and_then(Json::as_array)
            .map(|a| a.iter().collect())
            .unwrap_or_default();
        if let Some(d) = self.nav.discriminator_of(&branches) {
            let chosen = match node.entry(d.key).map(|e| (e, &e.value.value)) {
                Some((_, Value::String(v))) => match d.values.iter().position(|c| c == v) {
                    Some(i) => Some(i),
                    None => {
                        let mut key_path = path.to_vec();
                        key_path.push(Seg::Key(d.key.to_string()));
                        self.unknown_discriminator(&key_path, d.key, v, &d.values);
                        return;
                    }
                },
                None | Some((_, Value::Null)) => d.default,
                Some((entry, _)) => {
                    let mut key_path = path.to_vec();
                    key_path.push(Seg::Key(d.key.to_string()));
                    let found = describe_found(&entry.value, false);
                    let noun = discriminator_noun(&key_path, d.key);
                    let f = self.push(
                        &key_path,
                        entry.value.span,
                        format!("invalid {noun}: expected a name, found {found}"),
                    );
                    f.notes.push(format!("expected {}", list_or(&d.values)));
                    return;
                }
            };
            match chosen {
                Some(i) => {
                    for e in context.get(i).into_iter().flatten() {
                        self.error(e);
                    }
                }
                None => {
                    let what = context_name(self.root(), path);
                    let fitting = self.fitting_branches(&branches, &d.values, node);
                    let f = self.push(
                        path,
                        anchor_span(found),
                        format!("missing `{}` in {what}", d.key),
                    );
                    f.help = Some(match fitting.as_slice() {
                        [one] => format!("add `{}: {one}`", d.key),
                        [] => format!("add `{}: <name>`", d.key),
                        some if some.len() < d.values.len() => {
                            format!("add `{}:`; the fields written fit {}", d.key, list_or(some))
                        }
                        _ => format!("add `{}: <name>`", d.key),
                    });
                    f.notes.push(format!("expected {}", list_or(&d.values)));
                }
            }
            return;
        }
        // No discriminator: keep the branches whose failure is not just "wrong type here".
        let plausible: Vec<usize> = context
            .iter()
            .enumerate()
            .filter(|(_, errors)| {
                !errors.iter().any(|e| {
                    matches!(e.kind(), Kind::Type { .. })
                        && from_location(e.instance_path()).as_slice() == path
                })
            })
            .map(|(i, _)| i)
            .collect();
        if plausible.len() == 1 {
            for e in &context[plausible[0]] {
                self.error(e);
            }
            return;
        }
        // Several or none plausible: report the type mismatch of the first branch.
        if let Some(e) = context
            .iter()
            .flatten()
            .find(|e| matches!(e.kind(), Kind::Type { .. }))
        {
            self.error(e);
            return;
        }
        let span = locate::value_span(found);
        let what = field_name(path);
        self.push(
            path,
            span,
            format!("{what} does not match any of its allowed forms"),
        );
    }

    /// The discriminator values whose branch accepts every field written
    /// in `node` (looking into `options` for transforms), to suggest one
    /// when the discriminator is missing.
    fn fitting_branches<'v>(
        &self,
        branches: &[&'static Json],
        values: &[&'v str],
        node: &Node,
    ) -> Vec<&'v str> {
        let accepts = |schema: &'static Json, fields: &Node| {
            let schema = self.nav.resolve(schema).0;
            fields.entries().is_some_and(|entries| {
                entries.iter().all(|e| {
                    schema
                        .pointer(&format!("/properties/{}", e.key.name))
                        .is_some()
                })
            })
        };
        branches
            .iter()
            .zip(values)
            .filter(|(branch, _)| {
                let branch = self.nav.resolve(branch).0;
                match (node.get("options"), branch.pointer("/properties/options")) {
                    (Some(options), Some(options_schema)) => accepts(options_schema, options),
                    _ => accepts(branch, node),
                }
            })
            .map(|(_, v)| *v)
            .collect()
    }

    fn unknown_discriminator(&mut self, key_path: &[Seg], key: &str, value: &str, values: &[&str]) {
        let Some(found) = find(self.root(), key_path) else {
            return;
        };
        let noun = discriminator_noun(key_path, key);
        let suggestion = did_you_mean(value, values.iter().copied());
        let f = self.push(
            &key_path[..key_path.len() - 1],
            found.node.span,
            format!("unknown {noun} `{value}`"),
        );
        if let Some(s) = suggestion {
            f.help = Some(format!("did you mean `{s}`?"));
        }
        f.notes.push(format!("expected {}", list_or(values)));
    }

    fn not_in_enum(&mut self, path: &[Seg], options: &Json) {
        let Some(found) = find(self.root(), path) else {
            return;
        };
        let values: Vec<String> = options
            .as_array()
            .map(|a| a.iter().map(json_text).collect())
            .unwrap_or_default();
        let last = path.last();
        let written = match &found.node.value {
            Value::String(s) => s.clone(),
            _ => node_text(self.phase.index.text(), found.node),
        };
        let message = match last {
            Some(Seg::Key(k)) if DISCRIMINATORS.contains(&k.as_str()) => {
                format!("unknown {} `{written}`", discriminator_noun(path, k))
            }
            _ => format!("invalid value `{written}` for {}", field_name(path)),
        };
        let suggestion =
            did_you_mean(&written, values.iter().map(String::as_str)).map(str::to_string);
        let f = self.push(path, found.node.span, message);
        if let Some(s) = suggestion {
            f.help = Some(format!("did you mean `{s}`?"));
        }
        f.notes.push(format!("expected {}", list_or(&values)));
    }

    // ---- mappings ----

    fn unknown_field(&mut self, path: &[Seg], schema_path: &str, name: &str) {
        let mut key_path = path.to_vec();
        key_path.push(Seg::Key(name.to_string()));
        let Some(found) = find(self.root(), &key_path) else {
            return;
        };
        let Some(key) = found.key else { return };
        let parent = parent_schema(schema_path);
        let fields: Vec<&str> = parent
            .and_then(|p| p.get("properties"))
            .and_then(Json::as_object)
            .map(|p| p.keys().map(String::as_str).collect())
            .unwrap_or_default();
        let what = context_name(self.root(), path);
        let help = self.misplaced_field(path, schema_path, name).or_else(|| {
            did_you_mean(name, fields.iter().copied()).map(|s| format!("did you mean `{s}`?"))
        });
        let f = self.push(path, key.span, format!("unknown field `{name}` in {what}"));
        f.help = help;
        if fields.is_empty() {
            f.notes.push(format!("{what} takes no fields"));
        } else {
            f.notes.push(format!("valid fields: {}", list(&fields)));
        }
    }

    /// A hint when a field is valid elsewhere: another provider's or
    /// plugin's field, or a field put at the wrong level.
    fn misplaced_field(&self, path: &[Seg], schema_path: &str, name: &str) -> Option<String> {
        let doc = self.nav.document();
        // A field of another branch of the same discriminated `oneOf`
        // (another tracing provider's, the csv source's, ...).
        if let Some(prefix) = schema_path.strip_suffix("/additionalProperties")
            && let Some((one_of, index)) = prefix.rsplit_once('/')
            && index.parse::<usize>().is_ok()
            && one_of.ends_with("/oneOf")
            && let Some(branches) = doc.pointer(one_of).and_then(Json::as_array)
        {
            let branches: Vec<&'static Json> = branches.iter().collect();
            if let Some(d) = self.nav.discriminator_of(&branches) {
                let owners: Vec<&str> = branches
                    .iter()
                    .zip(&d.values)
                    .filter(|(b, _)| {
                        self.nav
                            .resolve(b)
                            .0
                            .pointer(&format!("/properties/{name}"))
                            .is_some()
                    })
                    .map(|(_, v)| *v)
                    .collect();
                if !owners.is_empty() {
                    let with: Vec<String> =
                        owners.iter().map(|o| format!("{}: {o}", d.key)).collect();
                    return Some(format!("`{name}` is only valid with {}", list_or(&with)));
                }
            }
        }
        let plugin_options = |plugin_field: &str| -> Vec<&str> {
            doc.pointer("/definitions/TransformConfig/oneOf")
                .and_then(Json::as_array)
                .map(|bs| {
                    bs.iter()
                        .filter(|b| {
                            // `options` is a `$ref`, wrapped in `allOf` to carry a description.
                            let r = b
                                .pointer("/properties/options/allOf/0/$ref")
                                .or_else(|| b.pointer("/properties/options/$ref"))
                                .and_then(Json::as_str);
                            r.and_then(|r| doc.pointer(r.strip_prefix('#')?))
                                .and_then(|o| o.pointer(&format!("/properties/{plugin_field}")))
                                .is_some()
                        })
                        .filter_map(|b| b.pointer("/properties/plugin/const")?.as_str())
                        .collect()
                })
                .unwrap_or_default()
        };
        match path {
            // Another plugin's option.
            [Seg::Key(t), Seg::Index(_), Seg::Key(o)] if t == "transforms" && o == "options" => {
                let owners = plugin_options(name);
                if !owners.is_empty() {
                    let this = self
                        .root()
                        .get("transforms")
                        .and_then(|t| find(t, &path[1..2]))
                        .and_then(|f| f.node.get("plugin"))
                        .and_then(Node::as_str)
                        .unwrap_or("this plugin");
                    return Some(format!(
                        "`{name}` is an option of {}, not of `{this}`",
                        list(&owners)
                    ));
                }
            }
            // An option written next to `plugin:` instead of under `options:`.
            [Seg::Key(t), Seg::Index(_)]
                if t == "transforms" && !plugin_options(name).is_empty() =>
            {
                return Some(format!("`{name}` belongs under `options:`"));
            }
            [] if name == "tracing" => {
                return Some(
                    "`tracing` is set per transform: move it under `transforms[].options`".into(),
                );
            }
            [Seg::Key(t), Seg::Index(_), Seg::Key(o)]
                if t == "transforms" && o == "options" && name == "telemetry" =>
            {
                return Some("`telemetry` is a top-level section of the pipeline".into());
            }
            _ => {}
        }
        None
    }

    fn missing(&mut self, path: &[Seg], schema_path: &str, name: &str) {
        let Some(found) = find(self.root(), path) else {
            return;
        };
        // Tier 2 tracing: the same messages as `TracingConfig::completeness_errors`,
        // at the `provider:` entry.
        if schema_path.starts_with("/definitions/TracingConfig/oneOf/") {
            let exact = match name {
                "connection_string" => Some((
                    MISSING_CONNECTION_STRING,
                    "${APPLICATIONINSIGHTS_CONNECTION_STRING}",
                )),
                "public_key" => Some((MISSING_PUBLIC_KEY, "${LANGFUSE_PUBLIC_KEY}")),
                "secret_key" => Some((MISSING_SECRET_KEY, "${LANGFUSE_SECRET_KEY}")),
                _ => None,
            };
            if let Some((message, var)) = exact {
                let f = self.push(path, provider_span(found), message.to_string());
                f.help = Some(format!("add `{name}: {var}` to this tracing block"));
                return;
            }
        }
        let what = context_name(self.root(), path);
        let description = parent_schema(schema_path)
            .and_then(|p| p.get("properties"))
            .and_then(|p| p.get(name))
            .map(|p| self.nav.resolve(p).1)
            .and_then(|d| d.map(one_line));
        let f = self.push(
            path,
            anchor_span(found),
            format!("missing required field `{name}` in {what}"),
        );
        f.help = Some(match description {
            Some(d) => format!("add `{name}`: {d}"),
            None => format!("add `{name}`"),
        });
    }

    // ---- scalars ----

    fn wrong_type(&mut self, path: &[Seg], schema_path: &str, kind: &TypeKind) {
        let Some(found) = find(self.root(), path) else {
            return;
        };
        let types: Vec<JsonType> = match kind {
            TypeKind::Single(t) => vec![*t],
            TypeKind::Multiple(set) => set.iter().collect(),
        };
        let non_null: Vec<JsonType> = types
            .iter()
            .copied()
            .filter(|t| *t != JsonType::Null)
            .collect();
        let shown = if non_null.is_empty() {
            &types
        } else {
            &non_null
        };
        let expected = shown
            .iter()
            .map(|t| type_phrase(*t))
            .collect::<Vec<_>>()
            .join(" or ");
        let secret = self.is_secret(path, schema_path);
        let found_text = describe_found(found.node, secret);
        if path.is_empty() {
            let f = self.push(
                path,
                found.node.span,
                format!("a pipeline file must be a mapping, found {found_text}"),
            );
            f.help = Some(
                "start with `name: my-pipeline`, then `source:`, `transforms:` and `sink:`".into(),
            );
            return;
        }
        let field = field_name(path);
        let help = if secret {
            Some("write a `${VAR}` reference to an environment variable holding the secret".into())
        } else if shown.contains(&JsonType::String)
            && matches!(
                found.node.value,
                Value::Int(_) | Value::Float(_) | Value::Bool(_)
            )
        {
            let text = node_text(self.phase.index.text(), found.node);
            Some(format!("quote the value to use it as text: `\"{text}\"`"))
        } else if matches!(found.node.value, Value::Null) {
            Some(format!("write a value after `{}:`", last_key(path)))
        } else {
            self.description_help(path)
        };
        let span = found.node.span;
        let f = self.push(
            path,
            span,
            format!("invalid type for {field}: expected {expected}, found {found_text}"),
        );
        f.help = help;
    }

    fn out_of_range(&mut self, path: &[Seg], schema_path: &str) {
        let Some(found) = find(self.root(), path) else {
            return;
        };
        let prop = parent_schema(schema_path);
        let get = |k: &str| prop.and_then(|p| p.get(k)).map(json_text);
        let bounds = match (
            get("minimum"),
            get("maximum"),
            get("exclusiveMinimum"),
            get("exclusiveMaximum"),
        ) {
            (Some(min), Some(max), _, _) => format!("between {min} and {max}"),
            (Some(min), None, _, Some(max)) => format!("at least {min} and less than {max}"),
            (None, Some(max), Some(min), _) => format!("greater than {min} and at most {max}"),
            (Some(min), None, _, None) => format!("at least {min}"),
            (None, Some(max), None, _) => format!("at most {max}"),
            (None, None, Some(min), _) => format!("greater than {min}"),
            (None, None, None, Some(max)) => format!("less than {max}"),
            _ => "within its allowed range".to_string(),
        };
        let field = field_name(path);
        let found_text = node_text(self.phase.index.text(), found.node);
        let help = self.description_help(path);
        let f = self.push_value(
            found.node.span,
            format!("{field} must be {bounds}, found {found_text}"),
        );
        f.help = help;
    }

    fn bad_length(&mut self, path: &[Seg], schema_path: &str, kind: &Kind, limit: u64) {
        let Some(found) = find(self.root(), path) else {
            return;
        };
        let prop = parent_schema(schema_path);
        let min = prop.and_then(|p| p.get("minLength")).and_then(Json::as_u64);
        let max = prop.and_then(|p| p.get("maxLength")).and_then(Json::as_u64);
        let chars = |n: u64| format!("{n} character{}", if n == 1 { "" } else { "s" });
        let rule = match (min, max) {
            (Some(a), Some(b)) if a == b => format!("exactly {}", chars(a)),
            _ => match kind {
                Kind::MinLength { .. } if limit == 1 => "not empty".to_string(),
                Kind::MinLength { .. } => format!("at least {}", chars(limit)),
                _ => format!("at most {}", chars(limit)),
            },
        };
        let field = field_name(path);
        let secret = self.is_secret(path, schema_path);
        let found_text = describe_found(found.node, secret);
        let help = self.description_help(path);
        let f = self.push_value(
            found.node.span,
            format!("{field} must be {rule}, found {found_text}"),
        );
        f.help = help;
    }

    // ---- helpers ----

    /// Span, field name and a description of the value at `path`.
    fn value_parts(&self, path: &[Seg], schema_path: &str) -> (Span, String, String) {
        let found = find_closest(self.root(), path);
        let secret = self.is_secret(path, schema_path);
        (
            found.node.span,
            field_name(path),
            describe_found(found.node, secret),
        )
    }

    fn is_secret(&self, path: &[Seg], schema_path: &str) -> bool {
        schema_path.starts_with("/definitions/SecretRef")
            || self
                .nav
                .at_path(self.root(), path)
                .is_some_and(|at| at.kind == StrKind::Secret)
    }

    /// The field's description as a help line.
    fn description_help(&self, path: &[Seg]) -> Option<String> {
        let at = self.nav.at_path(self.root(), path)?;
        let d = at.description?;
        Some(format!("{}: {}", field_name(path), one_line(d)))
    }
}

/// The schema object holding the keyword at the end of `schema_path`.
fn parent_schema(schema_path: &str) -> Option<&'static Json> {
    let parent = schema_path.rsplit_once('/')?.0;
    schema().pointer(parent)
}

/// What the user calls the discriminator in this position.
fn discriminator_noun(key_path: &[Seg], key: &str) -> &'static str {
    match (key_path.first(), key) {
        (_, "provider") => "provider",
        (Some(Seg::Key(s)), "plugin") if s == "source" => "source plugin",
        (Some(Seg::Key(s)), "plugin") if s == "sink" => "sink plugin",
        (_, "plugin") => "plugin",
        (Some(Seg::Key(s)), "name") if s == "telemetry" => "exporter",
        _ => "name",
    }
}

/// A human name for the mapping at `path` (`langfuse tracing`,
/// `azure_llm options`, `the pipeline`, ...).
pub(crate) fn context_name(root: &Node, path: &[Seg]) -> String {
    let node = find(root, path).map(|f| f.node);
    let named = |key: &str| node.and_then(|n| n.get(key)).and_then(Node::as_str);
    let at = |p: &[Seg], key: &str| {
        find(root, p)
            .and_then(|f| f.node.get(key))
            .and_then(Node::as_str)
            .map(str::to_string)
    };
    match path {
        [] => "the pipeline".into(),
        [Seg::Key(k)] if k == "source" || k == "sink" => match named("plugin") {
            Some(p) => format!("{p} {k}"),
            None => k.clone(),
        },
        [Seg::Key(k)] if k == "telemetry" => "telemetry".into(),
        [Seg::Key(t), Seg::Key(e), Seg::Index(_)] if t == "telemetry" && e == "exporters" => {
            match named("name") {
                Some(n) => format!("{n} exporter"),
                None => "telemetry exporter".into(),
            }
        }
        [Seg::Key(t), Seg::Key(e), Seg::Index(_), Seg::Key(o)]
            if t == "telemetry" && e == "exporters" && o == "options" =>
        {
            match at(&path[..3], "name") {
                Some(n) => format!("{n} exporter options"),
                None => "exporter options".into(),
            }
        }
        [Seg::Key(t), Seg::Index(_)] if t == "transforms" => match named("plugin") {
            Some(p) => format!("{p} transform"),
            None => "transform".into(),
        },
        [Seg::Key(t), Seg::Index(_), Seg::Key(o)] if t == "transforms" && o == "options" => {
            match at(&path[..2], "plugin") {
                Some(p) => format!("{p} options"),
                None => "transform options".into(),
            }
        }
        [.., Seg::Key(o), Seg::Key(tr)] if o == "options" && tr == "tracing" => {
            match named("provider") {
                Some(p) if p != "none" => format!("{p} tracing"),
                Some(_) => "tracing (provider `none`)".into(),
                None => "tracing (no `provider`, so `none`)".into(),
            }
        }
        [.., Seg::Key(q), Seg::Key(_), Seg::Index(_)] if q == "queries" => "query item".into(),
        _ => field_name(path),
    }
}

/// `` `temperature` ``, or `` item 2 of `tags` `` for list items.
pub(crate) fn field_name(path: &[Seg]) -> String {
    match path {
        [] => "the pipeline".into(),
        [.., parent, Seg::Index(i)] => format!("item {} of `{parent}`", i + 1),
        [.., Seg::Key(k)] => format!("`{k}`"),
        [Seg::Index(i)] => format!("item {}", i + 1),
    }
}

fn last_key(path: &[Seg]) -> String {
    path.iter()
        .rev()
        .find_map(|s| match s {
            Seg::Key(k) => Some(k.clone()),
            Seg::Index(_) => None,
        })
        .unwrap_or_default()
}

fn type_phrase(t: JsonType) -> &'static str {
    match t {
        JsonType::Array => "a list",
        JsonType::Boolean => "`true` or `false`",
        JsonType::Integer => "a whole number",
        JsonType::Null => "nothing",
        JsonType::Number => "a number",
        JsonType::Object => "a mapping",
        JsonType::String => "a string",
    }
}

/// `string `abc``, `integer `5``, `a list`, ... Secrets are never shown.
pub(crate) fn describe_found(node: &Node, secret: bool) -> String {
    match &node.value {
        Value::Null => "nothing".into(),
        Value::Bool(b) => format!("boolean `{b}`"),
        Value::Int(i) if !secret => format!("integer `{i}`"),
        Value::Int(_) => "an integer".into(),
        Value::Float(f) if !secret => format!("number `{}`", shorten(&f.to_string())),
        Value::Float(_) => "a number".into(),
        Value::String(s) if !secret => format!("string `{}`", shorten(s)),
        Value::String(_) => "a string".into(),
        Value::Seq(_) => "a list".into(),
        Value::Map(_) => "a mapping".into(),
    }
}

/// The value as written in the source (scalars), for messages.
fn node_text(source: &str, node: &Node) -> String {
    match &node.value {
        Value::String(s) => shorten(s),
        Value::Seq(_) | Value::Map(_) => node.kind_name().to_string(),
        _ => shorten(source.get(node.span.range()).unwrap_or_default().trim()),
    }
}

fn shorten(s: &str) -> String {
    let one_line = s.replace('\n', "\\n");
    if one_line.chars().count() > 60 {
        let cut: String = one_line.chars().take(57).collect();
        format!("{cut}...")
    } else {
        one_line
    }
}

/// A JSON value as YAML-ish text: strings bare, whole floats without `.0`.
fn json_text(v: &Json) -> String {
    match v {
        Json::String(s) => s.clone(),
        Json::Number(n) => match n.as_f64() {
            Some(f) if f.fract() == 0.0 && f.abs() < 1e15 && n.is_f64() => format!("{}", f as i64),
            _ => n.to_string(),
        },
        other => other.to_string(),
    }
}

/// A doc comment collapsed to one line.
pub(crate) fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}
