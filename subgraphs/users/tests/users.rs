//! The users subgraph on SQLite and (when configured) MySQL: accounts, sessions, resets,
//! profile, admin, limits, keys.

// Tests fail by panicking; helpers outside #[test] functions do too.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use sea_orm::{EntityTrait, Set};
use serde_json::{Value, json};
use shop_kit::auth::{JwksSource, Principal, Role, TrustedIssuer, Verifier};
use shop_kit::limits::{Limit, RateLimiter};
use shop_kit::testing::{TestDb, cleanup, data_of, databases, each_db, error_code_of};
use shop_users::{UsersCtx, UsersSchema, UsersSettings, schema};

struct Env {
    schema: UsersSchema,
    ctx: UsersCtx,
    label: &'static str,
}

const PASSWORD: &str = "correct horse battery";

fn settings() -> UsersSettings {
    UsersSettings {
        issuer: "https://shop.test".into(),
        public_url: "https://shop.test/store".into(),
        ..UsersSettings::default()
    }
}

/// A mail the users domain asked for.
#[derive(Debug)]
struct Mail {
    to_address: String,
    topic: String,
    name: String,
    /// The link it carries.
    body: String,
}

impl Env {
    async fn new(db: &TestDb) -> Env {
        Self::with(db, settings()).await
    }

    async fn with(db: &TestDb, settings: UsersSettings) -> Env {
        let conn = db.connect().await;
        shop_migrations::up(&conn, "users").await.expect("migrate");
        let ctx = UsersCtx::new(conn, settings, RateLimiter::in_memory());
        Env {
            schema: schema(ctx.clone()),
            ctx,
            label: db.label(),
        }
    }

    async fn gql(&self, caller: Option<&Principal>, query: &str, variables: Value) -> Value {
        self.gql_from(caller, "10.0.0.1", query, variables).await
    }

    async fn gql_from(
        &self,
        caller: Option<&Principal>,
        addr: &str,
        query: &str,
        variables: Value,
    ) -> Value {
        let req = async_graphql::Request::new(query)
            .variables(async_graphql::Variables::from_json(variables))
            .data(shop_kit::auth::Caller(caller.cloned()))
            .data(shop_kit::server::ClientAddr(Some(addr.into())));
        serde_json::to_value(self.schema.execute(req).await).unwrap()
    }

    async fn ok(&self, caller: Option<&Principal>, query: &str, variables: Value) -> Value {
        data_of(&self.gql(caller, query, variables).await, self.label)
    }

    async fn code(&self, caller: Option<&Principal>, query: &str, variables: Value) -> String {
        error_code_of(&self.gql(caller, query, variables).await, self.label)
    }

    fn verifier(&self, jwks: jsonwebtoken::jwk::JwkSet) -> Verifier {
        Verifier::new(vec![TrustedIssuer::new(
            "https://shop.test",
            "shop",
            JwksSource::Inline(jwks),
        )])
    }

    /// The principal an access token stands for, verified against the subgraph's JWKS.
    async fn principal(&self, access_token: &str) -> Principal {
        let jwks = self.ctx.keys.jwks().await.expect("jwks");
        self.verifier(jwks)
            .verify(access_token)
            .await
            .unwrap_or_else(|e| panic!("[{}] token refused: {e}", self.label))
    }

    /// Account mail as the users domain announces it (the notifications domain sends
    /// it): the events waiting in the outbox, which no relay empties in these tests.
    async fn mails(&self) -> Vec<Mail> {
        use sea_orm::{ConnectionTrait, Statement};
        let rows = self
            .ctx
            .db
            .query_all_raw(Statement::from_string(
                self.ctx.db.get_database_backend(),
                "SELECT topic, payload FROM users_outbox ORDER BY id",
            ))
            .await
            .expect("outbox");
        rows.iter()
            .filter_map(|r| {
                let topic: String = r.try_get("", "topic").ok()?;
                let payload: String = r.try_get("", "payload").ok()?;
                let p: Value = serde_json::from_str(&payload).ok()?;
                let to_address = p["email"].as_str()?.to_string();
                Some(Mail {
                    to_address,
                    name: p["name"].as_str().unwrap_or_default().to_string(),
                    body: p["link"].as_str().unwrap_or_default().to_string(),
                    topic,
                })
            })
            .filter(|m| m.topic != "users.user_registered")
            .collect()
    }

    async fn mails_to(&self, to: &str) -> Vec<Mail> {
        self.mails()
            .await
            .into_iter()
            .filter(|m| m.to_address == to)
            .collect()
    }

    /// The token in the last link mailed to `to` for `page`.
    async fn link_token(&self, to: &str, page: &str) -> String {
        let prefix = format!("https://shop.test/store/{page}?token=");
        let mails = self.mails_to(to).await;
        let body = &mails
            .iter()
            .rev()
            .find(|m| m.body.contains(&prefix))
            .unwrap_or_else(|| panic!("[{}] no {page} mail to {to}: {mails:?}", self.label))
            .body;
        let start = body.find(&prefix).unwrap() + prefix.len();
        body[start..].split_whitespace().next().unwrap().to_string()
    }

    /// Registers `email` and answers the new account's id (read from the store: the
    /// answer to `register` does not say whether an account was made).
    async fn register(&self, email: &str, name: &str) -> String {
        let d = self
            .ok(
                None,
                "mutation($i: RegisterInput!) { register(input: $i) { email message } }",
                json!({ "i": { "email": email, "password": PASSWORD, "name": name } }),
            )
            .await;
        assert_eq!(d["register"]["email"], email.trim().to_lowercase());
        shop_users::service::accounts::find_by_email(&self.ctx.db, &email.trim().to_lowercase())
            .await
            .unwrap()
            .expect("the account was made")
            .id
    }

    async fn login(&self, email: &str, password: &str) -> Value {
        self.gql(
            None,
            "mutation($e: String!, $p: String!) { login(email: $e, password: $p) { accessToken refreshToken tokenType expiresIn user { id email roles } } }",
            json!({ "e": email, "p": password }),
        )
        .await
    }

