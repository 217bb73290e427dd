//! What the engine tests share: a checked workflow from a text.

use switchboard_engine::Engine;
use switchboard_lang::{check, MemoryLoader, Sources};

/// An engine for one `.flow` text, which must check without errors.
pub fn engine_for(flow: &str) -> Engine {
    let mut sources = Sources::new();
    sources.add("t.flow", flow);
    let checked = check(&mut sources, &MemoryLoader::default());
    assert!(
        !checked.has_errors(),
        "{}",
        switchboard_lang::diagnostic::render(&checked.diagnostics, &sources)
    );
    Engine::new(checked.workflow)
}
