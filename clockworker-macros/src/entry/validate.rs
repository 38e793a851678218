//! Checks the parsed arguments and the function, and turns them into a
//! [`Config`] for `expand`.
//!
//! Every mistake is reported at the token that makes it, with what to write
//! instead. Checking goes on past a mistake, with a best guess in its place
//! (a weight of 1, a dropped duplicate), so that the expansion stays close to
//! what the user meant and one mistake gives one message.

use std::collections::HashMap;

use proc_macro2::{Span, TokenStream, TokenTree};
use quote::ToTokens;
use syn::punctuated::Punctuated;
use syn::spanned::Spanned;
use syn::{Expr, ExprLit, ExprUnary, Ident, ItemFn, Lit, Path, Token, UnOp};

use super::Entry;
use super::parse::{Args, OptValue, QueueEntry};
use crate::errors::Errors;

/// The largest weight a queue may have: a copy of `clockworker::MAX_WEIGHT`
/// (a proc-macro crate cannot depend on the runtime crate it serves). The
/// test `macros_max_weight_matches_the_runtime` in the workspace's
/// `tests/errors.rs` checks that the two agree.
const MAX_WEIGHT: u32 = 1 << 20;

/// The options, for messages about an unknown or misspelt one.
const OPTIONS: &str = "`queues(...)`, `workers = 4`, `stealing(...)`, \
                       `panic = \"catch\" | \"propagate\"`, `time_slice = \"100us\"`, \
                       `host_yield_interval = \"500us\"` and `crate = \"path\"`";

/// The units of a duration and their lengths in nanoseconds. `µs` is the
/// micro sign (U+00B5); the Greek mu (U+03BC) looks the same and is taken
/// too.
const UNITS: [(&str, u64); 6] = [
    ("ns", 1),
    ("us", 1_000),
    ("\u{b5}s", 1_000),
    ("\u{3bc}s", 1_000),
    ("ms", 1_000_000),
    ("s", 1_000_000_000),
];

/// How a duration is written, for messages.
const DURATION_FORM: &str = "a whole number followed by `ns`, `us`, `\u{b5}s`, `ms` or `s`";

/// What to build, checked.
pub(crate) struct Config {
    /// The path of the clockworker crate: `::clockworker` or `crate = "..."`.
    pub(crate) krate: Path,
    pub(crate) queues: Queues,
    /// `workers = N`: a pool of `N` worker threads instead of one executor
    /// on the calling thread.
    pub(crate) workers: Option<usize>,
    /// `stealing(...)` (a pool only): the queues, as written, whose queued
    /// tasks idle workers may take from busy ones.
    pub(crate) stealing: Vec<Path>,
    /// `panic = "propagate"` (the default) or `"catch"`.
    pub(crate) propagate_panics: bool,
    /// `time_slice = "..."`, in nanoseconds; `None`: the builder's default.
    pub(crate) time_slice: Option<u64>,
    /// `host_yield_interval = "..."`, in nanoseconds; `None`: the builder's
    /// default.
    pub(crate) host_yield_interval: Option<u64>,
    /// Names that `spawn!` uses in the body but `queues(...)` does not
    /// declare (already reported), bound to a declared queue so that the
    /// compiler does not report them again.
    pub(crate) undeclared: Vec<Ident>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            krate: syn::parse_quote!(::clockworker),
            queues: Queues::Single,
            workers: None,
            stealing: Vec::new(),
            propagate_panics: true,
            time_slice: None,
            host_yield_interval: None,
            undeclared: Vec::new(),
        }
    }
}

pub(crate) enum Queues {
    /// No `queues(...)`: one queue.
    Single,
    /// The quick form, `queues(fg = 8, bg = 1)`.
    Named(Vec<(Ident, Weight)>),
    /// The typed form, `queues(Queue::Foreground = 8, Queue::Background = 1)`.
    Typed(Typed),
}

pub(crate) struct Typed {
    /// The span of the parenthesized list, where a missing variant is
    /// reported.
    pub(crate) list: Span,
    /// `Queue` in `Queue::Foreground`.
    pub(crate) enum_path: Path,
    /// Each variant's path, as written, with its weight.
    pub(crate) variants: Vec<(Path, Weight)>,
    /// Some entries were reported and left out: the expansion must not
    /// report the variants they meant as missing too.
    pub(crate) incomplete: bool,
}