    async fn session(&self, email: &str) -> (Principal, String) {
        let r = self.login(email, PASSWORD).await;
        let d = data_of(&r, self.label);
        let p = self
            .principal(d["login"]["accessToken"].as_str().unwrap())
            .await;
        (p, d["login"]["refreshToken"].as_str().unwrap().to_string())
    }

    async fn refresh(&self, token: &str) -> Value {
        self.gql(
            None,
            "mutation($t: String!) { refreshSession(refreshToken: $t) { accessToken refreshToken } }",
            json!({ "t": token }),
        )
        .await
    }

    async fn make_admin(&self, email: &str) -> Principal {
        shop_users::service::admin::ensure_admin(&self.ctx, email, "Admin", Some(PASSWORD))
            .await
            .expect("admin");
        self.session(email).await.0
    }
}

#[tokio::test]
async fn registration_sends_a_real_verification_link_that_works_once() {
    each_db("users_register", async |db| {
        let env = Env::new(db).await;
        let id = env.register("Ann@Example.com", "Ann Lee").await;
        let mails = env.mails_to("ann@example.com").await;
        assert_eq!(mails.len(), 1, "[{}]", env.label);
        assert_eq!(mails[0].topic, "users.verification_requested");
        assert_eq!(mails[0].name, "Ann Lee");
        let token = env.link_token("ann@example.com", "verify-email").await;
        assert!(token.len() >= 43, "256-bit token: {token}");

        let verify = "mutation($t: String!) { verifyEmail(token: $t) { id emailVerified } }";
        let d = env.ok(None, verify, json!({ "t": token })).await;
        assert_eq!(d["verifyEmail"], json!({ "id": id, "emailVerified": true }));
        assert_eq!(
            env.code(None, verify, json!({ "t": token })).await,
            "BAD_USER_INPUT",
            "a verification link works once"
        );
        assert_eq!(
            env.code(None, verify, json!({ "t": "forged" })).await,
            "BAD_USER_INPUT"
        );

        // The same address (in another case) again: the same answer as for a new one,
        // nothing changed, and the owner is told instead.
        let register = "mutation($i: RegisterInput!) { register(input: $i) { email message } }";
        let fresh = env
            .ok(None, register, json!({ "i": { "email": "zed@example.com", "password": PASSWORD, "name": "Zed" } }))
            .await;
        let dup = env
            .ok(None, register, json!({ "i": { "email": "ANN@example.COM", "password": "another good secret", "name": "X" } }))
            .await;
        assert_eq!(
            dup["register"]["message"].as_str().unwrap().replace("ann@example.com", "zed@example.com"),
            fresh["register"]["message"],
            "taken and free addresses are answered alike"
        );
        data_of(&env.login("ann@example.com", PASSWORD).await, env.label);
        let mailed = shop_kit::testing::eventually(Duration::from_secs(5), || async {
            let m = env.mails_to("ann@example.com").await;
            m.iter()
                .any(|m| m.topic == "users.registration_attempted")
                .then_some(())
        })
        .await;
        assert!(mailed.is_some(), "[{}] the owner hears of it", env.label);
    })
    .await;
}

#[tokio::test]
async fn bad_registrations_are_refused_with_the_reason_and_nothing_stored() {
    each_db("users_register_bad", async |db| {
        let env = Env::new(db).await;
        let register = "mutation($i: RegisterInput!) { register(input: $i) { email } }";
        for (input, needle) in [
            (
                json!({ "email": "ann@example.com", "password": "short", "name": "Ann" }),
                "at least 10",
            ),
            (
                json!({ "email": "ann@example.com", "password": "password123", "name": "Ann" }),
                "too common",
            ),
            (
                json!({ "email": "not-an-address", "password": PASSWORD, "name": "Ann" }),
                "not an e-mail",
            ),
            (
                json!({ "email": "ann@example.com", "password": PASSWORD, "name": "  " }),
                "name must not be empty",
            ),
        ] {
            let r = env.gql(None, register, json!({ "i": input })).await;
            assert_eq!(error_code_of(&r, env.label), "BAD_USER_INPUT");
            let msg = r["errors"][0]["message"].as_str().unwrap();
            assert!(msg.contains(needle), "[{}] {msg}", env.label);
            assert!(!msg.contains(PASSWORD), "no password in messages");
        }
        assert!(env.mails().await.is_empty());
        let count = shop_users::service::admin::count(&env.ctx, &Default::default())
            .await
            .unwrap();
        assert_eq!(count, 0);
    })
    .await;
}

#[tokio::test]
async fn login_issues_a_verifiable_token_with_roles_scopes_and_id() {
    each_db("users_login", async |db| {
        let env = Env::new(db).await;
        let id = env.register("bob@example.com", "Bob").await;
        let r = env.login("BOB@example.com", PASSWORD).await;
        let d = data_of(&r, env.label);
        assert_eq!(d["login"]["tokenType"], "Bearer");
        assert_eq!(d["login"]["expiresIn"], 900);
        assert_eq!(d["login"]["user"]["roles"], json!(["CUSTOMER"]));
        let token = d["login"]["accessToken"].as_str().unwrap();
        let p = env.principal(token).await;
        assert_eq!(p.user_id, id);
        assert_eq!(p.roles, vec![Role::Customer]);
        assert!(p.has_scope("profile") && !p.has_scope("users:admin"));
        let claims: Value =
            jsonwebtoken::dangerous::insecure_decode_claims::<Value>(token).unwrap();
        assert_eq!(claims["iss"], "https://shop.test");
        assert_eq!(claims["aud"], "shop");
        assert!(claims["jti"].as_str().is_some_and(|j| !j.is_empty()));
        assert_eq!(
            claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(),
            900
        );

        let wrong = env.login("bob@example.com", "wrong horse battery").await;
        let nobody = env.login("nobody@example.com", PASSWORD).await;
        for r in [&wrong, &nobody] {
            assert_eq!(error_code_of(r, env.label), "UNAUTHENTICATED");
            assert_eq!(r["errors"][0]["message"], "wrong e-mail address or password");
        }
        // A signed-in user sees their own private fields.
        let me = env
            .ok(Some(&p), "{ me { id email emailVerified hasPassword activeSessions } }", json!({}))
            .await;
        assert_eq!(
            me["me"],
            json!({ "id": id, "email": "bob@example.com", "emailVerified": false, "hasPassword": true, "activeSessions": 1 })
        );
        assert_eq!(env.ok(None, "{ me { id } }", json!({})).await["me"], Value::Null);
    })
    .await;
}

