//! Switchboard's workflow language: `.flow` text in, a checked [`model::Workflow`]
//! and [`Diagnostic`]s out. Pure: no file, network or clock access; callers
//! hand in the texts ([`Sources`]).

pub mod ast;
pub mod codes;
pub mod diagnostic;
pub mod fmt;
pub mod parse;
pub mod share;
pub mod source;

pub use diagnostic::{Diagnostic, Severity};
pub use source::{FileId, Sources, Span};
pub mod check;
pub mod model;
mod template;
pub mod values;

pub use check::{check, Checked, Loader, MemoryLoader};