/// A checked weight and where it was written.
#[derive(Clone, Copy)]
pub(crate) struct Weight {
    pub(crate) value: u32,
    pub(crate) span: Span,
}

/// Checks the attribute's arguments.
pub(crate) fn config(args: Args, entry: Entry, errors: &mut Errors) -> Config {
    let mut config = Config::default();
    let mut seen: Vec<Ident> = Vec::new();
    // Checked once every option is known: it names queues, and needs a pool.
    let mut stealing = None;
    for option in args.options {
        let name = option.name;
        if seen.contains(&name) {
            errors.push(syn::Error::new_spanned(
                &name,
                format!("`{name}` is given twice; give each option once"),
            ));
            continue;
        }
        seen.push(name.clone());
        match (name.to_string().as_str(), option.value) {
            ("queues", OptValue::Queues(list, entries)) => {
                config.queues = queues(list, entries, errors);
            }
            ("queues", _) => errors.push(syn::Error::new_spanned(
                &name,
                "expected a list of queues and weights: `queues(fg = 8, bg = 1)` \
                 or `queues(Queue::Foreground = 8, Queue::Background = 1)`",
            )),
            ("workers", value) => {
                let workers = match value {
                    OptValue::Assign(value) => workers(&value),
                    _ => Err(syn::Error::new_spanned(&name, WORKERS_VALUE)),
                };
                // After a mistake, still a pool: that is what was meant.
                config.workers = Some(workers.unwrap_or_else(|error| {
                    errors.push(error);
                    1
                }));
            }
            ("stealing", OptValue::Stealing(list, keys)) => stealing = Some((name, list, keys)),
            ("stealing", _) => errors.push(syn::Error::new_spanned(&name, STEALING_VALUE)),
            ("panic", OptValue::Assign(value)) => match string(&value).as_deref() {
                Some("catch") => config.propagate_panics = false,
                Some("propagate") => config.propagate_panics = true,
                _ => errors.push(syn::Error::new_spanned(&value, PANIC_VALUES)),
            },
            ("panic", _) => errors.push(syn::Error::new_spanned(&name, PANIC_VALUES)),
            ("crate", OptValue::Assign(value)) => match crate_path(&value) {
                Ok(path) => config.krate = path,
                Err(error) => errors.push(error),
            },
            ("crate", _) => errors.push(syn::Error::new_spanned(&name, CRATE_VALUE)),
            (option @ ("time_slice" | "host_yield_interval"), value) => {
                let duration = match value {
                    OptValue::Assign(value) => duration(option, &value),
                    _ => Err(syn::Error::new_spanned(&name, duration_expected(option))),
                };
                match duration {
                    Ok(nanos) if option == "time_slice" => config.time_slice = Some(nanos),
                    Ok(nanos) => config.host_yield_interval = Some(nanos),
                    Err(error) => errors.push(error),
                }
            }
            ("executor", _) => errors.push(syn::Error::new_spanned(&name, EXECUTOR_GONE)),
            (other, _) => errors.push(syn::Error::new_spanned(
                &name,
                format!(
                    "unknown option `{other}` of `#[clockworker::{}]`; the options are {OPTIONS}",
                    entry.name()
                ),
            )),
        }
    }
    if let Some((name, list, keys)) = stealing {
        if config.workers.is_none() {
            errors.push(syn::Error::new_spanned(
                &name,
                format!(
                    "`stealing(...)` is an option of a pool: add `workers = N` (such as \
                     `#[clockworker::{}(workers = 4, ..)]`), or leave `stealing` out; one \
                     executor has no other workers to take its tasks",
                    entry.name()
                ),
            ));
        } else {
            config.stealing = stealing_keys(list, keys, &config.queues, entry, errors);
        }
    }
    config
}

const PANIC_VALUES: &str = "expected `panic = \"propagate\"` (the default: a task's panic \
                            panics the function) or `panic = \"catch\"` (it becomes the task's \
                            `JoinError`)";
const CRATE_VALUE: &str = "expected `crate = \"path\"`: the path of the clockworker crate \
                           where it is renamed, such as `crate = \"my_clockworker\"`";
const WORKERS_VALUE: &str = "expected `workers = N`, an integer literal of 1 or more: the \
                             number of worker threads of the pool, such as `workers = 4`";
const STEALING_VALUE: &str = "expected `stealing(...)`: the queues whose queued tasks idle \
                              workers may take from busy ones, such as `stealing(bg)` or \
                              `stealing(Queue::Background)`";