#[tokio::test]
async fn refresh_rotates_and_reusing_a_rotated_token_revokes_the_family() {
    each_db("users_refresh", async |db| {
        let env = Env::new(db).await;
        env.register("cy@example.com", "Cy").await;
        let (_, first) = env.session("cy@example.com").await;
        let (_, other_device) = env.session("cy@example.com").await;

        let r = env.refresh(&first).await;
        let second = data_of(&r, env.label)["refreshSession"]["refreshToken"]
            .as_str()
            .unwrap()
            .to_string();
        assert_ne!(second, first);
        let access = data_of(&r, env.label)["refreshSession"]["accessToken"]
            .as_str()
            .unwrap()
            .to_string();
        env.principal(&access).await;

        // The rotated token shows up again: copied. Both it and its successor die.
        let reuse = env.refresh(&first).await;
        assert_eq!(error_code_of(&reuse, env.label), "UNAUTHENTICATED");
        assert!(
            reuse["errors"][0]["message"]
                .as_str()
                .unwrap()
                .contains("already used")
        );
        assert_eq!(
            error_code_of(&env.refresh(&second).await, env.label),
            "UNAUTHENTICATED"
        );
        // Another sign-in (another family) is untouched; logout ends it.
        let r = env.refresh(&other_device).await;
        let third = data_of(&r, env.label)["refreshSession"]["refreshToken"]
            .as_str()
            .unwrap()
            .to_string();
        env.ok(
            None,
            "mutation($t: String!) { logout(refreshToken: $t) }",
            json!({ "t": third }),
        )
        .await;
        assert_eq!(
            error_code_of(&env.refresh(&third).await, env.label),
            "UNAUTHENTICATED"
        );
        assert_eq!(
            error_code_of(&env.refresh("garbage").await, env.label),
            "UNAUTHENTICATED"
        );
    })
    .await;
}

#[tokio::test]
async fn password_reset_never_reveals_accounts_works_once_and_ends_sessions() {
    each_db("users_reset", async |db| {
        let env = Env::new(db).await;
        env.register("dee@example.com", "Dee").await;
        let (_, refresh) = env.session("dee@example.com").await;
        let ask = "mutation($e: String!) { requestPasswordReset(email: $e) }";
        let known = env.ok(None, ask, json!({ "e": "dee@example.com" })).await;
        let unknown = env.ok(None, ask, json!({ "e": "ghost@example.com" })).await;
        assert_eq!(known, unknown, "the same answer either way");

        let label = env.label;
        let mailed = shop_kit::testing::eventually(Duration::from_secs(5), || async {
            let m = env.mails_to("dee@example.com").await;
            m.iter()
                .any(|m| m.topic == "users.password_reset_requested")
                .then_some(())
        })
        .await;
        assert!(mailed.is_some(), "[{label}] reset mail");
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(env.mails_to("ghost@example.com").await.is_empty());

        let token = env.link_token("dee@example.com", "reset-password").await;
        let reset =
            "mutation($t: String!, $p: String!) { resetPassword(token: $t, newPassword: $p) }";
        let weak = env
            .gql(None, reset, json!({ "t": token, "p": "short" }))
            .await;
        assert_eq!(error_code_of(&weak, label), "BAD_USER_INPUT");
        // A refused new password does not use up the link.
        env.ok(
            None,
            reset,
            json!({ "t": token, "p": "a brand new secret" }),
        )
        .await;
        assert_eq!(
            env.code(
                None,
                reset,
                json!({ "t": token, "p": "another new secret" })
            )
            .await,
            "BAD_USER_INPUT",
            "single use"
        );
        assert_eq!(
            error_code_of(&env.refresh(&refresh).await, label),
            "UNAUTHENTICATED"
        );
        assert_eq!(
            error_code_of(&env.login("dee@example.com", PASSWORD).await, label),
            "UNAUTHENTICATED"
        );
        data_of(
            &env.login("dee@example.com", "a brand new secret").await,
            label,
        );
        assert!(
            env.mails_to("dee@example.com")
                .await
                .iter()
                .any(|m| m.topic == "users.password_changed")
        );
    })
    .await;
}

#[tokio::test]
async fn reset_links_expire() {
    each_db("users_reset_expiry", async |db| {
        let env = Env::with(
            db,
            UsersSettings {
                reset_ttl: Duration::from_secs(1),
                ..settings()
            },
        )
        .await;
        env.register("eve@example.com", "Eve").await;
        shop_users::service::accounts::send_reset(&env.ctx, "eve@example.com")
            .await
            .unwrap();
        let token = env.link_token("eve@example.com", "reset-password").await;
        tokio::time::sleep(Duration::from_millis(1100)).await;
        let code = env
            .code(
                None,
                "mutation($t: String!) { resetPassword(token: $t, newPassword: \"a brand new secret\") }",
                json!({ "t": token }),
            )
            .await;
        assert_eq!(code, "BAD_USER_INPUT");
    })
    .await;
}

