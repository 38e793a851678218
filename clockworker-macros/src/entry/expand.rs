//! Writes the function that `#[clockworker::main]` / `#[clockworker::test]`
//! turn an `async fn` into: build the executor, bind the quick-form queue
//! handles, and run the body on the host.
//!
//! The generated code names only `::core` and `<crate>::__private`; its own
//! locals are hygienic (`Span::mixed_site`), so the body cannot see them.

use proc_macro2::{Ident, Literal, Span, TokenStream, TokenTree};
use quote::{ToTokens, quote};
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

    let build = build(&private, config);
    let handles = handles(&private, &executor, config);

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
    let future = quote! { async move { #(#stand_ins)* #block } };
    // Pin the body's output to the declared return type, so that `?` in
    // the body knows its error type (not possible with `impl Trait`).
    let future = match &function.sig.output {
        ReturnType::Default => quote! { #private::body::<(), _>(#future) },
        ReturnType::Type(_, ty) if !mentions_impl(ty.to_token_stream()) => {
            quote! { #private::body::<#ty, _>(#future) }
        }
        ReturnType::Type(..) => future,
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
            let #executor = #build;
            #handles
            let #body = #future;
            #private::run_main(&#executor, #body)
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
        Queues::Typed(typed) => typed_builder(private, typed),
    };
    let time_slice = config.time_slice.map(|nanos| {
        let nanos = Literal::u64_suffixed(nanos);
        quote! { .with_time_slice(::core::time::Duration::from_nanos(#nanos)) }
    });
    let host_yield_interval = config.host_yield_interval.map(|nanos| {
        let nanos = Literal::u64_suffixed(nanos);
        quote! { .with_host_yield_interval(::core::time::Duration::from_nanos(#nanos)) }
    });
    quote! {
        #private::build(
            #builder
                .with_panic_on_task_panic(#propagate)
                #time_slice
                #host_yield_interval
        )
    }
}

/// The typed form: a builder over the enum's `QueueKey::ALL`, weighted by an
/// exhaustive `match`, which is what proves at compile time that every
/// variant has a weight. A variant left out is reported by the compiler as
/// a pattern not covered, at the attribute's list.
fn typed_builder(private: &TokenStream, typed: &Typed) -> TokenStream {
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
        #private::typed_builder::<#enum_path>(|#key: #enum_path| -> u32 {
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

/// The quick form's handles, bound to the queues' names in the body, and
/// stand-ins for the undeclared names that were reported.
fn handles(private: &TokenStream, executor: &Ident, config: &Config) -> TokenStream {
    let Queues::Named(queues) = &config.queues else {
        return TokenStream::new();
    };
    let declared = queues.iter().map(|(name, _)| {
        let key = LitStr::new(&name.to_string(), name.span());
        quote! {
            // A queue may be declared only to be found by name.
            #[allow(unused_variables)]
            let #name = #private::queue(&#executor, #key);
        }
    });
    let stand_ins = queues.first().into_iter().flat_map(|(first, _)| {
        config.undeclared.iter().map(move |name| {
            quote! { let #name = ::core::clone::Clone::clone(&#first); }
        })
    });
    declared.chain(stand_ins).collect()
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
