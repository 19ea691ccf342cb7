//! The web app served by the all-in-one process: pages rendered from the gateway's API
//! over real HTTP, text escaped, unknown addresses answered with a page, and a clear
//! sentence (not a code) when the API cannot be reached.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::Harness;
use serde_json::json;
use shop_kit::auth::Role;

async fn page(url: &str) -> (u16, String, String) {
    let r = reqwest::get(url).await.expect("the web app answers");
    let status = r.status().as_u16();
    let kind = r
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    (status, kind, r.text().await.unwrap())
}

#[tokio::test]
async fn the_home_page_lists_the_catalogs_and_their_categories_escaped() {
    let dir = std::env::temp_dir().join(format!("shop-web-{}", shop_kit::ids::new_id()));
    let h = Harness::start_with(dir, None, true, |o| {
        o.web_addr = Some(std::net::SocketAddr::from(([127, 0, 0, 1], 0)));
    })
    .await;
    let home = h.platform.web_url.clone().expect("the web app is served");

    // A supplier names a catalog with markup: it shows as text.
    let supplier = h.token(shop::seed::DEMO_SUPPLIERS[1].0, Role::Supplier);
    h.gql(
        Some(&supplier),
        "mutation { createCatalog(input: { name: \"<b>Tom & Jerry</b>\", description: \"cats \\\"and\\\" mice\" }) { id } }",
        json!({}),
    )
    .await
    .data();

    let (status, kind, html) = page(&home).await;
    assert_eq!(status, 200, "{html}");
    assert!(kind.starts_with("text/html"), "{kind}");
    for (_, shop) in shop::seed::DEMO_SUPPLIERS {
        assert!(
            html.contains(&format!("<h2>{shop}</h2>")),
            "{shop} missing: {html}"
        );
    }
    // The demo's category tree: a top-level category and one of its leaves.
    assert!(
        html.contains("Apparel") && html.contains("<li>Jackets</li>"),
        "{html}"
    );
    assert!(
        html.contains("&#60;b&#62;Tom &#38; Jerry&#60;/b&#62;"),
        "{html}"
    );
    assert!(!html.contains("<b>Tom"), "{html}");
    assert!(html.contains("by Lumen Electronics"), "{html}");
    assert!(html.contains("<html lang=\"en\">") && html.contains("name=\"viewport\""));

    let (status, kind, css) = page(&format!("{home}assets/site.css")).await;
    assert_eq!(status, 200);
    assert!(kind.starts_with("text/css"), "{kind}");
    assert!(css.contains(":focus-visible"));

    let (status, _, html) = page(&format!("{home}no/such/page")).await;
    assert_eq!(status, 404);
    assert!(html.contains("Page not found"), "{html}");
    h.stop().await;
}

#[tokio::test]
async fn without_the_gateway_a_page_says_so_in_words() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    // A gateway address nothing listens on.
    let dead = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let gateway_url = format!("http://{}/graphql", dead.local_addr().unwrap());
    drop(dead);
    let app = shop_web::router(&shop_web::WebOptions { gateway_url });
    let server = tokio::spawn(async move { axum::serve(listener, app).await });
    let (status, _, html) = page(&format!("http://{addr}/")).await;
    assert_eq!(status, 502);
    assert!(html.contains("cannot be reached right now"), "{html}");
    assert!(
        !html.contains("INTERNAL") && !html.contains("error sending"),
        "{html}"
    );
    server.abort();
}