#[tokio::test]
async fn change_password_needs_the_current_one_and_ends_sessions() {
    each_db("users_change_password", async |db| {
        let env = Env::new(db).await;
        env.register("fay@example.com", "Fay").await;
        let (p, refresh) = env.session("fay@example.com").await;
        let change = "mutation($c: String!, $n: String!) { changePassword(currentPassword: $c, newPassword: $n) }";
        assert_eq!(
            env.code(Some(&p), change, json!({ "c": "not it at all", "n": "a brand new secret" }))
                .await,
            "BAD_USER_INPUT"
        );
        assert_eq!(
            env.code(None, change, json!({ "c": PASSWORD, "n": "a brand new secret" })).await,
            "UNAUTHENTICATED"
        );
        env.ok(Some(&p), change, json!({ "c": PASSWORD, "n": "a brand new secret" }))
            .await;
        assert_eq!(error_code_of(&env.refresh(&refresh).await, env.label), "UNAUTHENTICATED");
        data_of(&env.login("fay@example.com", "a brand new secret").await, env.label);
    })
    .await;
}

#[tokio::test]
async fn profile_and_addresses_keep_one_default_per_kind_and_stay_private() {
    each_db("users_profile", async |db| {
        let env = Env::new(db).await;
        let gus = env.register("gus@example.com", "Gus").await;
        env.register("hal@example.com", "Hal").await;
        let (p, _) = env.session("gus@example.com").await;
        let (hal, _) = env.session("hal@example.com").await;

        let d = env
            .ok(
                Some(&p),
                "mutation { updateProfile(input: { name: \"Gus Grand\", phone: \"+49 30 1234567\" }) { name phone } }",
                json!({}),
            )
            .await;
        assert_eq!(d["updateProfile"], json!({ "name": "Gus Grand", "phone": "+49 30 1234567" }));
        assert_eq!(
            env.code(Some(&p), "mutation { updateProfile(input: { phone: \"call me\" }) { phone } }", json!({}))
                .await,
            "BAD_USER_INPUT"
        );

        let add = "mutation($i: AddressInput!) { addAddress(input: $i) { id kind isDefault country } }";
        let addr = |kind: &str, city: &str, default: bool| {
            json!({ "i": { "kind": kind, "name": "Gus", "line1": "Main St 1", "city": city,
                           "postalCode": "10115", "country": "de", "isDefault": default } })
        };
        let a = env.ok(Some(&p), add, addr("SHIPPING", "Berlin", false)).await["addAddress"].clone();
        assert_eq!(a["isDefault"], true, "the first of a kind is the default");
        assert_eq!(a["country"], "DE");
        let b = env.ok(Some(&p), add, addr("SHIPPING", "Hamburg", true)).await["addAddress"].clone();
        let c = env.ok(Some(&p), add, addr("BILLING", "Bonn", false)).await["addAddress"].clone();
        assert_eq!(c["isDefault"], true);
        let list = "{ me { addresses { id isDefault } } }";
        let defaults = |d: Value| {
            d["me"]["addresses"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|a| a["isDefault"] == true)
                .map(|a| a["id"].as_str().unwrap().to_string())
                .collect::<Vec<_>>()
        };
        let d = env.ok(Some(&p), list, json!({})).await;
        assert_eq!(
            defaults(d),
            vec![b["id"].as_str().unwrap().to_string(), c["id"].as_str().unwrap().to_string()]
        );
        // Removing the default promotes the oldest remaining one.
        env.ok(Some(&p), "mutation($id: ID!) { removeAddress(id: $id) }", json!({ "id": b["id"] }))
            .await;
        let d = env.ok(Some(&p), list, json!({})).await;
        assert_eq!(
            defaults(d),
            vec![a["id"].as_str().unwrap().to_string(), c["id"].as_str().unwrap().to_string()]
        );
        assert_eq!(
            env.code(Some(&p), add, json!({ "i": { "kind": "SHIPPING", "name": "G", "line1": "x", "city": "y", "postalCode": "1", "country": "Germany" } }))
                .await,
            "BAD_USER_INPUT"
        );
        // Someone else's address is not found; their private fields are forbidden.
        assert_eq!(
            env.code(Some(&hal), "mutation($id: ID!) { removeAddress(id: $id) }", json!({ "id": a["id"] }))
                .await,
            "NOT_FOUND"
        );
        let entity = "query($r: [_Any!]!) { _entities(representations: $r) { ... on User { name email } } }";
        let reps = json!({ "r": [{ "__typename": "User", "id": gus }] });
        let r = env.gql(Some(&hal), entity, reps.clone()).await;
        assert_eq!(error_code_of(&r, env.label), "FORBIDDEN");
        let r = env
            .ok(Some(&p), entity, reps.clone())
            .await;
        assert_eq!(r["_entities"][0], json!({ "name": "Gus Grand", "email": "gus@example.com" }));
        let public = env
            .ok(None, "query($r: [_Any!]!) { _entities(representations: $r) { ... on User { name } } }", reps)
            .await;
        assert_eq!(public["_entities"][0]["name"], "Gus Grand");
    })
    .await;
}