const EXECUTOR_GONE: &str = "the `executor = name` option is gone: in the body, \
                             `clockworker::Handle::current()` reaches the executor (its queues, \
                             spawners and stats)";

/// What `option` is and how to write it, for a missing or malformed value.
fn duration_expected(option: &str) -> String {
    let (default, meaning) = if option == "time_slice" {
        (
            "100us",
            "how long a queue runs, once picked, before the scheduler picks again; \
             `\"0us\"` picks before every poll",
        )
    } else {
        (
            "500us",
            "how long the executor may keep its host runtime waiting while tasks are runnable",
        )
    };
    format!(
        "expected `{option} = \"{default}\"` (the default): {meaning}; a duration is a \
         string of {DURATION_FORM}"
    )
}

/// The nanoseconds of `option = "<whole number><unit>"`, such as
/// `time_slice = "200us"`. Any duration that fits in a `u64` of nanoseconds
/// is taken, zero included, as `ExecutorBuilder` takes any `Duration`.
fn duration(option: &str, value: &Expr) -> syn::Result<u64> {
    let lit = match value {
        Expr::Lit(ExprLit {
            lit: Lit::Str(lit), ..
        }) => lit,
        Expr::Lit(ExprLit {
            lit: Lit::Int(int), ..
        }) => {
            let number = int.base10_digits();
            return Err(syn::Error::new_spanned(
                value,
                format!(
                    "a duration needs a unit: write it as a string, such as \
                     `{option} = \"{number}us\"` or `{option} = \"{number}ms\"` \
                     ({DURATION_FORM})"
                ),
            ));
        }
        _ => return Err(syn::Error::new_spanned(value, duration_expected(option))),
    };
    let text = lit.value();
    let digits = text.bytes().take_while(u8::is_ascii_digit).count();
    let (number, unit) = text.split_at(digits);
    let error = |message: String| Err(syn::Error::new_spanned(lit, message));
    if number.is_empty() {
        return if text.starts_with('-') {
            error(format!(
                "{text:?} is negative: a duration is zero or more, such as `{option} = \"0us\"`"
            ))
        } else {
            error(format!(
                "{text:?} is not a duration: write {DURATION_FORM}, such as \
                 `{option} = \"200us\"`"
            ))
        };
    }
    let Some(&(_, scale)) = UNITS.iter().find(|(name, _)| *name == unit) else {
        let trimmed = unit.trim_start();
        return if unit.is_empty() {
            error(format!(
                "{text:?} has no unit: write `{option} = \"{number}us\"`, or \
                 {DURATION_FORM}"
            ))
        } else if unit.starts_with(['.', ',']) {
            error(format!(
                "{text:?} is not a whole number: write the duration as a whole number of \
                 a smaller unit, such as `\"1500us\"` for 1.5 ms"
            ))
        } else if trimmed.len() < unit.len() && UNITS.iter().any(|(name, _)| *name == trimmed) {
            error(format!(
                "write the unit right after the number, without a space: \
                 `{option} = \"{number}{trimmed}\"`"
            ))
        } else {
            error(format!(
                "unknown unit `{trimmed}` in {text:?}: the units are `ns`, `us`, `\u{b5}s`, \
                 `ms` and `s`, as in `{option} = \"200us\"`"
            ))
        };
    };
    match number
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(scale))
    {
        Some(nanos) => Ok(nanos),
        None => error(format!(
            "{text:?} is too long: a duration goes up to {}ns (`u64::MAX` nanoseconds, \
             about 584 years)",
            u64::MAX
        )),
    }
}

/// The number of workers of `workers = N`.
fn workers(value: &Expr) -> syn::Result<usize> {
    match value {
        Expr::Lit(ExprLit {
            lit: Lit::Int(lit), ..
        }) => match lit.base10_parse::<usize>() {
            Ok(0) => Err(syn::Error::new_spanned(
                lit,
                "a pool needs at least one worker: write `workers = 1` or more (each worker \
                 is a thread running its own executor)",
            )),
            Ok(workers) => Ok(workers),
            Err(_) => Err(syn::Error::new_spanned(
                lit,
                format!(
                    "`workers = {}` is too many: the number of workers must fit in a `usize`",
                    lit.base10_digits()
                ),
            )),
        },
        Expr::Unary(ExprUnary {
            op: UnOp::Neg(_), ..
        }) => Err(syn::Error::new_spanned(
            value,
            "the number of workers cannot be negative: a pool needs at least one worker, \
             such as `workers = 4`",
        )),
        Expr::Lit(ExprLit {
            lit: Lit::Str(lit), ..
        }) if lit.value().parse::<usize>().is_ok() => Err(syn::Error::new_spanned(
            lit,
            format!(
                "expected an integer literal: write the number without quotes, \
                 `workers = {}`",
                lit.value()
            ),
        )),
        _ => Err(syn::Error::new_spanned(
            value,
            "expected an integer literal: `workers = N` is the number of worker threads of \
             the pool, such as `workers = 4`",
        )),
    }
}

