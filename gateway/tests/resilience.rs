//! Resilience towards subgraphs, against subgraphs served over real HTTP that fail on
//! cue: the circuit breaker opens, fails fast and recovers; reads are retried within
//! their budget and mutations never; requests in flight per subgraph stay bounded.

// Tests fail by panicking; helpers outside #[test] functions do too.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::post;
use serde_json::{Value, json};
use shop_federation::{SubgraphSource, Supergraph, compose};
use shop_gateway::resilience::ResilienceOptions;
use shop_gateway::{Gateway, GatewayOptions, GraphQLRequest};

const LINK: &str =
    "extend schema @link(url: \"https://specs.apollo.dev/federation/v2.5\", import: [\"@key\"])\n";

/// A subgraph that answers `hello` unless told to fail: while `failing` is above zero
/// each request takes one off it and gets HTTP 503 without a GraphQL body. It counts
/// requests, and the most it had in flight at once.
#[derive(Default)]
struct Flaky {
    failing: AtomicUsize,
    down: AtomicBool,
    requests: AtomicUsize,
    in_flight: AtomicUsize,
    most_in_flight: AtomicUsize,
    delay_ms: AtomicUsize,
}

async fn flaky() -> (String, Arc<Flaky>) {
    let state = Arc::new(Flaky::default());
    let s = state.clone();
    let app = Router::new().route(
        "/graphql",
        post(move |body: String| {
            let s = s.clone();
            async move {
                s.requests.fetch_add(1, Ordering::SeqCst);
                let now = s.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
                s.most_in_flight.fetch_max(now, Ordering::SeqCst);
                let delay = s.delay_ms.load(Ordering::SeqCst) as u64;
                tokio::time::sleep(Duration::from_millis(delay)).await;
                s.in_flight.fetch_sub(1, Ordering::SeqCst);
                let fail = s.down.load(Ordering::SeqCst)
                    || s.failing
                        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                        .is_ok();
                if fail {
                    return (StatusCode::SERVICE_UNAVAILABLE, "down for maintenance")
                        .into_response();
                }
                let data = if body.contains("mutation") {
                    json!({ "data": { "poke": true } })
                } else {
                    json!({ "data": { "hello": "world" } })
                };
                axum::Json(data).into_response()
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/graphql", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, state)
}

fn gateway_at(url: String, resilience: ResilienceOptions) -> Arc<Gateway> {
    let sdl = compose(&[SubgraphSource {
        name: "hello".into(),
        url,
        sdl: format!(
            "{LINK} type Query {{ hello(n: Int): String }} type Mutation {{ poke: Boolean }}"
        ),
    }])
    .unwrap();
    let options = GatewayOptions {
        resilience,
        // Every request here must reach the subgraph on its own.
        dedupe_requests: false,
        dedupe_subgraph_requests: false,
        ..Default::default()
    };
    Gateway::new(Supergraph::parse(&sdl).unwrap(), options)
}

async fn run(gw: &Arc<Gateway>, query: &str) -> Value {
    let req = GraphQLRequest {
        query: Some(query.into()),
        ..Default::default()
    };
    serde_json::to_value(gw.execute(req, &Default::default()).await).unwrap()
}

fn code(body: &Value) -> Option<&str> {
    body.pointer("/errors/0/extensions/code")
        .and_then(Value::as_str)
}

fn no_retries() -> ResilienceOptions {
    ResilienceOptions {
        retries: 0,
        ..Default::default()
    }
}

#[tokio::test]
async fn the_breaker_opens_after_failures_in_a_row_fails_fast_and_recovers_with_a_probe() {
    let (url, sub) = flaky().await;
    let gw = gateway_at(
        url,
        ResilienceOptions {
            breaker_failures: 3,
            breaker_cool_down: Duration::from_millis(300),
            ..no_retries()
        },
    );
    sub.down.store(true, Ordering::SeqCst);
    for _ in 0..3 {
        let answer = run(&gw, "{ hello }").await;
        assert_eq!(code(&answer), Some("SUBREQUEST_HTTP_ERROR"), "{answer}");
    }
    assert_eq!(sub.requests.load(Ordering::SeqCst), 3);

    // Open: refused at once, the subgraph not asked.
    let started = Instant::now();
    for _ in 0..5 {
        let answer = run(&gw, "{ hello }").await;
        assert_eq!(code(&answer), Some("SUBGRAPH_UNAVAILABLE"), "{answer}");
        assert_eq!(answer["errors"][0]["extensions"]["service"], "hello");
        assert_eq!(answer["data"]["hello"], Value::Null);
    }
    assert!(started.elapsed() < Duration::from_millis(250));
    assert_eq!(
        sub.requests.load(Ordering::SeqCst),
        3,
        "nothing sent while open"
    );
    let guard = &gw.guards["hello"];
    assert!(guard.is_open());
    assert_eq!(guard.counts.rejected.load(Ordering::SeqCst), 5);

    // Still down after the cool-down: the probe fails and the breaker opens again.
    tokio::time::sleep(Duration::from_millis(350)).await;
    let answer = run(&gw, "{ hello }").await;
    assert_eq!(code(&answer), Some("SUBREQUEST_HTTP_ERROR"), "{answer}");
    assert_eq!(sub.requests.load(Ordering::SeqCst), 4, "one probe");
    let answer = run(&gw, "{ hello }").await;
    assert_eq!(code(&answer), Some("SUBGRAPH_UNAVAILABLE"), "{answer}");

    // Healed: the next probe closes it and traffic flows.
    sub.down.store(false, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(350)).await;
    for _ in 0..3 {
        let answer = run(&gw, "{ hello }").await;
        assert_eq!(answer, json!({ "data": { "hello": "world" } }));
    }
    assert!(!guard.is_open());
    assert_eq!(sub.requests.load(Ordering::SeqCst), 7);
    assert_eq!(guard.counts.opened.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_read_that_failed_without_an_answer_is_retried_and_a_mutation_is_not() {
    let (url, sub) = flaky().await;
    let gw = gateway_at(url, ResilienceOptions::default());
    sub.failing.store(1, Ordering::SeqCst);
    let answer = run(&gw, "{ hello }").await;
    assert_eq!(answer, json!({ "data": { "hello": "world" } }));
    assert_eq!(
        sub.requests.load(Ordering::SeqCst),
        2,
        "the first attempt and one retry"
    );

    // One retry per read: failing twice in a row is an error.
    sub.failing.store(2, Ordering::SeqCst);
    let answer = run(&gw, "{ hello }").await;
    assert_eq!(code(&answer), Some("SUBREQUEST_HTTP_ERROR"), "{answer}");
    assert_eq!(sub.requests.load(Ordering::SeqCst), 4);

    // A mutation may have changed something before failing: it is sent once.
    sub.failing.store(1, Ordering::SeqCst);
    let answer = run(&gw, "mutation { poke }").await;
    assert_eq!(code(&answer), Some("SUBREQUEST_HTTP_ERROR"), "{answer}");
    assert_eq!(sub.requests.load(Ordering::SeqCst), 5);
    assert_eq!(gw.guards["hello"].counts.retries.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn retries_stop_when_their_budget_is_spent() {
    let (url, sub) = flaky().await;
    let gw = gateway_at(
        url,
        ResilienceOptions {
            retry_min_per_second: 0,
            retry_percent: 50,
            // The breaker would stop the traffic before the budget shows.
            breaker_failures: 0,
            ..Default::default()
        },
    );
    sub.down.store(true, Ordering::SeqCst);
    for _ in 0..10 {
        run(&gw, "{ hello }").await;
    }
    // Ten reads deposit ten; half of them may be retried, as they come.
    let guard = &gw.guards["hello"];
    let retries = guard.counts.retries.load(Ordering::SeqCst);
    assert_eq!(retries, 5, "retries made");
    assert_eq!(guard.counts.retries_refused.load(Ordering::SeqCst), 5);
    assert_eq!(sub.requests.load(Ordering::SeqCst), 15);
}

#[tokio::test]
async fn an_unreachable_subgraph_is_retried_once_then_reported() {
    // A port that was free a moment ago: connections to it are refused.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/graphql", listener.local_addr().unwrap());
    drop(listener);
    let gw = gateway_at(url, ResilienceOptions::default());
    let answer = run(&gw, "{ hello }").await;
    assert_eq!(code(&answer), Some("SUBREQUEST_HTTP_ERROR"), "{answer}");
    assert_eq!(gw.guards["hello"].counts.retries.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn requests_in_flight_to_a_subgraph_stay_within_its_slots_and_all_finish() {
    let (url, sub) = flaky().await;
    sub.delay_ms.store(100, Ordering::SeqCst);
    let gw = gateway_at(
        url,
        ResilienceOptions {
            max_in_flight: 2,
            ..Default::default()
        },
    );
    let answers = futures::future::join_all((0..6).map(|n| {
        let gw = gw.clone();
        async move { run(&gw, &format!("{{ hello(n: {n}) }}")).await }
    }))
    .await;
    for answer in &answers {
        assert_eq!(answer, &json!({ "data": { "hello": "world" } }));
    }
    assert_eq!(sub.requests.load(Ordering::SeqCst), 6);
    assert_eq!(sub.most_in_flight.load(Ordering::SeqCst), 2);
    assert_eq!(gw.guards["hello"].counts.queued.load(Ordering::SeqCst), 4);
}

/// A subgraph served as ours are (`shop_kit::server::serve`), recording the HTTP
/// version of each request.
async fn versioned() -> (String, Arc<std::sync::Mutex<Vec<axum::http::Version>>>) {
    let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
    let log = seen.clone();
    let app = Router::new().route(
        "/graphql",
        post(move |req: axum::extract::Request| {
            let log = log.clone();
            async move {
                log.lock().unwrap().push(req.version());
                axum::Json(json!({ "data": { "hello": "world" } }))
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/graphql", listener.local_addr().unwrap());
    tokio::spawn(shop_kit::server::serve(
        listener,
        app,
        std::future::pending(),
    ));
    (url, seen)
}

#[tokio::test]
async fn subgraphs_listed_for_h2c_are_spoken_to_over_http2_and_others_over_http1() {
    for (listed, expected) in [
        (vec!["hello".to_string()], axum::http::Version::HTTP_2),
        (vec!["*".to_string()], axum::http::Version::HTTP_2),
        (vec!["other".to_string()], axum::http::Version::HTTP_11),
        (Vec::new(), axum::http::Version::HTTP_11),
    ] {
        let (url, seen) = versioned().await;
        let sdl = compose(&[SubgraphSource {
            name: "hello".into(),
            url,
            sdl: format!("{LINK} type Query {{ hello(n: Int): String }}"),
        }])
        .unwrap();
        let gw = Gateway::new(
            Supergraph::parse(&sdl).unwrap(),
            GatewayOptions {
                h2c_subgraphs: listed.clone(),
                dedupe_requests: false,
                dedupe_subgraph_requests: false,
                ..Default::default()
            },
        );
        let answers = futures::future::join_all((0..4).map(|n| {
            let gw = gw.clone();
            async move { run(&gw, &format!("{{ hello(n: {n}) }}")).await }
        }))
        .await;
        for answer in answers {
            assert_eq!(
                answer,
                json!({ "data": { "hello": "world" } }),
                "{listed:?}"
            );
        }
        let seen = seen.lock().unwrap().clone();
        assert_eq!(seen, vec![expected; 4], "{listed:?}");
    }
}
