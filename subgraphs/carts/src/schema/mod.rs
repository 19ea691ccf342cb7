//! The carts subgraph's GraphQL surface.

use async_graphql::{Context, Enum, ID, MaybeUndefined, Object, Result, SimpleObject};
use chrono::{DateTime, Utc};
use sea_orm::EntityTrait;
use shop_kit::ApiError;
use shop_kit::auth::caller;
use shop_kit::money::Money;
use shop_kit::pagination::{PageArgs, Paged};

use crate::entity::{cart, line};
use crate::service::{CartsCtx, carts, promo, totals};

/// The catalog's product, referenced by id.
#[derive(SimpleObject)]
#[graphql(unresolvable = "id")]
pub struct Product {
    pub id: ID,
}

/// A shopper's cart. Prices exclude tax; every amount is in the cart's currency
/// (`XXX`, "no currency", while the cart is empty).
pub struct Cart {
    model: cart::Model,
    lines: Vec<line::Model>,
    priced: carts::Priced,
}

impl Cart {
    async fn load(ctx: &Context<'_>, model: cart::Model) -> Result<Cart> {
        let svc = ctx.data::<CartsCtx>()?;
        // Holds and prices as of now, so a change shows before checkout, not at it.
        let lines = carts::current_lines(svc, &model.id).await?;
        let priced = carts::price(svc, &model, &lines).await?;
        Ok(Cart {
            model,
            lines,
            priced,
        })
    }

    fn currency_or_none(&self) -> String {
        self.model.currency.clone().unwrap_or_else(|| "XXX".into())
    }

    fn money(&self, amount: i64) -> Money {
        Money {
            amount,
            currency: self.currency_or_none(),
        }
    }

    fn totals(&self) -> &totals::Totals {
        &self.priced.totals
    }
}

#[Object]
impl Cart {
    async fn id(&self) -> ID {
        ID(self.model.id.clone())
    }
    async fn lines(&self) -> Vec<CartLine> {
        let now = Utc::now();
        self.lines
            .iter()
            .map(|l| CartLine {
                line: l.clone(),
                now,
            })
            .collect()
    }
    /// Units over all lines.
    async fn item_count(&self) -> i64 {
        self.lines.iter().map(|l| l.quantity).sum()
    }
    /// ISO 4217; null while the cart is empty.
    async fn currency(&self) -> Option<&str> {
        self.model.currency.as_deref()
    }
    /// The country whose tax applies (`setCartCountry`).
    async fn country(&self) -> Option<&str> {
        self.model.country.as_deref()
    }
    /// The promo code on the cart (`applyPromoCode`).
    async fn promo_code(&self) -> Option<&str> {
        self.priced.promo.as_ref().map(|p| p.0.as_str())
    }
    /// Why the cart's promo code gives no discount right now, or what became of a code
    /// when an anonymous cart was merged into this one; null when there is nothing to
    /// say.
    async fn promo_message(&self) -> Option<&str> {
        self.priced
            .promo
            .as_ref()
            .and_then(|p| p.2.as_deref())
            .or(self.model.promo_note.as_deref())
    }
    async fn subtotal(&self) -> Money {
        self.money(self.totals().subtotal)
    }
    async fn discount(&self) -> Money {
        self.money(self.totals().discount)
    }
    /// Zero until a shipping method is chosen.
    async fn shipping(&self) -> Money {
        self.money(self.totals().shipping)
    }
    async fn tax(&self) -> Money {
        self.money(self.totals().tax)
    }
    /// The tax rate in basis points (1900 = 19 %).
    async fn tax_rate_basis_points(&self) -> i32 {
        self.priced.totals.tax_rate as i32
    }
    async fn total(&self) -> Money {
        self.money(self.totals().total)
    }
    /// When the first hold runs out unless the cart is used again; null when nothing is
    /// held.
    async fn holds_expire_at(&self) -> Option<DateTime<Utc>> {
        let now = Utc::now();
        self.lines
            .iter()
            .filter(|l| l.is_held(now))
            .filter_map(|l| l.hold_expires_at)
            .min()
    }
    async fn updated_at(&self) -> DateTime<Utc> {
        self.model.updated_at
    }
}

#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
pub enum CartLineStatus {
    /// The units are held for this cart until `holdExpiresAt`.
    Held,
    /// The hold ran out and the units may be gone; `reholdCart` tries to hold them again.
    Expired,
}

