//! Checks the item the attribute is on and finds the field holding the
//! tracing config.
//!
//! The item must be a struct with named fields. With `tracing`, the config
//! field is the one marked `#[tracing]` (a helper attribute, removed from
//! the output), else the field named `tracing`, else the one named `config`.

use proc_macro2::Span;
use syn::{Fields, Item, ItemStruct};

use crate::errors::Errors;
use crate::parse::Args;

/// Help line for a missing tracing field.
const FIELD_HELP: &str = "mark the field holding the tracing config with `#[tracing]`, or name it `tracing` or `config`; its type must implement `elspeth::HasTracing` (e.g. `Option<elspeth::config::TracingConfig>` or a plugin's options type)";

/// The field holding the tracing config.
pub(crate) struct TracingField {
    /// Its name.
    pub ident: syn::Ident,
    /// Its type (errors about it are spanned here).
    pub ty: syn::Type,
}

/// A struct that passed validation, its `#[tracing]` attributes removed.
pub(crate) struct Validated {
    /// The struct, ready to emit.
    pub item: ItemStruct,
    /// The tracing config field, when the transform is traced.
    pub tracing_field: Option<TracingField>,
}

/// Validates `item`. Returns the item to emit (helper attributes removed
/// whenever it is a struct) and, if no error was found, the validated struct.
pub(crate) fn validate(item: Item, args: &Args, errors: &mut Errors) -> (Item, Option<Validated>) {
    let mut item_struct = match item {
        Item::Struct(s) => s,
        Item::Enum(e) => {
            errors.spanned(
                e.enum_token,
                "`#[llm_transform]` cannot be used on an enum",
                "put it on a struct with named fields, e.g. `struct MyTransform { config: MyOptions }`",
            );
            return (Item::Enum(e), None);
        }
        Item::Union(u) => {
            errors.spanned(
                u.union_token,
                "`#[llm_transform]` cannot be used on a union",
                "put it on a struct with named fields, e.g. `struct MyTransform { config: MyOptions }`",
            );
            return (Item::Union(u), None);
        }
        other => {
            errors.at(
                first_token_span(&other),
                "`#[llm_transform]` can only be used on a struct",
                "put it on the transform's struct and implement `elspeth::LlmCall` for that struct",
            );
            return (other, None);
        }
    };

    let marked = strip_tracing_attrs(&mut item_struct, errors);
    let tracing_field = match &item_struct.fields {
        Fields::Named(named) => {
            if let (Some(_), None) = (&marked, &args.tracing) {
                let (field, attr) = marked.as_ref().expect("checked");
                errors.spanned(
                    attr,
                    format_args!(
                        "field `{field}` is marked `#[tracing]` but the transform is not traced"
                    ),
                    "add the `tracing` argument: `#[llm_transform(tracing)]`",
                );
                None
            } else if args.tracing.is_some() {
                let by_mark = marked.as_ref().and_then(|(name, _)| {
                    named.named.iter().find(|f| f.ident.as_ref() == Some(name))
                });
                let found = by_mark
                    .or_else(|| {
                        named
                            .named
                            .iter()
                            .find(|f| f.ident.as_ref().is_some_and(|i| i == "tracing"))
                    })
                    .or_else(|| {
                        named
                            .named
                            .iter()
                            .find(|f| f.ident.as_ref().is_some_and(|i| i == "config"))
                    });
                match found {
                    Some(f) => Some(TracingField {
                        ident: f.ident.clone().expect("named field"),
                        ty: f.ty.clone(),
                    }),
                    None => {
                        errors.spanned(
                            &item_struct.ident,
                            format_args!(
                                "`{}` has no field holding the tracing config",
                                item_struct.ident
                            ),
                            FIELD_HELP,
                        );
                        None
                    }
                }
            } else {
                None
            }
        }
        Fields::Unnamed(fields) => {
            errors.spanned(
                fields,
                "`#[llm_transform]` needs a struct with named fields, not a tuple struct",
                format_args!(
                    "name the fields, e.g. `struct {} {{ config: MyOptions }}`",
                    item_struct.ident
                ),
            );
            None
        }
        Fields::Unit => {
            errors.spanned(
                &item_struct.ident,
                "`#[llm_transform]` needs a struct with named fields, not a unit struct",
                format_args!(
                    "add the transform's fields, e.g. `struct {} {{ config: MyOptions }}`",
                    item_struct.ident
                ),
            );
            None
        }
    };

    if errors.is_empty() {
        let validated = Validated {
            item: item_struct.clone(),
            tracing_field,
        };
        (Item::Struct(item_struct), Some(validated))
    } else {
        (Item::Struct(item_struct), None)
    }
}

