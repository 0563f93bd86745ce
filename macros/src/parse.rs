//! The attribute's arguments:
//! `tracing`, `tracing(providers = [langfuse, azure_ai])`, `name = "..."`,
//! `mode = call | job`, `crate = path`.

use proc_macro2::{Span, TokenStream};
use syn::parse::Parser;
use syn::punctuated::Punctuated;
use syn::spanned::Spanned;
use syn::{Expr, Lit, LitStr, Meta, Token};

use crate::errors::{Errors, did_you_mean};

/// Every argument name, for "did you mean".
const ARGUMENTS: [&str; 4] = ["tracing", "name", "mode", "crate"];

/// The argument forms, for help lines.
const USAGE: &str = "arguments are `tracing`, `tracing(providers = [langfuse, azure_ai])`, `name = \"...\"`, `mode = job` and `crate = path`";

/// A tracing provider a transform can accept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Provider {
    /// `azure_ai`
    AzureAi,
    /// `langfuse`
    Langfuse,
}

impl Provider {
    /// Every provider with its YAML name.
    pub(crate) const ALL: [(&'static str, Provider); 2] = [
        ("azure_ai", Provider::AzureAi),
        ("langfuse", Provider::Langfuse),
    ];

    /// The `TracingProvider` variant it stands for.
    pub(crate) fn variant(self) -> &'static str {
        match self {
            Self::AzureAi => "AzureAi",
            Self::Langfuse => "Langfuse",
        }
    }
}

/// `tracing` or `tracing(providers = [...])`.
#[derive(Debug, Clone)]
pub(crate) struct TracingArg {
    /// Where the argument is written.
    pub span: Span,
    /// The accepted providers; `None` accepts every provider.
    pub providers: Option<Vec<Provider>>,
}

/// Per-call (`LlmCall`) or batch-job (`LlmJob`) transform.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) enum Mode {
    /// One trace per row, one generation per call.
    #[default]
    Call,
    /// One job span per chunk, one generation per row.
    Job,
}

/// The parsed arguments. Arguments that failed to parse are left at their
/// defaults (the error is in [`Errors`]).
#[derive(Debug, Default)]
pub(crate) struct Args {
    /// `tracing`, if given.
    pub tracing: Option<TracingArg>,
    /// `name = "..."`, if given and valid.
    pub name: Option<LitStr>,
    /// `mode`.
    pub mode: Mode,
    /// `crate = path`, if given.
    pub krate: Option<syn::Path>,
}

/// Parses the attribute's arguments, collecting every problem.
pub(crate) fn parse_args(tokens: TokenStream, errors: &mut Errors) -> Args {
    let mut args = Args::default();
    let metas = match Punctuated::<Meta, Token![,]>::parse_terminated.parse2(tokens) {
        Ok(metas) => metas,
        Err(e) => {
            errors.push(syn::Error::new(
                e.span(),
                crate::errors::with_help(e, USAGE),
            ));
            return args;
        }
    };
    let mut seen: Vec<(String, Span)> = Vec::new();
    for meta in metas {
        let path = meta.path();
        let key = match path.get_ident() {
            Some(ident) => ident.to_string(),
            None => {
                errors.spanned(path, "unknown argument", USAGE);
                continue;
            }
        };
        if !ARGUMENTS.contains(&key.as_str()) {
            let help = match did_you_mean(&key, ARGUMENTS) {
                Some(s) => format!("did you mean `{s}`? ({USAGE})"),
                None => USAGE.to_string(),
            };
            errors.spanned(path, format_args!("unknown argument `{key}`"), help);
            continue;
        }
        if seen.iter().any(|(k, _)| *k == key) {
            errors.spanned(
                path,
                format_args!("duplicate argument `{key}`"),
                format_args!(
                    "`{key}` is already given earlier in this attribute; remove one of them"
                ),
            );
            continue;
        }
        seen.push((key.clone(), path.span()));
        match key.as_str() {
            "tracing" => args.tracing = parse_tracing(&meta, errors),
            "name" => args.name = parse_name(&meta, errors),
            "mode" => {
                if let Some(mode) = parse_mode(&meta, errors) {
                    args.mode = mode;
                }
            }
            "crate" => args.krate = parse_crate(&meta, errors),
            _ => unreachable!("checked against ARGUMENTS"),
        }
    }
    args
}

