//! Any text: the checker and the formatter must not panic, and formatting
//! must keep the meaning.
#![no_main]

use libfuzzer_sys::fuzz_target;
use switchboard_lang::{check, fmt, parse, FileId, MemoryLoader, Sources};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let mut sources = Sources::new();
    sources.add("fuzz.flow", text);
    let _ = check(&mut sources, &MemoryLoader::default());
    if let Ok(out) = fmt::format(text) {
        let (a, _) = parse::parse(FileId(0), text);
        let (b, d) = parse::parse(FileId(0), &out);
        assert!(d.is_empty());
        assert_eq!(a, b);
    }
});
