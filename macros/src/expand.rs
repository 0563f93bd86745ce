//! Writes the impls: `TransformMeta` (what the attribute knows) and
//! `Transform` (each method one call into `__macro_support`).
//!
//! Generated code names everything by absolute path through
//! `#krate::__macro_support` (`::elspeth` unless `crate = path` says
//! otherwise) and its locals are `__elspeth_`-prefixed.

use proc_macro2::TokenStream;
use quote::{format_ident, quote, quote_spanned};
use syn::spanned::Spanned;

use crate::errors::Errors;
use crate::parse::{self, Args, Mode};
use crate::validate::{self, Validated};

/// The whole attribute: parse → validate → expand. On any error the item is
/// emitted unchanged (helper attributes removed) next to the errors, with a
/// stub `Transform` impl (see [`stub`]) so that the item's uses elsewhere do
/// not add errors of their own.
pub(crate) fn llm_transform(args: TokenStream, item: TokenStream) -> TokenStream {
    let mut errors = Errors::new();
    let args = parse::parse_args(args, &mut errors);
    let item = match syn::parse2::<syn::Item>(item.clone()) {
        Ok(item) => item,
        Err(e) => {
            errors.push(e);
            let e = errors.finish().expect_err("an error was pushed");
            let e = e.to_compile_error();
            return quote!(#item #e);
        }
    };
    let (item, validated) = validate::validate(item, &args, &mut errors);
    match (errors.finish(), validated) {
        (Ok(()), Some(v)) => expand(&args, v),
        (Err(e), _) => {
            let e = e.to_compile_error();
            let stub = stub(&args, &item);
            quote!(#item #e #stub)
        }
        (Ok(()), None) => quote!(#item),
    }
}

/// The fallback impl emitted next to the errors (as `thiserror` does for
/// `Display`): the type still implements `Transform`, so code passing it to
/// a pipeline does not fail a second time with "`Transform` is not
/// implemented". Its methods are never run: the crate does not compile.
/// Items that are not types, or have lifetime parameters (which a
/// `'static` transform cannot have), get none.
fn stub(args: &Args, item: &syn::Item) -> TokenStream {
    let (ident, generics) = match item {
        syn::Item::Struct(s) => (&s.ident, &s.generics),
        syn::Item::Enum(e) => (&e.ident, &e.generics),
        syn::Item::Union(u) => (&u.ident, &u.generics),
        _ => return TokenStream::new(),
    };
    if generics.lifetimes().next().is_some() {
        return TokenStream::new();
    }
    let krate = match &args.krate {
        Some(path) => quote!(#path),
        None => quote!(::elspeth),
    };
    let ms = quote!(#krate::__macro_support);
    let (impl_generics, ty_generics, where_clause) = generics.split_for_impl();
    // A generic type is a transform only when it is `Send + Sync +
    // 'static`; a concrete one already is or is not (and a bound on it
    // would be an error of its own).
    let mut bounded = where_clause.cloned().unwrap_or_else(|| syn::WhereClause {
        where_token: Default::default(),
        predicates: Default::default(),
    });
    if generics.type_params().next().is_some() {
        bounded.predicates.push(syn::parse_quote!(
            Self: ::core::marker::Send + ::core::marker::Sync + 'static
        ));
    }
    quote! {
        impl #impl_generics #ms::Transform for #ident #ty_generics #bounded {
            fn plugin(&self) -> &str {
                ::core::unreachable!()
            }
            fn on_start(
                &mut self,
                _: &#ms::StartContext,
            ) -> impl ::core::future::Future<
                Output = ::core::result::Result<#ms::Tracer, #ms::StartError>,
            > + ::core::marker::Send {
                ::core::future::pending()
            }
            fn process(
                &self,
                _: #ms::Row,
                _: #ms::RowContext<'_>,
            ) -> impl ::core::future::Future<
                Output = ::core::result::Result<#ms::Row, #ms::RowError>,
            > + ::core::marker::Send {
                ::core::future::pending()
            }
            fn close(
                &mut self,
                _: #ms::Tracer,
            ) -> impl ::core::future::Future<Output = #ms::CloseReport> + ::core::marker::Send {
                ::core::future::pending()
            }
        }
    }
}

fn expand(args: &Args, v: Validated) -> TokenStream {
    let krate = match &args.krate {
        Some(path) => quote!(#path),
        None => quote!(::elspeth),
    };
    let ms = quote!(#krate::__macro_support);
    let item = &v.item;
    let ident = &item.ident;
    let ident_span = ident.span();

    let plugin = match &args.name {
        Some(lit) => lit.value(),
        None => parse::snake_case(&ident.to_string()),
    };
    let accepted = match &args.tracing {
        None => quote!(&[]),
        Some(t) => match &t.providers {
            None => quote!(#ms::ALL_PROVIDERS),
            Some(list) => {
                let variants = list
                    .iter()
                    .map(|p| format_ident!("{}", p.variant(), span = t.span));
                quote!(&[#(#ms::TracingProvider::#variants),*])
            }
        },
    };
    let tracing_config = match &v.tracing_field {
        Some(field) => {
            let name = &field.ident;
            quote_spanned! {field.ty.span()=>
                #ms::HasTracing::tracing_config(&self.#name)
            }
        }
        None => quote!(::core::option::Option::None),
    };

    let (impl_generics, ty_generics, where_clause) = item.generics.split_for_impl();
    let author_trait = match args.mode {
        Mode::Call => quote_spanned!(ident_span=> #ms::LlmCall),
        Mode::Job => quote_spanned!(ident_span=> #ms::LlmJob),
    };
    let mut bounded = where_clause.cloned().unwrap_or_else(|| syn::WhereClause {
        where_token: Default::default(),
        predicates: Default::default(),
    });
    bounded
        .predicates
        .push(syn::parse_quote_spanned!(ident_span=> Self: #author_trait));

    let methods = match args.mode {
        Mode::Call => call_methods(&ms),
        Mode::Job => job_methods(&ms),
    };

    quote! {
        #item

        impl #impl_generics #ms::TransformMeta for #ident #ty_generics #where_clause {
            const PLUGIN: &'static str = #plugin;
            const ACCEPTED: &'static [#ms::TracingProvider] = #accepted;
            #[inline]
            fn tracing_config(&self) -> ::core::option::Option<&#ms::TracingConfig> {
                #tracing_config
            }
        }

        impl #impl_generics #ms::Transform for #ident #ty_generics #bounded {
            #[inline]
            fn plugin(&self) -> &str {
                <Self as #ms::TransformMeta>::PLUGIN
            }

            #methods

            fn close(
                &mut self,
                __elspeth_tracer: #ms::Tracer,
            ) -> impl ::core::future::Future<Output = #ms::CloseReport> + ::core::marker::Send {
                #ms::close(__elspeth_tracer)
            }
        }
    }
}

fn call_methods(ms: &TokenStream) -> TokenStream {
    quote! {
        #[inline]
        fn concurrency(&self) -> usize {
            <Self as #ms::LlmCall>::concurrency(self)
        }

        fn process(
            &self,
            __elspeth_row: #ms::Row,
            __elspeth_ctx: #ms::RowContext<'_>,
        ) -> impl ::core::future::Future<
            Output = ::core::result::Result<#ms::Row, #ms::RowError>,
        > + ::core::marker::Send {
            #ms::CallEngine::new(self).process(__elspeth_row, __elspeth_ctx)
        }

        fn on_start(
            &mut self,
            __elspeth_ctx: &#ms::StartContext,
        ) -> impl ::core::future::Future<
            Output = ::core::result::Result<#ms::Tracer, #ms::StartError>,
        > + ::core::marker::Send {
            #ms::on_start_call(self, __elspeth_ctx)
        }
    }
}

fn job_methods(ms: &TokenStream) -> TokenStream {
    quote! {
        #[inline]
        fn batch_size(&self) -> ::core::option::Option<usize> {
            #ms::JobEngine::new(self).batch_size()
        }

        fn process(
            &self,
            __elspeth_row: #ms::Row,
            __elspeth_ctx: #ms::RowContext<'_>,
        ) -> impl ::core::future::Future<
            Output = ::core::result::Result<#ms::Row, #ms::RowError>,
        > + ::core::marker::Send {
            #ms::JobEngine::new(self).process_row(__elspeth_row, __elspeth_ctx)
        }

        fn process_batch(
            &self,
            __elspeth_rows: ::std::vec::Vec<#ms::BatchRow>,
            __elspeth_ctx: #ms::BatchContext<'_>,
        ) -> impl ::core::future::Future<
            Output = ::std::vec::Vec<::core::result::Result<#ms::Row, #ms::RowError>>,
        > + ::core::marker::Send {
            #ms::JobEngine::new(self).process_batch(__elspeth_rows, __elspeth_ctx)
        }

        fn on_start(
            &mut self,
            __elspeth_ctx: &#ms::StartContext,
        ) -> impl ::core::future::Future<
            Output = ::core::result::Result<#ms::Tracer, #ms::StartError>,
        > + ::core::marker::Send {
            #ms::on_start_job(self, __elspeth_ctx)
        }
    }
}
