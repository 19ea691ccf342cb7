//! Planning what clients write: variables, fragments, aliases, conditions, mutations.

// Tests fail by panicking; helpers outside #[test] functions do too.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{fixture_supergraph, plan_text};

#[test]
fn variables_are_declared_in_the_fetches_that_use_them() {
    let sg = fixture_supergraph();
    insta::assert_snapshot!(plan_text(
        &sg,
        "query Top($n: Int, $withReviews: Boolean!) { topProducts(first: $n) { name reviews @include(if: $withReviews) { body } } }"
    ));
}

#[test]
fn named_fragments_and_aliases_are_inlined_into_subgraph_operations() {
    let sg = fixture_supergraph();
    insta::assert_snapshot!(plan_text(
        &sg,
        "query { best: topProducts(first: 1) { ...P } } fragment P on Product { title: name price { amount } }"
    ));
}

#[test]
fn root_fragments_with_conditions_are_split_per_subgraph() {
    let sg = fixture_supergraph();
    insta::assert_snapshot!(plan_text(
        &sg,
        "query ($x: Boolean!) { ... @skip(if: $x) { me { name } topProducts { name } } }"
    ));
}

#[test]
fn mutation_root_fields_run_in_order_each_with_their_own_follow_ups() {
    let sg = fixture_supergraph();
    let plan = plan_text(
        &sg,
        "mutation { a: createProduct(upc: \"1\", name: \"x\") { name reviews { body } } b: rename(id: \"u\", name: \"n\") { name } c: addReview(upc: \"1\", body: \"ok\") { body product { name } } }",
    );
    assert!(plan.starts_with("QueryPlan {\n  Sequence {"), "{plan}");
    insta::assert_snapshot!(plan);
}

#[test]
fn typename_and_introspection_at_the_root_need_no_fetch() {
    let sg = fixture_supergraph();
    assert_eq!(
        plan_text(&sg, "{ __typename __schema { queryType { name } } }"),
        "QueryPlan {\n}"
    );
}

#[test]
fn a_subscription_streams_from_its_owner_and_fetches_the_rest_per_event() {
    let sg = fixture_supergraph();
    insta::assert_snapshot!(plan_text(
        &sg,
        "subscription Live($upc: String) { reviewAdded(upc: $upc) { body author { name } product { name price { amount currency } } } }"
    ));
}

#[test]
fn a_subscription_of_one_subgraph_only_is_a_bare_stream() {
    let sg = fixture_supergraph();
    insta::assert_snapshot!(plan_text(&sg, "subscription { reviewAdded { id body } }"));
}