/// One product in a cart.
pub struct CartLine {
    line: line::Model,
    now: DateTime<Utc>,
}

#[Object]
impl CartLine {
    async fn id(&self) -> ID {
        ID(self.line.id.clone())
    }
    /// The live product; null once its supplier removed it (the line keeps its name
    /// and SKU).
    async fn product(&self) -> Option<Product> {
        Some(Product {
            id: ID(self.line.product_id.clone()),
        })
    }
    async fn product_id(&self) -> ID {
        ID(self.line.product_id.clone())
    }
    /// The product's name and SKU when it was added.
    async fn name(&self) -> &str {
        &self.line.name
    }
    async fn sku(&self) -> &str {
        &self.line.sku
    }
    async fn quantity(&self) -> i64 {
        self.line.quantity
    }
    async fn unit_price(&self) -> Money {
        Money {
            amount: self.line.unit_price,
            currency: self.line.currency.clone(),
        }
    }
    async fn line_total(&self) -> Money {
        Money {
            amount: self.line.unit_price.saturating_mul(self.line.quantity),
            currency: self.line.currency.clone(),
        }
    }
    async fn status(&self) -> CartLineStatus {
        if self.line.is_held(self.now) {
            CartLineStatus::Held
        } else {
            CartLineStatus::Expired
        }
    }
    /// Why the line is not held, in words for the shopper.
    async fn status_reason(&self) -> Option<String> {
        if self.line.is_held(self.now) {
            return None;
        }
        let held = self.line.held_quantity;
        Some(match self.line.hold_expires_at {
            Some(at) if at <= self.now => format!(
                "the hold on these items ran out at {}; hold them again to keep them",
                at.format("%H:%M UTC")
            ),
            Some(_) if held > 0 => format!(
                "only {held} of {} could stay held: the supplier has fewer in stock now",
                self.line.quantity
            ),
            _ => "these items are not held; hold them again to keep them".into(),
        })
    }
    async fn hold_expires_at(&self) -> Option<DateTime<Utc>> {
        self.line.hold_expires_at
    }
    /// Set when the supplier changed the price since the line was added: the unit
    /// price before and now (`unitPrice` and the totals are already the new one).
    /// Checkout refuses once with PRICE_CHANGED while a change is unseen.
    async fn price_change(&self) -> Option<LinePriceChange> {
        self.line.price_was.map(|was| LinePriceChange {
            was: Money {
                amount: was,
                currency: self.line.currency.clone(),
            },
            now: Money {
                amount: self.line.unit_price,
                currency: self.line.currency.clone(),
            },
        })
    }
}

/// A line's unit price before and after the supplier changed it.
#[derive(SimpleObject)]
pub struct LinePriceChange {
    pub was: Money,
    pub now: Money,
}

/// A promo code (admins).
pub struct PromoCode(pub crate::entity::promo::Model);

#[Object]
impl PromoCode {
    async fn code(&self) -> &str {
        &self.0.code
    }
    async fn description(&self) -> &str {
        &self.0.description
    }
    /// Whole percent off; null for an amount off.
    async fn percent_off(&self) -> Option<i64> {
        (self.0.kind == "PERCENT").then_some(self.0.value / 100)
    }
    async fn amount_off(&self) -> Option<Money> {
        (self.0.kind == "FIXED").then(|| Money {
            amount: self.0.value,
            currency: self.0.currency.clone().unwrap_or_default(),
        })
    }
    async fn min_subtotal(&self) -> Option<Money> {
        (self.0.min_subtotal > 0).then(|| Money {
            amount: self.0.min_subtotal,
            currency: self.0.currency.clone().unwrap_or_default(),
        })
    }
    async fn starts_at(&self) -> Option<DateTime<Utc>> {
        self.0.starts_at
    }
    async fn ends_at(&self) -> Option<DateTime<Utc>> {
        self.0.ends_at
    }
    async fn max_uses(&self) -> Option<i64> {
        self.0.max_uses
    }
    async fn max_uses_per_user(&self) -> Option<i64> {
        self.0.max_uses_per_user
    }
    async fn uses(&self) -> i64 {
        self.0.uses
    }
    /// Where the code stands now.
    async fn status(&self) -> PromoCodeStatus {
        promo::status(&self.0, Utc::now()).into()
    }
    /// When the code was switched off; null while it is on.
    async fn disabled_at(&self) -> Option<DateTime<Utc>> {
        self.0.disabled_at
    }
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
}

