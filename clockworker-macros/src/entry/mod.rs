//! `#[clockworker::main]` and `#[clockworker::test]`: parse the arguments
//! and the function, validate them, expand.

mod expand;
mod parse;
mod validate;

use proc_macro2::TokenStream;
use syn::ItemFn;

use crate::errors::Errors;
use parse::Args;
use validate::Config;

/// Which attribute is being expanded.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Entry {
    Main,
    Test,
}

impl Entry {
    /// The attribute's name after `clockworker::`.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Entry::Main => "main",
            Entry::Test => "test",
        }
    }
}

/// Expands the attribute. On a mistake, the function is still expanded as
/// closely as possible to what was meant (so that IDEs keep working and no
/// second error follows from the first), next to the error.
pub(crate) fn entry(entry: Entry, args: TokenStream, item: TokenStream) -> TokenStream {
    let function: ItemFn = match syn::parse2(item.clone()) {
        Ok(function) => function,
        Err(_) => {
            let error = syn::Error::new_spanned(
                &item,
                format!("`#[clockworker::{}]` goes on an `async fn`", entry.name()),
            );
            return [item, error.into_compile_error()].into_iter().collect();
        }
    };
    let mut errors = Errors::default();
    let mut config = match syn::parse2::<Args>(args) {
        Ok(args) => validate::config(args, entry, &mut errors),
        Err(error) => {
            errors.push(error);
            Config::default()
        }
    };
    validate::signature(&function, entry, &mut errors);
    validate::spawn_names(&function, &mut config, entry, &mut errors);
    let mut tokens = expand::function(function, &config, entry);
    if let Some(errors) = errors.into_option() {
        tokens.extend(errors.into_compile_error());
    }
    tokens
}
