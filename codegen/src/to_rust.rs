//! [`ToRust`]: a config value as the Rust expression that builds it.
//!
//! Every config struct is destructured **exhaustively** (no `..`), and every
//! enum matched without a wildcard, so adding a field or a variant to the
//! config model is a compile error here until the generator handles it: a
//! new field cannot be silently left out of generated code.
//!
//! While writing the expression, [`Cx`] tracks the YAML path of the value
//! (flattened option groups add no segment, as in the file) and records
//! every secret that would put a value into the binary: a literal secret,
//! or a `${VAR:-default}` reference with a non-empty default.
//!
//! ```
//! use elspeth_codegen::to_rust::{Cx, ToRust};
//! use elspeth_schema::config::SecretRef;
//! let mut cx = Cx::new(quote::quote!(::elspeth));
//! let expr = SecretRef::new("${API_KEY}").to_rust(&mut cx);
//! assert_eq!(expr.to_string(), r#":: elspeth :: config :: SecretRef :: new ("${API_KEY}")"#);
//! assert!(cx.secret_issues().is_empty());
//! ```

use std::collections::BTreeMap;

use elspeth_schema::config::{
    CompletionWindow, EnvString, Granularity, JsonObject, JsonValue, OtlpProtocol, QueryMatrix,
    ResponseFormat, SecretRef, SinkConfig, SourceConfig, TelemetryExporter, TracingConfig,
    TransformConfig,
};
use proc_macro2::{Literal, TokenStream};
use quote::{ToTokens, format_ident, quote};

/// One step of a YAML path: the validator's own, so the paths recorded
/// here locate values in the document it loaded
/// ([`elspeth_schema::validate::Validated::span_at`]).
pub use elspeth_schema::validate::Seg;

/// Renders a YAML path as `transforms[0].options.api_key`.
pub fn display_path(path: &[Seg]) -> String {
    let mut out = String::new();
    for seg in path {
        match seg {
            Seg::Key(k) => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(k);
            }
            Seg::Index(i) => {
                out.push('[');
                out.push_str(&i.to_string());
                out.push(']');
            }
        }
    }
    out
}

/// Why a secret cannot be compiled in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecretIssueKind {
    /// The value is (or contains) literal text, not only `${VAR}` references.
    Literal,
    /// A reference carries a non-empty `:-default`, which would be the value.
    Default,
}

/// A secret that would put a value into generated code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretIssue {
    /// Where it is in the YAML.
    pub path: Vec<Seg>,
    /// What is wrong.
    pub kind: SecretIssueKind,
}

/// Generation context: the path to the elspeth facade, the current YAML
/// path and the secret issues found so far.
#[derive(Debug)]
pub struct Cx {
    krate: TokenStream,
    path: Vec<Seg>,
    secret_issues: Vec<SecretIssue>,
}

impl Cx {
    /// A context whose generated paths start with `krate` (e.g. `::elspeth`).
    pub fn new(krate: TokenStream) -> Self {
        Self {
            krate,
            path: Vec::new(),
            secret_issues: Vec::new(),
        }
    }

    /// Runs `f` one segment deeper in the YAML path.
    pub fn at<R>(&mut self, seg: Seg, f: impl FnOnce(&mut Self) -> R) -> R {
        self.path.push(seg);
        let out = f(self);
        self.path.pop();
        out
    }

    /// Runs `f` under the mapping key `key`.
    pub fn key<R>(&mut self, key: &str, f: impl FnOnce(&mut Self) -> R) -> R {
        self.at(Seg::Key(key.to_string()), f)
    }

