//! Identity end to end through the gateway: accounts, our signed tokens and their JWKS
//! at the gateway's origin, the seeded demo accounts, refused tokens.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::Harness;
use sea_orm::{EntityTrait, QueryOrder};
use serde_json::{Value, json};
use shop_kit::auth::{Claims, JwksSource, SigningKey, TrustedIssuer, Verifier};

const PASSWORD: &str = "correct horse battery";

/// The token of the newest `page` link mailed to `to`: account mail travels as an event
/// to the notifications subgraph, which logs each delivery.
async fn last_link(h: &Harness, to: &str, page: &str) -> String {
    use shop_notifications::entity::delivery;
    let prefix = format!("{}/{page}?token=", h.platform.issuer);
    let db = h.platform.db(shop_notifications::NAME);
    let body = common::eventually(&format!("a {page} mail to {to}"), || async {
        let mails = delivery::Entity::find()
            .order_by_desc(delivery::Column::CreatedAt)
            .all(&db)
            .await
            .unwrap();
        mails
            .into_iter()
            .find(|m| m.to_address == to && m.text_body.contains(&prefix))
            .map(|m| m.text_body)
    })
    .await;
    let start = body.find(&prefix).unwrap() + prefix.len();
    body[start..].split_whitespace().next().unwrap().to_string()
}

async fn login(h: &Harness, email: &str, password: &str) -> Value {
    let r = h
        .gql(
            None,
            "mutation($e: String!, $p: String!) { login(email: $e, password: $p) { accessToken refreshToken user { id roles } } }",
            json!({ "e": email, "p": password }),
        )
        .await;
    r.data()["login"].clone()
}

