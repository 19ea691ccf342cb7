//! The gateway benchmark's supergraph (`gwbench`, and the test that pins its plan):
//! four small async-graphql subgraphs of the shape federation gateways are usually
//! compared on (accounts, products, inventory, reviews), with entities under keys, an
//! `@requires` (inventory's shipping estimate needs the price and weight products
//! owns) and a `@provides` (reviews gives its authors' usernames), and one query that
//! walks them four levels deep.
//!
//! The data is fixed and small; the answer is large because the query goes round in
//! circles (users → reviews → product → reviews → author → reviews → product).

use async_graphql::{EmptyMutation, EmptySubscription, ID, Object, Schema, SimpleObject};

pub const USERS: usize = 5;
pub const PRODUCTS: usize = 10;
pub const REVIEWS: usize = 24;

/// The benchmark's query.
pub const QUERY: &str = r#"query Bench {
  users {
    ...UserFields
    reviews {
      ...ReviewFields
      product {
        ...ProductFields
        reviews { ...ReviewFields author { ...UserFields reviews { ...ReviewFields product { ...ProductFields } } } }
      }
    }
  }
  topProducts(first: 5) {
    ...ProductFields
    reviews { ...ReviewFields author { ...UserFields reviews { ...ReviewFields product { ...ProductFields } } } }
  }
}
fragment UserFields on User { id username name }
fragment ReviewFields on Review { id body }
fragment ProductFields on Product { inStock name price shippingEstimate upc weight }
"#;

/// The four subgraphs, in the order their routers and SDLs are given.
pub const NAMES: [&str; 4] = ["accounts", "products", "inventory", "reviews"];

// The data, as plain functions of an index so every subgraph agrees on it.

fn user_name(n: usize) -> String {
    const FIRST: [&str; 5] = ["Ada", "Grace", "Edsger", "Barbara", "Donald"];
    const LAST: [&str; 5] = ["Lovelace", "Hopper", "Dijkstra", "Liskov", "Knuth"];
    format!("{} {}", FIRST[n % 5], LAST[(n / 5 + n) % 5])
}

fn username(n: usize) -> String {
    format!("user{n:02}")
}

fn product_name(n: usize) -> String {
    const KINDS: [&str; 5] = [
        "Desk lamp",
        "Oak table",
        "Wool rug",
        "Tea kettle",
        "Bookshelf",
    ];
    format!("{} model {n}", KINDS[n % 5])
}

fn price(n: usize) -> i32 {
    (n as i32 * 733) % 1700 + 299
}

fn weight(n: usize) -> i32 {
    (n as i32 * 37) % 90 + 10
}

fn review_author(r: usize) -> usize {
    r % USERS
}

fn review_product(r: usize) -> usize {
    r % PRODUCTS
}

fn review_body(r: usize) -> String {
    const SAYS: [&str; 3] = [
        "Arrived quickly and works as described.",
        "Sturdy and well made, though the colour is darker than pictured.",
        "Good value for the price; would buy again.",
    ];
    format!("Review {r}: {}", SAYS[r % 3])
}

fn parse_index(id: &str, prefix: &str, count: usize) -> Option<usize> {
    let n: usize = id.strip_prefix(prefix)?.parse().ok()?;
    (n < count).then_some(n)
}

pub mod accounts {
    use super::*;

    #[derive(SimpleObject)]
    pub struct User {
        pub id: ID,
        pub name: String,
        pub username: String,
        pub birthday: i32,
    }

    pub fn user(n: usize) -> User {
        User {
            id: ID(format!("u{n}")),
            name: user_name(n),
            username: username(n),
            birthday: 1_000_000 + n as i32 * 86_400,
        }
    }

    pub struct Query;

    #[Object]
    impl Query {
        async fn me(&self) -> User {
            user(0)
        }

        async fn user(&self, id: ID) -> Option<User> {
            parse_index(&id, "u", USERS).map(user)
        }

        async fn users(&self) -> Vec<User> {
            (0..USERS).map(user).collect()
        }

        #[graphql(entity)]
        async fn find_user_by_id(&self, id: ID) -> Option<User> {
            parse_index(&id, "u", USERS).map(user)
        }
    }
}

pub mod products {
    use super::*;

