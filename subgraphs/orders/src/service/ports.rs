//! What orders asks of carts, inventory and payments, over their internal fields.
//! Every call here is idempotent on the other side (by order id or idempotency key),
//! which is what lets a checkout be retried or resumed safely.

use serde::Deserialize;
use serde_json::{Value, json};
use shop_kit::internal::SubgraphClient;
use shop_kit::{ApiError, ApiResult};

pub const CHECKOUT_SCOPE: &str = "carts:checkout";
pub const HOLD_SCOPE: &str = "inventory:hold";
pub const CHARGE_SCOPE: &str = "payments:charge";
pub const CONTACT_SCOPE: &str = "users:contact";
pub const QUOTE_SCOPE: &str = "shipping:quote";

/// Clients of the subgraphs checkout drives; `None` where this process cannot call.
#[derive(Clone)]
pub struct Services {
    /// The catalog, for who sells each product.
    pub catalog: Option<SubgraphClient>,
    pub carts: Option<SubgraphClient>,
    pub inventory: Option<SubgraphClient>,
    pub payments: Option<SubgraphClient>,
    /// Users, for the buyer's name and e-mail kept with an order.
    pub users: Option<SubgraphClient>,
    /// Shipping, for the price of sending each supplier's part.
    pub shipping: Option<SubgraphClient>,
}

fn need<'a>(c: &'a Option<SubgraphClient>, what: &str) -> ApiResult<&'a SubgraphClient> {
    c.as_ref()
        .ok_or_else(|| ApiError::Unavailable(format!("{what} is not reachable from this process")))
}

fn parse<T: for<'de> Deserialize<'de>>(v: Value, what: &str) -> ApiResult<T> {
    serde_json::from_value(v).map_err(|e| ApiError::Internal(format!("{what} answered oddly: {e}")))
}

