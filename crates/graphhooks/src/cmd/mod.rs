//! The subcommands, one module per group.

pub(crate) mod admin;
pub(crate) mod copy;
pub(crate) mod serve;