    #[derive(SimpleObject)]
    pub struct Product {
        pub upc: String,
        pub name: String,
        pub price: i32,
        pub weight: i32,
    }

    pub fn product(n: usize) -> Product {
        Product {
            upc: format!("p{n}"),
            name: product_name(n),
            price: price(n),
            weight: weight(n),
        }
    }

    pub struct Query;

    #[Object]
    impl Query {
        async fn top_products(&self, #[graphql(default = 5)] first: i32) -> Vec<Product> {
            (0..(first.max(0) as usize).min(PRODUCTS))
                .map(product)
                .collect()
        }

        #[graphql(entity)]
        async fn find_product_by_upc(&self, upc: String) -> Option<Product> {
            parse_index(&upc, "p", PRODUCTS).map(product)
        }
    }
}

pub mod inventory {
    use super::*;

    pub struct Product {
        pub upc: String,
        pub price: Option<i32>,
        pub weight: Option<i32>,
    }

    #[Object]
    impl Product {
        async fn upc(&self) -> &str {
            &self.upc
        }

        #[graphql(external)]
        async fn price(&self) -> Option<i32> {
            self.price
        }

        #[graphql(external)]
        async fn weight(&self) -> Option<i32> {
            self.weight
        }

        async fn in_stock(&self) -> bool {
            parse_index(&self.upc, "p", PRODUCTS).is_some_and(|n| !n.is_multiple_of(3))
        }

        /// Free over 1000; otherwise half the weight. Needs both inputs.
        #[graphql(requires = "price weight")]
        async fn shipping_estimate(&self) -> Option<i32> {
            let (price, weight) = (self.price?, self.weight?);
            Some(if price > 1000 { 0 } else { weight / 2 })
        }
    }

    pub struct Query;

    #[Object]
    impl Query {
        #[graphql(entity)]
        async fn find_product_by_upc(
            &self,
            #[graphql(key)] upc: String,
            price: Option<i32>,
            weight: Option<i32>,
        ) -> Product {
            Product { upc, price, weight }
        }
    }
}

pub mod reviews {
    use super::*;

    pub struct Review(pub usize);

    #[Object]
    impl Review {
        async fn id(&self) -> ID {
            ID(format!("r{}", self.0))
        }

        async fn body(&self) -> String {
            review_body(self.0)
        }

        #[graphql(provides = "username")]
        async fn author(&self) -> User {
            User(review_author(self.0))
        }

        async fn product(&self) -> Product {
            Product(review_product(self.0))
        }
    }

    pub struct User(pub usize);

    #[Object]
    impl User {
        async fn id(&self) -> ID {
            ID(format!("u{}", self.0))
        }

        /// Known here only for the authors of reviews (provided).
        #[graphql(external)]
        async fn username(&self) -> String {
            username(self.0)
        }

        async fn reviews(&self) -> Vec<Review> {
            (0..REVIEWS)
                .filter(|r| review_author(*r) == self.0)
                .map(Review)
                .collect()
        }
    }

    pub struct Product(pub usize);

    #[Object]
    impl Product {
        async fn upc(&self) -> String {
            format!("p{}", self.0)
        }

        async fn reviews(&self) -> Vec<Review> {
            (0..REVIEWS)
                .filter(|r| review_product(*r) == self.0)
                .map(Review)
                .collect()
        }
    }

    pub struct Query;

    #[Object]
    impl Query {
        #[graphql(entity)]
        async fn find_review_by_id(&self, id: ID) -> Option<Review> {
            parse_index(&id, "r", REVIEWS).map(Review)
        }

        #[graphql(entity)]
        async fn find_user_by_id(&self, id: ID) -> Option<User> {
            parse_index(&id, "u", USERS).map(User)
        }

        #[graphql(entity)]
        async fn find_product_by_upc(&self, upc: String) -> Option<Product> {
            parse_index(&upc, "p", PRODUCTS).map(Product)
        }
    }
}

/// A federated async-graphql schema with `q` as its query root.
pub fn federated<Q: async_graphql::ObjectType + 'static>(
    q: Q,
) -> Schema<Q, EmptyMutation, EmptySubscription> {
    Schema::build(q, EmptyMutation, EmptySubscription)
        .enable_federation()
        .finish()
}

