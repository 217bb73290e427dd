//! The WhatsApp Cloud API, as Switchboard meets it: webhook bodies parsed into
//! typed updates (anything unknown kept raw), the `X-Hub-Signature-256` check
//! and the subscription handshake, a Graph API client whose errors are sorted
//! into retry-later and never-retry, and a fake Graph API server (a real HTTP
//! server on a loopback port) for the tests and `serve --demo`.
//!
//! See `../shared/design/whatsapp.md` for the behaviour of Meta's API that
//! this crate is written against.

pub mod fake;
pub mod graph;
pub mod signature;
pub mod webhook;
