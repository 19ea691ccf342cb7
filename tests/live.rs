//! Subscriptions through the gateway with real clients: a `graphql-transport-ws`
//! WebSocket client and a GraphQL-over-SSE client follow orders as a checkout and
//! status changes happen, with fields resolved from other subgraphs per event.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::live::{Received, SseClient, WsClient};
use common::store::{cart_of, checkout, product, start};
use common::{Harness, each_db, eventually};
use serde_json::{Value, json};
use shop_kit::auth::Role;

const MY_UPDATES: &str = "subscription { myOrderUpdates { previousStatus status note order { id status total { amount currency } payment { status capturedAmount { amount } } lines { quantity product { name } } } } }";

const ONE_ORDER: &str = "subscription($o: ID!) { orderStatusChanged(orderId: $o) { previousStatus status order { id status payment { status } } } }";

/// Waits until `n` live listeners hear order events, so what follows is seen.
async fn listeners(h: &Harness, n: usize) {
    eventually(&format!("{n} live listeners"), || async {
        // An order subscription also hears shipments: one listener per subscription.
        let bus = &h.platform.bus;
        (bus.listeners()
            .saturating_sub(bus.listeners_on("shipping.shipment_updated"))
            == n)
            .then_some(())
    })
    .await;
}

async fn set_status(h: &Harness, order: &str, status: &str) {
    let admin = h.token(shop::seed::DEMO_ADMIN, Role::Admin);
    h.gql(
        Some(&admin),
        "mutation($o: ID!, $s: OrderStatus!) { setOrderStatus(id: $o, status: $s) { status } }",
        json!({ "o": order, "s": status }),
    )
    .await
    .data();
}

#[tokio::test]
async fn a_checkout_and_status_changes_stream_to_websocket_and_sse_clients() {
    each_db("live_orders", async |db| {
        let h = start(db).await;
        let p = product(&h, 2500, 5).await;
        let (token, cart) = cart_of(&h, "buyer-live-1", &[(&p, 2)]).await;

        let mut ws = WsClient::connect(&h.platform.gateway_url, Some(&token)).await;
        ws.subscribe("mine", MY_UPDATES, json!({})).await;
        listeners(&h, 1).await;

        let r = checkout(&h, &token, &cart, "4242424242424242", "live-1").await;
        let order = r.data()["checkout"]["id"].as_str().unwrap().to_string();
        let total = r.data()["checkout"]["total"]["amount"].as_i64().unwrap();

        // The placed order, with its payment (payments subgraph) and product names
        // (catalog) fetched for the event.
        let placed = ws.next_for("mine").await;
        assert!(placed.get("errors").is_none(), "{placed}");
        let u = &placed["data"]["myOrderUpdates"];
        assert_eq!(u["previousStatus"], "PENDING");
        assert_eq!(u["status"], "PAID");
        assert_eq!(u["order"]["id"], order.as_str());
        assert_eq!(u["order"]["total"]["amount"], total);
        assert_eq!(u["order"]["payment"]["status"], "CAPTURED");
        assert_eq!(u["order"]["payment"]["capturedAmount"]["amount"], total);
        assert_eq!(u["order"]["lines"][0]["quantity"], 2);
        assert_eq!(u["order"]["lines"][0]["product"]["name"], "Test Lamp");

        // SSE: one order, starting with where it stands.
        let mut sse = SseClient::start(
            &h.platform.gateway_url,
            Some(&token),
            ONE_ORDER,
            json!({ "o": order }),
        )
        .await
        .expect("an event stream");
        let first = sse.next_payload().await;
        assert_eq!(
            first["data"]["orderStatusChanged"]["previousStatus"],
            Value::Null
        );
        assert_eq!(first["data"]["orderStatusChanged"]["status"], "PAID");
        assert_eq!(
            first["data"]["orderStatusChanged"]["order"]["payment"]["status"],
            "CAPTURED"
        );
        listeners(&h, 2).await;

        set_status(&h, &order, "FULFILLED").await;
        set_status(&h, &order, "SHIPPED").await;
        set_status(&h, &order, "DELIVERED").await;
        let mut seen_ws = Vec::new();
        let mut seen_sse = Vec::new();
        for _ in 0..3 {
            let w = ws.next_for("mine").await;
            let u = &w["data"]["myOrderUpdates"];
            seen_ws.push(format!(
                "{}->{}",
                u["previousStatus"].as_str().unwrap(),
                u["status"].as_str().unwrap()
            ));
            let s = sse.next_payload().await;
            let u = &s["data"]["orderStatusChanged"];
            seen_sse.push(format!(
                "{}->{}",
                u["previousStatus"].as_str().unwrap(),
                u["status"].as_str().unwrap()
            ));
        }
        let expected = [
            "PAID->FULFILLED",
            "FULFILLED->SHIPPED",
            "SHIPPED->DELIVERED",
        ];
        assert_eq!(seen_ws, expected, "in order over WebSocket");
        assert_eq!(seen_sse, expected, "in order over SSE");

        // Another buyer's order changes: nothing for this one.
        let (other, other_cart) = cart_of(&h, "buyer-live-2", &[(&p, 1)]).await;
        checkout(&h, &other, &other_cart, "4242424242424242", "live-2")
            .await
            .data();
        assert!(
            ws.silent_for(Duration::from_millis(600)).await,
            "no foreign updates"
        );

        // The client completes: the gateway ends its subgraph subscription too.
        ws.send(json!({ "type": "complete", "id": "mine" })).await;
        listeners(&h, 1).await;
        drop(sse);
        listeners(&h, 0).await;
        eventually("connections closed", || async {
            (h.platform.gateway.open_connections() == 1).then_some(())
        })
        .await;
        ws.close().await;
        eventually("no connections", || async {
            (h.platform.gateway.open_connections() == 0).then_some(())
        })
        .await;
        h.stop().await;
    })
    .await;
}