#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CartLine {
    pub product_id: String,
    pub name: String,
    pub sku: String,
    pub quantity: i64,
    pub unit_price: i64,
    /// Who sells it and its first image, as the catalog had them when carts priced the
    /// line (absent from a carts service older than this field).
    #[serde(default)]
    pub supplier_id: Option<String>,
    #[serde(default)]
    pub image: Option<String>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PriceChange {
    pub product_id: String,
    pub was: i64,
    pub now: i64,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Cart {
    pub id: String,
    pub currency: String,
    pub lines: Vec<CartLine>,
    pub promo_code: Option<String>,
    pub subtotal: i64,
    pub discount: i64,
    pub shipping: i64,
    pub tax: i64,
    pub total: i64,
    /// Basis points; absent from a carts service older than this field.
    #[serde(default)]
    pub tax_rate: i64,
    pub price_changes: Vec<PriceChange>,
}

/// How one supplier's part ships and what it costs (minor units, tax excluded), as
/// shipping quoted it and the order keeps it.
#[derive(Clone, Debug, Deserialize, serde::Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct ShippingChoice {
    pub supplier_id: String,
    pub method_id: String,
    pub name: String,
    pub kind: String,
    pub carrier: String,
    pub price: i64,
    pub min_days: i32,
    pub max_days: i32,
    pub weight_grams: i64,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Payment {
    pub id: String,
    pub status: String,
}

/// Card fields as the shopper typed them, passed through to payments once.
#[derive(Clone)]
pub struct CardFields {
    pub number: String,
    pub exp_month: i32,
    pub exp_year: i32,
    pub cvc: String,
    pub holder: String,
}

impl Services {
    /// The supplier and first image of each product (through the catalog's
    /// `_entities`), for the order's lines.
    pub async fn suppliers(
        &self,
        product_ids: &[String],
    ) -> ApiResult<std::collections::HashMap<String, (String, Option<String>)>> {
        let reps: Vec<Value> = product_ids
            .iter()
            .map(|id| json!({ "__typename": "Product", "id": id }))
            .collect();
        let data = need(&self.catalog, "catalog")?
            .call(
                "query($r: [_Any!]!) { _entities(representations: $r) { ... on Product { id images catalog { supplierId } } } }",
                json!({ "r": reps }),
            )
            .await?;
        Ok(data["_entities"]
            .as_array()
            .map(|list| {
                list.iter()
                    .filter_map(|e| {
                        let image = e["images"][0].as_str().map(str::to_string);
                        Some((
                            e["id"].as_str()?.to_string(),
                            (e["catalog"]["supplierId"].as_str()?.to_string(), image),
                        ))
                    })
                    .collect()
            })
            .unwrap_or_default())
    }

    /// The buyer's name and e-mail, or `None` when the account is unknown to users.
    pub async fn buyer_contact(&self, user_id: &str) -> ApiResult<Option<(String, String)>> {
        let data = need(&self.users, "users")?
            .call(
                "query($u: String!) { buyerContact(userId: $u) { name email } }",
                json!({ "u": user_id }),
            )
            .await?;
        let c = &data["buyerContact"];
        Ok(c["name"]
            .as_str()
            .zip(c["email"].as_str())
            .map(|(n, e)| (n.to_string(), e.to_string())))
    }

    /// One of the buyer's saved addresses; `NOT_FOUND` when they have none with this id.
    pub async fn saved_address(
        &self,
        user_id: &str,
        address_id: &str,
    ) -> ApiResult<super::checkout::Address> {
        let data = need(&self.users, "users")?
            .call(
                "query($u: String!, $a: String!) { buyerAddress(userId: $u, addressId: $a) { name line1 line2 city postalCode region country phone } }",
                json!({ "u": user_id, "a": address_id }),
            )
            .await?;
        if data["buyerAddress"].is_null() {
            return Err(ApiError::not_found(format!(
                "you have no saved address {address_id}"
            )));
        }
        parse(data["buyerAddress"].clone(), "users")
    }

    /// The cart as checkout sees it, taxed as for shipping to `ship_to`.
    pub async fn cart(&self, cart_id: &str, user_id: &str, ship_to: &str) -> ApiResult<Cart> {
        let data = need(&self.carts, "carts")?
            .call(
                "query($c: ID!, $u: String!, $s: String) { checkoutCart(id: $c, userId: $u, shipTo: $s) { id currency promoCode subtotal discount shipping tax total taxRate lines { productId name sku quantity unitPrice supplierId image } priceChanges { productId was now } } }",
                json!({ "c": cart_id, "u": user_id, "s": ship_to }),
            )
            .await?;
        parse(data["checkoutCart"].clone(), "carts")
    }

    /// Each supplier's part of `cart` sent to `country`, with the method the buyer
    /// chose for it (`(supplier, method)`) or the cheapest.
    pub async fn quote_shipping(
        &self,
        cart: &Cart,
        country: &str,
        choices: &[(String, String)],
    ) -> ApiResult<Vec<ShippingChoice>> {
        let lines: Vec<Value> = cart
            .lines
            .iter()
            .map(|l| json!({ "productId": l.product_id, "quantity": l.quantity, "lineTotal": l.unit_price.saturating_mul(l.quantity) }))
            .collect();
        let choices: Vec<Value> = choices
            .iter()
            .map(|(s, m)| json!({ "supplierId": s, "methodId": m }))
            .collect();
        let data = need(&self.shipping, "shipping")?
            .call(
                "query($c: String!, $k: String!, $l: [QuoteLineInput!]!, $h: [QuoteChoiceInput!]!) { shippingQuote(currency: $c, country: $k, lines: $l, choices: $h) { supplierId methodId name kind carrier price minDays maxDays weightGrams } }",
                json!({ "c": cart.currency, "k": country, "l": lines, "h": choices }),
            )
            .await?;
        parse(data["shippingQuote"].clone(), "shipping")
    }

    pub async fn redeem_promo(&self, code: &str, user_id: &str, order_id: &str) -> ApiResult<()> {
        need(&self.carts, "carts")?
            .call(
                "mutation($c: String!, $u: String!, $o: String!) { redeemPromoCode(code: $c, userId: $u, orderId: $o) }",
                json!({ "c": code, "u": user_id, "o": order_id }),
            )
            .await?;
        Ok(())
    }

    pub async fn release_promo(&self, order_id: &str) -> ApiResult<()> {
        need(&self.carts, "carts")?
            .call(
                "mutation($o: String!) { releasePromoCode(orderId: $o) }",
                json!({ "o": order_id }),
            )
            .await?;
        Ok(())
    }

    pub async fn cart_checked_out(&self, cart_id: &str) -> ApiResult<()> {
        need(&self.carts, "carts")?
            .call(
                "mutation($c: ID!) { cartCheckedOut(id: $c) }",
                json!({ "c": cart_id }),
            )
            .await?;
        Ok(())
    }

    pub async fn commit_stock(
        &self,
        cart_id: &str,
        order_id: &str,
        lines: &[CartLine],
    ) -> ApiResult<()> {
        let lines: Vec<Value> = lines
            .iter()
            .map(|l| json!({ "productId": l.product_id, "quantity": l.quantity }))
            .collect();
        need(&self.inventory, "inventory")?
            .call(
                "mutation($o: String!, $id: String!, $l: [StockLineInput!]!) { commitStock(owner: $o, orderId: $id, lines: $l) }",
                json!({ "o": cart_id, "id": order_id, "l": lines }),
            )
            .await?;
        Ok(())
    }

    pub async fn restock(&self, order_id: &str, reason: &str) -> ApiResult<()> {
        self.restock_to(order_id, reason, None).await
    }

    /// Gives an order's committed units back: to cart `hold_for` as holds when given
    /// (a failed checkout), else to everyone (a cancellation).
    pub async fn restock_to(
        &self,
        order_id: &str,
        reason: &str,
        hold_for: Option<&str>,
    ) -> ApiResult<()> {
        need(&self.inventory, "inventory")?
            .call(
                "mutation($id: String!, $r: String!, $h: String) { restockOrder(orderId: $id, reason: $r, holdFor: $h) }",
                json!({ "id": order_id, "r": reason, "h": hold_for }),
            )
            .await?;
        Ok(())
    }

    /// Tells carts a checkout of the cart failed: its lines take up their holds again.
    pub async fn cart_checkout_failed(&self, cart_id: &str) -> ApiResult<()> {
        need(&self.carts, "carts")?
            .call(
                "mutation($c: ID!) { cartCheckoutFailed(id: $c) }",
                json!({ "c": cart_id }),
            )
            .await?;
        Ok(())
    }

    /// Authorizes and captures in one call (see payments' `chargePayment`).
    #[allow(clippy::too_many_arguments)]
    pub async fn charge(
        &self,
        order_id: &str,
        user_id: &str,
        amount: i64,
        currency: &str,
        card: &CardFields,
        key: &str,
    ) -> ApiResult<Payment> {
        let data = need(&self.payments, "payments")?
            .call(
                "mutation($o: String!, $u: String!, $a: MoneyInput!, $c: CardInput!, $k: String!) { chargePayment(orderId: $o, userId: $u, amount: $a, card: $c, idempotencyKey: $k) { id status } }",
                json!({
                    "o": order_id, "u": user_id,
                    "a": { "amount": amount, "currency": currency },
                    "c": {
                        "number": card.number, "expMonth": card.exp_month, "expYear": card.exp_year,
                        "cvc": card.cvc, "holder": card.holder,
                    },
                    "k": key,
                }),
            )
            .await?;
        parse(data["chargePayment"].clone(), "payments")
    }

    /// The payment made under `key` as the provider has it, or `None` when none was.
    pub async fn payment_for_key(&self, key: &str) -> ApiResult<Option<Payment>> {
        let data = need(&self.payments, "payments")?
            .call(
                "mutation($k: String!) { reconcilePayment(idempotencyKey: $k) { id status } }",
                json!({ "k": key }),
            )
            .await?;
        parse(data["reconcilePayment"].clone(), "payments")
    }

    pub async fn capture(&self, payment_id: &str) -> ApiResult<Payment> {
        let data = need(&self.payments, "payments")?
            .call(
                "mutation($id: ID!) { capturePayment(id: $id) { id status } }",
                json!({ "id": payment_id }),
            )
            .await?;
        parse(data["capturePayment"].clone(), "payments")
    }

    pub async fn void(&self, payment_id: &str) -> ApiResult<Payment> {
        let data = need(&self.payments, "payments")?
            .call(
                "mutation($id: ID!) { voidPayment(id: $id) { id status } }",
                json!({ "id": payment_id }),
            )
            .await?;
        parse(data["voidPayment"].clone(), "payments")
    }

    /// Undoes the payment made under `key` as the provider has it (void or refund);
    /// nothing when none was made.
    pub async fn release_payment(&self, key: &str, reason: &str) -> ApiResult<()> {
        need(&self.payments, "payments")?
            .call(
                "mutation($k: String!, $r: String!) { releasePayment(idempotencyKey: $k, reason: $r) { id } }",
                json!({ "k": key, "r": reason }),
            )
            .await?;
        Ok(())
    }

    /// Refunds what is left of a payment.
    pub async fn refund(&self, payment_id: &str, reason: &str, key: &str) -> ApiResult<Payment> {
        self.refund_amount(payment_id, None, reason, key).await
    }

    pub async fn refund_amount(
        &self,
        payment_id: &str,
        amount: Option<i64>,
        reason: &str,
        key: &str,
    ) -> ApiResult<Payment> {
        let data = need(&self.payments, "payments")?
            .call(
                "mutation($id: ID!, $a: Int, $r: String!, $k: String!) { refundPayment(id: $id, amount: $a, reason: $r, idempotencyKey: $k) { id status } }",
                json!({ "id": payment_id, "a": amount, "r": reason, "k": key }),
            )
            .await?;
        parse(data["refundPayment"].clone(), "payments")
    }
}
