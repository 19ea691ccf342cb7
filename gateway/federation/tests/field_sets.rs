//! Field sets in a supergraph are read with the GraphQL grammar: one the planner can
//! follow is planned, one it cannot is refused where it is used with a coded error (never
//! dropped), and one that does not fit its type refuses the supergraph at load.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use shop_federation::{SubgraphSource, Supergraph, compose};

const LINK: &str = "extend schema @link(url: \"https://specs.apollo.dev/federation/v2.8\", import: [\"@key\", \"@external\", \"@requires\"])\n";

fn supergraph_text() -> String {
    let sources = vec![
        SubgraphSource {
            name: "prices".into(),
            url: "http://prices.test/graphql".into(),
            sdl: format!(
                "{LINK}type Query {{ items: [Item!]! }} type Item @key(fields: \"id\") {{ id: ID! price(currency: String): Int }}"
            ),
        },
        SubgraphSource {
            name: "shipping".into(),
            url: "http://shipping.test/graphql".into(),
            sdl: format!(
                "{LINK}type Item @key(fields: \"id\") {{ id: ID! price(currency: String): Int @external fee: Int @requires(fields: \"price\") }}"
            ),
        },
    ];
    compose(&sources).expect("composes")
}

fn plan(sg: &Supergraph, query: &str) -> Result<String, String> {
    let doc = apollo_compiler::ExecutableDocument::parse_and_validate(&sg.api, query, "q.graphql")
        .unwrap_or_else(|e| panic!("invalid test operation: {}", e.errors));
    let op = shop_federation::normalize(&sg.api, &doc, None).expect("normalize");
    shop_federation::plan(sg, &op)
        .map(|p| p.to_string())
        .map_err(|e| e.to_string())
}

#[test]
fn a_plain_requires_is_planned_with_its_input() {
    let sg = Supergraph::parse(&supergraph_text()).unwrap();
    let text = plan(&sg, "{ items { fee } }").unwrap();
    assert!(
        text.contains("... on Item { __typename id price }"),
        "the representation carries the input:\n{text}"
    );
}

#[test]
fn a_requires_with_arguments_is_fetched_under_an_alias_and_carried_by_name() {
    let sdl = supergraph_text().replace(
        "requires: \"price\"",
        "requires: \"price(currency: \\\"USD\\\")\"",
    );
    assert!(
        sdl.contains("currency: \\\"USD\\\""),
        "the test rewrote the requires"
    );
    let sg = Supergraph::parse(&sdl).expect("a valid field set loads");
    let text = plan(&sg, "{ items { fee } }").unwrap();
    assert!(
        text.contains("price__requires_f3658348: price(currency: \"USD\")"),
        "the input is fetched with its argument, under an alias:\n{text}"
    );
    assert!(
        text.contains(
            "... on Item { __typename id price__requires_f3658348: price(currency: \"USD\") }"
        ),
        "the representation reads it from the alias:\n{text}"
    );
}

#[test]
fn a_field_set_that_does_not_fit_its_type_refuses_the_supergraph() {
    for (from, to) in [
        ("requires: \"price\"", "requires: \"cost\""),
        ("requires: \"price\"", "requires: \"price(currency: 3)\""),
        ("requires: \"price\"", "requires: \"price {\""),
        ("key: \"id\"", "key: \"id name\""),
    ] {
        let sdl = supergraph_text().replacen(from, to, 1);
        assert_ne!(sdl, supergraph_text(), "the test rewrote {from}");
        let err = match Supergraph::parse(&sdl) {
            Ok(_) => panic!("{to} was accepted"),
            Err(e) => e.to_string(),
        };
        assert!(err.contains("invalid field set on @"), "{to}: {err}");
    }
}