/// Where a promo code stands.
#[derive(async_graphql::Enum, Clone, Copy, PartialEq, Eq)]
pub enum PromoCodeStatus {
    /// Shoppers can use it now.
    Active,
    /// Its validity starts later.
    Scheduled,
    /// Its validity ended.
    Expired,
    /// Used as often as allowed.
    UsedUp,
    /// Switched off by an admin.
    Disabled,
}

impl From<promo::Status> for PromoCodeStatus {
    fn from(s: promo::Status) -> Self {
        match s {
            promo::Status::Active => PromoCodeStatus::Active,
            promo::Status::Scheduled => PromoCodeStatus::Scheduled,
            promo::Status::Expired => PromoCodeStatus::Expired,
            promo::Status::UsedUp => PromoCodeStatus::UsedUp,
            promo::Status::Disabled => PromoCodeStatus::Disabled,
        }
    }
}

impl From<PromoCodeStatus> for promo::Status {
    fn from(s: PromoCodeStatus) -> Self {
        match s {
            PromoCodeStatus::Active => promo::Status::Active,
            PromoCodeStatus::Scheduled => promo::Status::Scheduled,
            PromoCodeStatus::Expired => promo::Status::Expired,
            PromoCodeStatus::UsedUp => promo::Status::UsedUp,
            PromoCodeStatus::Disabled => promo::Status::Disabled,
        }
    }
}

/// A change to a promo code: a field left out stays as it is, `null` clears it.
#[derive(async_graphql::InputObject)]
pub struct PromoCodeChange {
    pub description: Option<String>,
    pub starts_at: MaybeUndefined<DateTime<Utc>>,
    pub ends_at: MaybeUndefined<DateTime<Utc>>,
    pub max_uses: MaybeUndefined<i64>,
    pub max_uses_per_user: MaybeUndefined<i64>,
}

/// `None` when the field was left out, `Some(None)` when it was `null`.
fn given<T>(v: MaybeUndefined<T>) -> Option<Option<T>> {
    match v {
        MaybeUndefined::Undefined => None,
        MaybeUndefined::Null => Some(None),
        MaybeUndefined::Value(v) => Some(Some(v)),
    }
}

#[derive(async_graphql::InputObject)]
pub struct PromoCodeInput {
    pub code: String,
    #[graphql(default)]
    pub description: String,
    /// Whole percent off (1 to 100); or give `amountOff`.
    pub percent_off: Option<i64>,
    pub amount_off: Option<shop_kit::money::MoneyInput>,
    pub min_subtotal: Option<shop_kit::money::MoneyInput>,
    pub starts_at: Option<DateTime<Utc>>,
    pub ends_at: Option<DateTime<Utc>>,
    pub max_uses: Option<i64>,
    pub max_uses_per_user: Option<i64>,
}

fn require_admin(ctx: &Context<'_>) -> Result<()> {
    let c = caller(ctx);
    if c.require()?.is_admin() {
        Ok(())
    } else {
        Err(ApiError::forbidden("only admins manage promo codes").into())
    }
}

/// A new cart, and for an anonymous one the token that opens it (shown only here).
#[derive(SimpleObject)]
pub struct CartCreated {
    pub cart: Cart,
    /// Keep it: every later call on this anonymous cart needs it as `cartToken`.
    pub cart_token: Option<String>,
}

/// A line that could not be held again.
#[derive(SimpleObject)]
pub struct CartShortfall {
    pub product_id: ID,
    pub requested: i64,
    pub available: i64,
}

#[derive(SimpleObject)]
pub struct ReholdResult {
    pub cart: Cart,
    /// Lines not held in full; empty when everything is held again.
    pub shortfalls: Vec<CartShortfall>,
}

/// Carts' part of a user: their cart.
pub struct User {
    id: String,
}