#[tokio::test]
async fn a_shopper_registers_verifies_signs_in_and_refreshes_through_the_gateway() {
    let h = Harness::start(None, false).await;
    let r = h
        .gql(
            None,
            "mutation($i: RegisterInput!) { register(input: $i) { email message } }",
            json!({ "i": { "email": "ann@example.com", "password": PASSWORD, "name": "Ann" } }),
        )
        .await;
    assert_eq!(r.data()["register"]["email"], "ann@example.com");
    let token = last_link(&h, "ann@example.com", "verify-email").await;
    let r = h
        .gql(
            None,
            "mutation($t: String!) { verifyEmail(token: $t) { emailVerified } }",
            json!({ "t": token }),
        )
        .await;
    assert_eq!(r.data()["verifyEmail"]["emailVerified"], true);

    let session = login(&h, "ann@example.com", PASSWORD).await;
    let id = session["user"]["id"].as_str().unwrap().to_string();
    let access = session["accessToken"].as_str().unwrap();
    let me = h
        .gql(Some(access), "{ me { id email emailVerified } }", json!({}))
        .await;
    assert_eq!(
        me.data()["me"],
        json!({ "id": id, "email": "ann@example.com", "emailVerified": true })
    );
    // The issuer is the gateway's origin, which serves the discovery document and JWKS.
    let claims: Value = jsonwebtoken::dangerous::insecure_decode_claims(access).unwrap();
    assert_eq!(claims["iss"], h.platform.issuer.as_str());
    let origin = h
        .platform
        .gateway_url
        .trim_end_matches("/graphql")
        .to_string();
    assert_eq!(h.platform.issuer, origin);
    let discovery: Value = serde_json::from_str(
        &h.client
            .get(format!("{origin}/.well-known/openid-configuration"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap(),
    )
    .unwrap();
    assert_eq!(discovery["issuer"], origin.as_str());
    let jwks_uri = discovery["jwks_uri"].as_str().unwrap().to_string();
    assert_eq!(jwks_uri, format!("{origin}/.well-known/jwks.json"));
    // A verifier that knows nothing but the discovered JWKS URL accepts the token.
    let outsider = Verifier::new(vec![TrustedIssuer::new(
        origin.clone(),
        "shop",
        JwksSource::Url(jwks_uri),
    )]);
    assert_eq!(outsider.verify(access).await.unwrap().user_id, id);

    let r = h
        .gql(
            None,
            "mutation($t: String!) { refreshSession(refreshToken: $t) { accessToken } }",
            json!({ "t": session["refreshToken"] }),
        )
        .await;
    let fresh = r.data()["refreshSession"]["accessToken"].as_str().unwrap();
    let me = h.gql(Some(fresh), "{ me { id } }", json!({})).await;
    assert_eq!(me.data()["me"]["id"], id.as_str());
    h.stop().await;
}

#[tokio::test]
async fn demo_accounts_sign_in_and_suppliers_write_only_their_catalogs() {
    let h = Harness::start(None, true).await;
    let supplier = login(&h, "northwind@demo.shop", shop::seed::DEMO_PASSWORD).await;
    assert_eq!(supplier["user"]["roles"], json!(["SUPPLIER"]));
    let token = supplier["accessToken"].as_str().unwrap();
    let mine = h
        .gql(
            Some(token),
            "mutation { createCatalog(input: {name: \"Northwind Extras\"}) { id supplierId } }",
            json!({}),
        )
        .await;
    assert_eq!(
        mine.data()["createCatalog"]["supplierId"],
        shop::seed::DEMO_SUPPLIERS[0].0
    );
    // Another supplier's catalog is off limits.
    let other = h
        .gql(
            None,
            "query($s: ID) { catalogs(supplierId: $s) { edges { node { id } } } }",
            json!({ "s": shop::seed::DEMO_SUPPLIERS[1].0 }),
        )
        .await;
    let other_id = other.data()["catalogs"]["edges"][0]["node"]["id"].clone();
    let r = h
        .gql(
            Some(token),
            "mutation($c: ID!) { createCategory(input: {catalogId: $c, name: \"Sneaky\"}) { id } }",
            json!({ "c": other_id }),
        )
        .await;
    assert_eq!(r.code(), "FORBIDDEN");

    let customer = login(&h, "customer@demo.shop", shop::seed::DEMO_PASSWORD).await;
    let r = h
        .gql(
            customer["accessToken"].as_str(),
            "mutation { createCatalog(input: {name: \"Mine\"}) { id } }",
            json!({}),
        )
        .await;
    assert_eq!(r.code(), "FORBIDDEN");
    let admin = login(&h, "admin@demo.shop", shop::seed::DEMO_PASSWORD).await;
    let r = h
        .gql(
            admin["accessToken"].as_str(),
            "{ users(first: 10) { totalCount } }",
            json!({}),
        )
        .await;
    assert_eq!(r.data()["users"]["totalCount"], 5);
    h.stop().await;
}

#[tokio::test]
async fn forged_foreign_and_expired_tokens_are_refused_at_the_gateway() {
    let h = Harness::start(None, false).await;
    let issuer = h.platform.issuer.clone();
    let now = chrono::Utc::now().timestamp();
    let claims = |aud: &str, exp: i64| Claims {
        sub: "someone".into(),
        iss: issuer.clone(),
        aud: aud.into(),
        exp,
        iat: now,
        jti: "j".into(),
        roles: vec!["ADMIN".into()],
        scope: String::new(),
    };
    // Signed by a key the users subgraph never published.
    let stranger = SigningKey::generate().unwrap();
    let forged = stranger.sign(&claims("shop", now + 600)).unwrap();
    // `alg: none`: header and claims, no signature.
    use base64::Engine;
    let b64 = |v: Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string());
    let unsigned = format!(
        "{}.{}.",
        b64(json!({ "alg": "none", "typ": "JWT" })),
        b64(serde_json::to_value(claims("shop", now + 600)).unwrap())
    );
    for (what, token) in [("forged", forged), ("alg none", unsigned)] {
        let r = h.gql(Some(&token), "{ me { id } }", json!({})).await;
        assert_eq!(r.status, 401, "{what}");
        assert_eq!(r.code(), "UNAUTHENTICATED", "{what}");
    }
    // Signed with the real key (taken from the users subgraph's key ring), but for
    // another audience, or expired.
    let key = h.platform.users.keys.signing_key().await.unwrap();
    for (what, token, code) in [
        (
            "wrong audience",
            key.sign(&claims("other", now + 600)).unwrap(),
            "UNAUTHENTICATED",
        ),
        // Expired: the client should refresh, not send the user to sign in again.
        (
            "expired",
            key.sign(&claims("shop", now - 3600)).unwrap(),
            "TOKEN_EXPIRED",
        ),
    ] {
        let r = h.gql(Some(&token), "{ me { id } }", json!({})).await;
        assert_eq!(r.status, 401, "{what}");
        assert_eq!(r.code(), code, "{what}");
    }
    // No token at all is an anonymous request, not a 401.
    let r = h
        .gql(None, "{ products(first: 1) { totalCount } }", json!({}))
        .await;
    assert_eq!(r.status, 200);
    assert!(r.data()["products"]["totalCount"].is_number());
    let good = key.sign(&claims("shop", now + 600)).unwrap();
    let r = h.gql(Some(&good), "{ me { id } }", json!({})).await;
    assert_eq!(
        r.data()["me"],
        Value::Null,
        "valid token of an unknown account"
    );
    h.stop().await;
}

#[tokio::test]
async fn claimed_addresses_do_not_dodge_the_login_limit() {
    let h = Harness::start(None, false).await;
    let attempt = |addr: &'static str| {
        let body = json!({
            "query": "mutation { login(email: \"nobody@example.com\", password: \"wrong horse battery\") { accessToken } }"
        })
        .to_string();
        let h = &h;
        async move { h.post_raw(&body, &[("x-forwarded-for", addr)]).await }
    };
    // No trusted proxy: claims are ignored, every attempt counts for the real peer.
    for i in 0..5 {
        let r = attempt(if i % 2 == 0 {
            "198.51.100.1"
        } else {
            "198.51.100.2"
        })
        .await;
        assert_eq!(r.code(), "UNAUTHENTICATED");
    }
    let r = attempt("198.51.100.3").await;
    assert_eq!(r.code(), "TOO_MANY_REQUESTS");
    assert!(!r.body.to_string().contains("wrong horse battery"));
    h.stop().await;
}