/// A platform with tight streaming limits and timers.
async fn strict() -> Harness {
    let dir = std::env::temp_dir().join(format!("shop-e2e-{}", shop_kit::ids::new_id()));
    Harness::start_with(dir, None, true, |o| {
        o.live.max_connections_per_client = 4;
        o.live.max_subscriptions_per_connection = 2;
        o.live.init_timeout = Duration::from_millis(500);
        o.live.keepalive = Duration::from_millis(400);
    })
    .await
}

#[tokio::test]
async fn the_websocket_protocol_refuses_what_it_must_and_keeps_live_connections_alive() {
    let h = strict().await;
    let url = h.platform.gateway_url.clone();
    let token = h.token("buyer-proto", Role::Customer);

    // Anonymous connections are accepted; guarded subscriptions are not.
    let mut anon = WsClient::connect(&url, None).await;
    anon.subscribe("a", MY_UPDATES, json!({})).await;
    let err = anon.recv().await.message();
    assert_eq!(err["type"], "error", "{err}");
    assert_eq!(err["id"], "a");
    assert_eq!(err["payload"][0]["extensions"]["code"], "UNAUTHENTICATED");
    // Queries run over the socket too: one result, then complete.
    anon.subscribe("q", "{ __typename }", json!({})).await;
    assert_eq!(anon.next_for("q").await["data"]["__typename"], "Query");
    assert_eq!(anon.recv().await.message()["type"], "complete");
    // Invalid operations are an error message, not a closed connection.
    anon.subscribe("bad", "subscription { noSuchField }", json!({}))
        .await;
    let err = anon.recv().await.message();
    assert_eq!(err["type"], "error");
    assert_eq!(
        err["payload"][0]["extensions"]["code"],
        "GRAPHQL_VALIDATION_FAILED"
    );
    // Client pings are answered; the server pings too and a peer that answers stays.
    anon.send(json!({ "type": "ping" })).await;
    assert_eq!(anon.recv().await.message()["type"], "pong");
    assert!(anon.silent_for(Duration::from_millis(1500)).await);
    anon.send(json!({ "type": "ping" })).await;
    assert_eq!(anon.recv().await.message()["type"], "pong", "still open");
    anon.close().await;

    // A peer that never answers pings is closed after three periods.
    let mut deaf = WsClient::connect(&url, Some(&token)).await;
    deaf.answer_pings = false;
    match deaf.recv().await {
        Received::Closed(code, _) => assert_eq!(code, 1001),
        other => panic!("expected a close: {other:?}"),
    }
    assert!(deaf.pings >= 2, "it was pinged first");

    // Two operations per connection here; the third is refused, the first two run.
    let mut c = WsClient::connect(&url, Some(&token)).await;
    c.subscribe("s1", MY_UPDATES, json!({})).await;
    c.subscribe("s2", MY_UPDATES, json!({})).await;
    c.subscribe("s3", MY_UPDATES, json!({})).await;
    let err = c.recv().await.message();
    assert_eq!(
        (err["type"].as_str(), err["id"].as_str()),
        (Some("error"), Some("s3"))
    );
    assert_eq!(err["payload"][0]["extensions"]["code"], "TOO_MANY_REQUESTS");
    listeners(&h, 2).await;
    // An id in use closes the connection (4409), ending its subscriptions upstream.
    c.subscribe("s1", MY_UPDATES, json!({})).await;
    match c.recv().await {
        Received::Closed(code, reason) => {
            assert_eq!(code, 4409);
            assert!(reason.contains("s1"), "{reason}");
        }
        other => panic!("expected a close: {other:?}"),
    }
    listeners(&h, 0).await;

    // Subscribing before connection_init: 4401. No connection_init at all: 4408.
    let mut early = WsClient::open(&url, None).await.unwrap();
    early.subscribe("x", MY_UPDATES, json!({})).await;
    assert!(matches!(early.recv().await, Received::Closed(4401, _)));
    let mut idle = WsClient::open(&url, None).await.unwrap();
    assert!(matches!(idle.recv().await, Received::Closed(4408, _)));
    // A message over the size limit (a POST body's, 2 MiB): 1009, not a dropped socket.
    let mut big = WsClient::connect(&url, Some(&token)).await;
    let huge = "x".repeat(shop_gateway::transport::REQUEST_BODY_LIMIT + 1);
    big.send(json!({ "type": "subscribe", "id": "big", "payload": { "query": huge } }))
        .await;
    match big.recv().await {
        Received::Closed(code, reason) => {
            assert_eq!(code, 1009);
            assert!(reason.contains("limited"), "{reason}");
        }
        other => panic!("expected a close: {other:?}"),
    }
    // A second connection_init: 4429.
    let mut twice = WsClient::connect(&url, Some(&token)).await;
    twice.send(json!({ "type": "connection_init" })).await;
    assert!(matches!(twice.recv().await, Received::Closed(4429, _)));
    // A token that does not verify, in connection_init or the upgrade's header: 4403.
    let mut forged = WsClient::open(&url, None).await.unwrap();
    forged
        .send(json!({ "type": "connection_init", "payload": { "Authorization": format!("Bearer {token}x") } }))
        .await;
    assert!(matches!(forged.recv().await, Received::Closed(4403, _)));
    let mut forged = WsClient::open(&url, Some(&format!("{token}x")))
        .await
        .unwrap();
    forged.send(json!({ "type": "connection_init" })).await;
    assert!(matches!(forged.recv().await, Received::Closed(4403, _)));
    // A token in the upgrade's header alone is enough.
    let mut by_header = WsClient::open(&url, Some(&token)).await.unwrap();
    by_header.send(json!({ "type": "connection_init" })).await;
    assert_eq!(by_header.recv().await.message()["type"], "connection_ack");
    by_header.subscribe("h", MY_UPDATES, json!({})).await;
    listeners(&h, 1).await;
    by_header.close().await;
    listeners(&h, 0).await;

    // The connection ends when its token expires.
    let short = h
        .key
        .mint(
            common::ISSUER,
            common::AUDIENCE,
            "buyer-proto",
            &[Role::Customer],
            Duration::from_secs(2),
        )
        .unwrap();
    let mut expiring = WsClient::connect(&url, Some(&short)).await;
    expiring.subscribe("e", MY_UPDATES, json!({})).await;
    match expiring.recv().await {
        Received::Closed(code, reason) => {
            assert_eq!(code, 4403);
            assert!(reason.contains("expired"), "{reason}");
        }
        other => panic!("expected a close: {other:?}"),
    }

    // Four streaming connections per client address; the fifth upgrade is refused.
    eventually("earlier connections closed", || async {
        (h.platform.gateway.open_connections() == 0).then_some(())
    })
    .await;
    let mut open = Vec::new();
    for _ in 0..4 {
        open.push(WsClient::connect(&url, None).await);
    }
    assert_eq!(WsClient::open(&url, None).await.err(), Some(429));
    let refused = SseClient::start(&url, None, "{ __typename }", json!({})).await;
    assert_eq!(refused.err().map(|(s, _)| s), Some(429), "SSE counts too");
    open.pop().unwrap().close().await;
    eventually("a slot freed", || async {
        (h.platform.gateway.open_connections() == 3).then_some(())
    })
    .await;
    WsClient::connect(&url, None).await;
    h.stop().await;
}

