//! Reviews through the gateway, on SQLite and MariaDB: only shoppers who received a
//! product review it, once; ratings follow every create, edit, delete and
//! moderation; helpful votes, reports, a supplier's reply, escaping and limits.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::store::{cart_of, checkout, product, start};
use common::{Harness, each_db};
use serde_json::{Value, json};
use shop::seed::{DEMO_ADMIN, DEMO_CUSTOMER, DEMO_SUPPLIERS};
use shop_kit::auth::Role;

const CREATE: &str = "mutation($p: ID!, $r: Int!, $t: String!, $b: String!) { createReview(input: { productId: $p, rating: $r, title: $t, body: $b }) { id rating title body bodyHtml verifiedPurchase refundedPurchase status author { id } product { id name } } }";
const RATING: &str =
    "query($p: ID!) { product(id: $p) { rating { average averageHundredths count histogram } } }";
const LIST: &str = "query($p: ID!, $s: ReviewSort!, $r: Int) { product(id: $p) { reviews(first: 10, sort: $s, rating: $r) { totalCount edges { node { id rating helpfulVotes } } } } }";

/// A paid order of one `product` by `buyer`: the buyer's token and the order id.
async fn bought(h: &Harness, buyer: &str, product: &str, key: &str) -> (String, String) {
    let (token, cart) = cart_of(h, buyer, &[(product, 1)]).await;
    let r = checkout(h, &token, &cart, "4242424242424242", key).await;
    let order = r.data()["checkout"]["id"].as_str().unwrap().to_string();
    (token, order)
}

/// An admin moves the order along to DELIVERED, as a carrier would.
async fn deliver(h: &Harness, order: &str) {
    let admin = h.token(DEMO_ADMIN, Role::Admin);
    for status in ["FULFILLED", "SHIPPED", "DELIVERED"] {
        h.gql(
            Some(&admin),
            "mutation($o: ID!, $s: OrderStatus!) { setOrderStatus(id: $o, status: $s) { status } }",
            json!({ "o": order, "s": status }),
        )
        .await
        .data();
    }
}

/// Reviews `product` as soon as the delivery reached the reviews subgraph.
async fn review(h: &Harness, token: &str, product: &str, rating: i32, body: &str) -> Value {
    common::eventually("the delivery known to reviews", || async {
        let r = h
            .gql(
                Some(token),
                CREATE,
                json!({ "p": product, "r": rating, "t": "My take", "b": body }),
            )
            .await;
        r.body
            .get("errors")
            .is_none()
            .then(|| r.data()["createReview"].clone())
    })
    .await
}

async fn rating(h: &Harness, product: &str) -> Value {
    h.gql(None, RATING, json!({ "p": product })).await.data()["product"]["rating"].clone()
}

async fn listed(h: &Harness, product: &str, sort: &str, stars: Option<i32>) -> Vec<(String, i64)> {
    let d = h
        .gql(None, LIST, json!({ "p": product, "s": sort, "r": stars }))
        .await;
    d.data()["product"]["reviews"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["node"]["id"].as_str().unwrap().to_string(),
                e["node"]["rating"].as_i64().unwrap(),
            )
        })
        .collect()
}