#[tokio::test]
async fn behind_a_trusted_proxy_a_guesser_is_blocked_and_the_owner_signs_in() {
    let dir = std::env::temp_dir().join(format!("shop-e2e-{}", shop_kit::ids::new_id()));
    let h = Harness::start_with(dir, None, true, |o| {
        o.trusted_proxies = shop_gateway::transport::TrustedProxies::parse("127.0.0.1").unwrap();
    })
    .await;
    let login = |addr: &'static str, password: &'static str| {
        let body = json!({
            "query": "mutation($p: String!) { login(email: \"customer@demo.shop\", password: $p) { accessToken } }",
            "variables": { "p": password }
        })
        .to_string();
        let h = &h;
        async move { h.post_raw(&body, &[("x-forwarded-for", addr)]).await }
    };
    for _ in 0..5 {
        let r = login("203.0.113.7", "wrong horse battery").await;
        assert_eq!(r.code(), "UNAUTHENTICATED");
    }
    // The guesser's address may not try this account any more, even with the password...
    let r = login("203.0.113.7", shop::seed::DEMO_PASSWORD).await;
    assert_eq!(r.code(), "TOO_MANY_REQUESTS");
    // ...while its owner, at another address behind the same proxy, signs in; and many
    // successful sign-ins from one address are never counted against it.
    for _ in 0..8 {
        let r = login("198.51.100.20", shop::seed::DEMO_PASSWORD).await;
        assert!(r.data()["login"]["accessToken"].is_string());
    }
    h.stop().await;
}

// ---- OpenID Connect: sign-in through a real provider, and its tokens trusted directly ----

