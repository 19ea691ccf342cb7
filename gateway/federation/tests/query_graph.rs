//! The query graph of a small supergraph: every kind of edge, snapshotted, and the key
//! paths the planner takes from it.

// Tests fail by panicking; the helper outside #[test] functions does too.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use shop_federation::{Labels, QueryGraph, SubgraphSource, Supergraph, compose};

const LINK: &str = "extend schema @link(url: \"https://specs.apollo.dev/federation/v2.8\", import: [\"@key\", \"@shareable\", \"@external\", \"@requires\", \"@provides\", \"@override\", \"@interfaceObject\"])\n";

fn supergraph() -> Supergraph {
    let subgraphs = [
        (
            "catalog",
            "type Query { products: [Product!]! media: [Media!]! }
             type Product @key(fields: \"upc\") { upc: ID! name: String weight: Int }
             interface Media @key(fields: \"id\") { id: ID! }
             type Book implements Media @key(fields: \"id\") { id: ID! title: String }",
        ),
        (
            "bridge",
            "type Product @key(fields: \"upc\") @key(fields: \"sku\") { upc: ID! sku: ID! }",
        ),
        (
            "stock",
            "type Product @key(fields: \"sku\") { sku: ID! weight: Int @external shipping: Int @requires(fields: \"weight\") }",
        ),
        (
            "reviews",
            "type Media @key(fields: \"id\") @interfaceObject { id: ID! stars: Int }
             type Review { body: String product: Product @provides(fields: \"name\") }
             type Product @key(fields: \"upc\") { upc: ID! name: String @external reviews: [Review!]! }",
        ),
    ];
    let sources: Vec<SubgraphSource> = subgraphs
        .iter()
        .map(|(name, sdl)| SubgraphSource {
            name: name.to_string(),
            url: format!("http://{name}"),
            sdl: format!("{LINK}{sdl}"),
        })
        .collect();
    Supergraph::parse(&compose(&sources).expect("composes")).expect("loads")
}

#[test]
fn the_query_graph_has_field_key_downcast_and_interface_object_edges() {
    let sg = supergraph();
    insta::assert_snapshot!(sg.query_graph().describe(&sg));
}

#[test]
fn key_paths_go_through_the_subgraph_that_bridges_two_keys() {
    let sg = supergraph();
    let g = |n: &str| sg.graph_index(n).unwrap();
    let qg = sg.query_graph();
    // catalog knows upc, stock only resolves by sku: through bridge.
    assert_eq!(
        qg.key_path("Product", g("catalog"), &[g("stock")]),
        Some(vec![g("bridge"), g("stock")])
    );
    // reviews resolves by upc: one jump.
    assert_eq!(
        qg.key_path("Product", g("catalog"), &[g("reviews")]),
        Some(vec![g("reviews")])
    );
    // Nothing reaches catalog's Book from reviews by a Book key (reviews has no Book).
    assert_eq!(qg.key_path("Book", g("reviews"), &[g("catalog")]), None);
}

#[test]
fn override_labels_change_the_graph_built_for_them() {
    let sources = [
        ("a", "type Query { products: [Product!]! } type Product @key(fields: \"id\") { id: ID! price: Int }"),
        ("b", "type Product @key(fields: \"id\") { id: ID! price: Int @override(from: \"a\", label: \"move-price\") }"),
    ]
    .map(|(name, sdl)| SubgraphSource {
        name: name.into(),
        url: format!("http://{name}"),
        sdl: format!("{LINK}{sdl}"),
    });
    let sg = Supergraph::parse(&compose(&sources).unwrap()).unwrap();
    let price_in = |qg: &QueryGraph, graph: &str| {
        qg.edges_from("Product", sg.graph_index(graph).unwrap())
            .any(|e| matches!(&e.kind, shop_federation::query_graph::EdgeKind::Field { name, .. } if name == "price"))
    };
    let off = sg.query_graph();
    assert!(price_in(off, "a") && !price_in(off, "b"));
    let on = QueryGraph::build(&sg, &Labels::from(["move-price".to_string()]));
    assert!(!price_in(&on, "a") && price_in(&on, "b"));
}