#[Object]
impl User {
    async fn id(&self) -> ID {
        ID(self.id.clone())
    }
    /// The user's cart (the user or an admin); null when they have none.
    async fn cart(&self, ctx: &Context<'_>) -> Result<Option<Cart>> {
        let c = caller(ctx);
        let p = c.require()?;
        if p.user_id != self.id && !p.is_admin() {
            return Err(ApiError::forbidden("only the user or an admin may see this cart").into());
        }
        let svc = ctx.data::<CartsCtx>()?;
        match carts::of_user(&svc.db, &self.id).await? {
            Some(m) => Ok(Some(Cart::load(ctx, m).await?)),
            None => Ok(None),
        }
    }
}

async fn opened(ctx: &Context<'_>, id: &ID, token: Option<&str>) -> Result<cart::Model> {
    let svc = ctx.data::<CartsCtx>()?;
    Ok(carts::open(svc, &caller(ctx), id, token).await?)
}

async fn reload(ctx: &Context<'_>, id: &str) -> Result<Cart> {
    let svc = ctx.data::<CartsCtx>()?;
    let m = cart::Entity::find_by_id(id.to_string())
        .one(&svc.db)
        .await
        .map_err(ApiError::from)?
        .ok_or_else(|| ApiError::not_found(format!("cart {id} not found")))?;
    Cart::load(ctx, m).await
}

/// The scope the orders service needs for checkout fields.
pub const CHECKOUT_SCOPE: &str = "carts:checkout";

/// Internal: a cart as checkout needs it.
#[derive(SimpleObject)]
#[graphql(inaccessible)]
pub struct CheckoutCart {
    pub id: ID,
    pub currency: String,
    pub country: Option<String>,
    pub lines: Vec<CheckoutLine>,
    /// The promo code the totals include.
    pub promo_code: Option<String>,
    pub subtotal: i64,
    pub discount: i64,
    pub shipping: i64,
    pub tax: i64,
    pub total: i64,
    /// The tax rate `tax` applies, in basis points (1900 = 19 %), for what else the
    /// order adds (shipping).
    pub tax_rate: i64,
    /// Lines whose price changed since they were added (now updated in the cart).
    pub price_changes: Vec<CheckoutPriceChange>,
}

#[derive(SimpleObject)]
#[graphql(inaccessible)]
pub struct CheckoutLine {
    pub product_id: ID,
    pub name: String,
    pub sku: String,
    pub quantity: i64,
    pub unit_price: i64,
    /// Who sells it, as the catalog has it now.
    pub supplier_id: Option<String>,
    /// Its first image, as the catalog has it now.
    pub image: Option<String>,
}

#[derive(SimpleObject)]
#[graphql(inaccessible)]
pub struct CheckoutPriceChange {
    pub product_id: ID,
    pub was: i64,
    pub now: i64,
}

pub struct QueryRoot;

#[Object(name = "Query")]
impl QueryRoot {
    /// A cart: yours when signed in, or an anonymous one with its `cartToken`.
    async fn cart(&self, ctx: &Context<'_>, id: ID, cart_token: Option<String>) -> Result<Cart> {
        let m = opened(ctx, &id, cart_token.as_deref()).await?;
        Cart::load(ctx, m).await
    }

    /// Internal: the user's cart for checkout, prices checked against the catalog, tax
    /// as for `shipTo` (the shipping address's country).
    #[graphql(inaccessible)]
    async fn checkout_cart(
        &self,
        ctx: &Context<'_>,
        id: ID,
        user_id: String,
        ship_to: Option<String>,
    ) -> Result<CheckoutCart> {
        shop_kit::internal::require_service(&caller(ctx), CHECKOUT_SCOPE)?;
        let svc = ctx.data::<CartsCtx>()?;
        let ship_to = match ship_to {
            Some(c) => Some(shop_kit::input::country("shipTo", &c)?),
            None => None,
        };
        let carts::ForCheckout {
            cart: c,
            lines,
            changes,
            products,
        } = carts::for_checkout(svc, &id, &user_id).await?;
        let country = ship_to.as_deref().or(c.country.as_deref());
        let carts::Priced { totals: t, promo } = carts::price_for(svc, &c, &lines, country).await?;
        if let Some((code, _, Some(reason))) = &promo {
            return Err(ApiError::bad_input(format!(
                "the promo code {code} no longer applies ({reason}); remove it to check out"
            ))
            .into());
        }
        Ok(CheckoutCart {
            promo_code: promo.map(|p| p.0),
            id: ID(c.id),
            currency: c.currency.unwrap_or_default(),
            country: country.map(str::to_string),
            subtotal: t.subtotal,
            discount: t.discount,
            shipping: t.shipping,
            tax: t.tax,
            total: t.total,
            tax_rate: i64::from(t.tax_rate),
            lines: lines
                .into_iter()
                .map(|l| {
                    let product = products.get(&l.product_id);
                    CheckoutLine {
                        supplier_id: product.and_then(|p| p.supplier_id.clone()),
                        image: product.and_then(|p| p.image.clone()),
                        product_id: ID(l.product_id),
                        name: l.name,
                        sku: l.sku,
                        quantity: l.quantity,
                        unit_price: l.unit_price,
                    }
                })
                .collect(),
            price_changes: changes
                .into_iter()
                .map(|p| CheckoutPriceChange {
                    product_id: ID(p.product_id),
                    was: p.was,
                    now: p.now,
                })
                .collect(),
        })
    }