/// The keys of `stealing(...)`, each a queue of `queues`, once.
fn stealing_keys(
    list: Span,
    keys: Punctuated<Path, Token![,]>,
    queues: &Queues,
    entry: Entry,
    errors: &mut Errors,
) -> Vec<Path> {
    if keys.is_empty() {
        errors.push(syn::Error::new(
            list,
            "no queues given: list the queues whose queued tasks idle workers may take, \
             such as `stealing(bg)`, or leave `stealing` out",
        ));
    }
    let mut stealing: Vec<Path> = Vec::new();
    for key in keys {
        let last = |path: &Path| path.segments.last().map(|segment| segment.ident.clone());
        let declared = match queues {
            Queues::Single => key.is_ident("main"),
            Queues::Named(queues) => {
                is_name(&key) && queues.iter().any(|(name, _)| key.is_ident(name))
            }
            Queues::Typed(typed) => {
                !is_name(&key)
                    && display(&enum_of(&key)) == display(&typed.enum_path)
                    && (typed.incomplete
                        || typed
                            .variants
                            .iter()
                            .any(|(variant, _)| last(variant) == last(&key)))
            }
        };
        if !declared {
            let the_queues = match queues {
                Queues::Single => "without `queues(...)`, the only queue is `main`".to_owned(),
                Queues::Named(queues) => {
                    let names: Vec<String> =
                        queues.iter().map(|(name, _)| format!("`{name}`")).collect();
                    format!("the queues are {}", names.join(", "))
                }
                Queues::Typed(typed) => {
                    let variants: Vec<String> = typed
                        .variants
                        .iter()
                        .map(|(variant, _)| format!("`{}`", display(variant)))
                        .collect();
                    format!("the queues are {}", variants.join(", "))
                }
            };
            errors.push(syn::Error::new_spanned(
                &key,
                format!(
                    "`{}` is not a queue of this `#[clockworker::{}]`: `stealing(...)` names \
                     queues of `queues(...)`; {the_queues}",
                    display(&key),
                    entry.name()
                ),
            ));
            continue;
        }
        if stealing.iter().any(|earlier| last(earlier) == last(&key)) {
            errors.push(syn::Error::new_spanned(
                &key,
                format!(
                    "queue `{}` is given twice in `stealing(...)`; name each queue once",
                    display(&key)
                ),
            ));
            continue;
        }
        stealing.push(key);
    }
    stealing
}

/// The string of a string literal.
fn string(value: &Expr) -> Option<String> {
    match value {
        Expr::Lit(ExprLit {
            lit: Lit::Str(lit), ..
        }) => Some(lit.value()),
        _ => None,
    }
}

fn crate_path(value: &Expr) -> syn::Result<Path> {
    match value {
        Expr::Lit(ExprLit {
            lit: Lit::Str(lit), ..
        }) => lit.parse_with(Path::parse_mod_style).map_err(|_| {
            syn::Error::new_spanned(
                lit,
                format!(
                    "`{}` is not a path; {CRATE_VALUE}",
                    lit.value().escape_default()
                ),
            )
        }),
        _ => Err(syn::Error::new_spanned(value, CRATE_VALUE)),
    }
}

/// `a::b::C` as written, without spaces.
pub(crate) fn display(path: &Path) -> String {
    let segments: Vec<String> = path
        .segments
        .iter()
        .map(|segment| segment.ident.to_string())
        .collect();
    let leading = if path.leading_colon.is_some() {
        "::"
    } else {
        ""
    };
    format!("{leading}{}", segments.join("::"))
}

/// `Queue` in `Queue::Foreground`.
fn enum_of(path: &Path) -> Path {
    let mut enum_path = path.clone();
    enum_path.segments.pop();
    enum_path.segments.pop_punct();
    enum_path
}