#[tokio::test]
async fn admins_manage_users_and_the_last_admin_stays() {
    each_db("users_admin", async |db| {
        let env = Env::new(db).await;
        let admin = env.make_admin("root@example.com").await;
        assert!(admin.is_admin() && admin.has_scope("users:admin"));
        let ivy = env.register("ivy@example.com", "Ivy Supplier").await;
        let (ivy_p, ivy_refresh) = env.session("ivy@example.com").await;

        let users = "query($s: String, $r: Role) { users(search: $s, role: $r, first: 10) { totalCount edges { node { email roles } } } }";
        assert_eq!(env.code(Some(&ivy_p), users, json!({})).await, "FORBIDDEN");
        assert_eq!(env.code(None, users, json!({})).await, "UNAUTHENTICATED");
        let d = env.ok(Some(&admin), users, json!({ "s": "SUPPLIER" })).await;
        assert_eq!(d["users"]["totalCount"], 1);
        assert_eq!(d["users"]["edges"][0]["node"]["email"], "ivy@example.com");
        let d = env.ok(Some(&admin), users, json!({ "r": "ADMIN" })).await;
        assert_eq!(d["users"]["edges"][0]["node"]["email"], "root@example.com");
        // LIKE wildcards are literal.
        let d = env.ok(Some(&admin), users, json!({ "s": "%" })).await;
        assert_eq!(d["users"]["totalCount"], 0);

        let set_roles = "mutation($id: ID!, $r: [Role!]!) { setUserRoles(id: $id, roles: $r) { roles } }";
        let d = env
            .ok(Some(&admin), set_roles, json!({ "id": ivy, "r": ["SUPPLIER", "CUSTOMER"] }))
            .await;
        assert_eq!(d["setUserRoles"]["roles"], json!(["CUSTOMER", "SUPPLIER"]));
        assert_eq!(
            error_code_of(&env.refresh(&ivy_refresh).await, env.label),
            "UNAUTHENTICATED",
            "new roles need a new sign-in"
        );
        let (ivy_p, _) = env.session("ivy@example.com").await;
        assert!(ivy_p.has_role(Role::Supplier) && ivy_p.has_scope("catalog:write"));

        let disable = "mutation($id: ID!, $d: Boolean!) { setUserDisabled(id: $id, disabled: $d) { disabled } }";
        env.ok(Some(&admin), disable, json!({ "id": ivy, "d": true })).await;
        assert_eq!(
            error_code_of(&env.login("ivy@example.com", PASSWORD).await, env.label),
            "FORBIDDEN"
        );
        env.ok(Some(&admin), disable, json!({ "id": ivy, "d": false })).await;
        data_of(&env.login("ivy@example.com", PASSWORD).await, env.label);

        // The only admin can neither lose the role nor be disabled or deleted.
        let root = admin.user_id.clone();
        assert_eq!(
            env.code(Some(&admin), set_roles, json!({ "id": root, "r": ["CUSTOMER"] })).await,
            "CONFLICT"
        );
        assert_eq!(env.code(Some(&admin), disable, json!({ "id": root, "d": true })).await, "CONFLICT");

        let create = "mutation($i: CreateUserInput!) { createUser(input: $i) { id email roles emailVerified } }";
        let d = env
            .ok(Some(&admin), create, json!({ "i": { "email": "joe@example.com", "name": "Joe", "roles": ["SUPPLIER"] } }))
            .await;
        assert_eq!(d["createUser"]["roles"], json!(["SUPPLIER"]));
        let mails = env.mails_to("joe@example.com").await;
        let invitation = mails
            .iter()
            .find(|m| m.topic == "users.account_invited")
            .expect("a user created without a password is invited to choose one");
        assert!(invitation.body.contains("/reset-password?token="), "{invitation:?}");
        assert!(
            !mails.iter().any(|m| m.topic == "users.password_reset_requested"),
            "an invitation, not a reset nobody asked for"
        );
        let joe = d["createUser"]["id"].as_str().unwrap().to_string();
        env.ok(Some(&admin), "mutation($id: ID!) { deleteUser(id: $id) }", json!({ "id": joe }))
            .await;
        let gone = env.ok(Some(&admin), "query($id: ID!) { user(id: $id) { id } }", json!({ "id": joe })).await;
        assert_eq!(gone["user"], Value::Null);
        // The row stays, anonymised, for references from orders.
        let stored = shop_users::entity::user::Entity::find_by_id(joe)
            .one(&env.ctx.db)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(stored.name, "Deleted user");
        assert!(stored.email.ends_with("@invalid") && stored.password_hash.is_none());
        assert_eq!(
            env.code(Some(&admin), "mutation($id: ID!) { deleteUser(id: $id) }", json!({ "id": "nope" }))
                .await,
            "BAD_USER_INPUT"
        );
    })
    .await;
}

#[tokio::test]
async fn deleting_your_account_erases_personal_data_and_frees_the_address() {
    each_db("users_delete", async |db| {
        let env = Env::new(db).await;
        env.register("kim@example.com", "Kim").await;
        let (p, refresh) = env.session("kim@example.com").await;
        let del = "mutation($p: String!) { deleteAccount(password: $p) }";
        assert_eq!(
            env.code(Some(&p), del, json!({ "p": "not my password" }))
                .await,
            "BAD_USER_INPUT"
        );
        env.ok(Some(&p), del, json!({ "p": PASSWORD })).await;
        assert_eq!(
            env.ok(Some(&p), "{ me { id } }", json!({})).await["me"],
            Value::Null
        );
        assert_eq!(
            error_code_of(&env.refresh(&refresh).await, env.label),
            "UNAUTHENTICATED"
        );
        assert_eq!(
            error_code_of(&env.login("kim@example.com", PASSWORD).await, env.label),
            "UNAUTHENTICATED"
        );
        env.register("kim@example.com", "Kim Again").await;
    })
    .await;
}

