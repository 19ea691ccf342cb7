//! The plan cache's byte bound holds for real memory, not only for its own estimate.
//! Alone in its test binary: the resident size it reads must not move with other tests.

// Tests fail by panicking; helpers outside #[test] functions do too.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use shop_federation::{SubgraphSource, Supergraph, compose};
use shop_gateway::{Gateway, GatewayOptions};

fn resident_bytes() -> usize {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap();
    statm.split(' ').nth(1).unwrap().parse::<usize>().unwrap() * 4096
}

/// A distinct operation of about 28 KB that stays within every operation limit.
fn dense_operation(i: usize) -> String {
    let mut q = format!("query Q{i} {{ ");
    while q.len() < 28_000 {
        q.push_str("... on Query { topProducts(first: 1) { name upc } } ");
    }
    q.push('}');
    q
}

#[tokio::test(flavor = "multi_thread")]
async fn many_large_distinct_operations_stay_within_the_cache_budget() {
    let sdl = compose(&[SubgraphSource {
        name: "products".into(),
        url: "http://127.0.0.1:9/graphql".into(),
        sdl: "extend schema @link(url: \"https://specs.apollo.dev/federation/v2.5\", import: [\"@key\"]) \
              type Query { topProducts(first: Int): [Product!]! } \
              type Product @key(fields: \"upc\") { upc: String! name: String! }"
            .into(),
    }])
    .unwrap();
    let budget = 4 * 1024 * 1024;
    let gw = Gateway::new(
        Supergraph::parse(&sdl).unwrap(),
        GatewayOptions {
            plan_cache_bytes: budget,
            ..Default::default()
        },
    );
    // Warm up allocator arenas and the runtime with a few operations first.
    for i in 0..5 {
        gw.prepare(&dense_operation(1_000 + i), None).await.unwrap();
    }
    let before = resident_bytes();
    // Kept without a byte bound these pin about 27 bytes per byte of text: over 60 MB.
    for i in 0..80 {
        gw.prepare(&dense_operation(i), None).await.unwrap();
    }
    let grown = resident_bytes().saturating_sub(before);
    assert!(gw.cached_bytes() <= budget, "{}", gw.cached_bytes());
    assert!(
        grown < 24 * 1024 * 1024,
        "resident memory grew by {grown} bytes with a {budget}-byte cache"
    );
}
