//! The syntax of `#[clockworker::main(...)]`'s arguments, before any
//! checking: a comma-separated list of options, each `name`, `name = value`
//! or `name(...)`, where `queues(...)` holds `key = weight` entries and
//! `stealing(...)` holds keys.

use proc_macro2::{Span, TokenStream};
use syn::ext::IdentExt;
use syn::parse::{Parse, ParseStream};
use syn::punctuated::Punctuated;
use syn::{Expr, Ident, Path, Token, parenthesized};

/// Every option, in the order written.
pub(crate) struct Args {
    pub(crate) options: Punctuated<Opt, Token![,]>,
}

/// One option: its name and what follows the name.
pub(crate) struct Opt {
    pub(crate) name: Ident,
    pub(crate) value: OptValue,
}

pub(crate) enum OptValue {
    /// `name` alone.
    Bare,
    /// `name = value`.
    Assign(Expr),
    /// `queues(...)`: the span of the parentheses and the entries.
    Queues(Span, Punctuated<QueueEntry, Token![,]>),
    /// `stealing(...)`: the span of the parentheses and the keys, each a
    /// name (`bg`) or a path (`Queue::Background`).
    Stealing(Span, Punctuated<Path, Token![,]>),
    /// `name(...)` for any other name (its contents are not looked at).
    List,
}

/// `key = weight` inside `queues(...)`; the key is a name (`fg`) or a path
/// (`Queue::Foreground`); the weight may be missing or any expression, to be
/// judged by `validate`.
pub(crate) struct QueueEntry {
    pub(crate) key: Path,
    pub(crate) weight: Option<Expr>,
}

impl Parse for Args {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        Ok(Args {
            options: Punctuated::parse_terminated(input)?,
        })
    }
}

impl Parse for Opt {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        if !input.peek(Ident::peek_any) {
            return Err(input.error(
                "expected an option: `queues(...)`, `workers = N`, `stealing(...)`, \
                 `panic = \"...\"`, `time_slice = \"...\"`, `host_yield_interval = \"...\"` \
                 or `crate = \"...\"`",
            ));
        }
        // `parse_any`: `crate` is a keyword.
        let name = Ident::parse_any(input)?;
        let value = if input.peek(syn::token::Paren) {
            let content;
            let paren = parenthesized!(content in input);
            if name == "queues" {
                OptValue::Queues(paren.span.join(), Punctuated::parse_terminated(&content)?)
            } else if name == "stealing" {
                let keys = Punctuated::parse_terminated_with(&content, stealing_key)?;
                OptValue::Stealing(paren.span.join(), keys)
            } else {
                content.parse::<TokenStream>()?;
                OptValue::List
            }
        } else if input.peek(Token![=]) {
            input.parse::<Token![=]>()?;
            OptValue::Assign(input.parse()?)
        } else {
            OptValue::Bare
        };
        Ok(Opt { name, value })
    }
}

/// A key in `stealing(...)`: a name or a path.
fn stealing_key(input: ParseStream<'_>) -> syn::Result<Path> {
    if !(input.peek(Ident::peek_any) || input.peek(Token![::])) {
        return Err(input.error(
            "expected a queue of `queues(...)`: its name (such as `stealing(bg)`) or its \
             variant (such as `stealing(Queue::Background)`)",
        ));
    }
    Path::parse_mod_style(input)
}

impl Parse for QueueEntry {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        if !(input.peek(Ident::peek_any) || input.peek(Token![::])) {
            return Err(input.error(
                "expected a queue: `name = weight` (such as `bg = 1`) or \
                 `Enum::Variant = weight` (such as `Queue::Background = 1`)",
            ));
        }
        let key = Path::parse_mod_style(input)?;
        let weight = if input.peek(Token![=]) {
            input.parse::<Token![=]>()?;
            Some(input.parse()?)
        } else {
            None
        };
        Ok(QueueEntry { key, weight })
    }
}