#[tokio::test]
async fn failed_logins_block_the_guesser_not_the_owner_and_a_reset_unblocks() {
    each_db("users_limits", async |db| {
        let env = Env::with(
            db,
            UsersSettings {
                login_per_pair: Limit { max: 3, window: Duration::from_secs(600) },
                login_per_account: Limit { max: 5, window: Duration::from_secs(600) },
                login_per_address: Limit { max: 6, window: Duration::from_secs(600) },
                ..settings()
            },
        )
        .await;
        let label = env.label;
        let login = "mutation($e: String!, $p: String!) { login(email: $e, password: $p) { accessToken } }";
        let from = async |addr: &str, email: &str, password: &str| {
            env.gql_from(None, addr, login, json!({ "e": email, "p": password }))
                .await
        };
        env.register("lou@example.com", "Lou").await;
        // A guesser at 10.0.0.1 fails three times: that address may no longer try Lou,
        // even with the right password.
        for _ in 0..3 {
            let r = from("10.0.0.1", "lou@example.com", "wrong horse battery").await;
            assert_eq!(error_code_of(&r, label), "UNAUTHENTICATED");
        }
        let r = from("10.0.0.1", "lou@example.com", PASSWORD).await;
        assert_eq!(error_code_of(&r, label), "TOO_MANY_REQUESTS");
        // Lou, elsewhere, is not locked out.
        data_of(&from("10.9.9.9", "lou@example.com", PASSWORD).await, label);

        // Successful logins are not counted: many people behind one address sign in.
        env.register("max@example.com", "Max").await;
        for _ in 0..8 {
            data_of(&from("10.0.0.2", "max@example.com", PASSWORD).await, label);
        }
        // Failures over many accounts from one address are (credential stuffing).
        for i in 0..6 {
            let r = from("10.0.0.2", &format!("x{i}@example.com"), "wrong horse battery").await;
            assert_eq!(error_code_of(&r, label), "UNAUTHENTICATED");
        }
        let r = from("10.0.0.2", "max@example.com", PASSWORD).await;
        assert_eq!(error_code_of(&r, label), "TOO_MANY_REQUESTS");

        // Guessing spread over addresses: the account refuses logins everywhere...
        for i in 0..2 {
            let r = from(&format!("10.1.0.{i}"), "lou@example.com", "wrong horse battery").await;
            assert_eq!(error_code_of(&r, label), "UNAUTHENTICATED");
        }
        let r = from("10.2.0.1", "lou@example.com", PASSWORD).await;
        assert_eq!(error_code_of(&r, label), "TOO_MANY_REQUESTS");
        // ...until its owner resets the password: then a new address gets in.
        env.ok(
            None,
            "mutation($e: String!) { requestPasswordReset(email: $e) }",
            json!({ "e": "lou@example.com" }),
        )
        .await;
        // The reset mail is written after the answer.
        let mailed = shop_kit::testing::eventually(Duration::from_secs(5), || async {
            let m = env.mails_to("lou@example.com").await;
            m.iter()
                .any(|m| m.topic == "users.password_reset_requested")
                .then_some(())
        })
        .await;
        assert!(mailed.is_some(), "[{label}] reset mail");
        let token = env.link_token("lou@example.com", "reset-password").await;
        env.ok(
            None,
            "mutation($t: String!) { resetPassword(token: $t, newPassword: \"a brand new secret\") }",
            json!({ "t": token }),
        )
        .await;
        data_of(&from("10.3.0.1", "lou@example.com", "a brand new secret").await, label);
    })
    .await;
}

#[tokio::test]
async fn rotated_keys_stay_published_until_their_tokens_expire() {
    each_db("users_keys", async |db| {
        let env = Env::new(db).await;
        env.register("ned@example.com", "Ned").await;
        let old = data_of(&env.login("ned@example.com", PASSWORD).await, env.label)["login"]
            ["accessToken"]
            .as_str()
            .unwrap()
            .to_string();
        let old_kid = jsonwebtoken::decode_header(&old).unwrap().kid.unwrap();
        env.ctx.keys.rotate().await.unwrap();
        let new = data_of(&env.login("ned@example.com", PASSWORD).await, env.label)["login"]
            ["accessToken"]
            .as_str()
            .unwrap()
            .to_string();
        let new_kid = jsonwebtoken::decode_header(&new).unwrap().kid.unwrap();
        assert_ne!(old_kid, new_kid);
        let jwks = env.ctx.keys.jwks().await.unwrap();
        let kids: Vec<_> = jwks
            .keys
            .iter()
            .filter_map(|k| k.common.key_id.clone())
            .collect();
        assert!(
            kids.contains(&old_kid) && kids.contains(&new_kid),
            "{kids:?}"
        );
        env.principal(&old).await;
        env.principal(&new).await;
    })
    .await;
}

// ---- OpenID Connect sign-in against a real provider (tests/oidc-provider) ----

const START_LOGIN: &str = "mutation($p: String!, $r: String!) { startOidcLogin(provider: $p, redirectUri: $r) { authorizationUrl state expiresAt } }";
const COMPLETE_LOGIN: &str = "mutation($c: String!, $s: String!) { completeOidcLogin(code: $c, state: $s) { accessToken refreshToken user { id email emailVerified name hasPassword roles linkedProviders { provider email } } } }";
const START_LINK: &str = "mutation($p: String!, $r: String!) { startOidcLink(provider: $p, redirectUri: $r) { authorizationUrl state } }";
const COMPLETE_LINK: &str = "mutation($c: String!, $s: String!) { completeOidcLink(code: $c, state: $s) { id linkedProviders { provider email } } }";

fn oidc_settings(op: &shop_kit::testing::OidcTestProvider) -> UsersSettings {
    let config = serde_json::from_value(op.shop_client_json("testid")).unwrap();
    UsersSettings {
        oidc_providers: vec![config],
        ..settings()
    }
}

impl Env {
    /// Starts a login (or, with `caller`, a link), lets `account` approve it at the
    /// provider, and returns the `code` and `state` the provider sent back.
    async fn provider_round(
        &self,
        op: &shop_kit::testing::OidcTestProvider,
        caller: Option<&Principal>,
        account: &str,
    ) -> (String, String) {
        let (start, field) = match caller {
            None => (START_LOGIN, "startOidcLogin"),
            Some(_) => (START_LINK, "startOidcLink"),
        };
        let d = self
            .ok(
                caller,
                start,
                json!({ "p": "testid", "r": shop_kit::testing::TEST_REDIRECT_URI }),
            )
            .await;
        let url = d[field]["authorizationUrl"].as_str().unwrap();
        let back = op.authorize(url, account).await;
        assert_eq!(
            back.get("state"),
            d[field]["state"].as_str().map(String::from).as_ref()
        );
        (back["code"].clone(), back["state"].clone())
    }

    /// Changes the stored start of a login, as an attacker or time would.
    async fn edit_started_login(
        &self,
        state: &str,
        edit: impl FnOnce(&mut shop_users::entity::oidc_login::ActiveModel),
    ) {
        use sea_orm::ActiveModelTrait;
        let row = shop_users::entity::oidc_login::Entity::find_by_id(state.to_string())
            .one(&self.ctx.db)
            .await
            .unwrap()
            .unwrap();
        let mut row: shop_users::entity::oidc_login::ActiveModel = row.into();
        edit(&mut row);
        row.update(&self.ctx.db).await.unwrap();
    }