#[tokio::test]
async fn sse_refuses_bad_requests_with_a_status_and_streams_queries_once() {
    let h = strict().await;
    let url = h.platform.gateway_url.clone();
    let (status, body) = SseClient::start(&url, None, MY_UPDATES, json!({}))
        .await
        .err()
        .expect("refused");
    assert_eq!(status, 401);
    assert_eq!(body["errors"][0]["extensions"]["code"], "UNAUTHENTICATED");
    let (status, _) = SseClient::start(&url, Some("not-a-token"), MY_UPDATES, json!({}))
        .await
        .err()
        .expect("refused");
    assert_eq!(status, 401);
    let (status, body) = SseClient::start(&url, None, "subscription { nope }", json!({}))
        .await
        .err()
        .expect("refused");
    assert_eq!(status, 400);
    assert_eq!(
        body["errors"][0]["extensions"]["code"],
        "GRAPHQL_VALIDATION_FAILED"
    );
    // A query over SSE: one `next`, then `complete`.
    let mut once = SseClient::start(&url, None, "{ __typename }", json!({}))
        .await
        .unwrap();
    assert_eq!(once.next_payload().await["data"]["__typename"], "Query");
    assert_eq!(
        once.next_event().await.map(|(e, _)| e).as_deref(),
        Some("complete")
    );
    // GET works for event streams too, except for mutations. (A browser's EventSource
    // can send neither the token nor the header that CSRF prevention asks of a GET;
    // browsers read event streams with fetch.)
    let token = h.token("buyer-sse", Role::Customer);
    let get = |query: &str| {
        h.client
            .get(reqwest::Url::parse_with_params(&url, &[("query", query)]).unwrap())
            .header("accept", "text/event-stream")
            .header("apollo-require-preflight", "true")
            .bearer_auth(&token)
            .send()
    };
    let r = get("{ __typename }").await.unwrap();
    assert_eq!(r.status(), 200);
    let body = r.text().await.unwrap();
    assert!(
        body.contains("event: next") && body.contains("event: complete"),
        "{body}"
    );
    let r = get("subscription { myOrderUpdates { status } }")
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream"),
        "a subscription streams over GET"
    );
    drop(r);
    let r = get("mutation { createCart { cart { id } } }")
        .await
        .unwrap();
    assert_eq!(r.status(), 405);
    // Plain POSTs of a subscription are told where to go.
    let r = h.gql(Some(&token), MY_UPDATES, json!({})).await;
    assert_eq!(r.code(), "OPERATION_NOT_SUPPORTED");
    h.stop().await;
}