/// A federated schema's SDL, as composition reads it.
pub fn federated_sdl<Q: async_graphql::ObjectType + 'static>(
    s: &Schema<Q, EmptyMutation, EmptySubscription>,
) -> String {
    s.sdl_with_options(async_graphql::SDLExportOptions::new().federation())
}

/// A schema served at `POST /graphql`.
pub fn serve_schema<Q: async_graphql::ObjectType + 'static>(
    schema: Schema<Q, EmptyMutation, EmptySubscription>,
) -> axum::Router {
    axum::Router::new().route(
        "/graphql",
        axum::routing::post_service(async_graphql_axum::GraphQL::new(schema)),
    )
}

fn sdl<Q: async_graphql::ObjectType + 'static>(q: Q) -> String {
    federated_sdl(&federated(q))
}

fn serve<Q: async_graphql::ObjectType + 'static>(q: Q) -> axum::Router {
    serve_schema(federated(q))
}

/// The subgraphs' SDLs, in [`NAMES`] order.
pub fn sdls() -> [String; 4] {
    [
        sdl(accounts::Query),
        sdl(products::Query),
        sdl(inventory::Query),
        sdl(reviews::Query),
    ]
}

/// The subgraphs' routers (`POST /graphql`), in [`NAMES`] order.
pub fn routers() -> [axum::Router; 4] {
    [
        serve(accounts::Query),
        serve(products::Query),
        serve(inventory::Query),
        serve(reviews::Query),
    ]
}

/// The supergraph of the four subgraphs served at `urls` (in [`NAMES`] order).
pub fn supergraph(urls: &[String; 4]) -> anyhow::Result<String> {
    let sources: Vec<shop_federation::SubgraphSource> = sdls()
        .into_iter()
        .zip(NAMES)
        .zip(urls)
        .map(|((sdl, name), url)| shop_federation::SubgraphSource {
            name: name.to_string(),
            url: url.clone(),
            sdl,
        })
        .collect();
    Ok(shop_federation::compose(&sources)?)
}

/// How much of the gateway's protection a benchmark gateway runs with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Protection {
    /// As shipped: operation limits and metrics on, no cost budget, no rate limits,
    /// no tracing subscriber.
    Defaults,
    /// Everything off: limits at their largest, no metrics recorded, no cost
    /// estimate, no rate limits, no tracing.
    Bare,
    /// Everything on: limits, metrics, a cost budget (estimated for every request),
    /// a per-address rate limit (counted, never reached), and OpenTelemetry tracing at
    /// 1% sampling exported over OTLP to a sink in this process.
    Full,
}

impl Protection {
    pub fn parse(arg: Option<&str>) -> Protection {
        match arg {
            Some("bare") => Protection::Bare,
            Some("full") => Protection::Full,
            _ => Protection::Defaults,
        }
    }

    pub fn arg(self) -> &'static str {
        match self {
            Protection::Defaults => "defaults",
            Protection::Bare => "bare",
            Protection::Full => "full",
        }
    }
}

/// A benchmark's child process role: our gateway serving the supergraph in the file
/// `supergraph` on `port`, sharing identical work in flight when `dedupe`, with
/// `protection`; prints `ready` once it listens.
pub async fn serve_gateway(
    supergraph: &str,
    port: u16,
    dedupe: bool,
    protection: Protection,
) -> anyhow::Result<()> {
    let sdl = std::fs::read_to_string(supergraph)?;
    let sg = shop_federation::Supergraph::parse(&sdl)?;
    let mut options = shop_gateway::GatewayOptions {
        dedupe_requests: dedupe,
        dedupe_subgraph_requests: dedupe,
        ..Default::default()
    };
    let mut _telemetry = None;
    match protection {
        Protection::Defaults => {}
        Protection::Bare => {
            let l = &mut options.limits;
            l.max_document_bytes = usize::MAX;
            l.max_tokens = usize::MAX;
            l.max_depth = usize::MAX;
            l.max_fields = u64::MAX;
            l.max_aliases = u64::MAX;
            l.max_root_fields = u64::MAX;
            l.max_directives = usize::MAX;
            l.max_variables_depth = usize::MAX;
            l.max_variable_values = usize::MAX;
            options.protections.metrics = false;
            options.protections.csrf_required_headers = Vec::new();
        }
        Protection::Full => {
            // `GWBENCH_SKIP=tracing,rate,cost,metrics` leaves parts out, to see which costs.
            let skip = std::env::var("GWBENCH_SKIP").unwrap_or_default();
            let skips = |part: &str| skip.split(',').any(|s| s.trim() == part);
            if !skips("cost") {
                options.cost.max_cost = Some(1_000_000);
            }
            if skips("metrics") {
                options.protections.metrics = false;
            }
            if !skips("rate") {
                options.rate_limits.per_address = Some(
                    shop_gateway::ratelimit::Rate::parse("1000000/1s")
                        .map_err(anyhow::Error::msg)?,
                );
            }
            if !skips("tracing") {
                _telemetry = Some(traced_to_a_sink().await?);
            }
        }
    }
    let gateway = shop_gateway::Gateway::new(sg, options);
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    println!("ready");
    let app =
        shop_gateway::router(gateway).into_make_service_with_connect_info::<std::net::SocketAddr>();
    axum::serve(listener, app).await?;
    Ok(())
}