    async fn oidc_login(&self, op: &shop_kit::testing::OidcTestProvider, account: &str) -> Value {
        let (code, state) = self.provider_round(op, None, account).await;
        self.gql(None, COMPLETE_LOGIN, json!({ "c": code, "s": state }))
            .await
    }
}

#[tokio::test]
async fn oidc_first_login_creates_the_account_and_the_next_signs_into_it() {
    let Some(op) = shop_kit::testing::OidcTestProvider::start("users_oidc_login").await else {
        return;
    };
    each_db("users_oidc_login", async |db| {
        let env = Env::with(db, oidc_settings(&op)).await;
        let d = env
            .ok(None, "{ oidcProviders { name displayName } }", json!({}))
            .await;
        assert_eq!(
            d["oidcProviders"],
            json!([{ "name": "testid", "displayName": "Test ID" }])
        );

        // The authorization URL asks for the code flow with PKCE (S256), state and nonce.
        let d = env
            .ok(
                None,
                START_LOGIN,
                json!({ "p": "testid", "r": shop_kit::testing::TEST_REDIRECT_URI }),
            )
            .await;
        let url =
            reqwest::Url::parse(d["startOidcLogin"]["authorizationUrl"].as_str().unwrap()).unwrap();
        let q: std::collections::HashMap<String, String> = url.query_pairs().into_owned().collect();
        assert!(url.as_str().starts_with(&format!("{}/auth?", op.issuer())));
        assert_eq!(q["response_type"], "code");
        assert_eq!(q["client_id"], "shop");
        assert_eq!(q["code_challenge_method"], "S256");
        assert_eq!(q["scope"], "openid email profile");
        assert_eq!(q["redirect_uri"], shop_kit::testing::TEST_REDIRECT_URI);
        assert!(q["nonce"].len() >= 22 && q["code_challenge"].len() == 43);
        assert_eq!(q["state"], d["startOidcLogin"]["state"].as_str().unwrap());

        // First sign-in: a customer account, e-mail verified because the provider says so.
        let (code, state) = env.provider_round(&op, None, "alice").await;
        let r = env
            .gql(None, COMPLETE_LOGIN, json!({ "c": code, "s": state }))
            .await;
        let user = data_of(&r, env.label)["completeOidcLogin"]["user"].clone();
        assert_eq!(user["email"], "alice@idp.test", "[{}]", env.label);
        assert_eq!(user["name"], "Alice Example");
        assert_eq!(user["emailVerified"], true);
        assert_eq!(user["hasPassword"], false);
        assert_eq!(user["roles"], json!(["CUSTOMER"]));
        assert_eq!(
            user["linkedProviders"],
            json!([{ "provider": "testid", "email": "alice@idp.test" }])
        );
        let token = data_of(&r, env.label)["completeOidcLogin"]["accessToken"]
            .as_str()
            .unwrap()
            .to_string();
        let p = env.principal(&token).await;
        assert_eq!(p.user_id, user["id"].as_str().unwrap());
        assert!(
            env.mails_to("alice@idp.test").await.is_empty(),
            "verified: no mail"
        );

        // The state works once, even with the provider's valid code.
        assert_eq!(
            env.code(None, COMPLETE_LOGIN, json!({ "c": code, "s": state }))
                .await,
            "BAD_USER_INPUT"
        );

        // The next sign-in finds the same account.
        let again = env.oidc_login(&op, "alice").await;
        assert_eq!(
            data_of(&again, env.label)["completeOidcLogin"]["user"]["id"],
            user["id"]
        );

        // The provider says the address is not verified: we send our own link.
        let bob = env.oidc_login(&op, "bob").await;
        assert_eq!(
            data_of(&bob, env.label)["completeOidcLogin"]["user"]["emailVerified"],
            false
        );
        env.link_token("bob@idp.test", "verify-email").await;

        // No e-mail shared: refused, nothing stored.
        let r = env.oidc_login(&op, "nomail").await;
        assert_eq!(error_code_of(&r, env.label), "BAD_USER_INPUT");

        // An existing account's address is not taken over through a provider.
        env.register("taken@idp.test", "Owner Of Taken").await;
        let r = env.oidc_login(&op, "taken").await;
        assert_eq!(error_code_of(&r, env.label), "CONFLICT");
        assert!(r["errors"][0]["message"].as_str().unwrap().contains("link"));
        let (owner, _) = env.session("taken@idp.test").await;
        let d = env
            .ok(
                Some(&owner),
                "{ me { linkedProviders { provider } } }",
                json!({}),
            )
            .await;
        assert_eq!(d["me"]["linkedProviders"], json!([]));

        // A disabled account cannot sign in through its provider either.
        let admin = env.make_admin("root@shop.test").await;
        env.ok(
            Some(&admin),
            "mutation($id: ID!) { setUserDisabled(id: $id, disabled: true) { id } }",
            json!({ "id": user["id"] }),
        )
        .await;
        let r = env.oidc_login(&op, "alice").await;
        assert_eq!(error_code_of(&r, env.label), "FORBIDDEN");
    })
    .await;
}