/// Serves `gateway` on a free loopback port until the test ends; its `/graphql` URL.
async fn serve(gateway: std::sync::Arc<shop_gateway::Gateway>) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app =
        shop_gateway::router(gateway).into_make_service_with_connect_info::<std::net::SocketAddr>();
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}/graphql")
}

#[tokio::test]
async fn an_event_whose_follow_up_fetch_fails_arrives_with_errors() {
    let h = start(None).await;
    // A second gateway over the same subgraphs, except that payments is unreachable.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead = format!("http://{}/graphql", closed.local_addr().unwrap());
    drop(closed);
    let mut sg = shop_federation::Supergraph::parse(&h.platform.gateway.supergraph.sdl).unwrap();
    for g in &mut sg.graphs {
        if g.name == "payments" {
            g.url = dead.clone();
        }
    }
    let url = serve(shop_gateway::Gateway::new(
        sg,
        h.platform.gateway.options.clone(),
    ))
    .await;

    let p = product(&h, 1200, 3).await;
    let (token, cart) = cart_of(&h, "buyer-partial", &[(&p, 1)]).await;
    let mut ws = WsClient::connect(&url, Some(&token)).await;
    ws.subscribe("mine", MY_UPDATES, json!({})).await;
    listeners(&h, 1).await;
    let r = checkout(&h, &token, &cart, "4242424242424242", "partial-1").await;
    let order = r.data()["checkout"]["id"].as_str().unwrap().to_string();

    let event = ws.next_for("mine").await;
    let u = &event["data"]["myOrderUpdates"];
    assert_eq!(u["status"], "PAID", "{event}");
    assert_eq!(u["order"]["id"], order.as_str());
    assert_eq!(u["order"]["payment"], Value::Null, "{event}");
    assert_eq!(
        u["order"]["lines"][0]["product"]["name"], "Test Lamp",
        "other subgraphs still answer"
    );
    let errors = event["errors"].as_array().expect("errors");
    assert_eq!(errors.len(), 1, "{event}");
    assert_eq!(errors[0]["extensions"]["code"], "SUBREQUEST_HTTP_ERROR");
    assert_eq!(errors[0]["extensions"]["service"], "payments");
    // The stream goes on.
    set_status(&h, &order, "FULFILLED").await;
    let next = ws.next_for("mine").await;
    assert_eq!(next["data"]["myOrderUpdates"]["status"], "FULFILLED");
    h.stop().await;
}

