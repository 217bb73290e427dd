//! The engine: given a checked workflow, the state of cards and agents, one
//! event and the current time, it returns the effects (moves, assignments,
//! field changes, replies, notes, notifications, timers), each with its
//! cause. Pure: no database, no network, no clock — time is passed in.

mod assign;
pub mod calendar;
pub mod conversation;
pub mod engine;
mod eval;
pub mod event;
mod plan;
mod sla;
pub mod state;
pub mod view;

pub use engine::{Engine, MAX_CHAIN};
pub use event::{AssignTo, Effect, EffectKind, Event, Inbound, LogEntry, Outcome, ReplyBody};
pub use state::{Card, CardId, Cause, State};
