//! Procedural macros for `clockworker`: `#[derive(clockworker::QueueKey)]`.
//!
//! Use them through the `clockworker` crate, which re-exports them; this
//! crate's version is pinned to the runtime's. Each macro parses its input,
//! validates it (every mistake is reported at its token, with what to write
//! instead) and expands it. The generated code names only `::core` and
//! `clockworker::__private` (or the path given with `crate = "..."`).

mod errors;
mod queue_key;

use proc_macro::TokenStream;

/// Implements `clockworker::QueueKey` for a fieldless enum: the number of
/// variants, all of them in declaration order, a dense index (`0..COUNT`,
/// in declaration order, whatever the discriminants) and each variant's name.
///
/// The enum must also be `Clone`, `Copy`, `Debug`, `PartialEq`, `Eq` and
/// `Hash`, like any queue key. Deriving `QueueKey` is what makes its variants
/// usable in the typed form of `#[clockworker::main(queues(...))]`; a plain
/// enum without it still works as a key for `ExecutorBuilder::with_queue`.
///
/// ```
/// use clockworker::QueueKey;
///
/// #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, QueueKey)]
/// enum Queue {
///     Foreground,
///     Background,
/// }
///
/// assert_eq!(Queue::COUNT, 2);
/// assert_eq!(Queue::ALL, [Queue::Foreground, Queue::Background]);
/// assert_eq!(Queue::Background.index(), 1);
/// assert_eq!(Queue::Background.name(), "Background");
/// ```
///
/// It is a compile error to derive it for a struct, a union, an enum with
/// no variants, with generic parameters, or with a variant that has fields.
/// Where the clockworker crate is renamed, say so with
/// `#[clockworker(crate = "path")]` on the enum.
#[proc_macro_derive(QueueKey, attributes(clockworker))]
pub fn derive_queue_key(input: TokenStream) -> TokenStream {
    queue_key::derive(input.into()).into()
}