#[tokio::test]
async fn two_gateways_over_one_redis_both_deliver_every_update() {
    let Some(redis) = shop_kit::testing::redis_url("two_gateways") else {
        return;
    };
    let dbs = shop_kit::testing::databases("two_gateways").await;
    let Some(mysql) = dbs.iter().find(|d| d.label() == "mysql") else {
        shop_kit::testing::cleanup(&dbs).await;
        return;
    };
    // Two whole platforms (gateway and subgraphs each) over one database and one Redis,
    // as two replicas of everything would run.
    let prefix = format!("live-{}", shop_kit::ids::new_id());
    let platform = |seed: bool, issuers: Option<Vec<shop_kit::auth::TrustedIssuer>>| {
        let redis = redis.clone();
        let prefix = prefix.clone();
        let dir = std::env::temp_dir().join(format!("shop-e2e-{}", shop_kit::ids::new_id()));
        Harness::start_with(dir, Some(mysql), seed, move |o| {
            o.redis_url = Some(redis);
            o.bus_prefix = prefix;
            if let Some(issuers) = issuers {
                o.issuers = issuers;
            }
        })
    };
    let a = platform(true, None).await;
    // The second trusts the same test issuer's key.
    let same_key = vec![shop_kit::auth::TrustedIssuer::new(
        common::ISSUER,
        common::AUDIENCE,
        shop_kit::auth::JwksSource::Inline(a.key.jwks()),
    )];
    let mut b = platform(false, Some(same_key)).await;
    b.key = a.key.clone();
    let p = product(&a, 3000, 4).await;
    let (token, cart) = cart_of(&a, "buyer-two-gateways", &[(&p, 1)]).await;

    let mut on_a = WsClient::connect(&a.platform.gateway_url, Some(&token)).await;
    on_a.subscribe("mine", MY_UPDATES, json!({})).await;
    let mut on_b = WsClient::connect(&b.platform.gateway_url, Some(&token)).await;
    on_b.subscribe("mine", MY_UPDATES, json!({})).await;
    listeners(&a, 1).await;
    listeners(&b, 1).await;

    let r = checkout(&a, &token, &cart, "4242424242424242", "two-1").await;
    let order = r.data()["checkout"]["id"].as_str().unwrap().to_string();
    // Status changes made through either gateway.
    set_status(&b, &order, "FULFILLED").await;
    set_status(&a, &order, "SHIPPED").await;
    for client in [&mut on_a, &mut on_b] {
        let mut seen = Vec::new();
        for _ in 0..3 {
            let e = client.next_for("mine").await;
            assert!(e.get("errors").is_none(), "{e}");
            let u = &e["data"]["myOrderUpdates"];
            assert_eq!(u["order"]["id"], order.as_str());
            seen.push(u["status"].as_str().unwrap().to_string());
        }
        assert_eq!(seen, ["PAID", "FULFILLED", "SHIPPED"]);
        assert!(
            client.silent_for(Duration::from_millis(500)).await,
            "each update once, though both platforms relay the outbox"
        );
    }
    a.stop().await;
    b.stop().await;
    shop_kit::testing::cleanup(&dbs).await;
}