#[tokio::test]
async fn a_shopper_signs_in_with_an_openid_provider_through_the_gateway() {
    let Some(op) = shop_kit::testing::OidcTestProvider::start("e2e_oidc_login").await else {
        return;
    };
    let config: shop_users::OidcProviderConfig =
        serde_json::from_value(op.shop_client_json("testid")).unwrap();
    let dir = std::env::temp_dir().join(format!("shop-e2e-{}", shop_kit::ids::new_id()));
    let h = Harness::start_with(dir, None, false, |o| o.oidc_providers = vec![config]).await;

    let r = h
        .gql(None, "{ oidcProviders { name displayName } }", json!({}))
        .await;
    assert_eq!(
        r.data()["oidcProviders"],
        json!([{ "name": "testid", "displayName": "Test ID" }])
    );
    let r = h
        .gql(
            None,
            "mutation($r: String!) { startOidcLogin(provider: \"testid\", redirectUri: $r) { authorizationUrl state } }",
            json!({ "r": shop_kit::testing::TEST_REDIRECT_URI }),
        )
        .await;
    let url = r.data()["startOidcLogin"]["authorizationUrl"]
        .as_str()
        .unwrap()
        .to_string();
    let back = op.authorize(&url, "alice").await;
    let r = h
        .gql(
            None,
            "mutation($c: String!, $s: String!) { completeOidcLogin(code: $c, state: $s) { accessToken refreshToken user { id } } }",
            json!({ "c": back["code"], "s": back["state"] }),
        )
        .await;
    let token = r.data()["completeOidcLogin"]["accessToken"]
        .as_str()
        .unwrap()
        .to_string();
    // Our own token for the new account, verified by the gateway and the users subgraph.
    let r = h
        .gql(
            Some(&token),
            "{ me { email emailVerified hasPassword linkedProviders { provider } } }",
            json!({}),
        )
        .await;
    assert_eq!(
        r.data()["me"],
        json!({
            "email": "alice@idp.test",
            "emailVerified": true,
            "hasPassword": false,
            "linkedProviders": [{ "provider": "testid" }],
        })
    );
    let claims = jsonwebtoken::dangerous::insecure_decode::<Claims>(&token)
        .unwrap()
        .claims;
    assert_eq!(
        claims.iss, h.platform.issuer,
        "our issuer, not the provider's"
    );
    h.stop().await;
}

#[tokio::test]
async fn tokens_from_a_trusted_external_issuer_work_like_ours() {
    let Some(op) = shop_kit::testing::OidcTestProvider::start("e2e_external_issuer").await else {
        return;
    };
    let issuer = op.issuer().to_string();
    let dir = std::env::temp_dir().join(format!("shop-e2e-{}", shop_kit::ids::new_id()));
    let h = Harness::start_with(dir, None, false, |o| {
        // What SHOP_TRUSTED_ISSUERS gives: issuer, audience, JWKS URL, roles claim.
        o.issuers.push(
            TrustedIssuer::new(
                &issuer,
                "shop-api",
                JwksSource::Url(format!("{issuer}/jwks")),
            )
            .with_roles_claim("realm_access.roles"),
        );
    })
    .await;

    // The company's app signs its supplier in at its own provider; the RS256 access
    // token it gets is all our API needs.
    let supplier = op.app_access_token("supplier").await;
    let header = jsonwebtoken::decode_header(&supplier).unwrap();
    assert_eq!(header.alg, jsonwebtoken::Algorithm::RS256);
    let create =
        "mutation { createCatalog(input: { name: \"Northwind spring\" }) { id name supplierId } }";
    let r = h.gql(Some(&supplier), create, json!({})).await;
    assert_eq!(r.data()["createCatalog"]["name"], "Northwind spring");
    assert_eq!(
        r.data()["createCatalog"]["supplierId"],
        "supplier",
        "the provider's subject owns the catalog"
    );
    let catalog = r.data()["createCatalog"]["id"]
        .as_str()
        .unwrap()
        .to_string();

    // A customer of the same provider has no supplier role there: forbidden.
    let customer = op.app_access_token("alice").await;
    let r = h.gql(Some(&customer), create, json!({})).await;
    assert_eq!(r.code(), "FORBIDDEN");
    let rename =
        "mutation($id: ID!) { updateCatalog(id: $id, input: { name: \"Mine now\" }) { id } }";
    let r = h
        .gql(Some(&customer), rename, json!({ "id": catalog }))
        .await;
    assert_eq!(r.code(), "FORBIDDEN");

    // Altered payload (another subject), same signature: refused.
    let mut parts: Vec<String> = supplier.split('.').map(String::from).collect();
    use base64::Engine;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let mut payload: Value = serde_json::from_slice(&b64.decode(&parts[1]).unwrap()).unwrap();
    payload["sub"] = json!("someone-else");
    parts[1] = b64.encode(payload.to_string());
    let forged = parts.join(".");
    let r = h.gql(Some(&forged), create, json!({})).await;
    assert_eq!(r.status, 401);
    assert_eq!(r.code(), "UNAUTHENTICATED");
    h.stop().await;

    // The same token for a platform that expects another audience: refused.
    let dir = std::env::temp_dir().join(format!("shop-e2e-{}", shop_kit::ids::new_id()));
    let h = Harness::start_with(dir, None, false, |o| {
        o.issuers.push(TrustedIssuer::new(
            &issuer,
            "another-api",
            JwksSource::Url(format!("{issuer}/jwks")),
        ));
    })
    .await;
    let r = h.gql(Some(&supplier), create, json!({})).await;
    assert_eq!(r.code(), "UNAUTHENTICATED");
    h.stop().await;
}

