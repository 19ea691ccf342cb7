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
            html.contains(&format!("\">{shop}</a></h2>")),
            "{shop} missing: {html}"
        );
    }
    // The demo's category tree: a top-level category and one of its leaves.
    assert!(
        html.contains("Apparel") && html.contains("\">Jackets</a></li>"),
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
    let app = shop_web::router(&shop_web::WebOptions {
        gateway_url,
        session_key: b"a test key of at least thirty-two bytes".to_vec(),
        secure_cookies: false,
        public_url: None,
    });
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

async fn web_platform(ttl_secs: u64) -> (Harness, String) {
    web_platform_with(ttl_secs, |_| {}).await
}

async fn web_platform_with(
    ttl_secs: u64,
    edit: impl FnOnce(&mut shop::platform::PlatformOptions),
) -> (Harness, String) {
    let dir = std::env::temp_dir().join(format!("shop-web-{}", shop_kit::ids::new_id()));
    let h = Harness::start_with(dir, None, true, |o| {
        o.web_addr = Some(std::net::SocketAddr::from(([127, 0, 0, 1], 0)));
        o.access_token_ttl = std::time::Duration::from_secs(ttl_secs);
        edit(o);
    })
    .await;
    let home = h.platform.web_url.clone().expect("the web app is served");
    // The demo's stock reaches the catalog as events: wait until products show as in
    // stock before shopping.
    let mut b = common::web::Browser::new(&home);
    for _ in 0..150 {
        if !b.get("/search?stock=1").await.product_links().is_empty() {
            return (h, home);
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("no product came in stock");
}

/// An admin makes a promo code of `percent` off.
async fn promo_code(h: &Harness, code: &str, percent: i32) {
    let admin = h.token(shop::seed::DEMO_ADMIN, Role::Admin);
    h.gql(
        Some(&admin),
        "mutation($c: String!, $p: Int!) { createPromoCode(input: { code: $c, percentOff: $p }) { code } }",
        json!({ "c": code, "p": percent }),
    )
    .await
    .data();
}

/// A shopper's path through the storefront over real HTTP: browse, search, filter by
/// a facet, open a product, add it to an anonymous cart (held, with a countdown), sign
/// in (the cart comes along), apply a promo code, sign out. Forms without the
/// session's CSRF token change nothing.
#[tokio::test]
async fn a_shopper_browses_fills_a_cart_signs_in_and_keeps_it() {
    use common::web::{Browser, between};
    let (h, home) = web_platform(900).await;
    let mut b = Browser::new(&home);

    let page = b.get("/").await;
    assert_eq!(page.status, 200);
    let catalog = between(&page.html, "href=\"/catalog/", "\"").expect("a catalog link");
    let category = between(&page.html, "href=\"/category/", "\"").expect("a category link");
    let page = b.get(&format!("/catalog/{catalog}")).await;
    assert_eq!(page.status, 200, "{}", page.html);
    assert!(!page.product_links().is_empty(), "{}", page.html);
    let page = b.get(&format!("/category/{category}")).await;
    assert_eq!(page.status, 200, "{}", page.html);
    assert!(page.html.contains("aria-label=\"Breadcrumb\""));

    // Search, then narrow by an attribute value from the facets: the count beside the
    // value is what the narrowed page lists.
    let page = b.get("/search?q=jacket").await;
    assert_eq!(page.status, 200, "{}", page.html);
    let all = page.product_links();
    assert!(!all.is_empty(), "{}", page.html);
    let value = between(&page.html, "name=\"attr\" value=\"", "\"").expect("an attribute facet");
    let label = format!("value=\"{value}\">");
    let after = page.html.split(&label).nth(1).expect("the facet");
    let count: usize = between(after, "(", ")").unwrap().parse().unwrap();
    let page = b
        .get(&format!(
            "/search?q=jacket&attr={}",
            value.replace('=', "%3D").replace(' ', "+")
        ))
        .await;
    let narrowed = page.product_links();
    let shown: usize = between(
        &page.html,
        "id=\"results-count\" role=\"status\">",
        " product",
    )
    .unwrap()
    .parse()
    .unwrap();
    assert_eq!(shown, count, "{}", page.html);
    assert!(narrowed.len() <= all.len() && !narrowed.is_empty());
    assert!(
        page.html.contains(&format!("value=\"{value}\" checked")),
        "the choice stays ticked"
    );
    let page = b.get("/search?q=zzzzqqq").await;
    assert!(page.html.contains("Nothing matches"), "{}", page.html);

    // An in-stock product.
    let page = b.get("/search?stock=1&sort=price-asc").await;
    let product = page.product_links()[0].clone();
    let page = b.get(&format!("/product/{product}")).await;
    assert_eq!(page.status, 200);
    assert!(page.html.contains("Add to cart"), "{}", page.html);
    let name = between(&page.html, "<h1>", "</h1>").unwrap();
    let csrf = page.csrf();

    // Without the session's token nothing happens.
    let forged = b
        .submit(
            "/cart/add",
            &[("csrf", "forged"), ("product", &product), ("quantity", "1")],
        )
        .await;
    assert!(forged.html.contains("form had expired"), "{}", forged.html);
    let cart = b.get("/cart").await;
    assert!(cart.html.contains("Your cart is empty"), "{}", cart.html);

    let cart = b
        .submit(
            "/cart/add",
            &[("csrf", &csrf), ("product", &product), ("quantity", "2")],
        )
        .await;
    assert!(cart.html.contains(&name), "{}", cart.html);
    assert!(cart.html.contains("Added 2 to your cart"), "{}", cart.html);
    let countdown = between(&cart.html, "id=\"countdown\" aria-live=\"off\">", "<").unwrap();
    let (m, s) = countdown.split_once(':').unwrap();
    let left = m.parse::<u32>().unwrap() * 60 + s.parse::<u32>().unwrap();
    assert!((540..=600).contains(&left), "{countdown}");
    assert!(cart.html.contains("value=\"2\""), "{}", cart.html);
    assert!(
        cart.html
            .contains("<span class=\"badge\" aria-label=\"2 items\">2</span>")
    );

    // A bad quantity is refused in words.
    let cart = b
        .submit(
            "/cart/update",
            &[("csrf", &csrf), ("product", &product), ("quantity", "-3")],
        )
        .await;
    assert!(cart.html.contains("quantity from 0 to 99"), "{}", cart.html);

    // Sign in: a wrong password is a sentence, then the cart comes along.
    let page = b.get("/sign-in?next=/cart").await;
    let csrf = page.csrf();
    let wrong = b
        .post(
            "/sign-in",
            &[
                ("csrf", &csrf),
                ("email", "customer@demo.shop"),
                ("password", "nope"),
                ("next", "/cart"),
            ],
        )
        .await;
    assert_eq!(wrong.status, 422);
    assert!(
        wrong.html.contains("do not match an account"),
        "{}",
        wrong.html
    );
    let cart = b
        .submit(
            "/sign-in",
            &[
                ("csrf", &csrf),
                ("email", "customer@demo.shop"),
                ("password", shop::seed::DEMO_PASSWORD),
                ("next", "/cart"),
            ],
        )
        .await;
    assert!(cart.html.contains("Demo Customer"), "{}", cart.html);
    assert!(
        cart.html.contains(&name) && cart.html.contains("value=\"2\""),
        "{}",
        cart.html
    );
    assert!(cart.html.contains("href=\"/checkout\""), "{}", cart.html);
    // The token of before signing in no longer works.
    assert_ne!(cart.csrf(), csrf);
    let stale = b
        .submit("/cart/promo", &[("csrf", &csrf), ("code", "X")])
        .await;
    assert!(stale.html.contains("form had expired"));

    // A promo code an admin made.
    promo_code(&h, "WEB10", 10).await;
    let csrf = stale.csrf();
    let cart = b
        .submit("/cart/promo", &[("csrf", &csrf), ("code", "nosuch")])
        .await;
    assert!(
        cart.html.contains("class=\"notice error\""),
        "{}",
        cart.html
    );
    assert!(!cart.html.contains("NOT_FOUND") && !cart.html.contains("BAD_USER_INPUT"));
    let cart = b
        .submit("/cart/promo", &[("csrf", &csrf), ("code", "web10")])
        .await;
    assert!(cart.html.contains("id=\"discount\""), "{}", cart.html);

    // Remove the line; sign out; the cart is the user's, not the browser's.
    let cart = b
        .submit(
            "/cart/update",
            &[("csrf", &csrf), ("product", &product), ("remove", "1")],
        )
        .await;
    assert!(
        cart.html.contains("Removed from your cart"),
        "{}",
        cart.html
    );
    let page = b.submit("/sign-out", &[("csrf", &csrf)]).await;
    assert!(page.html.contains("You are signed out") && page.html.contains("href=\"/sign-in\""));
    h.stop().await;
}

/// Access tokens that expire every second are exchanged without the visitor noticing,
/// also by requests that arrive together with the same cookie (the API would end a
/// sign-in whose refresh token is spent twice); after signing out, an old copy of the
/// cookie is signed out too.
#[tokio::test]
async fn sessions_refresh_transparently_and_end_at_sign_out() {
    use common::web::Browser;
    let (h, home) = web_platform(1).await;
    let (mut b, page) =
        Browser::signed_in(&home, "customer@demo.shop", shop::seed::DEMO_PASSWORD).await;
    assert!(page.html.contains("Demo Customer"), "{}", page.html);
    for _ in 0..2 {
        tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
        // Five requests at once with the cookie of before.
        let cookie = b.cookie.clone();
        let mut pages = Vec::new();
        for _ in 0..5 {
            let mut twin = Browser::new(&home);
            twin.cookie = cookie.clone();
            pages.push(tokio::spawn(async move {
                (twin.get("/cart").await, twin.cookie)
            }));
        }
        let mut last = None;
        for p in pages {
            let (page, cookie) = p.await.unwrap();
            assert!(page.html.contains("Demo Customer"), "{}", page.html);
            last = cookie;
        }
        b.cookie = last;
    }
    let before = b.cookie.clone();
    let csrf = b.get("/").await.csrf();
    let page = b.submit("/sign-out", &[("csrf", &csrf)]).await;
    assert!(page.html.contains("You are signed out"));
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let mut old = Browser::new(&home);
    old.cookie = before;
    let page = old.get("/").await;
    assert!(!page.html.contains("Demo Customer"), "{}", page.html);
    assert!(page.html.contains("session ended"), "{}", page.html);
    h.stop().await;
}

/// Checkout in the web app: a declined card is explained and orders nothing; the same
/// attempt sent twice is one order; the order page's event stream shows the status an
/// admin sets, as it happens; the shopper cancels another order while allowed.
#[tokio::test]
async fn checkout_explains_a_declined_card_orders_once_and_follows_the_order_live() {
    use common::web::{Browser, between};
    let (h, home) = web_platform(900).await;
    let (mut b, _) =
        Browser::signed_in(&home, "customer@demo.shop", shop::seed::DEMO_PASSWORD).await;
    let add = async |b: &mut Browser| {
        let page = b.get("/search?stock=1&sort=price-asc").await;
        let product = page.product_links()[0].clone();
        let csrf = b.get(&format!("/product/{product}")).await.csrf();
        b.submit(
            "/cart/add",
            &[("csrf", &csrf), ("product", &product), ("quantity", "1")],
        )
        .await;
    };
    add(&mut b).await;
    let page = b.get("/checkout").await;
    assert_eq!(page.status, 200, "{}", page.html);
    // Nothing to pay before the shipping is priced for an address.
    assert!(!page.html.contains("Place order"), "{}", page.html);
    assert!(page.html.contains("Continue to shipping and payment"));
    let csrf = page.csrf();
    let attempt = between(&page.html, "name=\"attempt\" value=\"", "\"").unwrap();
    let form = |card: &'static str, attempt: String, csrf: String| {
        vec![
            ("csrf", csrf),
            ("attempt", attempt),
            ("saved", String::new()),
            ("name", "Ann Lee".to_string()),
            ("line1", "Hauptstr. 1".to_string()),
            ("city", "Berlin".to_string()),
            ("postal_code", "10115".to_string()),
            ("country", "de".to_string()),
            ("card_holder", "Ann Lee".to_string()),
            ("card_number", card.to_string()),
            ("card_expiry", "12/30".to_string()),
            ("card_cvc", "123".to_string()),
        ]
    };
    let as_refs = |f: &Vec<(&'static str, String)>| -> Vec<(&'static str, String)> { f.clone() };
    let post = async |b: &mut Browser, f: Vec<(&'static str, String)>| {
        let pairs: Vec<(&str, &str)> = f.iter().map(|(k, v)| (*k, v.as_str())).collect();
        b.post("/checkout", &pairs).await
    };

    // Priced for the address: the button names what the order will cost.
    let mut quoting = form("", attempt.clone(), csrf.clone());
    quoting.push(("step", "quote".to_string()));
    let quoted = post(&mut b, quoting).await;
    assert_eq!(quoted.status, 200, "{}", quoted.html);
    let total = between(&quoted.html, "id=\"grand-total\">", "<").unwrap();
    assert!(
        quoted.html.contains(&format!("Place order: pay {total}")),
        "{}",
        quoted.html
    );
    assert!(quoted.html.contains("id=\"shipping-cost\""));

    // Declined: said in words, the typed address kept, a new attempt offered.
    let declined = post(
        &mut b,
        as_refs(&form("4000 0000 0000 0002", attempt.clone(), csrf.clone())),
    )
    .await;
    assert_eq!(declined.status, 422, "{}", declined.html);
    assert!(
        declined
            .html
            .contains("Your card was not accepted. The card was declined"),
        "{}",
        declined.html
    );
    assert!(!declined.html.contains("PAYMENT_DECLINED"));
    assert!(declined.html.contains("value=\"Hauptstr. 1\""));
    let retry = between(&declined.html, "name=\"attempt\" value=\"", "\"").unwrap();
    assert_ne!(retry, attempt);
    let orders = "{ myOrders(first: 10) { totalCount nodes { id status } } }";
    let buyer = h.token(shop::seed::DEMO_CUSTOMER, Role::Customer);
    assert_eq!(
        h.gql(Some(&buyer), orders, json!({})).await.data()["myOrders"]["totalCount"],
        0
    );

    // The good card, sent twice (a double click): one order.
    let good = form("4242 4242 4242 4242", retry.clone(), csrf.clone());
    let (first, second) = tokio::join!(
        async {
            let mut twin = Browser::new(&home);
            twin.cookie = b.cookie.clone();
            post(&mut twin, good.clone()).await
        },
        async {
            let mut twin = Browser::new(&home);
            twin.cookie = b.cookie.clone();
            post(&mut twin, good.clone()).await
        }
    );
    for p in [&first, &second] {
        assert_eq!(p.status, 303, "{}", p.html);
    }
    let mine = h.gql(Some(&buyer), orders, json!({})).await;
    assert_eq!(
        mine.data()["myOrders"]["totalCount"],
        1,
        "one order for one attempt"
    );
    let order_id = mine.data()["myOrders"]["nodes"][0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let to = first.location.clone().unwrap();
    assert!(
        to == format!("/orders/{order_id}") || to == "/orders",
        "{to}"
    );
    let page = b.get(&format!("/orders/{order_id}")).await;
    assert!(page.html.contains("id=\"order-status\""), "{}", page.html);
    assert!(
        page.html
            .contains(&format!("<dd class=\"grand\">{total}</dd>")),
        "the order costs what the checkout said ({total}): {}",
        page.html
    );
    assert!(page.html.contains("Paid"), "{}", page.html);

    // Live: an admin packs it while the page's stream is open.
    let admin = h.token(shop::seed::DEMO_ADMIN, Role::Admin);
    let stream = format!("/orders/{order_id}/events");
    let watch = b.events_until(&stream, "status", std::time::Duration::from_secs(15), |v| {
        v["status"] == "FULFILLED"
    });
    let pack = async {
        tokio::time::sleep(std::time::Duration::from_millis(700)).await;
        h.gql(
            Some(&admin),
            "mutation($id: ID!) { setOrderStatus(id: $id, status: FULFILLED, note: \"packed\") { status } }",
            json!({ "id": order_id }),
        )
        .await
        .data();
    };
    let (seen, ()) = tokio::join!(watch, pack);
    let last = seen
        .last()
        .unwrap_or_else(|| panic!("no status event: {seen:?}"));
    assert_eq!(last["status"], "FULFILLED", "{seen:?}");
    assert_eq!(last["label"], "Packed");
    assert_eq!(last["note"], "packed");
    let page = b.get("/orders").await;
    assert!(page.html.contains("Packed"), "{}", page.html);

    // The bell: shipping it tells the buyer, live, and the count shows on every page.
    let before: i64 = between(&page.html, "id=\"bell-count\" aria-label=\"", " unread")
        .unwrap()
        .parse()
        .unwrap();
    let bell = b.events_until(
        "/notifications/events",
        "notification",
        std::time::Duration::from_secs(15),
        |_| true,
    );
    let ship = async {
        tokio::time::sleep(std::time::Duration::from_millis(700)).await;
        h.gql(
            Some(&admin),
            "mutation($id: ID!) { setOrderStatus(id: $id, status: SHIPPED, note: \"on its way\") { status } }",
            json!({ "id": order_id }),
        )
        .await
        .data();
    };
    let (rang, ()) = tokio::join!(bell, ship);
    assert_eq!(rang.len(), 1, "no notification event");
    assert_eq!(rang[0]["link"], format!("/orders/{order_id}"));
    let page = b.get("/").await;
    let after: i64 = between(&page.html, "id=\"bell-count\" aria-label=\"", " unread")
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(after, before + 1, "{}", page.html);
    let page = b.get("/notifications").await;
    assert!(
        page.html.contains(&format!("href=\"/orders/{order_id}\"")),
        "{}",
        page.html
    );
    let page = b
        .submit("/notifications/read", &[("csrf", &page.csrf())])
        .await;
    assert!(
        page.html
            .contains("class=\"badge empty\" id=\"bell-count\""),
        "{}",
        page.html
    );

    // Another order, cancelled by the shopper.
    add(&mut b).await;
    let page = b.get("/checkout").await;
    let f = form(
        "4242424242424242",
        between(&page.html, "name=\"attempt\" value=\"", "\"").unwrap(),
        page.csrf(),
    );
    let placed = post(&mut b, f).await;
    let to = placed.location.unwrap();
    let page = b.get(&to).await;
    assert!(page.html.contains("Thank you!"), "{}", page.html);
    let page = b
        .submit(
            &format!("{to}/cancel"),
            &[("csrf", &page.csrf()), ("reason", "changed my mind")],
        )
        .await;
    assert!(
        page.html.contains("Your order is cancelled"),
        "{}",
        page.html
    );
    assert!(page.html.contains("Cancelled") && !page.html.contains("id=\"cancel-form\""));
    // Not somebody else's order.
    let mut stranger = Browser::new(&home);
    let page = stranger.get(&format!("/orders/{order_id}/events")).await;
    assert_ne!(page.status, 200);
    h.stop().await;
}

/// Where the browser tests put their screenshots (named in the README).
fn screenshot_dir() -> std::path::PathBuf {
    std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/screenshots")
}

/// The storefront end to end in Debian's chromium (tests/browser/storefront.mjs):
/// browse, search, filter, product, cart with its countdown, sign up, the mail's
/// verification link, sign in with the cart merged, promo code, a declined and a good
/// card, the order page following an admin's changes live, the bell; axe-core on
/// every page, screenshots at 375 and 1440 px.
#[tokio::test]
async fn the_storefront_works_in_a_real_browser() {
    let (h, home) = web_platform(900).await;
    promo_code(&h, "WEB10", 10).await;
    let mail = h.dir.join("mail");
    let shots = screenshot_dir().join("storefront");
    common::browser::run(
        "the_storefront_works_in_a_real_browser",
        "storefront.mjs",
        &[
            &home,
            &h.platform.gateway_url,
            &mail.to_string_lossy(),
            &shots.to_string_lossy(),
        ],
    )
    .await;
    h.stop().await;
}

/// The supplier portal in a real browser: a file of thousands of rows reviewed,
/// applied with the progress followed live, rolled back; stock received; the admin's
/// import jobs and mail log (see `tests/browser/supplier.mjs`).
#[tokio::test]
async fn the_supplier_portal_works_in_a_real_browser() {
    let (h, home) = web_platform(900).await;
    let shots = screenshot_dir().join("supplier");
    common::browser::run(
        "the_supplier_portal_works_in_a_real_browser",
        "supplier.mjs",
        &[&home, &shots.to_string_lossy()],
    )
    .await;
    h.stop().await;
}

/// The admin console: only admins get in; an admin finds an account, changes its roles
/// (the API then has them) and disables it (it can no longer sign in), and moves an
/// order on, which its buyer's order page then shows.
#[tokio::test]
async fn an_admin_manages_accounts_and_moves_orders_from_the_console() {
    use common::web::{Browser, between};
    let (h, home) = web_platform(900).await;
    let sign_in = async |email: &str| Browser::demo_account(&home, email).await;
    let mut shopper = sign_in("customer@demo.shop").await;
    let page = shopper.get("/admin/users").await;
    assert_eq!(page.status, 403, "{}", page.html);
    assert!(!page.html.contains("href=\"/admin\""));
    let mut anonymous = Browser::new(&home);
    let page = anonymous.get("/admin/orders").await;
    assert_eq!(page.status, 303);
    assert!(page.location.unwrap().starts_with("/sign-in?next="));

    let mut admin = sign_in("admin@demo.shop").await;
    let page = admin.get("/").await;
    assert!(page.html.contains("href=\"/admin\""), "{}", page.html);
    let page = admin.get("/admin/users?q=customer%40demo").await;
    assert_eq!(page.status, 200, "{}", page.html);
    assert!(page.html.contains("1 account"), "{}", page.html);
    let user = between(&page.html, "href=\"/admin/users/", "\"").unwrap();
    assert_eq!(user, shop::seed::DEMO_CUSTOMER);
    let page = admin.get("/admin/users?role=SUPPLIER").await;
    for (_, name) in shop::seed::DEMO_SUPPLIERS {
        assert!(page.html.contains(name), "{name}: {}", page.html);
    }
    assert!(!page.html.contains("Demo Customer"));

    let page = admin.get(&format!("/admin/users/{user}")).await;
    let csrf = page.csrf();
    let page = admin
        .submit(
            &format!("/admin/users/{user}/roles"),
            &[("csrf", &csrf), ("role", "CUSTOMER"), ("role", "SUPPLIER")],
        )
        .await;
    assert!(page.html.contains("Roles saved"), "{}", page.html);
    assert!(page.html.contains("Customer, Supplier"), "{}", page.html);
    let admin_token = h.token(shop::seed::DEMO_ADMIN, Role::Admin);
    let roles = h
        .gql(
            Some(&admin_token),
            "query($id: ID!) { user(id: $id) { roles disabled } }",
            json!({ "id": user }),
        )
        .await;
    assert_eq!(
        roles.data()["user"]["roles"],
        json!(["CUSTOMER", "SUPPLIER"])
    );
    let page = admin
        .submit(&format!("/admin/users/{user}/roles"), &[("csrf", &csrf)])
        .await;
    assert!(page.html.contains("at least one role"), "{}", page.html);

    // An order of the customer's, moved on by the admin; the buyer sees it.
    let buyer = h.token(shop::seed::DEMO_CUSTOMER, Role::Customer);
    let placed = common::place_demo_order(&h, &buyer).await;
    let page = admin.get("/admin/orders?status=PAID").await;
    assert!(
        page.html
            .contains(&format!("href=\"/admin/orders/{placed}\"")),
        "{}",
        page.html
    );
    let page = admin.get(&format!("/admin/orders/{placed}")).await;
    assert!(
        page.html
            .contains("Demo Customer &#60;customer@demo.shop&#62;"),
        "{}",
        page.html
    );
    let page = admin
        .submit(
            &format!("/admin/orders/{placed}"),
            &[
                ("csrf", &csrf),
                ("action", "status"),
                ("status", "FULFILLED"),
                ("note", "packed today"),
            ],
        )
        .await;
    assert!(
        page.html.contains("The order is now packed"),
        "{}",
        page.html
    );
    let page = shopper.get(&format!("/orders/{placed}")).await;
    assert!(
        page.html.contains("Packed") && page.html.contains("packed today"),
        "{}",
        page.html
    );
    // A partial refund in major units.
    let page = admin
        .submit(
            &format!("/admin/orders/{placed}"),
            &[
                ("csrf", &csrf),
                ("action", "refund"),
                ("amount", "0.50"),
                ("currency", "EUR"),
                ("note", "a scratch"),
            ],
        )
        .await;
    assert!(page.html.contains("refund is on its way"), "{}", page.html);
    let refunded = h
        .gql(
            Some(&admin_token),
            "query($id: ID!) { order(id: $id) { payment { refundedAmount { amount } } } }",
            json!({ "id": placed }),
        )
        .await;
    assert_eq!(
        refunded.data()["order"]["payment"]["refundedAmount"]["amount"],
        50
    );

    // Disabled: signed out, and no sign-in.
    let page = admin
        .submit(
            &format!("/admin/users/{user}/disabled"),
            &[("csrf", &csrf), ("disabled", "1")],
        )
        .await;
    assert!(page.html.contains("is disabled"), "{}", page.html);
    let mut again = Browser::new(&home);
    let csrf = again.get("/sign-in").await.csrf();
    let page = again
        .post(
            "/sign-in",
            &[
                ("csrf", &csrf),
                ("email", "customer@demo.shop"),
                ("password", shop::seed::DEMO_PASSWORD),
            ],
        )
        .await;
    assert_eq!(page.status, 422, "{}", page.html);
    h.stop().await;
}

/// The account page: details (the frame follows a new name), a saved default address
/// that checkout then prices at once, a wrong current password refused in words, and
/// signing out everywhere, which also ends a sign-in in another browser.
#[tokio::test]
async fn a_shopper_keeps_their_account_and_signs_out_everywhere() {
    use common::web::Browser;
    let (h, home) = web_platform(1).await;
    let (mut b, _) =
        Browser::signed_in(&home, "customer@demo.shop", shop::seed::DEMO_PASSWORD).await;
    let (mut other, page) =
        Browser::signed_in(&home, "customer@demo.shop", shop::seed::DEMO_PASSWORD).await;
    assert!(page.html.contains("Demo Customer"));
    let page = b.get("/account").await;
    assert_eq!(page.status, 200, "{}", page.html);
    assert!(page.html.contains("customer@demo.shop"), "{}", page.html);
    let csrf = page.csrf();

    let page = b
        .submit(
            "/account/profile",
            &[("csrf", &csrf), ("name", "Dana Customer"), ("phone", "")],
        )
        .await;
    assert!(
        page.html.contains("Your details are saved"),
        "{}",
        page.html
    );
    assert!(
        page.html.contains(">Dana Customer</a>"),
        "the frame shows the new name"
    );

    let page = b
        .submit(
            "/account/addresses",
            &[
                ("csrf", &csrf),
                ("name", "Dana Customer"),
                ("line1", "Rue de Rivoli 1"),
                ("postal_code", "75001"),
                ("city", "Paris"),
                ("country", "fr"),
                ("default", "1"),
            ],
        )
        .await;
    assert!(
        page.html.contains("Rue de Rivoli 1, 75001 Paris, FR"),
        "{}",
        page.html
    );
    // Checkout prices shipping to the default address straight away.
    let product = b
        .get("/search?stock=1&sort=price-asc")
        .await
        .product_links()[0]
        .clone();
    let csrf2 = b.get(&format!("/product/{product}")).await.csrf();
    b.submit(
        "/cart/add",
        &[("csrf", &csrf2), ("product", &product), ("quantity", "1")],
    )
    .await;
    let page = b.get("/checkout").await;
    assert!(page.html.contains("Place order: pay"), "{}", page.html);
    assert!(page.html.contains("Rue de Rivoli 1"), "{}", page.html);

    let page = b
        .submit(
            "/account/password",
            &[
                ("csrf", &csrf),
                ("current", "wrong"),
                ("new_password", "another long one"),
            ],
        )
        .await;
    assert!(
        page.html.contains("class=\"notice error\""),
        "{}",
        page.html
    );
    assert!(!page.html.contains("UNAUTHENTICATED") && !page.html.contains("BAD_USER_INPUT"));

    let page = b.get("/account").await;
    let id = common::web::between(&page.html, "name=\"id\" value=\"", "\"").unwrap();
    let page = b
        .submit("/account/addresses/remove", &[("csrf", &csrf), ("id", &id)])
        .await;
    assert!(!page.html.contains("Rue de Rivoli 1"), "{}", page.html);

    let page = b
        .submit("/account/sign-out-everywhere", &[("csrf", &csrf)])
        .await;
    assert!(
        page.html.contains("signed out on every device"),
        "{}",
        page.html
    );
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let page = other.get("/").await;
    assert!(!page.html.contains("Dana Customer"), "{}", page.html);
    assert!(page.html.contains("session ended"), "{}", page.html);
    h.stop().await;
}

/// The supplier portal over real HTTP: only suppliers (and admins) get in; a supplier
/// creates a catalog, a category and a draft product (a bad price comes back as a
/// sentence with the form filled in), receives stock (the ledger says why), sets an
/// alert level (the product shows as running low), publishes and archives it (the
/// shop follows); uploads a file, reviews the dry run's changes and row errors,
/// applies it while the progress streams, rolls it back, and exports the catalog.
/// The admin console lists the import and the mail sent.
#[tokio::test]
async fn a_supplier_runs_a_catalog_from_the_portal() {
    use common::web::{Browser, between};
    let (h, home) = web_platform(900).await;
    let sign_in = async |email: &str| Browser::demo_account(&home, email).await;
    let mut shopper = sign_in("customer@demo.shop").await;
    let page = shopper.get("/supplier").await;
    assert_eq!(page.status, 403, "{}", page.html);
    assert!(!page.html.contains("href=\"/supplier\""));

    let mut s = sign_in("northwind@demo.shop").await;
    let page = s.get("/supplier").await;
    assert_eq!(page.status, 200, "{}", page.html);
    assert!(
        page.html.contains("href=\"/supplier\">Sell</a>"),
        "{}",
        page.html
    );
    let csrf = page.csrf();
    let page = s
        .submit(
            "/supplier/catalogs",
            &[
                ("csrf", &csrf),
                ("name", "Portal <Test>"),
                ("description", "made in a test"),
            ],
        )
        .await;
    assert!(
        page.html
            .contains("Catalog “Portal &#60;Test&#62;” created"),
        "{}",
        page.html
    );
    let catalog = between(&page.html, "href=\"/supplier/catalogs/", "/products/new\"").unwrap();
    let page = s
        .submit(
            &format!("/supplier/catalogs/{catalog}/categories"),
            &[
                ("csrf", &csrf),
                ("action", "create"),
                ("name", "Mugs"),
                ("parent", ""),
            ],
        )
        .await;
    assert!(page.html.contains("Category “Mugs” added"), "{}", page.html);
    let mugs = between(&page.html, "name=\"id\" value=\"", "\"").unwrap();

    // A product: a price that does not read comes back with the form as typed.
    let path = format!("/supplier/catalogs/{catalog}/products/new");
    let page = s.get(&path).await;
    assert_eq!(page.status, 200, "{}", page.html);
    let product_form = |price: &'static str| {
        vec![
            ("csrf", csrf.clone()),
            ("name", "Speckled mug".to_string()),
            ("sku", "PT-MUG-1".to_string()),
            ("price", price.to_string()),
            ("currency", "EUR".to_string()),
            ("category", mugs.clone()),
            ("description", "Hand thrown.".to_string()),
            ("images", String::new()),
            ("attributes", "color: blue\nsizes: S, M".to_string()),
            ("weight", "350".to_string()),
            ("status", "DRAFT".to_string()),
        ]
    };
    let as_refs = |f: &Vec<(&'static str, String)>| -> Vec<(&str, String)> { f.clone() };
    let bad = as_refs(&product_form("4,50"));
    let bad: Vec<(&str, &str)> = bad.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let page = s.post(&path, &bad).await;
    assert_eq!(page.status, 400, "{}", page.html);
    assert!(
        page.html.contains("Please give the price like 12.50"),
        "{}",
        page.html
    );
    assert!(page.html.contains("value=\"PT-MUG-1\""), "{}", page.html);
    let good = product_form("4.50");
    let good: Vec<(&str, &str)> = good.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let page = s.submit(&path, &good).await;
    assert!(
        page.html.contains("“Speckled mug” created"),
        "{}",
        page.html
    );
    let product = between(&page.html, "action=\"/supplier/products/", "/status\"").unwrap();
    let supplier_token = h.token(shop::seed::DEMO_SUPPLIERS[0].0, Role::Supplier);
    let stored = h
        .gql(
            Some(&supplier_token),
            "query($id: ID!) { product(id: $id) { price { amount currency } status attributes weightGrams category { name } } }",
            json!({ "id": product }),
        )
        .await;
    assert_eq!(
        stored.data()["product"],
        json!({ "price": { "amount": 450, "currency": "EUR" }, "status": "DRAFT",
                "attributes": { "color": "blue", "sizes": ["S", "M"] }, "weightGrams": 350,
                "category": { "name": "Mugs" } })
    );
    let mut anonymous = Browser::new(&home);
    assert_eq!(
        anonymous.get(&format!("/product/{product}")).await.status,
        404
    );

    // Stock: its record appears with the product's event; then units come in.
    let product_page = format!("/supplier/products/{product}");
    let mut page = s.get(&product_page).await;
    for _ in 0..100 {
        if page.html.contains("id=\"stock-on-hand\"") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        page = s.get(&product_page).await;
    }
    assert!(
        page.html.contains("id=\"stock-on-hand\">0<"),
        "{}",
        page.html
    );
    let stock_path = format!("/supplier/products/{product}/stock");
    let page = s
        .submit(
            &stock_path,
            &[
                ("csrf", &csrf),
                ("action", "adjust"),
                ("number", "+20"),
                ("reason", "first delivery"),
            ],
        )
        .await;
    assert!(page.html.contains("Stock changed by +20."), "{}", page.html);
    assert!(
        page.html.contains("id=\"stock-on-hand\">20<"),
        "{}",
        page.html
    );
    let ledger = between(&page.html, "id=\"stock-ledger\"", "</table>").unwrap();
    assert!(
        ledger.contains("first delivery") && ledger.contains("+20"),
        "{ledger}"
    );
    assert!(!page.html.contains("id=\"low-stock-alert\""));
    let low_count = |html: &str| -> i64 {
        between(html, "id=\"low-count\">", "<").map_or(0, |n| n.parse().unwrap())
    };
    let low_before = low_count(&s.get("/supplier").await.html);
    let page = s
        .submit(
            &stock_path,
            &[("csrf", &csrf), ("action", "threshold"), ("number", "25")],
        )
        .await;
    assert!(
        page.html.contains("id=\"low-stock-alert\""),
        "{}",
        page.html
    );
    let page = s
        .submit(
            &stock_path,
            &[
                ("csrf", &csrf),
                ("action", "adjust"),
                ("number", "lots"),
                ("reason", ""),
            ],
        )
        .await;
    assert!(page.html.contains("whole number"), "{}", page.html);
    assert!(
        page.html.contains("id=\"stock-on-hand\">20<"),
        "{}",
        page.html
    );
    let page = s.get("/supplier").await;
    assert_eq!(low_count(&page.html), low_before + 1, "{}", page.html);
    // The alert reaches the bell, and leads to the product's stock.
    let alert = format!("href=\"/supplier/products/{product}#stock\"");
    let mut bell = s.get("/notifications").await;
    for _ in 0..50 {
        if bell.html.contains(&alert) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        bell = s.get("/notifications").await;
    }
    assert!(bell.html.contains(&alert), "{}", bell.html);
    let page = s.get("/supplier/stock?low=1").await;
    assert!(
        page.html.contains("Speckled mug (PT-MUG-1)"),
        "{}",
        page.html
    );

    // Published, the shop sells it; archived, it is gone from the shop.
    let status_path = format!("/supplier/products/{product}/status");
    let page = s
        .submit(&status_path, &[("csrf", &csrf), ("status", "ACTIVE")])
        .await;
    assert!(
        page.html.contains("id=\"product-state\">On sale<"),
        "{}",
        page.html
    );
    assert_eq!(
        anonymous.get(&format!("/product/{product}")).await.status,
        200
    );
    let page = s
        .submit(&status_path, &[("csrf", &csrf), ("status", "ARCHIVED")])
        .await;
    assert!(
        page.html.contains("id=\"product-state\">Archived<"),
        "{}",
        page.html
    );
    // Archived: its page stays for past orders' links, but it is no longer sold.
    let page = anonymous.get(&format!("/product/{product}")).await;
    assert!(page.html.contains("No longer sold"), "{}", page.html);
    assert!(!page.html.contains("action=\"/cart/add\""), "{}", page.html);
    let page = s
        .get(&format!("/supplier/catalogs/{catalog}?status=ARCHIVED"))
        .await;
    assert!(
        page.html.contains("1 product") && page.html.contains("PT-MUG-1"),
        "{}",
        page.html
    );

    // An import: without the form's token nothing starts.
    let file = "sku,name,price,currency,category,attr:color,stock\n\
                PT-CUP-1,Tea cup,6.00,EUR,Mugs > Cups,white,12\n\
                PT-CUP-2,Coffee cup,not a price,EUR,Mugs > Cups,black,3\n\
                PT-CUP-3,Espresso cup,3.20,EUR,Mugs > Cups,red,30\n";
    let import_path = format!("/supplier/catalogs/{catalog}/import");
    let page = s
        .upload(
            &import_path,
            &[("csrf", "forged"), ("review", "1")],
            "cups.csv",
            file.into(),
        )
        .await;
    assert_eq!(page.status, 303);
    let page = s.get(&page.location.unwrap()).await;
    assert!(page.html.contains("That form had expired"), "{}", page.html);
    assert!(
        !page.html.contains("id=\"catalog-imports\""),
        "{}",
        page.html
    );

    let page = s
        .upload(
            &import_path,
            &[
                ("csrf", &csrf),
                ("review", "1"),
                ("on_error", "SKIP_ROWS"),
                ("missing", "KEEP"),
            ],
            "cups.csv",
            file.into(),
        )
        .await;
    assert_eq!(page.status, 303, "{}", page.html);
    let job_path = page.location.unwrap();
    let job = job_path
        .trim_start_matches("/supplier/imports/")
        .to_string();
    let mut page = s.get(&job_path).await;
    for _ in 0..100 {
        if !page.html.contains("data-events=") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        page = s.get(&job_path).await;
    }
    assert!(page.html.contains("Ready for review"), "{}", page.html);
    assert!(
        page.html.contains("id=\"count-create\">2<"),
        "{}",
        page.html
    );
    assert!(
        page.html.contains("id=\"count-failed\">1<"),
        "{}",
        page.html
    );
    let errors = between(&page.html, "id=\"import-errors\"", "</table>").unwrap();
    assert!(
        errors.contains("<td data-label=\"Row\">3</td>") && errors.contains("not a price"),
        "{errors}"
    );
    let changes = between(&page.html, "id=\"import-changes\"", "</table>").unwrap();
    assert!(
        changes.contains("PT-CUP-1") && changes.contains("PT-CUP-3") && changes.contains("New"),
        "{changes}"
    );
    // Reviewed, not applied: the catalog has no cups yet.
    let page = s.get(&format!("/supplier/catalogs/{catalog}?q=cup")).await;
    assert!(page.html.contains("0 products"), "{}", page.html);

    // Applied, with the progress streamed until it is done.
    let page = s
        .post(&job_path, &[("csrf", &csrf), ("action", "apply")])
        .await;
    assert_eq!(page.status, 303);
    let events = s
        .events_until(
            &format!("{job_path}/events"),
            "progress",
            std::time::Duration::from_secs(30),
            |e| e["moving"] == false,
        )
        .await;
    let last = events.last().expect("progress events");
    assert_eq!(last["status"], "DONE", "{events:?}");
    assert_eq!(last["label"], "Applied");
    assert_eq!(last["percent"], 100, "{events:?}");
    let page = s.get(&job_path).await;
    assert!(
        page.html.contains("id=\"rollback-import\""),
        "{}",
        page.html
    );
    let page = s.get(&format!("/supplier/catalogs/{catalog}?q=cup")).await;
    assert!(
        page.html.contains("2 products") && page.html.contains("Espresso cup"),
        "{}",
        page.html
    );

    // Exported in the import's columns, then rolled back.
    let (status, headers, bytes) = s
        .download(
            &format!("/supplier/catalogs/{catalog}/export"),
            &[("csrf", &csrf), ("format", "CSV")],
        )
        .await;
    assert_eq!(status, 200);
    let disposition = headers["content-disposition"].to_str().unwrap();
    assert!(
        disposition.starts_with("attachment; filename=\"") && disposition.ends_with(".csv\""),
        "{disposition}"
    );
    let csv = String::from_utf8(bytes).unwrap();
    assert!(csv.starts_with("sku,"), "{csv}");
    for sku in ["PT-CUP-1", "PT-CUP-3", "PT-MUG-1"] {
        assert!(csv.contains(sku), "{sku}: {csv}");
    }
    assert!(!csv.contains("PT-CUP-2"));
    let page = s
        .post(&job_path, &[("csrf", &csrf), ("action", "rollback")])
        .await;
    assert_eq!(page.status, 303);
    let events = s
        .events_until(
            &format!("{job_path}/events"),
            "progress",
            std::time::Duration::from_secs(30),
            |e| e["moving"] == false,
        )
        .await;
    assert_eq!(
        events.last().expect("events")["status"],
        "ROLLED_BACK",
        "{events:?}"
    );
    let page = s.get(&format!("/supplier/catalogs/{catalog}?q=cup")).await;
    assert!(page.html.contains("0 products"), "{}", page.html);

    // Another supplier cannot open it (nor learn that it exists).
    let mut other = sign_in("lumen@demo.shop").await;
    let page = other.get(&job_path).await;
    assert_eq!(page.status, 404, "{}", page.html);
    assert!(!page.html.contains("cups.csv"));

    // The admin console: the import among all, and the mail log.
    h.gql(
        None,
        "mutation { requestPasswordReset(email: \"customer@demo.shop\") }",
        json!({}),
    )
    .await
    .data();
    let mut admin = sign_in("admin@demo.shop").await;
    let page = admin.get("/admin/imports?status=ROLLED_BACK").await;
    assert_eq!(page.status, 200, "{}", page.html);
    assert!(
        page.html
            .contains(&format!("href=\"/supplier/imports/{job}\">cups.csv</a>")),
        "{}",
        page.html
    );
    assert!(page.html.contains("Portal &#60;Test&#62;"), "{}", page.html);
    let page = admin.get("/admin/imports?status=DONE").await;
    assert!(!page.html.contains("cups.csv"), "{}", page.html);
    let mut mail = admin.get("/admin/mail?to=customer%40demo.shop").await;
    for _ in 0..50 {
        if mail
            .html
            .contains("<td data-label=\"To\">customer@demo.shop</td>")
        {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        mail = admin.get("/admin/mail?to=customer%40demo.shop").await;
    }
    let table = between(&mail.html, "id=\"admin-mail\"", "</table>").unwrap();
    assert!(
        table.contains("customer@demo.shop") && table.to_lowercase().contains("password"),
        "{table}"
    );
    assert!(!table.contains("northwind@demo.shop"), "{table}");
    assert_eq!(s.get("/admin/mail").await.status, 403);
    h.stop().await;
}

/// Signing in with an OpenID Connect provider (a real one, `tests/oidc-provider`): the
/// sign-in page offers it, the provider sends the visitor back to the web app's
/// callback, the anonymous cart comes along, and the visitor lands where they were
/// going. A callback this browser did not start (someone else's code and state, sent
/// as a link) signs nobody in, and a callback works once.
#[tokio::test]
async fn a_shopper_signs_in_with_an_openid_provider_and_keeps_their_cart() {
    use common::web::{Browser, between};
    // The provider must know the web app's callback before the platform starts, so the
    // web app's port is picked first.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
        l.local_addr().expect("addr").port()
    };
    let callback = format!("http://127.0.0.1:{port}/sign-in/callback");
    let Some(op) =
        shop_kit::testing::OidcTestProvider::start_with_redirects("web_oidc", &[&callback]).await
    else {
        return;
    };
    let config: shop_users::OidcProviderConfig =
        serde_json::from_value(op.shop_client_json("testid")).expect("provider config");
    let (h, home) = web_platform_with(900, |o| {
        o.web_addr = Some(std::net::SocketAddr::from(([127, 0, 0, 1], port)));
        o.oidc_providers = vec![config];
    })
    .await;

    let mut b = Browser::new(&home);
    let page = b.get("/search?stock=1").await;
    let product = page.product_links().remove(0);
    let page = b.get(&format!("/product/{product}")).await;
    let name = between(&page.html, "<h1>", "</h1>").unwrap();
    let csrf = page.csrf();
    let cart = b
        .submit(
            "/cart/add",
            &[("csrf", &csrf), ("product", &product), ("quantity", "1")],
        )
        .await;
    assert!(cart.html.contains(&name), "{}", cart.html);

    let page = b.get("/sign-in?next=/cart").await;
    assert!(
        page.html
            .contains("href=\"/sign-in/with/testid?next=%2Fcart\""),
        "{}",
        page.html
    );
    assert!(page.html.contains("Test ID"), "{}", page.html);
    let off = b.get("/sign-in/with/testid?next=%2Fcart").await;
    assert_eq!(off.status, 303, "{}", off.html);
    let authorization = off.location.expect("to the provider");
    assert!(authorization.starts_with(op.issuer()), "{authorization}");
    let back = op.authorize(&authorization, "alice").await;
    let query = {
        let u = reqwest::Url::parse_with_params(
            "http://web/sign-in/callback",
            &[("code", &back["code"]), ("state", &back["state"])],
        )
        .expect("url");
        format!("{}?{}", u.path(), u.query().unwrap_or_default())
    };

    // The same link in another browser: refused, nobody signed in there.
    let mut stranger = Browser::new(&home);
    stranger.get("/").await;
    let page = stranger.get(&query).await;
    assert_eq!(page.location.as_deref(), Some("/sign-in"), "{}", page.html);
    let page = stranger.get("/sign-in").await;
    assert!(page.html.contains("not started here"), "{}", page.html);
    assert!(!page.html.contains("Alice Example"));

    // In the browser that started it: signed in, at the cart, with the cart's item.
    let page = b.get(&query).await;
    assert_eq!(page.status, 303, "{}", page.html);
    assert_eq!(page.location.as_deref(), Some("/cart"));
    let cart = b.get("/cart").await;
    assert!(cart.html.contains("Alice Example"), "{}", cart.html);
    assert!(
        cart.html.contains(&name),
        "the anonymous cart came along: {}",
        cart.html
    );
    // A second use of the same callback does nothing.
    let page = b.get(&query).await;
    assert_eq!(page.location.as_deref(), Some("/sign-in"));
    h.stop().await;
}
