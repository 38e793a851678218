//! Collecting errors, so that every mistake in one input is reported at
//! once, each at its own token.

/// Zero or more errors, combined into one `syn::Error`.
#[derive(Default)]
pub(crate) struct Errors(Option<syn::Error>);

impl Errors {
    pub(crate) fn push(&mut self, error: syn::Error) {
        match &mut self.0 {
            Some(errors) => errors.combine(error),
            None => self.0 = Some(error),
        }
    }

    /// `Ok(value)` if nothing was pushed.
    pub(crate) fn finish<T>(self, value: T) -> syn::Result<T> {
        match self.0 {
            Some(errors) => Err(errors),
            None => Ok(value),
        }
    }

    pub(crate) fn into_option(self) -> Option<syn::Error> {
        self.0
    }
}