#[tokio::test]
async fn the_gateway_enforces_our_schemas_scopes_and_serves_the_rest() {
    let h = Harness::start(None, true).await;
    // Anonymous: the guarded field is removed before planning, the public one is served.
    let r = h
        .gql(
            None,
            "query { products(first: 1) { edges { node { name } } } user(id: \"x\") { name } }",
            json!({}),
        )
        .await;
    assert_eq!(r.status, 200);
    // `user` is nullable, so only it is lost (a guarded non-null field nulls its parent).
    assert_eq!(r.body["data"]["user"], Value::Null);
    assert!(
        r.body["data"]["products"]["edges"][0]["node"]["name"].is_string(),
        "{}",
        r.body
    );
    assert_eq!(
        r.body["errors"],
        json!([{
            "message": "sign in to use `user`",
            "path": ["user"],
            "extensions": { "code": "UNAUTHENTICATED", "reason": "UNAUTHORIZED_FIELD_OR_TYPE" }
        }])
    );

    // A customer lacks users:admin: forbidden, with the same removal.
    let customer = login(&h, "customer@demo.shop", shop::seed::DEMO_PASSWORD).await;
    let token = customer["accessToken"].as_str().unwrap();
    let r = h
        .gql(
            Some(token),
            "query { me { name } user(id: \"x\") { name } }",
            json!({}),
        )
        .await;
    assert_eq!(r.body["data"]["me"]["name"], "Demo Customer");
    assert_eq!(r.code(), "FORBIDDEN");
    assert_eq!(r.body["errors"][0]["path"], json!(["user"]));
    assert_eq!(
        r.body["errors"][0]["message"],
        "`user` needs the scope users:admin (the ADMIN role)"
    );
    // Refusals say what to do: sign in to check out; which role creates catalogs.
    let r = h
        .gql(
            None,
            "mutation { checkout(cartId: \"x\", shippingAddress: { name: \"a\", line1: \"b\", city: \"c\", postalCode: \"1\", country: \"DE\" }, payment: { number: \"4242424242424242\", expMonth: 1, expYear: 2031, cvc: \"123\", holder: \"a\" }, idempotencyKey: \"k\") { id } }",
            json!({}),
        )
        .await;
    assert_eq!(r.code(), "UNAUTHENTICATED", "{}", r.body);
    assert_eq!(r.body["errors"][0]["message"], "sign in to use `checkout`");
    let r = h
        .gql(
            Some(token),
            "mutation { createCatalog(input: { name: \"Mine\" }) { id } }",
            json!({}),
        )
        .await;
    assert_eq!(r.code(), "FORBIDDEN");
    assert_eq!(
        r.body["errors"][0]["message"],
        "`createCatalog` needs the scope catalog:write (the SUPPLIER or ADMIN role)"
    );

    // An anonymous @authenticated mutation never reaches the users subgraph.
    let r = h
        .gql(None, "mutation { logoutEverywhere }", json!({}))
        .await;
    assert_eq!(r.code(), "UNAUTHENTICATED");
    assert_eq!(r.body["data"], Value::Null);

    // The admin holds the scope.
    let admin = login(&h, "admin@demo.shop", shop::seed::DEMO_PASSWORD).await;
    let r = h
        .gql(
            admin["accessToken"].as_str(),
            "query { users(first: 50) { totalCount } }",
            json!({}),
        )
        .await;
    assert_eq!(
        r.data()["users"]["totalCount"],
        shop::seed::DEMO_ACCOUNTS.len()
    );
    h.stop().await;
}
