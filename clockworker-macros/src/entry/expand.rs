//! Writes the function that `#[clockworker::main]` / `#[clockworker::test]`
//! turn an `async fn` into: build the executor, bind the quick-form queue
//! handles, and run the body on the host; or, with `workers = N`, build a
//! pool, run the body on its worker 0 (binding the handles there), and
//! wait for it on the calling thread.
//!
//! The generated code names only `::core` and `<crate>::__private`; its own
//! locals are hygienic (`Span::mixed_site`), so the body cannot see them.

use proc_macro2::{Group, Ident, Literal, Span, TokenStream, TokenTree};
use quote::{ToTokens, quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{FnArg, ItemFn, LitStr, ReturnType};

use super::Entry;
use super::validate::{Config, Queues, Typed, Weight};

/// The function, rewritten. `function` may have been reported as wrong
/// (not `async`, with arguments): the expansion is then as close as it can
/// be to what was meant, so that no second error follows from the first.
pub(crate) fn function(mut function: ItemFn, config: &Config, entry: Entry) -> TokenStream {
    let private = {
        let krate = &config.krate;
        quote!(#krate::__private)
    };
    let executor = Ident::new("__executor", Span::mixed_site());
    let body = Ident::new("__body", Span::mixed_site());
    let pool = Ident::new("__pool", Span::mixed_site());

    // Arguments are an error (reported by `validate`); they become locals
    // of the body, so that the body still type-checks.
    let arguments = std::mem::take(&mut function.sig.inputs);
    let stand_ins = arguments.iter().filter_map(|argument| match argument {
        FnArg::Typed(typed) => {
            let (pat, ty) = (&typed.pat, &typed.ty);
            Some(quote! {
                #[allow(unused_variables)]
                let #pat: #ty = #private::unreachable_argument();
            })
        }
        FnArg::Receiver(_) => None,
    });
    let block = &function.block;
    // On a pool, the queue handles are bound on the worker the body runs on.
    let handles_in_body = config
        .workers
        .map(|_| handles(&private, &HandleSource::Current, config));
    let future = quote! { async move { #handles_in_body #(#stand_ins)* #block } };
    // Pin the body's output to the declared return type, so that `?` in
    // the body knows its error type (not possible with `impl Trait`).
    let future = match &function.sig.output {
        ReturnType::Default => quote! { #private::body::<(), _>(#future) },
        ReturnType::Type(_, ty) if !mentions_impl(ty.to_token_stream()) => {
            quote! { #private::body::<#ty, _>(#future) }
        }
        ReturnType::Type(..) => future,
    };

    let run = match config.workers {
        None => {
            let build = build(&private, config);
            let handles = handles(&private, &HandleSource::Executor(&executor), config);
            quote! {
                let #executor = #build;
                #handles
                let #body = #future;
                #private::run_main(&#executor, #body)
            }
        }
        Some(workers) => {
            let build = build_pool(&private, workers, config);
            // `spawn_body` requires the body's output to be `Send`. The call
            // is placed at the declared return type, so that the compiler
            // reports an output that is not `Send` there.
            let spawn = match &function.sig.output {
                ReturnType::Type(_, ty) => {
                    let span = ty.span();
                    let private = respan(private.clone(), span);
                    quote_spanned! {span=> #private::spawn_body(&#pool, move || #future) }
                }
                ReturnType::Default => quote! { #private::spawn_body(&#pool, move || #future) },
            };
            quote! {
                let #pool = #build;
                let #body = #spawn;
                #private::finish_pool(#pool, #body)
            }
        }
    };

    function.sig.asyncness = None;
    // A `#[test]` of the user's own is reported; do not add a second one.
    let has_test = function
        .attrs
        .iter()
        .any(|attr| attr.path().is_ident("test"));
    let test_attribute =
        (entry == Entry::Test && !has_test).then(|| quote! { #[::core::prelude::v1::test] });
    let attrs = &function.attrs;
    let vis = &function.vis;
    let sig = &function.sig;
    quote! {
        #test_attribute
        #(#attrs)*
        #vis #sig {
            #run
        }
    }
}

/// The expression that builds the executor.
fn build(private: &TokenStream, config: &Config) -> TokenStream {
    let propagate = config.propagate_panics;
    let builder = match &config.queues {
        Queues::Single => quote! {
            #private::ExecutorBuilder::new().with_queue("main", 1u32)
        },
        Queues::Named(queues) => {
            let queues = queues.iter().map(|(name, weight)| {
                let key = LitStr::new(&name.to_string(), name.span());
                let weight = weight_literal(*weight);
                quote! { .with_queue(#key, #weight) }
            });
            quote! { #private::ExecutorBuilder::new() #(#queues)* }
        }
        Queues::Typed(typed) => typed_weights(private, typed, quote!(typed_builder)),
    };
    let tunables = tunables(config);
    quote! {
        #private::build(
            #builder
                .with_panic_on_task_panic(#propagate)
                #tunables
        )
    }
}

/// The expression that builds the pool of `workers = N`: the same queues
/// and tunables as [`build`], on every worker, and the stealing queues.
fn build_pool(private: &TokenStream, workers: usize, config: &Config) -> TokenStream {
    let propagate = config.propagate_panics;
    let builder = match &config.queues {
        Queues::Single => quote! {
            #private::PoolBuilder::new().with_queue("main", 1u32)
        },
        Queues::Named(queues) => {
            let queues = queues.iter().map(|(name, weight)| {
                let key = LitStr::new(&name.to_string(), name.span());
                let weight = weight_literal(*weight);
                quote! { .with_queue(#key, #weight) }
            });
            quote! { #private::PoolBuilder::new() #(#queues)* }
        }
        Queues::Typed(typed) => typed_weights(private, typed, quote!(typed_pool_builder)),
    };
    let stealing = config.stealing.iter().map(|key| match &config.queues {
        Queues::Typed(_) => quote! { .with_stealing(#key) },
        Queues::Single | Queues::Named(_) => {
            let name = key
                .segments
                .last()
                .map_or_else(String::new, |segment| segment.ident.to_string());
            let key = LitStr::new(&name, key.span());
            quote! { .with_stealing(#key) }
        }
    });
    let workers = Literal::usize_suffixed(workers);
    let tunables = tunables(config);
    quote! {
        #private::build_pool(
            #builder
                .workers(#workers)
                #(#stealing)*
                .with_panic_on_task_panic(#propagate)
                #tunables
        )
    }
}

/// `time_slice` and `host_yield_interval`, as builder calls.
fn tunables(config: &Config) -> TokenStream {
    let time_slice = config.time_slice.map(|nanos| {
        let nanos = Literal::u64_suffixed(nanos);
        quote! { .with_time_slice(::core::time::Duration::from_nanos(#nanos)) }
    });
    let host_yield_interval = config.host_yield_interval.map(|nanos| {
        let nanos = Literal::u64_suffixed(nanos);
        quote! { .with_host_yield_interval(::core::time::Duration::from_nanos(#nanos)) }
    });
    quote! { #time_slice #host_yield_interval }
}

/// The typed form: a builder over the enum's `QueueKey::ALL` (made by
/// `<private>::<make>`, `typed_builder` or `typed_pool_builder`), weighted
/// by an exhaustive `match`, which is what proves at compile time that
/// every variant has a weight. A variant left out is reported by the
/// compiler as a pattern not covered, at the attribute's list.
fn typed_weights(private: &TokenStream, typed: &Typed, make: TokenStream) -> TokenStream {
    let enum_path = &typed.enum_path;
    let key = Ident::new("__key", Span::mixed_site());
    // The same hygienic name, placed at the list of queues: the compiler
    // reports a variant left out of the `match` at its scrutinee.
    let scrutinee = Ident::new("__key", Span::mixed_site().located_at(typed.list));
    let arms = typed.variants.iter().map(|(variant, weight)| {
        let weight = weight_literal(*weight);
        quote! { #variant => #weight, }
    });
    // The leading arm never matches and does not count towards
    // exhaustiveness; being of the macro's making, it keeps the compiler
    // from suggesting a match arm (`=> todo!()`) inside the attribute.
    // After a reported mistake, a catch-all arm keeps the variants it left
    // out from being reported again.
    let catch_all = typed.incomplete.then(|| {
        quote! {
            #[allow(unreachable_patterns)]
            _ => 1,
        }
    });
    quote! {
        #private::#make::<#enum_path>(|#key: #enum_path| -> u32 {
            match #scrutinee {
                _ if false => 0,
                #(#arms)*
                #catch_all
            }
        })
    }
}

fn weight_literal(weight: Weight) -> Literal {
    let mut literal = Literal::u32_suffixed(weight.value);
    literal.set_span(weight.span);
    literal
}

/// Where the quick form's handles come from.
enum HandleSource<'a> {
    /// The executor the macro built, in this local.
    Executor(&'a Ident),
    /// The executor running on this thread (a pool's worker).
    Current,
}

/// The quick form's handles, bound to the queues' names in the body, and
/// stand-ins for the undeclared names that were reported.
fn handles(private: &TokenStream, source: &HandleSource<'_>, config: &Config) -> TokenStream {
    let Queues::Named(queues) = &config.queues else {
        return TokenStream::new();
    };
    let declared = queues.iter().map(|(name, _)| {
        let key = LitStr::new(&name.to_string(), name.span());
        let handle = match source {
            HandleSource::Executor(executor) => quote! { #private::queue(&#executor, #key) },
            HandleSource::Current => quote! { #private::current_queue(#key) },
        };
        quote! {
            // A queue may be declared only to be found by name.
            #[allow(unused_variables)]
            let #name = #handle;
        }
    });
    let stand_ins = queues.first().into_iter().flat_map(|(first, _)| {
        config.undeclared.iter().map(move |name| {
            quote! { let #name = ::core::clone::Clone::clone(&#first); }
        })
    });
    declared.chain(stand_ins).collect()
}

/// `tokens`, every one of them placed at `span`.
fn respan(tokens: TokenStream, span: Span) -> TokenStream {
    tokens
        .into_iter()
        .map(|token| match token {
            TokenTree::Group(group) => {
                let mut respanned = Group::new(group.delimiter(), respan(group.stream(), span));
                respanned.set_span(span);
                TokenTree::Group(respanned)
            }
            mut token => {
                token.set_span(span);
                token
            }
        })
        .collect()
}

/// Whether a type mentions `impl Trait`, which cannot be named in a
/// turbofish.
fn mentions_impl(tokens: TokenStream) -> bool {
    tokens.into_iter().any(|token| match token {
        TokenTree::Ident(ident) => ident == "impl",
        TokenTree::Group(group) => mentions_impl(group.stream()),
        _ => false,
    })
}
