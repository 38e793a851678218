//! `#[derive(QueueKey)]`: parse the item, validate that it is a fieldless,
//! non-generic, non-empty enum, expand to the `QueueKey` impl.

use proc_macro2::{Literal, TokenStream};
use quote::quote;
use syn::{Data, DeriveInput, Fields, Ident, LitStr, Path};

use crate::errors::Errors;

/// What the impl is generated from, checked.
struct KeyEnum<'a> {
    ident: &'a Ident,
    variants: Vec<&'a Ident>,
    /// `::clockworker` or `#[clockworker(crate = "...")]`.
    krate: Path,
}

pub(crate) fn derive(input: TokenStream) -> TokenStream {
    let input: DeriveInput = match syn::parse2(input) {
        Ok(input) => input,
        Err(error) => return error.into_compile_error(),
    };
    match validate(&input) {
        Ok(key) => expand(&key),
        Err(error) => {
            let mut tokens = fallback(&input);
            tokens.extend(error.into_compile_error());
            tokens
        }
    }
}

/// `#[clockworker(crate = "path")]`, for a renamed clockworker dependency.
fn crate_path(input: &DeriveInput) -> syn::Result<Path> {
    let mut krate: Path = syn::parse_quote!(::clockworker);
    for attr in input
        .attrs
        .iter()
        .filter(|attr| attr.path().is_ident("clockworker"))
    {
        attr.parse_nested_meta(|meta| {
            if meta.path.is_ident("crate") {
                let path: LitStr = meta.value()?.parse()?;
                krate = path.parse_with(Path::parse_mod_style).map_err(|_| {
                    syn::Error::new_spanned(
                        &path,
                        "expected the path of the clockworker crate, such as \
                         `#[clockworker(crate = \"my_clockworker\")]`",
                    )
                })?;
                Ok(())
            } else {
                Err(meta.error(
                    "unknown option of `#[clockworker(...)]`; the only option is \
                     `crate = \"path\"`",
                ))
            }
        })?;
    }
    Ok(krate)
}

/// The enum, if `input` is one that can be a `QueueKey`.
fn validate(input: &DeriveInput) -> syn::Result<KeyEnum<'_>> {
    let data = match &input.data {
        Data::Enum(data) => data,
        Data::Struct(data) => {
            return Err(syn::Error::new_spanned(
                data.struct_token,
                "`QueueKey` can only be derived for an enum with one variant per queue, \
                 such as `enum Queue { Foreground, Background }`; this is a struct",
            ));
        }
        Data::Union(data) => {
            return Err(syn::Error::new_spanned(
                data.union_token,
                "`QueueKey` can only be derived for an enum with one variant per queue, \
                 such as `enum Queue { Foreground, Background }`; this is a union",
            ));
        }
    };
    let mut errors = Errors::default();
    let krate = crate_path(input).unwrap_or_else(|error| {
        errors.push(error);
        syn::parse_quote!(::clockworker)
    });
    if !input.generics.params.is_empty() {
        errors.push(syn::Error::new_spanned(
            &input.generics,
            "`QueueKey` cannot be derived for a generic enum: remove the generic parameters \
             (a queue key names a fixed set of queues)",
        ));
    }
    if data.variants.is_empty() {
        errors.push(syn::Error::new(
            data.brace_token.span.join(),
            "`QueueKey` needs at least one variant (an executor has at least one queue): \
             add one per queue, such as `{ Foreground, Background }`",
        ));
    }
    for variant in &data.variants {
        if !matches!(variant.fields, Fields::Unit) {
            let ident = &variant.ident;
            errors.push(syn::Error::new_spanned(
                &variant.fields,
                format!(
                    "`QueueKey` variants cannot have fields: write `{ident}` alone, one \
                     variant per queue"
                ),
            ));
        }
    }
    errors.finish(KeyEnum {
        ident: &input.ident,
        variants: data.variants.iter().map(|variant| &variant.ident).collect(),
        krate,
    })
}

fn expand(key: &KeyEnum<'_>) -> TokenStream {
    let KeyEnum {
        ident,
        variants,
        krate,
    } = key;
    let count = Literal::usize_unsuffixed(variants.len());
    let indexes = (0..variants.len()).map(Literal::usize_unsuffixed);
    let names = variants
        .iter()
        .map(|variant| LitStr::new(&variant.to_string(), variant.span()));
    quote! {
        #[automatically_derived]
        impl #krate::__private::QueueKey for #ident {
            const COUNT: usize = #count;
            const ALL: &'static [Self] = &[#(Self::#variants),*];
            #[inline]
            fn index(self) -> usize {
                match self {
                    #(Self::#variants => #indexes,)*
                }
            }
            #[inline]
            fn name(self) -> &'static str {
                match self {
                    #(Self::#variants => #names,)*
                }
            }
        }
    }
}

/// After an error, an impl that keeps other uses of the enum as a
/// `QueueKey` from failing too (one mistake, one message). Only for
/// non-generic enums: a struct or union is not meant to be a key at all, and
/// a generic enum would fail the trait's bounds.
fn fallback(input: &DeriveInput) -> TokenStream {
    if !matches!(input.data, Data::Enum(_)) || !input.generics.params.is_empty() {
        return TokenStream::new();
    }
    let krate = crate_path(input).unwrap_or_else(|_| syn::parse_quote!(::clockworker));
    let ident = &input.ident;
    quote! {
        #[automatically_derived]
        impl #krate::__private::QueueKey for #ident {
            const COUNT: usize = 0;
            const ALL: &'static [Self] = &[];
            fn index(self) -> usize {
                ::core::unreachable!("`#[derive(QueueKey)]` failed")
            }
            fn name(self) -> &'static str {
                ::core::unreachable!("`#[derive(QueueKey)]` failed")
            }
        }
    }
}
