//! Demand control through real HTTP, on a supergraph composed from a subgraph that
//! declares `@cost` and `@listSize` (Federation 2.9): estimates of worked examples
//! done by hand from the cost directives specification's rules, refusals over the
//! budget (default and per client) before any subgraph call, and the actual cost
//! counted in the answer.

// Tests fail by panicking; helpers outside #[test] functions do too.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use serde_json::{Value, json};
use shop_federation::{SubgraphSource, Supergraph, compose};
use shop_gateway::cost::CostOptions;
use shop_gateway::{Gateway, GatewayOptions};

const SDL: &str = r#"
extend schema @link(url: "https://specs.apollo.dev/federation/v2.9", import: ["@key", "@cost", "@listSize"])

type Query {
  book(id: ID!): Book
  books(first: Int, after: String): [Book!]! @listSize(slicingArguments: ["first"], assumedSize: 50)
  bestsellers: [Book!]! @listSize(assumedSize: 5)
  shelves: [Shelf!]!
  search(term: String! @cost(weight: 20)): [Book!]! @listSize(assumedSize: 3)
  library(first: Int): BookConnection @listSize(slicingArguments: ["first"], sizedFields: ["edges"])
  media: [Media!]! @listSize(assumedSize: 2)
}

type Mutation {
  addBook(title: String!): Book
}

type Book {
  id: ID!
  title: String
  author: Author @cost(weight: 5)
  publisher: Publisher
}

type Author { name: String }
type Publisher { name: String address: Address }
type Address @cost(weight: 3) { zip: String }
type Shelf { books: [Book!]! }
type BookConnection { edges: [BookEdge!]! pageInfo: PageInfo }
type BookEdge { node: Book }
type PageInfo { hasNext: Boolean }
type Movie { title: String director: Author }
union Media = Book | Movie
"#;

