//! Shared helpers for the planner tests: fixtures on disk composed into a supergraph.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use shop_federation::{SubgraphSource, Supergraph};

pub fn fixture_supergraph() -> Supergraph {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures");
    let sources: Vec<SubgraphSource> = ["accounts", "products", "reviews", "inventory"]
        .iter()
        .map(|name| SubgraphSource {
            name: name.to_string(),
            url: format!("http://{name}.test/graphql"),
            sdl: std::fs::read_to_string(format!("{dir}/{name}.graphql")).expect("fixture"),
        })
        .collect();
    let sdl = shop_federation::compose(&sources).expect("fixtures compose");
    Supergraph::parse(&sdl).expect("composed supergraph loads")
}

pub fn shop_supergraph() -> Supergraph {
    let sdl = include_str!("../../../../schema/supergraph.graphql");
    Supergraph::parse(sdl).expect("checked-in supergraph loads")
}

/// Validates, normalizes and plans; returns the plan's text form.
pub fn plan_text(sg: &Supergraph, query: &str) -> String {
    let doc = apollo_compiler::ExecutableDocument::parse_and_validate(&sg.api, query, "q.graphql")
        .unwrap_or_else(|e| panic!("invalid test operation: {}", e.errors));
    let op = shop_federation::normalize(&sg.api, &doc, None).expect("normalize");
    shop_federation::plan(sg, &op).expect("plan").to_string()
}