    /// `#krate::config::<name>`.
    pub fn config_type(&self, name: &str) -> TokenStream {
        let krate = &self.krate;
        let ident = format_ident!("{name}");
        quote!(#krate::config::#ident)
    }

    /// The secrets that would put a value into generated code.
    pub fn secret_issues(&self) -> &[SecretIssue] {
        &self.secret_issues
    }

    fn secret_issue(&mut self, kind: SecretIssueKind) {
        self.secret_issues.push(SecretIssue {
            path: self.path.clone(),
            kind,
        });
    }
}

/// A value that can be written as the Rust expression building it.
pub trait ToRust {
    /// The expression; its paths start at the context's crate path.
    fn to_rust(&self, cx: &mut Cx) -> TokenStream;
}

// ------------------------------------------------------------ primitives

impl ToRust for String {
    fn to_rust(&self, _cx: &mut Cx) -> TokenStream {
        let lit = Literal::string(self);
        quote!(::std::string::String::from(#lit))
    }
}

impl ToRust for bool {
    fn to_rust(&self, _cx: &mut Cx) -> TokenStream {
        self.to_token_stream()
    }
}

macro_rules! int_to_rust {
    ($($ty:ident => $ctor:ident),* $(,)?) => {$(
        impl ToRust for $ty {
            fn to_rust(&self, _cx: &mut Cx) -> TokenStream {
                Literal::$ctor(*self).to_token_stream()
            }
        }
    )*};
}

int_to_rust!(u32 => u32_suffixed, u64 => u64_suffixed, usize => usize_suffixed);

impl ToRust for f64 {
    fn to_rust(&self, _cx: &mut Cx) -> TokenStream {
        if self.is_nan() {
            quote!(::core::primitive::f64::NAN)
        } else if self.is_infinite() && *self > 0.0 {
            quote!(::core::primitive::f64::INFINITY)
        } else if self.is_infinite() {
            quote!(::core::primitive::f64::NEG_INFINITY)
        } else {
            Literal::f64_suffixed(*self).to_token_stream()
        }
    }
}

impl<T: ToRust> ToRust for Option<T> {
    fn to_rust(&self, cx: &mut Cx) -> TokenStream {
        match self {
            Some(v) => {
                let v = v.to_rust(cx);
                quote!(::core::option::Option::Some(#v))
            }
            None => quote!(::core::option::Option::None),
        }
    }
}

impl<T: ToRust> ToRust for Vec<T> {
    fn to_rust(&self, cx: &mut Cx) -> TokenStream {
        if self.is_empty() {
            return quote!(::std::vec::Vec::new());
        }
        let items: Vec<TokenStream> = self
            .iter()
            .enumerate()
            .map(|(i, v)| cx.at(Seg::Index(i), |cx| v.to_rust(cx)))
            .collect();
        quote!(::std::vec::Vec::from([#(#items),*]))
    }
}

impl<V: ToRust> ToRust for BTreeMap<String, V> {
    fn to_rust(&self, cx: &mut Cx) -> TokenStream {
        if self.is_empty() {
            return quote!(::std::collections::BTreeMap::new());
        }
        let entries = entries(cx, self);
        quote!(::std::collections::BTreeMap::from([#(#entries),*]))
    }
}

/// `(key, value)` expressions of a map's entries, each value rendered at
/// its key's path.
fn entries<'a, V: ToRust + 'a>(
    cx: &mut Cx,
    map: impl IntoIterator<Item = (&'a String, &'a V)>,
) -> Vec<TokenStream> {
    map.into_iter()
        .map(|(k, v)| {
            let key = k.to_rust(cx);
            let value = cx.key(k, |cx| v.to_rust(cx));
            quote!((#key, #value))
        })
        .collect()
}

impl ToRust for EnvString {
    fn to_rust(&self, cx: &mut Cx) -> TokenStream {
        let ty = cx.config_type("EnvString");
        let raw = Literal::string(self.raw());
        quote!(#ty::new(#raw))
    }
}

impl ToRust for SecretRef {
    /// The reference text as written (`${VAR}`), never a value. A literal
    /// secret or a non-empty default is recorded as a [`SecretIssue`] and
    /// replaced by an empty string, so even a caller that ignores the
    /// issues cannot write the value out.
    fn to_rust(&self, cx: &mut Cx) -> TokenStream {
        let ty = cx.config_type("SecretRef");
        let raw = self.expose_raw();
        let issue = if self.is_literal() {
            Some(SecretIssueKind::Literal)
        } else if elspeth_schema::interpolate::references(raw)
            .map(|refs| {
                refs.iter()
                    .any(|r| r.default.is_some_and(|d| !d.is_empty()))
            })
            .unwrap_or(true)
        {
            Some(SecretIssueKind::Default)
        } else {
            None
        };
        match issue {
            Some(kind) => {
                cx.secret_issue(kind);
                quote!(#ty::new(""))
            }
            None => {
                let raw = Literal::string(raw);
                quote!(#ty::new(#raw))
            }
        }
    }
}

// --------------------------------------------------------------- structs

/// Implements [`ToRust`] for a config struct (named by its path in
/// `elspeth_schema::config`, so it needs no import) by exhaustive
/// destructuring. `field: flatten` marks a `#[serde(flatten)]` group (no
/// YAML path segment).
macro_rules! struct_to_rust {
    ($ty:ident { $($field:ident $(: $how:ident)?),* $(,)? }) => {
        impl ToRust for elspeth_schema::config::$ty {
            fn to_rust(&self, cx: &mut Cx) -> TokenStream {
                // Exhaustive on purpose: a new field must be added here.
                let elspeth_schema::config::$ty { $($field),* } = self;
                $( let $field = struct_to_rust!(@field cx, $field $(, $how)?); )*
                let ty = cx.config_type(stringify!($ty));
                quote!(#ty { $($field: #$field),* })
            }
        }
    };
    (@field $cx:ident, $field:ident) => {
        $cx.key(stringify!($field), |cx| $field.to_rust(cx))
    };
    (@field $cx:ident, $field:ident, flatten) => {
        $field.to_rust($cx)
    };
}

/// [`ToRust`] for [`TransformConfig`] and each plugin's options struct,
/// from one entry per plugin: the variant, its options type and its fields
/// (`: flatten` for an option group, which adds no YAML path segment). The
/// match over the variants has no wildcard and each struct is destructured
/// exhaustively, so a new plugin or field is a compile error until listed.
macro_rules! transform_plugins_to_rust {
    ($( $variant:ident($options:ident { $($field:ident $(: $how:ident)?),* $(,)? }) ),* $(,)?) => {
        $( struct_to_rust!($options { $($field $(: $how)?),* }); )*

        impl ToRust for TransformConfig {
            fn to_rust(&self, cx: &mut Cx) -> TokenStream {
                let ty = cx.config_type("TransformConfig");
                let (variant, options) = cx.key("options", |cx| match self {
                    $( Self::$variant(o) => (stringify!($variant), o.to_rust(cx)), )*
                });
                let variant = format_ident!("{variant}");
                quote!(#ty::#variant(#options))
            }
        }
    };
}

#[rustfmt::skip]
transform_plugins_to_rust! {
    AzureLlm(AzureLlmOptions { connection: flatten, prompt: flatten, call: flatten, tracing }),
    AzureMultiQueryLlm(AzureMultiQueryLlmOptions { connection: flatten, prompt: flatten, call: flatten, queries, tracing }),
    OpenrouterLlm(OpenRouterLlmOptions { connection: flatten, prompt: flatten, call: flatten, tracing }),
    OpenrouterMultiQueryLlm(OpenRouterMultiQueryLlmOptions { connection: flatten, prompt: flatten, call: flatten, queries, tracing }),
    AzureBatchLlm(AzureBatchLlmOptions { connection: flatten, prompt: flatten, call: flatten, batch: flatten, tracing }),
    OpenrouterBatchLlm(OpenRouterBatchLlmOptions { connection: flatten, prompt: flatten, call: flatten, batch: flatten, tracing }),
}

struct_to_rust!(PipelineConfig {
    name,
    source,
    telemetry,
    transforms,
    sink,
    fail_fast,
    store,
    budget
});
struct_to_rust!(BudgetConfig { max_cost_usd });
struct_to_rust!(PricingConfig {
    input_per_mtok,
    output_per_mtok,
    cached_input_per_mtok
});
struct_to_rust!(StoreConfig {
    path,
    cache,
    max_kept_spans
});
struct_to_rust!(FailFastConfig {
    consecutive_failures,
    on_auth_error
});
struct_to_rust!(TelemetryConfig {
    enabled,
    granularity,
    exporters
});
struct_to_rust!(OtlpExporterOptions {
    endpoint,
    headers,
    protocol,
    service_name
});
struct_to_rust!(AzureConnection {
    deployment_name,
    endpoint,
    api_key,
    api_version,
    base_model
});
struct_to_rust!(OpenRouterConnection {
    model,
    api_key,
    base_url,
    http_referer,
    app_title
});
struct_to_rust!(PromptOptions {
    prompt_template,
    system_prompt,
    response_format,
    output_field,
    output_fields
});
struct_to_rust!(CallOptions {
    temperature,
    max_tokens,
    timeout_s,
    max_retries,
    pool_size,
    pricing
});
struct_to_rust!(QueryItem { name, vars });
struct_to_rust!(AzureBatchOptions {
    batch_size,
    poll_interval_s,
    completion_window
});
struct_to_rust!(OpenRouterBatchOptions { batch_size });
struct_to_rust!(AzureAiTracingConfig {
    connection_string,
    enable_content_recording,
    enable_live_metrics
});
struct_to_rust!(LangfuseTracingConfig {
    public_key,
    secret_key,
    host,
    enable_content_recording,
    sample_rate,
    trace_failures,
    environment,
    release,
    tags,
    flush_interval_ms,
    max_queue
});

impl ToRust for QueryMatrix {
    fn to_rust(&self, cx: &mut Cx) -> TokenStream {
        let QueryMatrix(dimensions) = self;
        let ty = cx.config_type("QueryMatrix");
        let dimensions = dimensions.to_rust(cx);
        quote!(#ty(#dimensions))
    }
}

// ----------------------------------------------------------------- enums

impl ToRust for SourceConfig {
    fn to_rust(&self, cx: &mut Cx) -> TokenStream {
        let ty = cx.config_type("SourceConfig");
        match self {
            Self::Jsonl { path, key } => {
                let path = cx.key("path", |cx| path.to_rust(cx));
                let key = cx.key("key", |cx| key.to_rust(cx));
                quote!(#ty::Jsonl { path: #path, key: #key })
            }
            Self::Csv {
                path,
                delimiter,
                key,
            } => {
                let path = cx.key("path", |cx| path.to_rust(cx));
                let delimiter = cx.key("delimiter", |cx| delimiter.to_rust(cx));
                let key = cx.key("key", |cx| key.to_rust(cx));
                quote!(#ty::Csv { path: #path, delimiter: #delimiter, key: #key })
            }
        }
    }
}

impl ToRust for SinkConfig {
    fn to_rust(&self, cx: &mut Cx) -> TokenStream {
        let ty = cx.config_type("SinkConfig");
        match self {
            Self::Jsonl { path, error_path } => {
                let path = cx.key("path", |cx| path.to_rust(cx));
                let error_path = cx.key("error_path", |cx| error_path.to_rust(cx));
                quote!(#ty::Jsonl { path: #path, error_path: #error_path })
            }
            Self::Csv {
                path,
                columns,
                delimiter,
                error_path,
            } => {
                let path = cx.key("path", |cx| path.to_rust(cx));
                let columns = cx.key("columns", |cx| columns.to_rust(cx));
                let delimiter = cx.key("delimiter", |cx| delimiter.to_rust(cx));
                let error_path = cx.key("error_path", |cx| error_path.to_rust(cx));
                quote!(#ty::Csv {
                    path: #path,
                    columns: #columns,
                    delimiter: #delimiter,
                    error_path: #error_path
                })
            }
        }
    }
}

impl ToRust for TracingConfig {
    fn to_rust(&self, cx: &mut Cx) -> TokenStream {
        let ty = cx.config_type("TracingConfig");
        match self {
            Self::None => quote!(#ty::None),
            Self::AzureAi(c) => {
                let c = c.to_rust(cx);
                quote!(#ty::AzureAi(#c))
            }
            Self::Langfuse(c) => {
                let c = c.to_rust(cx);
                quote!(#ty::Langfuse(#c))
            }
        }
    }
}

impl ToRust for TelemetryExporter {
    fn to_rust(&self, cx: &mut Cx) -> TokenStream {
        let ty = cx.config_type("TelemetryExporter");
        match self {
            Self::Otlp(o) => {
                let o = cx.key("options", |cx| o.to_rust(cx));
                quote!(#ty::Otlp(#o))
            }
        }
    }
}

/// Fieldless enums: every variant listed, no wildcard.
macro_rules! unit_enum_to_rust {
    ($ty:ident { $($variant:ident),* $(,)? }) => {
        impl ToRust for $ty {
            fn to_rust(&self, cx: &mut Cx) -> TokenStream {
                let ty = cx.config_type(stringify!($ty));
                match self {
                    $( Self::$variant => quote!(#ty::$variant), )*
                }
            }
        }
    };
}

impl ToRust for ResponseFormat {
    fn to_rust(&self, cx: &mut Cx) -> TokenStream {
        let ty = cx.config_type("ResponseFormat");
        match self {
            Self::Text => quote!(#ty::Text),
            Self::Json => quote!(#ty::Json),
            Self::JsonSchema(f) => {
                let f = cx.key("json_schema", |cx| f.to_rust(cx));
                quote!(#ty::JsonSchema(#f))
            }
        }
    }
}

struct_to_rust!(JsonSchemaFormat {
    name,
    schema,
    strict
});

/// A JSON object (a `json_schema`'s schema), entry by entry in its order.
impl ToRust for JsonObject {
    fn to_rust(&self, cx: &mut Cx) -> TokenStream {
        let map = cx.config_type("JsonObject");
        let entries = entries(cx, self);
        quote!(<#map as ::core::iter::FromIterator<_>>::from_iter([#(#entries),*]))
    }
}

impl ToRust for JsonValue {
    fn to_rust(&self, cx: &mut Cx) -> TokenStream {
        let ty = cx.config_type("JsonValue");
        match self {
            Self::Null => quote!(#ty::Null),
            Self::Bool(b) => quote!(#ty::Bool(#b)),
            Self::Number(n) => {
                let n = if let Some(i) = n.as_u64() {
                    Literal::u64_suffixed(i).to_token_stream()
                } else if let Some(i) = n.as_i64() {
                    Literal::i64_suffixed(i).to_token_stream()
                } else {
                    n.as_f64().unwrap_or_default().to_rust(cx)
                };
                quote!(#ty::from(#n))
            }
            Self::String(s) => {
                let s = s.to_rust(cx);
                quote!(#ty::String(#s))
            }
            Self::Array(items) => {
                let items: Vec<TokenStream> = items
                    .iter()
                    .enumerate()
                    .map(|(i, v)| cx.at(Seg::Index(i), |cx| v.to_rust(cx)))
                    .collect();
                quote!(#ty::Array(::std::vec::Vec::from([#(#items),*])))
            }
            Self::Object(map) => {
                let map = map.to_rust(cx);
                quote!(#ty::Object(#map))
            }
        }
    }
}
unit_enum_to_rust!(Granularity {
    Lifecycle,
    Rows,
    Full
});
unit_enum_to_rust!(OtlpProtocol { HttpProtobuf });
unit_enum_to_rust!(CompletionWindow { Hours24 });

#[cfg(test)]
mod tests {
    use super::*;
    use elspeth_schema::config::AzureLlmOptions;

    fn cx() -> Cx {
        Cx::new(quote!(::elspeth))
    }

    #[test]
    fn primitives() {
        let mut cx = cx();
        assert_eq!(
            String::from("a\"b\n").to_rust(&mut cx).to_string(),
            r#":: std :: string :: String :: from ("a\"b\n")"#
        );
        assert_eq!(7u32.to_rust(&mut cx).to_string(), "7u32");
        assert_eq!(1.5f64.to_rust(&mut cx).to_string(), "1.5f64");
        assert_eq!(60.0f64.to_rust(&mut cx).to_string(), "60f64");
        assert_eq!(
            f64::NAN.to_rust(&mut cx).to_string(),
            ":: core :: primitive :: f64 :: NAN"
        );
        assert_eq!(
            None::<u32>.to_rust(&mut cx).to_string(),
            ":: core :: option :: Option :: None"
        );
        assert_eq!(
            Vec::<u32>::new().to_rust(&mut cx).to_string(),
            ":: std :: vec :: Vec :: new ()"
        );
    }

    #[test]
    fn secrets_never_leave_their_references() {
        let mut cx = cx();
        let ok = cx.key("api_key", |cx| SecretRef::new("${KEY}").to_rust(cx));
        assert!(ok.to_string().contains("\"${KEY}\""));
        let empty_default = SecretRef::new("${KEY:-}").to_rust(&mut cx);
        assert!(empty_default.to_string().contains("\"${KEY:-}\""));
        assert!(cx.secret_issues().is_empty());

        let literal = cx.key("transforms", |cx| {
            cx.at(Seg::Index(1), |cx| {
                cx.key("options", |cx| {
                    cx.key("api_key", |cx| SecretRef::new("sk-live-123").to_rust(cx))
                })
            })
        });
        let defaulted = cx.key("k", |cx| SecretRef::new("${K:-sk-live-456}").to_rust(cx));
        for expr in [&literal, &defaulted] {
            assert!(!expr.to_string().contains("sk-live"), "{expr}");
        }
        let issues = cx.secret_issues();
        assert_eq!(issues.len(), 2);
        assert_eq!(
            display_path(&issues[0].path),
            "transforms[1].options.api_key"
        );
        assert_eq!(issues[0].kind, SecretIssueKind::Literal);
        assert_eq!(display_path(&issues[1].path), "k");
        assert_eq!(issues[1].kind, SecretIssueKind::Default);
    }

    #[test]
    fn flattened_groups_add_no_path_segment() {
        let options: AzureLlmOptions = serde_json::from_value(serde_json::json!({
            "deployment_name": "gpt-4o",
            "endpoint": "${AZURE_OPENAI_ENDPOINT}",
            "api_key": "literal",
            "prompt_template": "Classify: {{ text }}",
            "tracing": {"provider": "langfuse", "public_key": "${PK}", "secret_key": "sk-lf-x"}
        }))
        .unwrap();
        let mut cx = cx();
        cx.key("options", |cx| options.to_rust(cx));
        let paths: Vec<String> = cx
            .secret_issues()
            .iter()
            .map(|i| display_path(&i.path))
            .collect();
        assert_eq!(paths, ["options.api_key", "options.tracing.secret_key"]);
    }
}
