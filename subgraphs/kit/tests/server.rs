//! The listener every process serves with: request heads over the limits get a coded
//! GraphQL error (not hyper's empty status), a client that trickles its head is cut
//! off, and the caller's address reaches handlers.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use axum::routing::get;
use serde_json::Value;
use shop_kit::server::{MAX_HEADER_BYTES, MAX_HEADER_COUNT, MAX_URI_BYTES, ServeOptions};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

async fn start(options: ServeOptions) -> (String, tokio::sync::oneshot::Sender<()>) {
    let app = Router::new().route(
        "/graphql",
        get(|ConnectInfo(peer): ConnectInfo<SocketAddr>| async move { peer.ip().to_string() }),
    );
    let listener = shop_kit::server::bind("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(async move {
        shop_kit::server::serve_with(
            listener,
            app,
            async {
                let _ = stopped.await;
            },
            &options,
        )
        .await
    });
    (format!("http://{addr}/graphql"), stop)
}

async fn code(reply: reqwest::Response) -> (u16, String) {
    let status = reply.status().as_u16();
    let body: Value = serde_json::from_slice(&reply.bytes().await.unwrap()).expect("a JSON body");
    let code = body["errors"][0]["extensions"]["code"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    (status, code)
}

#[tokio::test]
async fn heads_over_the_limits_get_coded_graphql_errors() {
    let (url, _stop) = start(ServeOptions::default()).await;
    let client = reqwest::Client::new();

    // At the limits: served, with the caller's address.
    let at_limit = format!(
        "{url}?q={}",
        "a".repeat(MAX_URI_BYTES - "/graphql?q=".len())
    );
    let reply = client.get(&at_limit).send().await.unwrap();
    assert_eq!(reply.status(), 200);
    assert_eq!(reply.text().await.unwrap(), "127.0.0.1");

    // One byte over the URI limit.
    let over = format!("{at_limit}a");
    let (status, code_) = code(client.get(&over).send().await.unwrap()).await;
    assert_eq!((status, code_.as_str()), (414, "URI_TOO_LONG"));

    // Header bytes over the limit, in few fields.
    let mut req = client.get(&url);
    let value = "v".repeat(8 * 1024);
    for i in 0..(MAX_HEADER_BYTES / value.len() + 1) {
        req = req.header(format!("x-big-{i}"), &value);
    }
    let (status, code_) = code(req.send().await.unwrap()).await;
    assert_eq!((status, code_.as_str()), (431, "REQUEST_HEADERS_TOO_LARGE"));

    // Too many small fields (hyper alone would have refused over 100 with an empty 431).
    let mut req = client.get(&url);
    for i in 0..=MAX_HEADER_COUNT {
        req = req.header(format!("x-f-{i}"), "1");
    }
    let (status, code_) = code(req.send().await.unwrap()).await;
    assert_eq!((status, code_.as_str()), (431, "REQUEST_HEADERS_TOO_LARGE"));

    // Many fields, but within the limit: served.
    let mut req = client.get(&url);
    for i in 0..(MAX_HEADER_COUNT - 10) {
        req = req.header(format!("x-f-{i}"), "1");
    }
    assert_eq!(req.send().await.unwrap().status(), 200);
}

#[tokio::test]
async fn a_client_that_trickles_its_request_head_is_cut_off() {
    let (url, _stop) = start(ServeOptions {
        header_read_timeout: Duration::from_millis(300),
    })
    .await;
    let addr = url
        .trim_start_matches("http://")
        .trim_end_matches("/graphql")
        .to_string();
    let mut socket = tokio::net::TcpStream::connect(&addr).await.unwrap();
    socket
        .write_all(b"GET /graphql HTTP/1.1\r\nhost: x\r\n")
        .await
        .unwrap();
    let started = std::time::Instant::now();
    let mut buf = Vec::new();
    // The server closes the connection; the head never completed.
    let read = tokio::time::timeout(Duration::from_secs(5), socket.read_to_end(&mut buf)).await;
    assert!(read.is_ok(), "the connection is still open after 5 s");
    assert!(started.elapsed() < Duration::from_secs(3));
    assert!(
        !String::from_utf8_lossy(&buf).contains("200 OK"),
        "{}",
        String::from_utf8_lossy(&buf)
    );

    // A client that sends its head in time is served on the same server.
    let reply = reqwest::get(&url).await.unwrap();
    assert_eq!(reply.status(), 200);
}

#[tokio::test]
async fn shutdown_stops_accepting_and_lets_the_request_in_flight_finish() {
    let app = Router::new().route(
        "/slow",
        get(|| async {
            tokio::time::sleep(Duration::from_millis(500)).await;
            "done"
        }),
    );
    let listener = shop_kit::server::bind("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(shop_kit::server::serve(listener, app, async {
        let _ = stopped.await;
    }));
    let slow = tokio::spawn(reqwest::get(format!("http://{addr}/slow")));
    tokio::time::sleep(Duration::from_millis(100)).await;
    stop.send(()).unwrap();
    let reply = slow.await.unwrap().unwrap();
    assert_eq!(reply.text().await.unwrap(), "done");
    tokio::time::timeout(Duration::from_secs(5), server)
        .await
        .expect("the server stops once the request finished")
        .unwrap()
        .unwrap();
    assert!(
        tokio::net::TcpStream::connect(addr).await.is_err(),
        "still accepting after shutdown"
    );
}