#[tokio::test]
async fn after_redis_restarts_empty_live_updates_and_notifications_carry_on() {
    let Some(mut redis) = shop_kit::testing::RedisServer::start("live_redis_restart") else {
        return;
    };
    let url = redis.url();
    let dir = std::env::temp_dir().join(format!("shop-e2e-{}", shop_kit::ids::new_id()));
    let h = Harness::start_with(dir, None, true, move |o| {
        o.redis_url = Some(url);
        o.bus_prefix = format!("restart-{}", shop_kit::ids::new_id());
    })
    .await;
    let p = product(&h, 1800, 3).await;
    let (token, cart) = cart_of(&h, "buyer-redis-restart", &[(&p, 1)]).await;
    let mut ws = WsClient::connect(&h.platform.gateway_url, Some(&token)).await;
    ws.subscribe("mine", MY_UPDATES, json!({})).await;
    listeners(&h, 1).await;
    let r = checkout(&h, &token, &cart, "4242424242424242", "restart-1").await;
    let order = r.data()["checkout"]["id"].as_str().unwrap().to_string();
    assert_eq!(
        ws.next_for("mine").await["data"]["myOrderUpdates"]["status"],
        "PAID"
    );

    // Redis comes back with nothing: no streams, no consumer groups, no counters.
    redis.restart();
    // The first request after the restart may meet a dropped connection; clients retry.
    let admin = h.token(shop::seed::DEMO_ADMIN, Role::Admin);
    for status in ["FULFILLED", "SHIPPED"] {
        eventually(&format!("set {status}"), || async {
            let r = h
                .gql(
                    Some(&admin),
                    "mutation($o: ID!, $s: OrderStatus!) { setOrderStatus(id: $o, status: $s) { status } }",
                    json!({ "o": order, "s": status }),
                )
                .await;
            (r.body["data"]["setOrderStatus"]["status"] == status).then_some(())
        })
        .await;
    }
    // The gateway's stream reader and the notifications consumer reconnect on their own.
    let mut seen = Vec::new();
    for _ in 0..2 {
        let e = ws.next_for("mine").await;
        assert!(e.get("errors").is_none(), "{e}");
        seen.push(
            e["data"]["myOrderUpdates"]["status"]
                .as_str()
                .unwrap()
                .to_string(),
        );
    }
    assert_eq!(seen, ["FULFILLED", "SHIPPED"]);
    eventually("the shipping notification", || async {
        let r = h
            .gql(
                Some(&token),
                "{ notifications { edges { node { orderId title } } } }",
                json!({}),
            )
            .await;
        let edges = r.body["data"]["notifications"]["edges"]
            .as_array()
            .cloned()?;
        let titles: Vec<String> = edges
            .iter()
            .filter(|e| e["node"]["orderId"] == order.as_str())
            .filter_map(|e| e["node"]["title"].as_str().map(str::to_lowercase))
            .collect();
        titles.iter().any(|t| t.contains("shipped")).then_some(())
    })
    .await;
    h.stop().await;
}
