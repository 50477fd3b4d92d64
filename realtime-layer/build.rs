//! Rebuilds the crate when anything under `static/` changes, new files included: `include_dir!`
//! embeds the dashboard at compile time, and without this cargo only notices edits to files it
//! already tracked.

fn main() {
    println!("cargo:rerun-if-changed=static");
}
