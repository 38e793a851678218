//! Procedural macros for `clockworker`. Use them through the `clockworker` crate.