fn is_name(key: &Path) -> bool {
    key.leading_colon.is_none() && key.segments.len() == 1
}

fn queues(
    list: Span,
    entries: syn::punctuated::Punctuated<QueueEntry, syn::Token![,]>,
    errors: &mut Errors,
) -> Queues {
    let Some(first) = entries.first() else {
        errors.push(syn::Error::new(
            list,
            "no queues given: list at least one, such as `queues(fg = 8, bg = 1)`, \
             or leave `queues` out for a single queue",
        ));
        return Queues::Single;
    };
    if is_name(&first.key) {
        Queues::Named(named(entries, errors))
    } else {
        typed(list, entries, errors)
    }
}

/// The quick form: every key a name.
fn named(
    entries: syn::punctuated::Punctuated<QueueEntry, syn::Token![,]>,
    errors: &mut Errors,
) -> Vec<(Ident, Weight)> {
    let first = entries.first().map(|entry| display(&entry.key));
    let mut queues: Vec<(Ident, Weight)> = Vec::new();
    for entry in entries {
        let Some(name) = entry.key.get_ident().filter(|_| is_name(&entry.key)) else {
            errors.push(mixed(
                &entry.key,
                first.as_deref().unwrap_or_default(),
                true,
            ));
            continue;
        };
        let weight = weight(&entry, errors);
        if queues.iter().any(|(earlier, _)| earlier == name) {
            errors.push(syn::Error::new_spanned(
                name,
                format!("queue `{name}` is given twice; give each queue one weight"),
            ));
            continue;
        }
        queues.push((name.clone(), weight));
    }
    queues
}

/// The typed form: every key a variant of one enum.
fn typed(
    list: Span,
    entries: syn::punctuated::Punctuated<QueueEntry, syn::Token![,]>,
    errors: &mut Errors,
) -> Queues {
    let first = entries
        .first()
        .map(|entry| entry.key.clone())
        .unwrap_or_else(|| syn::parse_quote!(Queue));
    let enum_path = enum_of(&first);
    let enum_name = display(&enum_path);
    let mut variants: Vec<(Path, Weight)> = Vec::new();
    let mut incomplete = false;
    for entry in entries {
        let key = &entry.key;
        if is_name(key) {
            errors.push(mixed(key, &display(&first), false));
            incomplete = true;
            continue;
        }
        if key.segments.len() < 2 {
            errors.push(syn::Error::new_spanned(
                key,
                format!("expected a variant of an enum, such as `{enum_name}::Foreground`"),
            ));
            incomplete = true;
            continue;
        }
        if display(&enum_of(key)) != enum_name {
            errors.push(syn::Error::new_spanned(
                key,
                format!(
                    "`{}` is not a variant of `{enum_name}`, the enum of `{}`: the queues \
                     of a typed `queues(...)` are all variants of one enum",
                    display(key),
                    display(&first)
                ),
            ));
            incomplete = true;
            continue;
        }
        let weight = weight(&entry, errors);
        let variant = key.segments.last().map(|segment| &segment.ident);
        if variants
            .iter()
            .any(|(earlier, _)| earlier.segments.last().map(|segment| &segment.ident) == variant)
        {
            errors.push(syn::Error::new_spanned(
                key,
                format!(
                    "queue `{}` is given twice; give each queue one weight",
                    display(key)
                ),
            ));
            continue;
        }
        variants.push((key.clone(), weight));
    }
    Queues::Typed(Typed {
        list,
        enum_path,
        variants,
        incomplete,
    })
}

/// A key of the other form than the first one.
fn mixed(key: &Path, first: &str, first_is_name: bool) -> syn::Error {
    let (typed, named) = if first_is_name {
        (display(key), first.to_owned())
    } else {
        (first.to_owned(), display(key))
    };
    syn::Error::new_spanned(
        key,
        format!(
            "the typed form (`{typed} = ..`) and the quick form (`{named} = ..`) cannot be \
             mixed in one `queues(...)`: write every queue as `Enum::Variant = weight`, or \
             every queue as `name = weight`"
        ),
    )
}