/// Removes every `#[tracing]` helper attribute from the struct's fields and
/// returns the marked field's name and the attribute. A second mark,
/// a mark with arguments or a mark on an unnamed field is an error.
fn strip_tracing_attrs(
    item: &mut ItemStruct,
    errors: &mut Errors,
) -> Option<(syn::Ident, syn::Attribute)> {
    let mut marked: Option<(syn::Ident, syn::Attribute)> = None;
    for (index, field) in item.fields.iter_mut().enumerate() {
        let mut keep = Vec::with_capacity(field.attrs.len());
        for attr in std::mem::take(&mut field.attrs) {
            if !attr.path().is_ident("tracing") {
                keep.push(attr);
                continue;
            }
            if !matches!(attr.meta, syn::Meta::Path(_)) {
                errors.spanned(
                    &attr,
                    "`#[tracing]` takes no arguments",
                    "write `#[tracing]` on the field holding the tracing config",
                );
                continue;
            }
            let Some(ident) = field.ident.clone() else {
                errors.spanned(
                    &attr,
                    format_args!("`#[tracing]` on unnamed field {index}"),
                    "`#[llm_transform]` needs a struct with named fields",
                );
                continue;
            };
            match &marked {
                Some((first, _)) => errors.spanned(
                    &attr,
                    format_args!(
                        "only one field can be marked `#[tracing]` (`{first}` already is)"
                    ),
                    "keep `#[tracing]` on the one field holding the tracing config",
                ),
                None => marked = Some((ident, attr)),
            }
        }
        field.attrs = keep;
    }
    marked
}

fn first_token_span(item: &Item) -> Span {
    use quote::ToTokens;
    item.to_token_stream()
        .into_iter()
        .find(|t| !matches!(t, proc_macro2::TokenTree::Punct(p) if p.as_char() == '#'))
        .map_or_else(Span::call_site, |t| t.span())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse::TracingArg;
    use quote::quote;

    fn traced() -> Args {
        Args {
            tracing: Some(TracingArg {
                span: Span::call_site(),
                providers: None,
            }),
            ..Args::default()
        }
    }

    fn run(item: proc_macro2::TokenStream, args: &Args) -> (Item, Option<Validated>, Vec<String>) {
        let mut errors = Errors::new();
        let (item, v) = validate(syn::parse2(item).unwrap(), args, &mut errors);
        let msgs = errors
            .finish()
            .err()
            .map(|e| e.into_iter().map(|e| e.to_string()).collect())
            .unwrap_or_default();
        (item, v, msgs)
    }

    #[test]
    fn field_lookup_order() {
        let (_, v, e) = run(
            quote!(
                struct A {
                    config: C,
                    tracing: T,
                    #[tracing]
                    other: O,
                }
            ),
            &traced(),
        );
        assert!(e.is_empty());
        let v = v.unwrap();
        assert_eq!(v.tracing_field.unwrap().ident, "other");
        assert!(
            v.item.fields.iter().all(|f| f.attrs.is_empty()),
            "helper attribute removed"
        );
        let (_, v, _) = run(
            quote!(
                struct A {
                    config: C,
                    tracing: T,
                }
            ),
            &traced(),
        );
        assert_eq!(v.unwrap().tracing_field.unwrap().ident, "tracing");
        let (_, v, _) = run(
            quote!(
                struct A {
                    x: u8,
                    config: C,
                }
            ),
            &traced(),
        );
        assert_eq!(v.unwrap().tracing_field.unwrap().ident, "config");
        let (_, v, e) = run(
            quote!(
                struct A {
                    x: u8,
                }
            ),
            &Args::default(),
        );
        assert!(
            e.is_empty() && v.unwrap().tracing_field.is_none(),
            "untraced needs no field"
        );
    }

    #[test]
    fn misuse() {
        let (_, v, e) = run(
            quote!(
                struct A {
                    x: u8,
                }
            ),
            &traced(),
        );
        assert!(v.is_none());
        assert!(
            e[0].starts_with("`A` has no field holding the tracing config\nhelp: mark the field")
        );
        let (_, _, e) = run(
            quote!(
                enum A {
                    X,
                }
            ),
            &traced(),
        );
        assert!(e[0].starts_with("`#[llm_transform]` cannot be used on an enum"));
        let (_, _, e) = run(
            quote!(
                struct A(u8);
            ),
            &traced(),
        );
        assert!(e[0].starts_with(
            "`#[llm_transform]` needs a struct with named fields, not a tuple struct"
        ));
        let (item, _, e) = run(
            quote!(
                struct A {
                    #[tracing]
                    a: T,
                    #[tracing]
                    b: T,
                }
            ),
            &traced(),
        );
        assert_eq!(e.len(), 1);
        assert!(e[0].starts_with("only one field can be marked `#[tracing]` (`a` already is)"));
        let Item::Struct(s) = item else { panic!() };
        assert!(
            s.fields.iter().all(|f| f.attrs.is_empty()),
            "stripped even on error"
        );
        let (_, _, e) = run(
            quote!(
                struct A {
                    #[tracing]
                    a: T,
                }
            ),
            &Args::default(),
        );
        assert!(e[0].contains("is marked `#[tracing]` but the transform is not traced"));
        let (_, _, e) = run(
            quote!(
                fn f() {}
            ),
            &traced(),
        );
        assert!(e[0].starts_with("`#[llm_transform]` can only be used on a struct"));
    }
}