#[tokio::test]
async fn only_buyers_who_received_a_product_review_it_and_ratings_follow() {
    each_db("e2e_reviews", async |db| {
        let h = start(db).await;
        let lamp = product(&h, 2_500, 10).await;
        let (ann, ann_order) = bought(&h, DEMO_CUSTOMER, &lamp, "rev-ann").await;

        // Paid is not enough: the product must have arrived.
        let r = h
            .gql(Some(&ann), CREATE, json!({ "p": lamp, "r": 4, "t": "", "b": "" }))
            .await;
        assert_eq!(r.code(), "FORBIDDEN", "{}", r.body);
        assert!(r.body["errors"][0]["message"].as_str().unwrap().contains("received"));
        let stranger = h.token("rev-stranger", Role::Customer);
        deliver(&h, &ann_order).await;
        let mine = review(&h, &ann, &lamp, 4, "Bright <b>lamp</b> & \"warm\"\nlight").await;
        assert_eq!(mine["rating"], 4);
        assert_eq!(mine["verifiedPurchase"], true);
        assert_eq!(mine["refundedPurchase"], false);
        assert_eq!(mine["author"]["id"], DEMO_CUSTOMER);
        assert_eq!(mine["product"]["name"], "Test Lamp", "the catalog's part of it");
        // Stored as written, escaped for HTML.
        assert_eq!(mine["body"], "Bright <b>lamp</b> & \"warm\"\nlight");
        assert_eq!(
            mine["bodyHtml"],
            "Bright &lt;b&gt;lamp&lt;/b&gt; &amp; &quot;warm&quot;<br>light"
        );
        let ann_review = mine["id"].as_str().unwrap().to_string();
        // Never bought it; a second review of the same product.
        let r = h
            .gql(Some(&stranger), CREATE, json!({ "p": lamp, "r": 5, "t": "", "b": "" }))
            .await;
        assert_eq!(r.code(), "FORBIDDEN");
        let r = h
            .gql(Some(&ann), CREATE, json!({ "p": lamp, "r": 5, "t": "", "b": "" }))
            .await;
        assert_eq!(r.code(), "CONFLICT", "{}", r.body);
        // Bounds.
        for (rating, title) in [(6, "ok".to_string()), (0, "ok".into()), (3, "x".repeat(201))] {
            let r = h
                .gql(Some(&ann), CREATE, json!({ "p": lamp, "r": rating, "t": title, "b": "" }))
                .await;
            assert_eq!(r.code(), "BAD_USER_INPUT", "{}", r.body);
        }
        assert_eq!(
            rating(&h, &lamp).await,
            json!({ "average": 4.0, "averageHundredths": 400, "count": 1, "histogram": [0, 0, 0, 1, 0] })
        );

        // A second buyer, less happy.
        let (bob, bob_order) = bought(&h, "rev-bob", &lamp, "rev-bob").await;
        deliver(&h, &bob_order).await;
        let bobs = review(&h, &bob, &lamp, 2, "Flickers").await;
        let bob_review = bobs["id"].as_str().unwrap().to_string();
        assert_eq!(
            rating(&h, &lamp).await,
            json!({ "average": 3.0, "averageHundredths": 300, "count": 2, "histogram": [0, 1, 0, 1, 0] })
        );

        // Only the author edits; a new rating moves the stars.
        const UPDATE: &str = "mutation($i: ID!, $r: Int) { updateReview(id: $i, input: { rating: $r }) { rating title } }";
        let r = h
            .gql(Some(&bob), UPDATE, json!({ "i": ann_review, "r": 1 }))
            .await;
        assert_eq!(r.code(), "FORBIDDEN");
        let d = h
            .gql(Some(&ann), UPDATE, json!({ "i": ann_review, "r": 5 }))
            .await;
        assert_eq!(d.data()["updateReview"], json!({ "rating": 5, "title": "My take" }));
        assert_eq!(rating(&h, &lamp).await["histogram"], json!([0, 1, 0, 0, 1]));
        assert_eq!(rating(&h, &lamp).await["averageHundredths"], 350);

        // Helpful votes: one per shopper, never one's own, and taken back.
        const VOTE: &str = "mutation($i: ID!, $h: Boolean!) { markReviewHelpful(id: $i, helpful: $h) { helpfulVotes } }";
        for _ in 0..2 {
            let d = h
                .gql(Some(&bob), VOTE, json!({ "i": ann_review, "h": true }))
                .await;
            assert_eq!(d.data()["markReviewHelpful"]["helpfulVotes"], 1);
        }
        let d = h
            .gql(Some(&stranger), VOTE, json!({ "i": ann_review, "h": true }))
            .await;
        assert_eq!(d.data()["markReviewHelpful"]["helpfulVotes"], 2);
        let r = h
            .gql(Some(&ann), VOTE, json!({ "i": ann_review, "h": true }))
            .await;
        assert_eq!(r.code(), "FORBIDDEN");
        let d = h
            .gql(Some(&stranger), VOTE, json!({ "i": ann_review, "h": false }))
            .await;
        assert_eq!(d.data()["markReviewHelpful"]["helpfulVotes"], 1);

        // Sorting and the stars filter.
        let (a, b) = (ann_review.clone(), bob_review.clone());
        assert_eq!(listed(&h, &lamp, "HIGHEST", None).await, vec![(a.clone(), 5), (b.clone(), 2)]);
        assert_eq!(listed(&h, &lamp, "LOWEST", None).await, vec![(b.clone(), 2), (a.clone(), 5)]);
        assert_eq!(listed(&h, &lamp, "MOST_HELPFUL", None).await[0].0, a);
        assert_eq!(listed(&h, &lamp, "NEWEST", None).await[0].0, b);
        assert_eq!(listed(&h, &lamp, "NEWEST", Some(2)).await, vec![(b.clone(), 2)]);

        // Reported, hidden by an admin (out of the rating and the list, still the
        // author's to see), restored.
        let admin = h.token(DEMO_ADMIN, Role::Admin);
        let d = h
            .gql(Some(&ann), "mutation($i: ID!) { reportReview(id: $i, reason: \"rude\") { id } }", json!({ "i": bob_review }))
            .await;
        d.data();
        let r = h
            .gql(Some(&ann), "mutation($i: ID!) { reportReview(id: $i, reason: \"again\") { id } }", json!({ "i": bob_review }))
            .await;
        assert_eq!(r.code(), "CONFLICT");
        let d = h
            .gql(Some(&admin), "{ reportedReviews(first: 10) { edges { node { id reports } } } }", json!({}))
            .await;
        assert_eq!(
            d.data()["reportedReviews"]["edges"],
            json!([{ "node": { "id": bob_review, "reports": 1 } }])
        );
        let r = h
            .gql(Some(&bob), "mutation($i: ID!) { hideReview(id: $i, reason: \"mine\") { id } }", json!({ "i": bob_review }))
            .await;
        assert_eq!(r.code(), "FORBIDDEN");
        h.gql(Some(&admin), "mutation($i: ID!) { hideReview(id: $i, reason: \"insults\") { status } }", json!({ "i": bob_review }))
            .await
            .data();
        assert_eq!(rating(&h, &lamp).await["histogram"], json!([0, 0, 0, 0, 1]));
        assert_eq!(listed(&h, &lamp, "NEWEST", None).await, vec![(a.clone(), 5)]);
        const ONE: &str = "query($i: ID!) { review(id: $i) { status moderationNote } }";
        let d = h.gql(Some(&bob), ONE, json!({ "i": bob_review })).await;
        assert_eq!(d.data()["review"], json!({ "status": "HIDDEN", "moderationNote": "insults" }));
        assert_eq!(h.gql(Some(&ann), ONE, json!({ "i": bob_review })).await.code(), "NOT_FOUND");
        h.gql(Some(&admin), "mutation($i: ID!) { restoreReview(id: $i, reason: \"appeal\") { status } }", json!({ "i": bob_review }))
            .await
            .data();
        assert_eq!(rating(&h, &lamp).await["histogram"], json!([0, 1, 0, 0, 1]));

        // The supplier replies once; another supplier may not.
        const REPLY: &str = "mutation($i: ID!, $t: String!) { replyToReview(id: $i, text: $t) { reply { text } } }";
        let other = h.token(DEMO_SUPPLIERS[1].0, Role::Supplier);
        let r = h.gql(Some(&other), REPLY, json!({ "i": bob_review, "t": "Sorry" })).await;
        assert_eq!(r.code(), "FORBIDDEN");
        let seller = h.token(DEMO_SUPPLIERS[0].0, Role::Supplier);
        let d = h.gql(Some(&seller), REPLY, json!({ "i": bob_review, "t": "We will send a new one" })).await;
        assert_eq!(d.data()["replyToReview"]["reply"]["text"], "We will send a new one");
        let r = h.gql(Some(&seller), REPLY, json!({ "i": bob_review, "t": "Again" })).await;
        assert_eq!(r.code(), "CONFLICT");

        // A refunded order marks its review.
        h.gql(Some(&admin), "mutation($o: ID!) { refundOrder(id: $o, reason: \"broken\") { status } }", json!({ "o": bob_order }))
            .await
            .data();
        common::eventually("the refund known to reviews", || async {
            let d = h.gql(None, "query($i: ID!) { review(id: $i) { refundedPurchase } }", json!({ "i": bob_review })).await;
            (d.data()["review"]["refundedPurchase"] == true).then_some(())
        })
        .await;

        // The author's reviews on their account; deleting takes the stars along.
        let d = h.gql(Some(&ann), "{ me { reviews { totalCount edges { node { id rating } } } } }", json!({})).await;
        assert_eq!(
            d.data()["me"]["reviews"],
            json!({ "totalCount": 1, "edges": [{ "node": { "id": ann_review, "rating": 5 } }] })
        );
        let r = h.gql(Some(&bob), "mutation($i: ID!) { deleteReview(id: $i) { id } }", json!({ "i": ann_review })).await;
        assert_eq!(r.code(), "FORBIDDEN");
        h.gql(Some(&ann), "mutation($i: ID!) { deleteReview(id: $i) { id } }", json!({ "i": ann_review }))
            .await
            .data();
        assert_eq!(
            rating(&h, &lamp).await,
            json!({ "average": 2.0, "averageHundredths": 200, "count": 1, "histogram": [0, 1, 0, 0, 0] })
        );
        h.stop().await;
    })
    .await;
}

