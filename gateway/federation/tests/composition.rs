//! Composition: what composes, and the errors for what does not.

// Tests fail by panicking; helpers outside #[test] functions do too.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use shop_federation::{ComposeError, SubgraphSource, Supergraph, compose};

fn src(name: &str, sdl: &str) -> SubgraphSource {
    SubgraphSource {
        name: name.into(),
        url: format!("http://{name}.test/graphql"),
        sdl: sdl.into(),
    }
}

const LINK: &str = "extend schema @link(url: \"https://specs.apollo.dev/federation/v2.5\", import: [\"@key\", \"@shareable\", \"@external\", \"@inaccessible\"])\n";

fn errors(subgraphs: &[SubgraphSource]) -> Vec<String> {
    match compose(subgraphs) {
        Err(ComposeError::Incompatible(e)) => e,
        other => panic!("expected composition errors, got {other:?}"),
    }
}

#[test]
fn the_supergraph_declares_link_and_join_and_records_each_subgraph() {
    let sdl = compose(&[
        src(
            "a",
            &format!(
                "{LINK} type Query {{ t: T }} type T @key(fields: \"id\") {{ id: ID! x: Int }}"
            ),
        ),
        src(
            "b",
            &format!("{LINK} type T @key(fields: \"id\") {{ id: ID! y: Int }}"),
        ),
    ])
    .expect("composes");
    assert!(sdl.contains("@link(url: \"https://specs.apollo.dev/join/v0.5\", for: EXECUTION)"));
    assert!(sdl.contains("A @join__graph(name: \"a\", url: \"http://a.test/graphql\")"));
    assert!(
        sdl.contains(
            "type T @join__type(graph: A, key: \"id\") @join__type(graph: B, key: \"id\")"
        )
    );
    assert!(sdl.contains("y: Int @join__field(graph: B)"));
    let sg = Supergraph::parse(&sdl).expect("loads");
    let none = shop_federation::Labels::new();
    assert!(sg.can_resolve("T", "y", 1, &none) && !sg.can_resolve("T", "y", 0, &none));
}

#[test]
fn a_field_resolved_by_two_subgraphs_must_be_shareable() {
    let e = errors(&[
        src(
            "a",
            &format!("{LINK} type Query {{ v: V }} type V {{ x: Int }}"),
        ),
        src(
            "b",
            &format!("{LINK} type Query {{ w: V }} type V {{ x: Int }}"),
        ),
    ]);
    assert_eq!(
        e,
        vec!["field V.x is resolved by subgraphs a, b but is not @shareable in a, b".to_string()]
    );
}

#[test]
fn shareable_value_types_compose() {
    compose(&[
        src(
            "a",
            &format!("{LINK} type Query {{ v: V }} type V @shareable {{ x: Int }}"),
        ),
        src(
            "b",
            &format!("{LINK} type Query {{ w: V }} type V @shareable {{ x: Int }}"),
        ),
    ])
    .expect("composes");
}

#[test]
fn a_type_has_one_kind_everywhere() {
    let e = errors(&[
        src(
            "a",
            &format!("{LINK} type Query {{ v: V }} type V {{ x: Int }}"),
        ),
        src(
            "b",
            &format!("{LINK} type Query {{ w: Int }} enum V {{ A B }}"),
        ),
    ]);
    assert!(
        e.iter()
            .any(|m| m == "type V is an object type in subgraph 'a' but an enum in subgraph 'b'"),
        "{e:?}"
    );
}

#[test]
fn field_types_must_agree_across_subgraphs() {
    let e = errors(&[
        src(
            "a",
            &format!(
                "{LINK} type Query {{ t: T }} type T @key(fields: \"id\") {{ id: ID! n: Int @shareable }}"
            ),
        ),
        src(
            "b",
            &format!("{LINK} type T @key(fields: \"id\") {{ id: ID! n: String @shareable }}"),
        ),
    ]);
    assert!(
        e.iter()
            .any(|m| m
                .starts_with("field T.n has type Int in subgraph 'a' but String in subgraph 'b'")),
        "{e:?}"
    );
}

#[test]
fn keys_must_name_fields_of_the_type() {
    let e = errors(&[src(
        "a",
        &format!("{LINK} type Query {{ t: T }} type T @key(fields: \"nope\") {{ id: ID! }}"),
    )]);
    assert!(
        e.iter()
            .any(|m| m.contains("names field 'nope' the subgraph does not define")),
        "{e:?}"
    );
}

#[test]
fn external_fields_need_a_resolving_subgraph_and_unknown_types_are_refused() {
    let e = errors(&[src(
        "a",
        &format!(
            "{LINK} type Query {{ t: T }} type T @key(fields: \"id\") {{ id: ID! x: Int @external y: Missing }}"
        ),
    )]);
    assert!(
        e.iter()
            .any(|m| m
                .contains("field T.x is @external in subgraph(s) a but no subgraph resolves it")),
        "{e:?}"
    );
    assert!(
        e.iter()
            .any(|m| m.contains("field T.y has type Missing, which no subgraph defines")),
        "{e:?}"
    );
}

#[test]
fn invalid_sdl_names_the_subgraph() {
    match compose(&[src("broken", "type Query {")]) {
        Err(ComposeError::Parse { subgraph, .. }) => assert_eq!(subgraph, "broken"),
        other => panic!("expected a parse error, got {other:?}"),
    }
}

#[test]
fn inaccessible_elements_are_in_the_supergraph_but_not_the_api_schema() {
    let sdl = compose(&[src(
        "a",
        &format!("{LINK} type Query {{ t: T secret: Int @inaccessible }} type T {{ id: ID! internal: String @inaccessible }}"),
    )])
    .expect("composes");
    assert!(sdl.contains("secret: Int @inaccessible"));
    let sg = Supergraph::parse(&sdl).expect("loads");
    let api = sg.api.to_string();
    assert!(
        !api.contains("secret") && !api.contains("internal") && !api.contains("join__"),
        "{api}"
    );
    assert!(sg.schema.type_field("T", "internal").is_ok());
}
