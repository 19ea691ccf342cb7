//! `schema/` holds each subgraph's SDL and the supergraph; they must match the code.

// Tests fail by panicking; helpers outside #[test] functions do too.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[test]
fn checked_in_schema_files_match_the_code() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("schema");
    let files = shop::cli::composed_files().expect("compose");
    assert_eq!(files.len(), shop::subgraphs::SUBGRAPHS.len() + 1);
    for (name, text) in files {
        let on_disk = std::fs::read_to_string(dir.join(&name)).unwrap_or_default();
        assert!(
            on_disk == text,
            "schema/{name} is out of date: run `cargo run -- compose`"
        );
    }
}