    /// Admin: promo codes by code, a page at a time; `search` matches code or
    /// description, `status` keeps the codes in that state.
    #[graphql(directive = shop_kit::auth::authenticated::apply())]
    #[allow(clippy::too_many_arguments)]
    async fn promo_codes(
        &self,
        ctx: &Context<'_>,
        search: Option<String>,
        status: Option<PromoCodeStatus>,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
    ) -> Result<Paged<PromoCode>> {
        require_admin(ctx)?;
        let svc = ctx.data::<CartsCtx>()?;
        let page = PageArgs {
            first,
            after,
            last,
            before,
        };
        let (window, rows) =
            promo::list(svc, search.as_deref(), status.map(Into::into), &page).await?;
        Ok(window.connection(rows.into_iter().map(PromoCode).collect()))
    }

    /// Admin: one promo code.
    #[graphql(directive = shop_kit::auth::authenticated::apply())]
    async fn promo_code(&self, ctx: &Context<'_>, code: String) -> Result<Option<PromoCode>> {
        require_admin(ctx)?;
        let svc = ctx.data::<CartsCtx>()?;
        Ok(promo::get(svc, &code).await?.map(PromoCode))
    }

    #[graphql(entity)]
    async fn find_user_by_id(&self, id: ID) -> User {
        User { id: id.0 }
    }
}

pub struct MutationRoot;

#[Object(name = "Mutation")]
impl MutationRoot {
    /// A cart to fill: signed in, your own (the existing one if you have it); otherwise
    /// an anonymous cart and the `cartToken` to reach it with.
    async fn create_cart(&self, ctx: &Context<'_>) -> Result<CartCreated> {
        let svc = ctx.data::<CartsCtx>()?;
        let (m, token) = carts::create(svc, &caller(ctx)).await?;
        Ok(CartCreated {
            cart: Cart::load(ctx, m).await?,
            cart_token: token,
        })
    }

    /// Adds a product (to its line if it is there) and holds the units for the cart;
    /// OUT_OF_STOCK when they are not there.
    async fn add_to_cart(
        &self,
        ctx: &Context<'_>,
        cart_id: ID,
        cart_token: Option<String>,
        product_id: ID,
        #[graphql(default = 1)] quantity: i64,
    ) -> Result<Cart> {
        let svc = ctx.data::<CartsCtx>()?;
        let m = opened(ctx, &cart_id, cart_token.as_deref()).await?;
        carts::add(svc, &m, &product_id, quantity).await?;
        reload(ctx, &m.id).await
    }

    /// Sets a line's quantity (0 removes it), holding or releasing the difference.
    async fn set_cart_line_quantity(
        &self,
        ctx: &Context<'_>,
        cart_id: ID,
        cart_token: Option<String>,
        product_id: ID,
        quantity: i64,
    ) -> Result<Cart> {
        let svc = ctx.data::<CartsCtx>()?;
        let m = opened(ctx, &cart_id, cart_token.as_deref()).await?;
        carts::set_quantity(svc, &m, &product_id, quantity).await?;
        reload(ctx, &m.id).await
    }

    /// Removes a line and releases its units.
    async fn remove_from_cart(
        &self,
        ctx: &Context<'_>,
        cart_id: ID,
        cart_token: Option<String>,
        product_id: ID,
    ) -> Result<Cart> {
        let svc = ctx.data::<CartsCtx>()?;
        let m = opened(ctx, &cart_id, cart_token.as_deref()).await?;
        carts::set_quantity(svc, &m, &product_id, 0).await?;
        reload(ctx, &m.id).await
    }

