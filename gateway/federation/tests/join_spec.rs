//! Join directives the gateway does not read refuse the supergraph at load, with a
//! message naming them, instead of being silently dropped (a dropped `@join__owner`
//! would route fields to the wrong subgraph; a dropped `@connect` would answer nulls).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use shop_federation::{SubgraphSource, Supergraph, compose};

fn supergraph_text() -> String {
    let link = "extend schema @link(url: \"https://specs.apollo.dev/federation/v2.8\", import: [\"@key\"])\n";
    let sources = vec![
        SubgraphSource {
            name: "a".into(),
            url: "http://a.test/graphql".into(),
            sdl: format!(
                "{link}type Query {{ items: [Item!]! }} type Item @key(fields: \"id\") {{ id: ID! name: String }}"
            ),
        },
        SubgraphSource {
            name: "b".into(),
            url: "http://b.test/graphql".into(),
            sdl: format!("{link}type Item @key(fields: \"id\") {{ id: ID! price: Int }}"),
        },
    ];
    compose(&sources).expect("composes")
}

fn refusal(sdl: &str) -> String {
    match Supergraph::parse(sdl) {
        Ok(_) => panic!("the supergraph was accepted:\n{sdl}"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn the_supergraph_as_composed_loads() {
    Supergraph::parse(&supergraph_text()).expect("loads");
}

#[test]
fn a_connected_field_refuses_the_supergraph() {
    let sdl = supergraph_text()
        .replacen(
            "price: Int",
            "price: Int @join__directive(graphs: [B], name: \"connect\", args: {http: {GET: \"/price\"}})",
            1,
        );
    assert!(
        sdl.contains("name: \"connect\""),
        "the test added the directive"
    );
    let err = refusal(&sdl);
    assert!(
        err.contains("@join__directive(name: \"connect\") at Item.price"),
        "{err}"
    );
}

#[test]
fn a_link_to_the_connectors_spec_refuses_the_supergraph_and_others_load() {
    let with = |url: &str| {
        supergraph_text()
            .replacen(
                "schema\n",
                &format!("schema\n  @join__directive(graphs: [B], name: \"link\", args: {{url: \"{url}\"}})\n"),
                1,
            )
    };
    let connect = with("https://specs.apollo.dev/connect/v0.1");
    assert!(connect.contains("connect/v0.1"), "the test added the link");
    let err = refusal(&connect);
    assert!(err.contains("connect/v0.1"), "{err}");
    Supergraph::parse(&with("https://specs.example.dev/cache/v0.1"))
        .expect("a link to a spec that does not change execution loads");
}

#[test]
fn a_composed_directive_that_does_not_change_execution_loads() {
    let sdl = supergraph_text().replacen(
        "price: Int",
        "price: Int @join__directive(graphs: [B], name: \"cacheControl\", args: {maxAge: 30})",
        1,
    );
    assert!(sdl.contains("cacheControl"), "the test added the directive");
    Supergraph::parse(&sdl).expect("cache hints are the subgraph's own metadata");
}

#[test]
fn a_federation_1_supergraph_is_refused() {
    let sdl = r#"
schema @core(feature: "https://specs.apollo.dev/core/v0.1") @core(feature: "https://specs.apollo.dev/join/v0.1") { query: Query }
directive @core(feature: String!) repeatable on SCHEMA
directive @join__owner(graph: join__Graph!) on OBJECT | INTERFACE
directive @join__type(graph: join__Graph!, key: join__FieldSet) repeatable on OBJECT | INTERFACE
directive @join__field(graph: join__Graph, requires: join__FieldSet, provides: join__FieldSet) on FIELD_DEFINITION
directive @join__graph(name: String!, url: String!) on ENUM_VALUE
scalar join__FieldSet
enum join__Graph { A @join__graph(name: "a", url: "http://a.test") B @join__graph(name: "b", url: "http://b.test") }
type Query { items: [Item!]! @join__field(graph: A) }
type Item @join__owner(graph: A) @join__type(graph: A, key: "id") @join__type(graph: B, key: "id") {
  id: ID!
  name: String
  price: Int @join__field(graph: B)
}
"#;
    let err = refusal(sdl);
    assert!(err.contains("Federation 1 supergraph"), "{err}");
}

#[test]
fn a_join_directive_of_a_later_spec_refuses_the_supergraph() {
    let sdl = supergraph_text()
        .replacen(
            "directive @join__graph",
            "directive @join__cache(maxAge: Int) on FIELD_DEFINITION\ndirective @join__graph",
            1,
        )
        .replacen("price: Int", "price: Int @join__cache(maxAge: 5)", 1);
    assert!(sdl.contains("@join__cache(maxAge: 5)"), "the test added it");
    let err = refusal(&sdl);
    assert!(err.contains("@join__cache at Item.price"), "{err}");
}
