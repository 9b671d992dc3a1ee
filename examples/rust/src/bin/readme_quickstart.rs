// The README's Rust quickstart, verbatim (extracted by build.rs).
include!(concat!(env!("OUT_DIR"), "/readme_quickstart.rs"));