    /// Removes every line and releases all holds.
    async fn empty_cart(
        &self,
        ctx: &Context<'_>,
        cart_id: ID,
        cart_token: Option<String>,
    ) -> Result<Cart> {
        let svc = ctx.data::<CartsCtx>()?;
        let m = opened(ctx, &cart_id, cart_token.as_deref()).await?;
        carts::empty(svc, &m).await?;
        reload(ctx, &m.id).await
    }

    /// Extends the cart's holds and holds again the lines whose hold ran out, as far as
    /// stock allows.
    async fn rehold_cart(
        &self,
        ctx: &Context<'_>,
        cart_id: ID,
        cart_token: Option<String>,
    ) -> Result<ReholdResult> {
        let svc = ctx.data::<CartsCtx>()?;
        let m = opened(ctx, &cart_id, cart_token.as_deref()).await?;
        let short = carts::rehold(svc, &m).await?;
        Ok(ReholdResult {
            cart: reload(ctx, &m.id).await?,
            shortfalls: short
                .into_iter()
                .map(|s| CartShortfall {
                    product_id: ID(s.product_id),
                    requested: s.requested,
                    available: s.available,
                })
                .collect(),
        })
    }

    /// Sets the country whose tax the cart shows (ISO 3166-1 alpha-2).
    async fn set_cart_country(
        &self,
        ctx: &Context<'_>,
        cart_id: ID,
        cart_token: Option<String>,
        country: String,
    ) -> Result<Cart> {
        let svc = ctx.data::<CartsCtx>()?;
        let m = opened(ctx, &cart_id, cart_token.as_deref()).await?;
        carts::set_country(svc, &m, &country).await?;
        reload(ctx, &m.id).await
    }

    /// Puts a promo code on the cart (one per cart); refused with the reason when it
    /// does not apply.
    async fn apply_promo_code(
        &self,
        ctx: &Context<'_>,
        cart_id: ID,
        cart_token: Option<String>,
        code: String,
    ) -> Result<Cart> {
        let svc = ctx.data::<CartsCtx>()?;
        let m = opened(ctx, &cart_id, cart_token.as_deref()).await?;
        let lines = carts::lines_of(&svc.db, &m.id).await?;
        promo::apply(svc, &m, &code, totals::subtotal(&lines)).await?;
        reload(ctx, &m.id).await
    }

    async fn remove_promo_code(
        &self,
        ctx: &Context<'_>,
        cart_id: ID,
        cart_token: Option<String>,
    ) -> Result<Cart> {
        let svc = ctx.data::<CartsCtx>()?;
        let m = opened(ctx, &cart_id, cart_token.as_deref()).await?;
        promo::set_code(svc, &m, None).await?;
        reload(ctx, &m.id).await
    }

    /// Admin: a new promo code.
    #[graphql(directive = shop_kit::auth::authenticated::apply())]
    async fn create_promo_code(
        &self,
        ctx: &Context<'_>,
        input: PromoCodeInput,
    ) -> Result<PromoCode> {
        require_admin(ctx)?;
        let svc = ctx.data::<CartsCtx>()?;
        let money = |m: Option<shop_kit::money::MoneyInput>| m.map(|m| (m.amount, m.currency));
        let created = promo::create(
            svc,
            promo::NewCode {
                code: input.code,
                description: input.description,
                percent_off: input.percent_off,
                amount_off: money(input.amount_off),
                min_subtotal: money(input.min_subtotal),
                starts_at: input.starts_at,
                ends_at: input.ends_at,
                max_uses: input.max_uses,
                max_uses_per_user: input.max_uses_per_user,
            },
        )
        .await?;
        Ok(PromoCode(created))
    }

    /// Admin: changes a code's description, validity window or limits. A field left out
    /// stays; `null` clears it. What the code gives cannot change (disable it and make
    /// another).
    #[graphql(directive = shop_kit::auth::authenticated::apply())]
    async fn update_promo_code(
        &self,
        ctx: &Context<'_>,
        code: String,
        input: PromoCodeChange,
    ) -> Result<PromoCode> {
        require_admin(ctx)?;
        let svc = ctx.data::<CartsCtx>()?;
        let change = promo::CodeChange {
            description: input.description,
            starts_at: given(input.starts_at),
            ends_at: given(input.ends_at),
            max_uses: given(input.max_uses),
            max_uses_per_user: given(input.max_uses_per_user),
        };
        Ok(PromoCode(promo::update(svc, &code, change).await?))
    }

