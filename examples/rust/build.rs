//! Extracts the README's Rust quickstart (the fenced block marked `rust quickstart`)
//! so that the `readme-quickstart` binary is built from exactly the text users copy.

use std::path::Path;

fn main() {
    let readme = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../README.md");
    println!("cargo:rerun-if-changed={}", readme.display());
    let text = std::fs::read_to_string(&readme).expect("read README.md");
    let block =
        fenced_block(&text, "rust quickstart").expect("README.md has a ```rust quickstart block");
    let out = Path::new(&std::env::var("OUT_DIR").unwrap()).join("readme_quickstart.rs");
    std::fs::write(out, block).expect("write the extracted quickstart");
}

/// The body of the first fenced block whose info string is `info`.
fn fenced_block(text: &str, info: &str) -> Option<String> {
    let mut lines = text.lines();
    lines.by_ref().find(|l| l.trim() == format!("```{info}"))?;
    let body: Vec<&str> = lines.take_while(|l| l.trim() != "```").collect();
    Some(body.join("\n") + "\n")
}