/// The weight of `entry`, or 1 after reporting why it is not valid.
fn weight(entry: &QueueEntry, errors: &mut Errors) -> Weight {
    let key = display(&entry.key);
    let Some(weight) = &entry.weight else {
        errors.push(syn::Error::new_spanned(
            &entry.key,
            format!(
                "queue `{key}` has no weight: write `{key} = 1` (a weight is the queue's \
                 share of the CPU relative to the other queues)"
            ),
        ));
        return Weight {
            value: 1,
            span: entry.key.span(),
        };
    };
    let span = weight.span();
    let fallback = Weight { value: 1, span };
    let lit = match weight {
        Expr::Lit(ExprLit {
            lit: Lit::Int(lit), ..
        }) => lit,
        Expr::Unary(ExprUnary {
            op: UnOp::Neg(_), ..
        }) => {
            errors.push(syn::Error::new_spanned(
                weight,
                format!(
                    "a weight cannot be negative: give `{key}` a positive integer, such as \
                     `{key} = 1`"
                ),
            ));
            return fallback;
        }
        _ => {
            errors.push(syn::Error::new_spanned(
                weight,
                format!(
                    "the weight of `{key}` must be an integer literal from 1 to {MAX_WEIGHT}, \
                     such as `{key} = 8`"
                ),
            ));
            return fallback;
        }
    };
    match lit.base10_parse::<u32>() {
        Ok(0) => errors.push(syn::Error::new_spanned(
            lit,
            format!(
                "a weight must be at least 1: write `{key} = 1` for the smallest share \
                 (weights are relative CPU shares)"
            ),
        )),
        Ok(value) if value <= MAX_WEIGHT => return Weight { value, span },
        _ => errors.push(syn::Error::new_spanned(
            lit,
            format!("weights go up to {MAX_WEIGHT}: give `{key}` a smaller weight"),
        )),
    }
    fallback
}

/// Checks the function the attribute is on.
pub(crate) fn signature(function: &ItemFn, entry: Entry, errors: &mut Errors) {
    let sig = &function.sig;
    let name = &sig.ident;
    if sig.asyncness.is_none() {
        errors.push(syn::Error::new_spanned(
            sig.fn_token,
            format!(
                "the `async` keyword is missing: `#[clockworker::{}]` goes on an `async fn`; \
                 write `async fn {name}()`",
                entry.name()
            ),
        ));
    }
    if !sig.inputs.is_empty() {
        errors.push(syn::Error::new_spanned(
            &sig.inputs,
            format!(
                "`#[clockworker::{}]` functions take no arguments: write `async fn {name}()`",
                entry.name()
            ),
        ));
    }
    if entry == Entry::Test
        && let Some(test) = function
            .attrs
            .iter()
            .find(|attr| attr.path().is_ident("test"))
    {
        errors.push(syn::Error::new_spanned(
            test,
            "`#[clockworker::test]` already makes this function a test: remove this `#[test]`",
        ));
    }
}

/// In the quick form, `spawn!(name, ..)` in the body where `name` is not a
/// declared queue: reported here, with what to write, rather than as an
/// unknown value.
///
/// A name counts as undeclared only if nothing else in the body mentions it
/// (a `let`, a pattern, a closure's parameter would) and it is not
/// upper-case (a constant key such as `BG` is fine): then it can only be
/// meant as one of the function's queues.
pub(crate) fn spawn_names(
    function: &ItemFn,
    config: &mut Config,
    entry: Entry,
    errors: &mut Errors,
) {
    let Queues::Named(queues) = &config.queues else {
        return;
    };
    let body = function.block.to_token_stream();
    let mut targets = Vec::new();
    spawn_targets(body.clone(), &mut targets);
    let mut mentions = HashMap::new();
    count_idents(body, &mut mentions);
    let declared: Vec<String> = queues.iter().map(|(name, _)| name.to_string()).collect();
    for target in &targets {
        let name = target.to_string();
        let as_target = targets.iter().filter(|other| *other == target).count();
        if declared.contains(&name)
            || mentions.get(&name).copied().unwrap_or(0) > as_target
            || !name.starts_with(|c: char| c.is_lowercase() || c == '_')
        {
            continue;
        }
        let with_it: Vec<String> = queues
            .iter()
            .map(|(name, weight)| format!("{name} = {}", weight.value))
            .chain([format!("{name} = 1")])
            .collect();
        let list = declared
            .iter()
            .map(|name| format!("`{name}`"))
            .collect::<Vec<_>>();
        errors.push(syn::Error::new_spanned(
            target,
            format!(
                "`{name}` is not a queue of this `#[clockworker::{}]`: declare it, as in \
                 `queues({})`, or spawn onto a declared queue: {}",
                entry.name(),
                with_it.join(", "),
                list.join(", ")
            ),
        ));
        if !config.undeclared.contains(target) {
            config.undeclared.push(target.clone());
        }
    }
}

