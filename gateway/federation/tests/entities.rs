//! Planning across entities: jumps to other subgraphs by key, nesting, batching.

// Tests fail by panicking; helpers outside #[test] functions do too.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{fixture_supergraph, plan_text, shop_supergraph};

#[test]
fn a_single_subgraph_query_is_one_fetch() {
    let sg = fixture_supergraph();
    insta::assert_snapshot!(plan_text(&sg, "{ me { id name } }"));
}

#[test]
fn fields_of_another_subgraph_become_an_entity_fetch_under_flatten() {
    let sg = fixture_supergraph();
    insta::assert_snapshot!(plan_text(&sg, "{ topProducts { name reviews { body } } }"));
}

#[test]
fn entity_chains_nest_three_levels_deep_and_come_back() {
    let sg = fixture_supergraph();
    insta::assert_snapshot!(plan_text(
        &sg,
        "{ topProducts(first: 3) { name reviews { body author { name reviews { product { name } } } } } }"
    ));
}

#[test]
fn the_key_the_target_can_resolve_is_chosen_among_several() {
    // inventory only knows Product by "sku brand", not by "upc".
    let sg = fixture_supergraph();
    insta::assert_snapshot!(plan_text(&sg, "{ product(upc: \"1\") { name inStock } }"));
}

#[test]
fn fields_for_the_same_subgraph_at_the_same_path_share_one_fetch() {
    let sg = fixture_supergraph();
    let plan = plan_text(&sg, "{ topProducts { inStock name stock } }");
    assert_eq!(
        plan.matches("Fetch(service: \"inventory\")").count(),
        1,
        "{plan}"
    );
    insta::assert_snapshot!(plan);
}

#[test]
fn independent_root_fields_of_different_subgraphs_run_in_parallel() {
    let sg = fixture_supergraph();
    insta::assert_snapshot!(plan_text(&sg, "{ me { name } topProducts { name } }"));
}

#[test]
fn shop_product_page_fetches_stock_from_inventory() {
    let sg = shop_supergraph();
    insta::assert_snapshot!(plan_text(
        &sg,
        "query ($id: ID!) { product(id: $id) { name price { amount currency } stock inStock catalog { name } } }"
    ));
}

#[test]
fn shop_listing_batches_stock_for_every_product_in_one_fetch() {
    let sg = shop_supergraph();
    insta::assert_snapshot!(plan_text(
        &sg,
        "{ products(first: 50) { totalCount edges { node { id name stock } } } }"
    ));
}

#[test]
fn shop_stock_level_reaches_back_into_catalog() {
    let sg = shop_supergraph();
    insta::assert_snapshot!(plan_text(
        &sg,
        "mutation ($p: ID!) { setStock(productId: $p, quantity: 3, reason: \"count\") { quantity product { name stock } } }"
    ));
}