/// A subgraph answering every list with two books and counting requests.
async fn subgraph() -> (String, Arc<AtomicUsize>) {
    let calls = Arc::new(AtomicUsize::new(0));
    let c = calls.clone();
    let app = axum::Router::new().route(
        "/graphql",
        axum::routing::post(move |body: String| {
            c.fetch_add(1, Ordering::SeqCst);
            async move {
                let book = json!({ "title": "T", "author": { "name": "A" } });
                let data = if body.contains("books") {
                    json!({ "books": [book, book] })
                } else if body.contains("addBook") {
                    json!({ "addBook": book })
                } else {
                    json!({ "book": { "title": "T", "author": null } })
                };
                axum::Json(json!({ "data": data }))
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/graphql", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, calls)
}

async fn serve(cost: CostOptions) -> (String, Arc<AtomicUsize>) {
    let (url, calls) = subgraph().await;
    let sdl = compose(&[SubgraphSource {
        name: "books".into(),
        url,
        sdl: SDL.into(),
    }])
    .unwrap();
    let gw = Gateway::new(
        Supergraph::parse(&sdl).unwrap(),
        GatewayOptions {
            cost,
            ..Default::default()
        },
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}/graphql", listener.local_addr().unwrap());
    let app = shop_gateway::router(gw).into_make_service_with_connect_info::<SocketAddr>();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (base, calls)
}

async fn ask(url: &str, body: Value, client: Option<&str>) -> (u16, Value) {
    let mut req = reqwest::Client::new()
        .post(url)
        .header("content-type", "application/json")
        .body(body.to_string());
    if let Some(c) = client {
        req = req.header("apollographql-client-name", c);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    (
        status,
        serde_json::from_slice(&resp.bytes().await.unwrap()).unwrap(),
    )
}

/// The estimate the gateway reports for `query` with `variables`.
async fn estimate(url: &str, query: &str, variables: Value) -> u64 {
    let body = json!({ "query": query, "variables": variables, "extensions": { "cost": true } });
    let (_, answer) = ask(url, body, None).await;
    answer["extensions"]["cost"]["estimated"]
        .as_u64()
        .unwrap_or_else(|| panic!("no estimate: {answer}"))
}

#[test]
fn composition_carries_cost_and_list_size_into_the_supergraph() {
    let sdl = compose(&[SubgraphSource {
        name: "books".into(),
        url: "http://127.0.0.1:9/graphql".into(),
        sdl: SDL.into(),
    }])
    .unwrap();
    assert!(
        sdl.contains(
            "@link(url: \"https://specs.apollo.dev/cost/v0.1\", import: [\"@cost\", \"@listSize\"])"
        ),
        "{sdl}"
    );
    for expected in [
        "author: Author @cost(weight: 5)",
        "type Address @join__type(graph: BOOKS) @cost(weight: 3)",
        "term: String! @cost(weight: 20)",
        "@listSize(assumedSize: 50, slicingArguments: [\"first\"])",
        "@listSize(slicingArguments: [\"first\"], sizedFields: [\"edges\"])",
    ] {
        assert!(sdl.contains(expected), "missing {expected}:\n{sdl}");
    }
    Supergraph::parse(&sdl).unwrap();
}

#[tokio::test]
async fn estimates_follow_the_cost_rules_on_worked_examples() {
    let (url, _) = serve(CostOptions::default()).await;
    let cases: &[(&str, Value, u64, &str)] = &[
        (
            "{ book(id: 1) { title author { name } publisher { name address { zip } } } }",
            json!({}),
            // book 1 + author's own weight 5 + publisher 1 + address's type weight 3.
            10,
            "objects weigh 1, scalars 0, @cost on a field and on a type replace that",
        ),
        (
            "{ books(first: 7) { title } }",
            json!({}),
            7,
            "the slicing argument sizes the list",
        ),
        (
            "query($n: Int) { books(first: $n) { title } }",
            json!({ "n": 4 }),
            4,
            "a slicing argument given by a variable",
        ),
        (
            "{ books { title } }",
            json!({}),
            50,
            "no slicing argument: the assumed size",
        ),
        (
            "{ bestsellers { author { name } } }",
            json!({}),
            30,
            "5 books, each 1 plus its author's 5",
        ),
        (
            "{ shelves { books { title } } }",
            json!({}),
            110,
            "nested lists without @listSize: 10 × (1 + 10 × 1)",
        ),
        (
            "{ search(term: \"x\") { title } }",
            json!({}),
            23,
            "an argument's @cost (20) plus 3 assumed books",
        ),
        (
            "{ library(first: 3) { edges { node { title } } pageInfo { hasNext } } }",
            json!({}),
            8,
            "sizedFields: the connection is 1, its 3 edges 1 + node 1 each, pageInfo 1",
        ),
        (
            "mutation { addBook(title: \"x\") { title } }",
            json!({}),
            11,
            "a mutation's base of 10 plus the book",
        ),
        (
            "{ media { ... on Book { title author { name } } ... on Movie { title director { name } } } }",
            json!({}),
            12,
            "2 media, each 1 plus the costlier of its type conditions (Book: 5, Movie: 1)",
        ),
        (
            "query($s: Boolean!) { book(id: 1) { author @skip(if: $s) { name } } }",
            json!({ "s": true }),
            1,
            "a skipped field costs nothing",
        ),
        (
            "query($s: Boolean!) { book(id: 1) { author @skip(if: $s) { name } } }",
            json!({ "s": false }),
            6,
            "an included one does",
        ),
    ];
    for (query, variables, expected, why) in cases {
        assert_eq!(
            estimate(&url, query, variables.clone()).await,
            *expected,
            "{why}: {query}"
        );
    }
}

#[tokio::test]
async fn operations_over_the_budget_are_refused_before_any_subgraph_call() {
    let (url, calls) = serve(CostOptions {
        max_cost: Some(100),
        client_max_cost: HashMap::from([("partner".to_string(), 20)]),
        ..Default::default()
    })
    .await;
    // 10 × (1 + 10 × 1) = 110 > 100.
    let (status, answer) = ask(
        &url,
        json!({ "query": "{ shelves { books { title } } }" }),
        None,
    )
    .await;
    assert_eq!(status, 400, "{answer}");
    let error = &answer["errors"][0];
    assert_eq!(error["extensions"]["code"], "COST_ESTIMATED_TOO_EXPENSIVE");
    assert_eq!(
        error["extensions"]["cost"],
        json!({ "estimated": 110, "max": 100 })
    );
    assert_eq!(calls.load(Ordering::SeqCst), 0, "no subgraph was asked");

    // A variable choosing the list size is held to the budget too.
    let big = json!({ "query": "query($n: Int) { books(first: $n) { title } }", "variables": { "n": 1000 } });
    let (status, _) = ask(&url, big, None).await;
    assert_eq!(status, 400);
    assert_eq!(calls.load(Ordering::SeqCst), 0);

    // Within the budget for everyone, but over the partner's own.
    let thirty = json!({ "query": "{ bestsellers { author { name } } }" });
    let (status, answer) = ask(&url, thirty.clone(), Some("partner")).await;
    assert_eq!(status, 400);
    assert_eq!(answer["errors"][0]["extensions"]["cost"]["max"], 20);
    let (status, answer) = ask(&url, thirty, Some("storefront")).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(calls.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn the_actual_cost_counts_the_lists_as_they_came() {
    let (url, _) = serve(CostOptions {
        max_cost: Some(10_000),
        ..Default::default()
    })
    .await;
    let body = json!({
        "query": "{ books(first: 20) { title author { name } } }",
        "extensions": { "cost": true }
    });
    let (status, answer) = ask(&url, body, None).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["data"]["books"].as_array().unwrap().len(), 2);
    // Estimated: 20 × (1 + 5). Actual: 2 books, each 1 + an author of 5.
    assert_eq!(
        answer["extensions"]["cost"],
        json!({ "estimated": 120, "actual": 12, "max": 10000 })
    );
    // A null costs nothing: the book came back without its author.
    let body = json!({ "query": "{ book(id: 1) { title author { name } } }", "extensions": { "cost": true } });
    let (_, answer) = ask(&url, body, None).await;
    assert_eq!(answer["extensions"]["cost"]["estimated"], 6);
    assert_eq!(answer["extensions"]["cost"]["actual"], 1);
    // Not asked, not told.
    let (_, answer) = ask(&url, json!({ "query": "{ book(id: 1) { title } }" }), None).await;
    assert!(answer.get("extensions").is_none(), "{answer}");
}

#[tokio::test]
async fn without_a_budget_nothing_is_refused_and_estimates_come_when_asked() {
    let (url, calls) = serve(CostOptions::default()).await;
    let body =
        json!({ "query": "{ shelves { books { title } } }", "extensions": { "cost": true } });
    let (status, answer) = ask(&url, body, None).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["extensions"]["cost"]["estimated"], 110);
    assert_eq!(answer["extensions"]["cost"]["max"], Value::Null);
    assert_eq!(calls.load(Ordering::SeqCst), 1);
}
