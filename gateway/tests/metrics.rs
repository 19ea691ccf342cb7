//! `/metrics` through real HTTP after real traffic: what the series count, that client
//! chosen names cannot grow the scrape without bound, and that `promtool check
//! metrics` accepts the output (when promtool is installed; `.ci/run` installs it and
//! sets `SHOP_REQUIRE_PROMTOOL=1`).

// Tests fail by panicking; helpers outside #[test] functions do too.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;

use axum::Router;
use axum::routing::post;
use serde_json::{Value, json};
use shop_federation::{SubgraphSource, Supergraph, compose};
use shop_gateway::ratelimit::RateLimits;
use shop_gateway::{Gateway, GatewayOptions};

const LINK: &str =
    "extend schema @link(url: \"https://specs.apollo.dev/federation/v2.5\", import: [\"@key\"])\n";

/// A subgraph answering `hello`, and `broken` with an error coded `BROKEN`.
async fn subgraph() -> String {
    let app = Router::new().route(
        "/graphql",
        post(|body: String| async move {
            axum::Json(if body.contains("broken") {
                json!({ "data": { "broken": null }, "errors": [
                    { "message": "no", "path": ["broken"], "extensions": { "code": "BROKEN" } }
                ] })
            } else {
                json!({ "data": { "hello": "world" } })
            })
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/graphql", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    url
}

async fn serve(options: GatewayOptions) -> String {
    let sdl = compose(&[SubgraphSource {
        name: "hello".into(),
        url: subgraph().await,
        sdl: format!("{LINK} type Query {{ hello: String broken: String }}"),
    }])
    .unwrap();
    let gw = Gateway::new(Supergraph::parse(&sdl).unwrap(), options);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let app = shop_gateway::router(gw).into_make_service_with_connect_info::<SocketAddr>();
    tokio::spawn(async move { axum::serve(listener, app).await });
    url
}

async fn send(base: &str, body: Value) -> u16 {
    reqwest::Client::new()
        .post(format!("{base}/graphql"))
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

async fn scrape(base: &str) -> String {
    let resp = reqwest::get(format!("{base}/metrics")).await.unwrap();
    assert_eq!(resp.status(), 200);
    let content_type = resp.headers()["content-type"].to_str().unwrap().to_string();
    assert!(
        content_type.starts_with("text/plain; version=0.0.4"),
        "{content_type}"
    );
    resp.text().await.unwrap()
}

/// The value of the sample `name{labels}` exactly as written, if present.
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

#[tokio::test]
async fn metrics_count_requests_by_operation_and_outcome_errors_by_code_and_fetches() {
    let base = serve(GatewayOptions {
        rate_limits: RateLimits {
            per_client: RateLimits::parse_clients("greedy=1/1m").unwrap(),
            ..Default::default()
        },
        dedupe_requests: false,
        ..Default::default()
    })
    .await;
    for _ in 0..3 {
        assert_eq!(
            send(&base, json!({ "query": "query Hello { hello }" })).await,
            200
        );
    }
    send(&base, json!({ "query": "query Broken { broken }" })).await;
    send(&base, json!({ "query": "{ nope }" })).await;
    send(&base, json!({ "query": "{ hello }" })).await;
    // The second request of `greedy` is refused by its rate.
    for _ in 0..2 {
        reqwest::Client::new()
            .post(format!("{base}/graphql"))
            .header("content-type", "application/json")
            .header("graphql-client-name", "greedy")
            .body(json!({ "query": "{ hello }" }).to_string())
            .send()
            .await
            .unwrap();
    }

    let text = scrape(&base).await;
    let count = |labels: &str| {
        sample(
            &text,
            &format!("shop_gateway_request_duration_seconds_count{{{labels}}}"),
        )
        .unwrap_or_else(|| panic!("no series {labels}:\n{text}"))
    };
    assert_eq!(
        count("operation=\"Hello\",outcome=\"ok\",type=\"query\""),
        3.0
    );
    assert_eq!(
        count("operation=\"Broken\",outcome=\"errors\",type=\"query\""),
        1.0
    );
    assert_eq!(count("operation=\"\",outcome=\"ok\",type=\"query\""), 2.0);
    assert_eq!(count("operation=\"\",outcome=\"refused\",type=\"\""), 1.0);
    assert_eq!(
        sample(&text, "shop_gateway_errors_total{code=\"BROKEN\"}"),
        Some(1.0)
    );
    assert_eq!(
        sample(
            &text,
            "shop_gateway_errors_total{code=\"GRAPHQL_VALIDATION_FAILED\"}"
        ),
        Some(1.0)
    );
    assert_eq!(
        sample(
            &text,
            "shop_gateway_subgraph_request_duration_seconds_count{outcome=\"answered\",subgraph=\"hello\"}"
        ),
        Some(6.0)
    );
    assert_eq!(
        sample(&text, "shop_gateway_rate_limited_total{limit=\"client\"}"),
        Some(1.0)
    );
    // Three distinct operation texts were planned; the rest were cache hits.
    assert_eq!(
        sample(
            &text,
            "shop_gateway_plan_cache_lookups_total{result=\"miss\"}"
        ),
        Some(4.0)
    );
    assert_eq!(
        sample(
            &text,
            "shop_gateway_plan_cache_lookups_total{result=\"hit\"}"
        ),
        Some(3.0)
    );
    assert_eq!(
        sample(
            &text,
            "shop_gateway_subgraph_breaker_open{subgraph=\"hello\"}"
        ),
        Some(0.0)
    );
    assert_eq!(sample(&text, "shop_gateway_subscriptions"), Some(0.0));
    shop_kit::testing::promtool_check(&text);
}

#[tokio::test]
async fn invented_operation_names_cannot_grow_the_scrape_without_bound() {
    let base = serve(GatewayOptions::default()).await;
    let extra = 40;
    let names = shop_gateway::metrics::MAX_OPERATION_NAMES + extra;
    for i in 0..names {
        let status = send(
            &base,
            json!({ "query": format!("query Op{i} {{ hello }}") }),
        )
        .await;
        assert_eq!(status, 200);
    }
    let text = scrape(&base).await;
    let series: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("shop_gateway_request_duration_seconds_count{"))
        .collect();
    // A series per outcome for each name: the first names each, the rest as `other`.
    assert_eq!(
        series.len(),
        3 * (shop_gateway::metrics::MAX_OPERATION_NAMES + 1)
    );
    assert_eq!(
        sample(
            &text,
            "shop_gateway_request_duration_seconds_count{operation=\"other\",outcome=\"ok\",type=\"query\"}"
        ),
        Some(extra as f64)
    );
    shop_kit::testing::promtool_check(&text);
}

#[tokio::test]
async fn metrics_can_be_switched_off() {
    let base = serve(GatewayOptions {
        protections: shop_gateway::Protections {
            metrics: false,
            ..Default::default()
        },
        ..Default::default()
    })
    .await;
    let resp = reqwest::get(format!("{base}/metrics")).await.unwrap();
    assert_eq!(resp.status(), 404);
}