#[tokio::test]
async fn concurrent_reviews_and_votes_lose_no_count() {
    each_db("e2e_reviews_race", async |db| {
        let h = start(db).await;
        let kettle = product(&h, 3_000, 20).await;
        let mut buyers = Vec::new();
        for i in 0..6 {
            let (token, order) = bought(
                &h,
                &format!("race-buyer-{i}"),
                &kettle,
                &format!("race-{i}"),
            )
            .await;
            deliver(&h, &order).await;
            buyers.push(token);
        }
        // The deliveries reach reviews first (one review proves the consumer is there).
        let first = review(&h, &buyers[0], &kettle, 5, "").await;
        let id = first["id"].as_str().unwrap().to_string();
        let writes = buyers[1..].iter().enumerate().map(|(i, token)| {
            let (h, kettle) = (&h, kettle.clone());
            async move {
                review(h, token, &kettle, (i % 5) as i32 + 1, "").await;
            }
        });
        let votes = buyers[1..].iter().map(|token| {
            let (h, id) = (&h, id.clone());
            async move {
                h.gql(
                    Some(token),
                    "mutation($i: ID!) { markReviewHelpful(id: $i) { helpfulVotes } }",
                    json!({ "i": id }),
                )
                .await
                .data();
            }
        });
        futures::future::join(
            futures::future::join_all(writes),
            futures::future::join_all(votes),
        )
        .await;
        let r = rating(&h, &kettle).await;
        assert_eq!(r["count"], 6, "{r}");
        // 5 + 1 + 2 + 3 + 4 + 5 = 20 stars over 6 reviews.
        assert_eq!(r["histogram"], json!([1, 1, 1, 1, 2]));
        assert_eq!(r["averageHundredths"], 333);
        let d = h
            .gql(
                None,
                "query($i: ID!) { review(id: $i) { helpfulVotes } }",
                json!({ "i": id }),
            )
            .await;
        assert_eq!(d.data()["review"]["helpfulVotes"], 5);

        // The catalog learns ratings from the events: sort and filter by them.
        let lamp = product(&h, 1_500, 5).await;
        let (token, order) = bought(&h, "race-buyer-0", &lamp, "race-lamp").await;
        deliver(&h, &order).await;
        review(&h, &token, &lamp, 5, "").await;
        const BEST: &str = "query($m: Int) { products(filter: { minRating: $m }, sort: RATING_DESC, first: 10) { edges { node { id } } } }";
        let ids = |d: &Value| -> Vec<String> {
            d["products"]["edges"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| e["node"]["id"].as_str().unwrap().to_string())
                .collect()
        };
        common::eventually("ratings in the catalog", || async {
            let d = h.gql(None, BEST, json!({ "m": 3 })).await;
            (ids(d.data()) == vec![lamp.clone(), kettle.clone()]).then_some(())
        })
        .await;
        let d = h.gql(None, BEST, json!({ "m": 4 })).await;
        assert_eq!(ids(d.data()), vec![lamp.clone()]);
        let d = h.gql(None, BEST, json!({ "m": null })).await;
        assert_eq!(ids(d.data())[..2], [lamp.clone(), kettle.clone()], "rated first");
        let r = h.gql(None, BEST, json!({ "m": 6 })).await;
        assert_eq!(r.code(), "BAD_USER_INPUT");
        h.stop().await;
    })
    .await;
}