/// OpenTelemetry tracing at 1% sampling, as a deployment runs it, exported over OTLP to
/// a sink in this process that accepts and drops every export.
async fn traced_to_a_sink() -> anyhow::Result<shop_kit::telemetry::Telemetry> {
    let sink = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let endpoint = format!("http://{}", sink.local_addr()?);
    let app = axum::Router::new().route(
        "/v1/traces",
        axum::routing::post(|| async { axum::http::StatusCode::OK }),
    );
    tokio::spawn(async move { axum::serve(sink, app).await });
    shop_kit::telemetry::init(
        &shop_kit::telemetry::TelemetryOptions {
            service: "gwbench".into(),
            json_logs: false,
            otlp_endpoint: Some(endpoint),
            otlp_protocol: "http/protobuf".into(),
            sample_ratio: 0.01,
        },
        // As a deployment runs: info spans and logs.
        "info,sqlx=warn,sea_orm=warn",
    )
    .map_err(anyhow::Error::msg)
}

/// The answer to [`QUERY`], worked out from the data directly (not through any
/// gateway): what every gateway must return.
pub fn expected_answer() -> serde_json::Value {
    use serde_json::{Value, json};
    let user =
        |n: usize| json!({ "id": format!("u{n}"), "username": username(n), "name": user_name(n) });
    let review = |r: usize| json!({ "id": format!("r{r}"), "body": review_body(r) });
    let product = |n: usize| {
        let (p, w) = (price(n), weight(n));
        json!({
            "inStock": !n.is_multiple_of(3),
            "name": product_name(n),
            "price": p,
            "shippingEstimate": if p > 1000 { 0 } else { w / 2 },
            "upc": format!("p{n}"),
            "weight": w,
        })
    };
    let with = |mut base: Value, key: &str, v: Value| {
        base[key] = v;
        base
    };
    let reviews_of_user = |u: usize| (0..REVIEWS).filter(move |r| review_author(*r) == u);
    let reviews_of_product = |p: usize| (0..REVIEWS).filter(move |r| review_product(*r) == p);
    // author { ...User reviews { ...Review product { ...Product } } }
    let author = |u: usize| {
        with(
            user(u),
            "reviews",
            reviews_of_user(u)
                .map(|r| with(review(r), "product", product(review_product(r))))
                .collect(),
        )
    };
    // reviews { ...Review author { ... } }
    let product_reviews = |p: usize| -> Value {
        reviews_of_product(p)
            .map(|r| with(review(r), "author", author(review_author(r))))
            .collect()
    };
    let users: Vec<Value> = (0..USERS)
        .map(|u| {
            with(
                user(u),
                "reviews",
                reviews_of_user(u)
                    .map(|r| {
                        let p = review_product(r);
                        with(
                            review(r),
                            "product",
                            with(product(p), "reviews", product_reviews(p)),
                        )
                    })
                    .collect(),
            )
        })
        .collect();
    let top: Vec<Value> = (0..5)
        .map(|p| with(product(p), "reviews", product_reviews(p)))
        .collect();
    json!({ "data": { "users": users, "topProducts": top } })
}
