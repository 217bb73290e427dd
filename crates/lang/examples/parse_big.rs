//! Parses a file many times (a profiling aid: `perf record` this).
fn main() {
    let path = std::env::args().nth(1).expect("usage: parse_big FILE");
    let text = std::fs::read_to_string(&path).expect("readable file");
    for _ in 0..3 {
        let (f, d) = switchboard_lang::parse::parse(switchboard_lang::FileId(0), &text);
        assert!(d.is_empty());
        std::hint::black_box(f);
    }
}