#[tokio::test]
async fn oidc_callbacks_that_do_not_match_the_started_login_are_refused() {
    let Some(op) = shop_kit::testing::OidcTestProvider::start("users_oidc_refused").await else {
        return;
    };
    each_db("users_oidc_refused", async |db| {
        let env = Env::with(db, oidc_settings(&op)).await;
        let start = |p: &str, r: &str| json!({ "p": p, "r": r });
        assert_eq!(
            env.code(
                None,
                START_LOGIN,
                start("nope", shop_kit::testing::TEST_REDIRECT_URI)
            )
            .await,
            "BAD_USER_INPUT",
            "unknown provider"
        );
        assert_eq!(
            env.code(None, START_LOGIN, start("testid", "https://evil.test/cb"))
                .await,
            "BAD_USER_INPUT",
            "a redirect URI not registered for the provider"
        );
        assert_eq!(
            env.code(None, COMPLETE_LOGIN, json!({ "c": "x", "s": "forged" }))
                .await,
            "BAD_USER_INPUT"
        );

        // Two logins in flight; each code only works with its own state (PKCE binds the
        // code to the verifier stored with that state).
        let (code_a, state_a) = env.provider_round(&op, None, "alice").await;
        let (code_b, state_b) = env.provider_round(&op, None, "bob").await;
        assert_eq!(
            env.code(None, COMPLETE_LOGIN, json!({ "c": code_a, "s": state_b }))
                .await,
            "BAD_USER_INPUT"
        );
        // The swap used up state_b; state_a with code_b fails too.
        assert_eq!(
            env.code(None, COMPLETE_LOGIN, json!({ "c": code_b, "s": state_a }))
                .await,
            "BAD_USER_INPUT"
        );

        // An ID token for another nonce is refused.
        let (code, state) = env.provider_round(&op, None, "alice").await;
        env.edit_started_login(&state, |row| {
            row.nonce = Set("a-nonce-the-provider-never-saw".into())
        })
        .await;
        let r = env
            .gql(None, COMPLETE_LOGIN, json!({ "c": code, "s": state }))
            .await;
        assert_eq!(error_code_of(&r, env.label), "UNAUTHENTICATED");

        // An expired start is refused.
        let (code, state) = env.provider_round(&op, None, "alice").await;
        env.edit_started_login(&state, |row| {
            row.expires_at = Set(chrono::Utc::now() - chrono::Duration::seconds(1))
        })
        .await;
        assert_eq!(
            env.code(None, COMPLETE_LOGIN, json!({ "c": code, "s": state }))
                .await,
            "BAD_USER_INPUT"
        );
        let users = shop_users::entity::user::Entity::find()
            .all(&env.ctx.db)
            .await
            .unwrap();
        assert!(
            users.is_empty(),
            "[{}] no account from refused callbacks",
            env.label
        );
    })
    .await;
}

#[tokio::test]
async fn oidc_providers_are_linked_and_unlinked_by_their_owner_only() {
    let Some(op) = shop_kit::testing::OidcTestProvider::start("users_oidc_link").await else {
        return;
    };
    each_db("users_oidc_link", async |db| {
        let env = Env::with(db, oidc_settings(&op)).await;
        let r = json!({ "p": "testid", "r": shop_kit::testing::TEST_REDIRECT_URI });
        assert_eq!(env.code(None, START_LINK, r.clone()).await, "UNAUTHENTICATED");

        let id = env.register("taken@idp.test", "Owner Of Taken").await;
        let (owner, _) = env.session("taken@idp.test").await;
        env.register("other@shop.test", "Someone Else").await;
        let (other, _) = env.session("other@shop.test").await;

        // A link started by one user cannot be finished by another.
        let (code, state) = env.provider_round(&op, Some(&owner), "taken").await;
        assert_eq!(
            env.code(Some(&other), COMPLETE_LINK, json!({ "c": code, "s": state }))
                .await,
            "FORBIDDEN"
        );
        // Nor used to sign in.
        let (code, state) = env.provider_round(&op, Some(&owner), "taken").await;
        assert_eq!(
            env.code(None, COMPLETE_LOGIN, json!({ "c": code, "s": state }))
                .await,
            "BAD_USER_INPUT"
        );

        let (code, state) = env.provider_round(&op, Some(&owner), "taken").await;
        let d = env
            .ok(Some(&owner), COMPLETE_LINK, json!({ "c": code, "s": state }))
            .await;
        assert_eq!(d["completeOidcLink"]["id"], id.as_str());
        assert_eq!(
            d["completeOidcLink"]["linkedProviders"],
            json!([{ "provider": "testid", "email": "taken@idp.test" }])
        );

        // Now the provider signs into the linked account.
        let r = env.oidc_login(&op, "taken").await;
        assert_eq!(
            data_of(&r, env.label)["completeOidcLogin"]["user"]["id"],
            id.as_str()
        );

        // The same provider account cannot be linked to a second account.
        let (code, state) = env.provider_round(&op, Some(&other), "taken").await;
        assert_eq!(
            env.code(Some(&other), COMPLETE_LINK, json!({ "c": code, "s": state }))
                .await,
            "CONFLICT"
        );

        let unlink = "mutation { unlinkOidcProvider(provider: \"testid\") { linkedProviders { provider } } }";
        let d = env.ok(Some(&owner), unlink, json!({})).await;
        assert_eq!(d["unlinkOidcProvider"]["linkedProviders"], json!([]));
        assert_eq!(env.code(Some(&owner), unlink, json!({})).await, "NOT_FOUND");

        // An account made through the provider has no password: unlinking would lock
        // its owner out.
        let r = env.oidc_login(&op, "alice").await;
        let token = data_of(&r, env.label)["completeOidcLogin"]["accessToken"]
            .as_str()
            .unwrap()
            .to_string();
        let alice = env.principal(&token).await;
        assert_eq!(env.code(Some(&alice), unlink, json!({})).await, "CONFLICT");
        let d = env
            .ok(Some(&alice), "{ me { linkedProviders { provider } } }", json!({}))
            .await;
        assert_eq!(d["me"]["linkedProviders"], json!([{ "provider": "testid" }]));
    })
    .await;
}

#[tokio::test]
async fn an_unreachable_provider_is_reported_as_unavailable() {
    // A port nobody listens on (bound, then released).
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let config = serde_json::from_value(json!({
        "name": "down",
        "issuer": format!("http://127.0.0.1:{port}"),
        "client_id": "shop",
    }))
    .unwrap();
    let dbs = databases("users_oidc_down").await;
    let env = Env::with(
        &dbs[0],
        UsersSettings {
            oidc_providers: vec![config],
            ..settings()
        },
    )
    .await;
    let r = env
        .gql(
            None,
            START_LOGIN,
            json!({ "p": "down", "r": "https://shop.test/cb" }),
        )
        .await;
    assert_eq!(error_code_of(&r, env.label), "SERVICE_UNAVAILABLE");
    assert!(
        !r["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("127.0.0.1"),
        "no internals in the message: {r}"
    );
    cleanup(&dbs).await;
}
