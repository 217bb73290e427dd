//! Prints the syntax tree and parse errors of a file (a debugging aid).
fn main() {
    let path = std::env::args().nth(1).expect("usage: dump FILE");
    let text = std::fs::read_to_string(&path).expect("readable file");
    let mut sources = switchboard_lang::Sources::new();
    let id = sources.add(path.clone(), text.clone());
    let (file, diags) = switchboard_lang::parse::parse(id, &text);
    println!("{}", serde_json::to_string_pretty(&file).expect("json"));
    print!("{}", switchboard_lang::diagnostic::render(&diags, &sources));
}
