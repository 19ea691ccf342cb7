//! The gateway benchmark's supergraph (`shop::benchgraph`, measured by `gwbench`): its
//! query plan is pinned, and the gateway's answer over real HTTP must equal the one
//! worked out from the data, field order included, with exactly the planned number of
//! subgraph requests.

// Tests fail by panicking; helpers outside #[test] functions do too.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use shop::benchgraph;

/// The benchmark's supergraph and its query, normalized.
fn bench_operation(
    urls: &[String; 4],
) -> (shop_federation::Supergraph, shop_federation::Operation) {
    let sdl = benchgraph::supergraph(urls).expect("the benchmark subgraphs compose");
    let sg = shop_federation::Supergraph::parse(&sdl).expect("the supergraph parses");
    let doc = apollo_compiler::ExecutableDocument::parse_and_validate(
        &sg.api,
        benchgraph::QUERY,
        "bench.graphql",
    )
    .expect("the benchmark query is valid");
    let op = shop_federation::normalize(&sg.api, &doc, None).expect("normalizes");
    (sg, op)
}

fn plan_for(urls: &[String; 4]) -> shop_federation::plan::QueryPlan {
    let (sg, op) = bench_operation(urls);
    shop_federation::plan(&sg, &op).expect("plans")
}

#[test]
fn the_benchmark_query_plan_is_pinned() {
    let urls = benchgraph::NAMES.map(|n| format!("http://{n}.invalid/graphql"));
    let plan = plan_for(&urls);
    insta::assert_snapshot!(plan.to_string());
    // Hive Router 0.2.19 sends 7 subgraph requests for this query (counted by
    // `gwbench`); ours must not send more. Four round trips is the least this query
    // can take: reviews need the users and products, products and authors' names the
    // reviews, and the shipping estimate the products' prices and weights.
    assert!(plan.fetch_count() <= 7, "{} requests", plan.fetch_count());
    assert_eq!(plan.depth(), 4);
}

async fn serve(router: axum::Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await });
    format!("http://{addr}/graphql")
}

#[tokio::test]
async fn the_benchmark_answer_is_the_worked_out_one_with_the_planned_requests() {
    let served: Arc<[AtomicUsize; 4]> = Arc::new(Default::default());
    let mut urls = Vec::new();
    for (i, router) in benchgraph::routers().into_iter().enumerate() {
        let served = served.clone();
        let counted = router.layer(axum::middleware::from_fn(
            move |req: axum::extract::Request, next: axum::middleware::Next| {
                served[i].fetch_add(1, Ordering::Relaxed);
                next.run(req)
            },
        ));
        urls.push(serve(counted).await);
    }
    let urls: [String; 4] = urls.try_into().unwrap();
    let plan = plan_for(&urls);
    let sg = shop_federation::Supergraph::parse(&benchgraph::supergraph(&urls).unwrap()).unwrap();
    let gateway = shop_gateway::Gateway::new(sg, shop_gateway::GatewayOptions::default());
    let gateway_url = serve(shop_gateway::router(gateway)).await;

    let client = reqwest::Client::new();
    let body = serde_json::json!({ "query": benchgraph::QUERY }).to_string();
    let expected = serde_json::to_string(&benchgraph::expected_answer()).unwrap();
    for round in 0..2 {
        let before: Vec<usize> = served.iter().map(|c| c.load(Ordering::Relaxed)).collect();
        let answer = client
            .post(&gateway_url)
            .header("content-type", "application/json")
            .body(body.clone())
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        // Byte for byte: the same values, and the fields in the order they were asked.
        assert!(
            answer == expected,
            "round {round}: the answer differs from the worked-out one\n ours: {answer}\n want: {expected}"
        );
        let made: usize = served
            .iter()
            .zip(&before)
            .map(|(c, b)| c.load(Ordering::Relaxed) - b)
            .sum();
        assert_eq!(made, plan.fetch_count(), "round {round}: subgraph requests");
    }
}

/// The README's figure for why demand control has no default budget: with lists of
/// the default assumed size, the benchmark's query estimates at 24,420.
#[test]
fn the_benchmark_query_estimate_with_default_list_sizes() {
    let urls = benchgraph::NAMES.map(|n| format!("http://{n}.invalid/graphql"));
    let (sg, op) = bench_operation(&urls);
    let model = shop_gateway::cost::CostModel::new(&sg, 10);
    assert_eq!(model.estimate(&op, &Default::default()), 24_420);
}