fn parse_tracing(meta: &Meta, errors: &mut Errors) -> Option<TracingArg> {
    const FORMS: &str =
        "write `tracing` (every provider) or `tracing(providers = [langfuse, azure_ai])`";
    match meta {
        Meta::Path(path) => Some(TracingArg {
            span: path.span(),
            providers: None,
        }),
        Meta::NameValue(nv) => {
            errors.spanned(&nv.value, "`tracing` takes no value", FORMS);
            None
        }
        Meta::List(list) => {
            let inner =
                match Punctuated::<Meta, Token![,]>::parse_terminated.parse2(list.tokens.clone()) {
                    Ok(inner) => inner,
                    Err(e) => {
                        errors.push(syn::Error::new(
                            e.span(),
                            crate::errors::with_help(e, FORMS),
                        ));
                        return None;
                    }
                };
            let mut providers: Option<Vec<Provider>> = None;
            for item in inner {
                if !item.path().is_ident("providers") {
                    let help = match item.path().get_ident().map(|i| i.to_string()) {
                        Some(k) if did_you_mean(&k, ["providers"]).is_some() => {
                            "did you mean `providers`? `tracing(...)` takes only `providers = [...]`".to_string()
                        }
                        _ => "`tracing(...)` takes only `providers = [...]`".to_string(),
                    };
                    errors.spanned(item.path(), "unknown `tracing` option", help);
                    continue;
                }
                if providers.is_some() {
                    errors.spanned(
                        item.path(),
                        "duplicate option `providers`",
                        "list every accepted provider in one `providers = [...]`",
                    );
                    continue;
                }
                providers = parse_providers(&item, errors);
            }
            Some(TracingArg {
                span: list.path.span(),
                providers,
            })
        }
    }
}

fn parse_providers(meta: &Meta, errors: &mut Errors) -> Option<Vec<Provider>> {
    const FORM: &str = "write `providers = [langfuse, azure_ai]` (one or both)";
    let Meta::NameValue(nv) = meta else {
        errors.spanned(meta, "expected `providers = [...]`", FORM);
        return None;
    };
    let Expr::Array(array) = &nv.value else {
        errors.spanned(&nv.value, "expected a list of providers in `[...]`", FORM);
        return None;
    };
    if array.elems.is_empty() {
        errors.spanned(
            array,
            "the provider list is empty",
            "list at least one of `langfuse`, `azure_ai`; to turn tracing off, remove the `tracing` argument",
        );
        return None;
    }
    let mut out = Vec::new();
    let mut ok = true;
    for elem in &array.elems {
        let name = match elem {
            Expr::Path(p) => p.path.get_ident().map(|i| i.to_string()),
            _ => None,
        };
        let Some(name) = name else {
            errors.spanned(
                elem,
                "expected a provider name",
                "providers are `langfuse` and `azure_ai`",
            );
            ok = false;
            continue;
        };
        match Provider::ALL.iter().find(|(n, _)| *n == name) {
            Some((_, p)) if out.contains(p) => {
                errors.spanned(
                    elem,
                    format_args!("provider `{name}` is listed twice"),
                    "remove the second one",
                );
                ok = false;
            }
            Some((_, p)) => out.push(*p),
            None if name == "none" => {
                errors.spanned(
                    elem,
                    "`none` is always accepted",
                    "list only real providers (`langfuse`, `azure_ai`); a config with `provider: none` always runs untraced",
                );
                ok = false;
            }
            None => {
                let help = match did_you_mean(&name, Provider::ALL.iter().map(|(n, _)| *n)) {
                    Some(s) => {
                        format!("did you mean `{s}`? providers are `langfuse` and `azure_ai`")
                    }
                    None => "providers are `langfuse` and `azure_ai`".to_string(),
                };
                errors.spanned(
                    elem,
                    format_args!("unknown tracing provider `{name}`"),
                    help,
                );
                ok = false;
            }
        }
    }
    ok.then_some(out)
}