/// The first argument of every `spawn!(ident, ..)` in `tokens`, when it is
/// a lone identifier.
fn spawn_targets(tokens: TokenStream, targets: &mut Vec<Ident>) {
    let tokens: Vec<TokenTree> = tokens.into_iter().collect();
    for (i, token) in tokens.iter().enumerate() {
        match token {
            TokenTree::Ident(ident) if ident == "spawn" => {
                if let (Some(TokenTree::Punct(bang)), Some(TokenTree::Group(args))) =
                    (tokens.get(i + 1), tokens.get(i + 2))
                    && bang.as_char() == '!'
                {
                    let args: Vec<TokenTree> = args.stream().into_iter().take(2).collect();
                    if let [TokenTree::Ident(target), TokenTree::Punct(comma)] = args.as_slice()
                        && comma.as_char() == ','
                    {
                        targets.push(target.clone());
                    }
                }
            }
            TokenTree::Group(group) => spawn_targets(group.stream(), targets),
            _ => {}
        }
    }
}

/// How many times each identifier occurs in `tokens`.
fn count_idents(tokens: TokenStream, counts: &mut HashMap<String, usize>) {
    for token in tokens {
        match token {
            TokenTree::Ident(ident) => *counts.entry(ident.to_string()).or_default() += 1,
            TokenTree::Group(group) => count_idents(group.stream(), counts),
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{duration, workers};

    fn parse(value: &str) -> Result<u64, String> {
        let value: syn::Expr = syn::parse_str(value).unwrap();
        duration("time_slice", &value).map_err(|error| error.to_string())
    }

    #[test]
    fn durations_in_every_unit() {
        assert_eq!(parse(r#""0us""#), Ok(0));
        assert_eq!(parse(r#""7ns""#), Ok(7));
        assert_eq!(parse(r#""200us""#), Ok(200_000));
        assert_eq!(parse("\"200\u{b5}s\""), Ok(200_000));
        assert_eq!(parse("\"200\u{3bc}s\""), Ok(200_000));
        assert_eq!(parse(r#""1ms""#), Ok(1_000_000));
        assert_eq!(parse(r#""3s""#), Ok(3_000_000_000));
        assert_eq!(parse(r#""18446744073709551615ns""#), Ok(u64::MAX));
    }

    #[test]
    fn each_malformed_duration_says_what_to_write() {
        let cases = [
            (r#""5 parsecs""#, "unknown unit `parsecs`"),
            (r#""5""#, "has no unit: write `time_slice = \"5us\"`"),
            (r#""5 us""#, "without a space: `time_slice = \"5us\"`"),
            (r#""1.5ms""#, "is not a whole number"),
            (r#""us""#, "is not a duration"),
            (r#""""#, "is not a duration"),
            (r#""-1ms""#, "is negative"),
            (r#""18446744074s""#, "is too long"),
            (r#""18446744073709551616ns""#, "is too long"),
            ("5", "a duration needs a unit"),
            ("-5", "expected `time_slice = \"100us\"`"),
            ("fast", "expected `time_slice = \"100us\"`"),
        ];
        for (value, expected) in cases {
            let error = parse(value).expect_err(value);
            assert!(error.contains(expected), "{value}: {error}");
        }
    }

    fn worker_count(value: &str) -> Result<usize, String> {
        let value: syn::Expr = syn::parse_str(value).unwrap();
        workers(&value).map_err(|error| error.to_string())
    }

    #[test]
    fn worker_counts() {
        assert_eq!(worker_count("1"), Ok(1));
        assert_eq!(worker_count("4"), Ok(4));
        assert_eq!(worker_count("8usize"), Ok(8));
        let cases = [
            ("0", "a pool needs at least one worker"),
            ("-2", "cannot be negative"),
            (r#""4""#, "without quotes, `workers = 4`"),
            (r#""x""#, "expected an integer literal"),
            ("2.5", "expected an integer literal"),
            ("n", "expected an integer literal"),
            ("99999999999999999999999", "is too many"),
        ];
        for (value, expected) in cases {
            let error = worker_count(value).expect_err(value);
            assert!(error.contains(expected), "{value}: {error}");
        }
    }
}