    /// Admin: switches a code off at once (a leaked code); carts carrying it show that it
    /// no longer applies and cannot check out with it. `enablePromoCode` undoes it.
    #[graphql(directive = shop_kit::auth::authenticated::apply())]
    async fn disable_promo_code(&self, ctx: &Context<'_>, code: String) -> Result<PromoCode> {
        require_admin(ctx)?;
        let svc = ctx.data::<CartsCtx>()?;
        Ok(PromoCode(promo::set_disabled(svc, &code, true).await?))
    }

    /// Admin: switches a disabled code on again.
    #[graphql(directive = shop_kit::auth::authenticated::apply())]
    async fn enable_promo_code(&self, ctx: &Context<'_>, code: String) -> Result<PromoCode> {
        require_admin(ctx)?;
        let svc = ctx.data::<CartsCtx>()?;
        Ok(PromoCode(promo::set_disabled(svc, &code, false).await?))
    }

    /// Admin: removes a code nobody has used; answers the code removed. A used code is
    /// refused with `CONFLICT` (orders refer to it): disable it instead.
    #[graphql(directive = shop_kit::auth::authenticated::apply())]
    async fn delete_promo_code(&self, ctx: &Context<'_>, code: String) -> Result<String> {
        require_admin(ctx)?;
        let svc = ctx.data::<CartsCtx>()?;
        Ok(promo::delete(svc, &code).await?)
    }

    /// Internal: counts a use of the code for an order (refused when used up).
    #[graphql(inaccessible)]
    async fn redeem_promo_code(
        &self,
        ctx: &Context<'_>,
        code: String,
        user_id: String,
        order_id: String,
    ) -> Result<bool> {
        shop_kit::internal::require_service(&caller(ctx), CHECKOUT_SCOPE)?;
        let svc = ctx.data::<CartsCtx>()?;
        promo::redeem(svc, &code, &user_id, &order_id).await?;
        Ok(true)
    }

    /// Internal: gives back a use counted for an order whose checkout failed.
    #[graphql(inaccessible)]
    async fn release_promo_code(&self, ctx: &Context<'_>, order_id: String) -> Result<bool> {
        shop_kit::internal::require_service(&caller(ctx), CHECKOUT_SCOPE)?;
        let svc = ctx.data::<CartsCtx>()?;
        promo::release(svc, &order_id).await?;
        Ok(true)
    }

    /// Internal: empties a cart whose lines became an order.
    #[graphql(inaccessible)]
    async fn cart_checked_out(&self, ctx: &Context<'_>, id: ID) -> Result<bool> {
        shop_kit::internal::require_service(&caller(ctx), CHECKOUT_SCOPE)?;
        let svc = ctx.data::<CartsCtx>()?;
        carts::checked_out(svc, &id).await?;
        Ok(true)
    }

    /// Internal: a checkout of this cart failed and gave its stock back as holds; the
    /// lines take up the holds again (and any line that could not be held says so).
    #[graphql(inaccessible)]
    async fn cart_checkout_failed(&self, ctx: &Context<'_>, id: ID) -> Result<bool> {
        shop_kit::internal::require_service(&caller(ctx), CHECKOUT_SCOPE)?;
        let svc = ctx.data::<CartsCtx>()?;
        let Some(c) = cart::Entity::find_by_id(id.0.clone())
            .one(&svc.db)
            .await
            .map_err(ApiError::from)?
        else {
            return Ok(false);
        };
        carts::rehold(svc, &c).await?;
        Ok(true)
    }

    /// After signing in: moves an anonymous cart's lines (and their holds) into your
    /// cart; quantities of the same product add up.
    #[graphql(directive = shop_kit::auth::authenticated::apply())]
    async fn merge_cart(&self, ctx: &Context<'_>, cart_id: ID, cart_token: String) -> Result<Cart> {
        let svc = ctx.data::<CartsCtx>()?;
        let c = caller(ctx);
        let p = c.require()?;
        let merged = carts::merge(svc, p, &cart_id, &cart_token).await?;
        Cart::load(ctx, merged).await
    }
}