/// A valid plugin name: a lowercase letter, then lowercase letters, digits, `_`.
pub(crate) fn is_valid_plugin_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

/// `SentimentTransform` → `sentiment_transform`, `HTTPCaller` → `http_caller`.
pub(crate) fn snake_case(name: &str) -> String {
    let chars: Vec<char> = name.trim_start_matches("r#").chars().collect();
    let mut out = String::with_capacity(chars.len() + 4);
    for (i, &c) in chars.iter().enumerate() {
        if c.is_uppercase() {
            let prev = i.checked_sub(1).map(|j| chars[j]);
            let next = chars.get(i + 1);
            let boundary = match prev {
                None => false,
                Some('_') => false,
                Some(p) if p.is_lowercase() || p.is_ascii_digit() => true,
                Some(p) => p.is_uppercase() && next.is_some_and(|n| n.is_lowercase()),
            };
            if boundary {
                out.push('_');
            }
            out.extend(c.to_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

fn parse_name(meta: &Meta, errors: &mut Errors) -> Option<LitStr> {
    const FORM: &str = "write the plugin name as a string, e.g. `name = \"azure_llm\"`";
    let Meta::NameValue(nv) = meta else {
        errors.spanned(meta, "expected `name = \"...\"`", FORM);
        return None;
    };
    let Expr::Lit(syn::ExprLit {
        lit: Lit::Str(lit), ..
    }) = &nv.value
    else {
        errors.spanned(&nv.value, "expected a string literal", FORM);
        return None;
    };
    let value = lit.value();
    if !is_valid_plugin_name(&value) {
        let fixed = snake_case(&value.replace(|c: char| !c.is_ascii_alphanumeric(), "_"));
        let fixed = fixed.trim_matches('_');
        let help = if is_valid_plugin_name(fixed) {
            format!(
                "use lowercase letters, digits and `_`, starting with a letter, e.g. `name = \"{fixed}\"`"
            )
        } else {
            "use lowercase letters, digits and `_`, starting with a letter, e.g. `name = \"azure_llm\"`".to_string()
        };
        errors.spanned(lit, format_args!("invalid plugin name {:?}", value), help);
        return None;
    }
    Some(lit.clone())
}

fn parse_mode(meta: &Meta, errors: &mut Errors) -> Option<Mode> {
    const HELP: &str = "`mode = job` for batch-job transforms (`LlmJob`), `mode = call` (the default) for per-call transforms (`LlmCall`)";
    let Meta::NameValue(nv) = meta else {
        errors.spanned(meta, "expected `mode = call` or `mode = job`", HELP);
        return None;
    };
    let name = match &nv.value {
        Expr::Path(p) => p.path.get_ident().map(|i| i.to_string()),
        Expr::Lit(syn::ExprLit {
            lit: Lit::Str(s), ..
        }) => Some(s.value()),
        _ => None,
    };
    match name.as_deref() {
        Some("call") => Some(Mode::Call),
        Some("job") => Some(Mode::Job),
        Some(other) => {
            let help = match did_you_mean(other, ["call", "job"]) {
                Some(s) => format!("did you mean `{s}`? {HELP}"),
                None => HELP.to_string(),
            };
            errors.spanned(&nv.value, format_args!("unknown mode `{other}`"), help);
            None
        }
        None => {
            errors.spanned(&nv.value, "expected `call` or `job`", HELP);
            None
        }
    }
}

fn parse_crate(meta: &Meta, errors: &mut Errors) -> Option<syn::Path> {
    const FORM: &str = "write a path to the elspeth facade or runtime, e.g. `crate = ::elspeth` or `crate = crate`";
    let Meta::NameValue(nv) = meta else {
        errors.spanned(meta, "expected `crate = path`", FORM);
        return None;
    };
    match &nv.value {
        Expr::Path(p) if p.qself.is_none() => Some(p.path.clone()),
        Expr::Lit(syn::ExprLit {
            lit: Lit::Str(s), ..
        }) => match s.parse_with(syn::Path::parse_mod_style) {
            Ok(path) => Some(path),
            Err(_) => {
                errors.spanned(s, "expected a path", FORM);
                None
            }
        },
        other => {
            errors.spanned(other, "expected a path", FORM);
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use quote::quote;

    fn parse(tokens: TokenStream) -> (Args, Vec<String>) {
        let mut errors = Errors::new();
        let args = parse_args(tokens, &mut errors);
        let messages = match errors.finish() {
            Ok(()) => Vec::new(),
            Err(e) => e.into_iter().map(|e| e.to_string()).collect(),
        };
        (args, messages)
    }

    #[test]
    fn every_argument() {
        let (args, errors) = parse(quote!(
            tracing(providers = [langfuse]),
            name = "x_1",
            mode = job,
            crate = crate
        ));
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(
            args.tracing.unwrap().providers,
            Some(vec![Provider::Langfuse])
        );
        assert_eq!(args.name.unwrap().value(), "x_1");
        assert_eq!(args.mode, Mode::Job);
        assert!(args.krate.unwrap().is_ident("crate"));
    }

    #[test]
    fn defaults() {
        let (args, errors) = parse(quote!());
        assert!(errors.is_empty());
        assert!(args.tracing.is_none() && args.name.is_none() && args.krate.is_none());
        assert_eq!(args.mode, Mode::Call);
        let (args, _) = parse(quote!(tracing, crate = "::elspeth_runtime"));
        assert_eq!(args.tracing.unwrap().providers, None);
        let krate = args.krate.unwrap();
        assert_eq!(
            quote!(#krate).to_string(),
            quote!(::elspeth_runtime).to_string()
        );
    }

    #[test]
    fn collects_all_errors() {
        let (_, errors) = parse(quote!(
            tracin,
            name = "Bad Name",
            mode = jbo,
            name = "x",
            tracing(providers = [langfus, none])
        ));
        assert_eq!(errors.len(), 6, "{errors:#?}");
        assert!(errors[0].starts_with("unknown argument `tracin`\nhelp: did you mean `tracing`?"));
        assert_eq!(
            errors[1],
            "invalid plugin name \"Bad Name\"\nhelp: use lowercase letters, digits and `_`, starting with a letter, e.g. `name = \"bad_name\"`"
        );
        assert!(errors[2].starts_with("unknown mode `jbo`\nhelp: did you mean `job`?"));
        assert!(errors[3].starts_with("duplicate argument `name`"));
        assert!(
            errors[4]
                .starts_with("unknown tracing provider `langfus`\nhelp: did you mean `langfuse`?")
        );
        assert!(errors[5].starts_with("`none` is always accepted"));
    }

    #[test]
    fn snake_case_names() {
        assert_eq!(snake_case("SentimentTransform"), "sentiment_transform");
        assert_eq!(snake_case("HTTPCaller"), "http_caller");
        assert_eq!(snake_case("Gpt4Classifier"), "gpt4_classifier");
        assert_eq!(snake_case("already_snake"), "already_snake");
        assert!(is_valid_plugin_name("azure_llm"));
        assert!(!is_valid_plugin_name("Azure"));
        assert!(!is_valid_plugin_name("1x"));
        assert!(!is_valid_plugin_name(""));
    }
}
