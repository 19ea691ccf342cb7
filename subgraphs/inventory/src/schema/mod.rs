//! The inventory subgraph's GraphQL surface.

use async_graphql::dataloader::DataLoader;
use async_graphql::{Context, ID, Object, Result, SimpleObject};
use chrono::{DateTime, Utc};
use shop_kit::auth::caller;
use shop_kit::db::ByIdLoader;
use shop_kit::pagination::{PageArgs, Paged};

use crate::entity::ledger::Kind;
use crate::entity::{item, ledger};
use crate::service::{InventoryCtx, holds, stock};

/// Inventory's part of a product: its stock.
pub struct Product {
    pub id: String,
}

#[Object]
impl Product {
    async fn id(&self) -> ID {
        ID(self.id.clone())
    }
    /// Units available to buy (on hand minus held and committed), for the product's
    /// supplier and admins; null for everyone else, whom a supplier's exact inventory
    /// does not concern (shoppers see `inStock` and `onlyLeft`).
    async fn stock(&self, ctx: &Context<'_>) -> Result<Option<i64>> {
        let c = caller(ctx);
        let Some(p) = c.0.as_ref() else {
            return Ok(None);
        };
        let item = load(ctx, &self.id).await?;
        let mine = item.as_ref().is_some_and(|i| i.supplier_id == p.user_id);
        if !(mine || p.is_admin() || p.is_service(HOLD_SCOPE)) {
            return Ok(None);
        }
        Ok(Some(item.map(|i| i.available()).unwrap_or(0)))
    }
    /// How many units are left when few are (at or under the product's low-stock
    /// threshold, or 5 when it has none), for an "only 3 left" hint; null when there
    /// are more, or none.
    async fn only_left(&self, ctx: &Context<'_>) -> Result<Option<i64>> {
        Ok(load(ctx, &self.id).await?.and_then(|i| {
            let threshold = if i.low_stock_threshold > 0 {
                i64::from(i.low_stock_threshold)
            } else {
                5
            };
            let left = i.available();
            (1..=threshold).contains(&left).then_some(left)
        }))
    }
    /// Whether at least one unit is available.
    async fn in_stock(&self, ctx: &Context<'_>) -> Result<bool> {
        Ok(load(ctx, &self.id)
            .await?
            .is_some_and(|i| i.available() > 0))
    }
}

async fn load(ctx: &Context<'_>, id: &str) -> Result<Option<item::Model>> {
    ctx.data::<DataLoader<StockLoader>>()?
        .load_one(id.to_string())
        .await
}

/// Loads stock records in batches, as readers see them (expired holds not counted).
pub struct StockLoader {
    db: sea_orm::DatabaseConnection,
}

impl StockLoader {
    pub fn new(db: sea_orm::DatabaseConnection) -> Self {
        StockLoader { db }
    }
}

impl async_graphql::dataloader::Loader<String> for StockLoader {
    type Value = item::Model;
    type Error = async_graphql::Error;

    async fn load(
        &self,
        keys: &[String],
    ) -> Result<std::collections::HashMap<String, item::Model>, Self::Error> {
        let items = ByIdLoader::<item::Entity>::new(self.db.clone())
            .load(keys)
            .await?;
        let live = stock::live(&self.db, items.into_values().collect()).await?;
        Ok(live
            .into_iter()
            .map(|i| (i.product_id.clone(), i))
            .collect())
    }
}

/// A product's full stock record, for its supplier and admins.
pub struct StockLevel(pub item::Model);

#[Object]
impl StockLevel {
    async fn product_id(&self) -> ID {
        ID(self.0.product_id.clone())
    }
    /// The live product; null once it was removed from the catalog.
    async fn product(&self) -> Option<Product> {
        Some(Product {
            id: self.0.product_id.clone(),
        })
    }
    /// Units on hand.
    async fn quantity(&self) -> i64 {
        self.0.quantity
    }
    /// Units held by carts (live holds only).
    async fn reserved(&self) -> i64 {
        self.0.reserved
    }
    /// Units committed to orders that have not shipped.
    async fn committed(&self) -> i64 {
        self.0.committed
    }
    /// On hand minus held minus committed.
    async fn available(&self) -> i64 {
        self.0.available()
    }
    async fn low_stock_threshold(&self) -> i32 {
        self.0.low_stock_threshold
    }
    /// Whether what is available is at or below the low-stock threshold.
    async fn low_stock(&self) -> bool {
        self.0.available() <= i64::from(self.0.low_stock_threshold)
    }
    async fn updated_at(&self) -> DateTime<Utc> {
        self.0.updated_at
    }
}

/// What a stock movement moved.
#[derive(async_graphql::Enum, Copy, Clone, Debug, PartialEq, Eq)]
pub enum StockMovementKind {
    /// Units arrived (initial stock, imports); changes on hand.
    Receive,
    /// A supplier set or adjusted the count; changes on hand.
    Adjust,
    /// A cart held units; changes held.
    Hold,
    /// A hold ended (removed, lowered, expired); changes held.
    Release,
    /// Held units went to an order; moves held to committed.
    Commit,
    /// An order was cancelled before shipping; returns committed units.
    Restock,
}

impl From<Kind> for StockMovementKind {
    fn from(k: Kind) -> Self {
        match k {
            Kind::Receive => StockMovementKind::Receive,
            Kind::Adjust => StockMovementKind::Adjust,
            Kind::Hold => StockMovementKind::Hold,
            Kind::Release => StockMovementKind::Release,
            Kind::Commit => StockMovementKind::Commit,
            Kind::Restock => StockMovementKind::Restock,
        }
    }
}

/// One recorded change of a product's stock.
#[derive(SimpleObject)]
pub struct StockLedgerEntry {
    pub id: ID,
    pub product_id: ID,
    pub kind: StockMovementKind,
    /// The change in units of the level the kind moves (negative for removals).
    pub delta: i64,
    /// Units on hand after the change.
    pub quantity_after: i64,
    /// Units held after the change.
    pub held_after: i64,
    /// Units committed after the change.
    pub committed_after: i64,
    /// The cart or order the movement belongs to.
    pub reference: Option<String>,
    pub reason: String,
    /// Who made the change; empty for system changes.
    pub actor_id: Option<ID>,
    pub created_at: DateTime<Utc>,
}

impl From<ledger::Model> for StockLedgerEntry {
    fn from(m: ledger::Model) -> Self {
        StockLedgerEntry {
            id: ID(m.id.to_string()),
            product_id: ID(m.product_id),
            kind: Kind::parse(&m.kind).unwrap_or(Kind::Adjust).into(),
            delta: m.delta,
            quantity_after: m.quantity_after,
            held_after: m.held_after,
            committed_after: m.committed_after,
            reference: m.reference,
            reason: m.reason,
            actor_id: m.actor_id.map(ID),
            created_at: m.created_at,
        }
    }
}

/// A product's numbers explained by its ledger.
#[derive(SimpleObject)]
pub struct StockExplanation {
    pub product_id: ID,
    /// Units on hand, held and committed as stored.
    pub on_hand: i64,
    pub held: i64,
    pub committed: i64,
    pub available: i64,
    /// Net change per kind of movement over the product's whole ledger.
    pub movements: Vec<StockMovementTotal>,
    /// On hand = RECEIVE + ADJUST; held = HOLD + RELEASE − COMMIT; committed = COMMIT +
    /// RESTOCK. True when the ledger adds up to the stored numbers.
    pub consistent: bool,
}

#[derive(SimpleObject)]
pub struct StockMovementTotal {
    pub kind: StockMovementKind,
    pub total: i64,
}

impl From<stock::Explanation> for StockExplanation {
    fn from(e: stock::Explanation) -> Self {
        StockExplanation {
            consistent: e.consistent(),
            product_id: ID(e.item.product_id.clone()),
            on_hand: e.item.quantity,
            held: e.item.reserved,
            committed: e.item.committed,
            available: e.item.available(),
            movements: e
                .by_kind
                .into_iter()
                .map(|(kind, total)| StockMovementTotal {
                    kind: kind.into(),
                    total,
                })
                .collect(),
        }
    }
}

/// What a cart holds of one product (internal: for the carts and orders services).
#[derive(SimpleObject)]
#[graphql(inaccessible)]
pub struct StockHold {
    pub product_id: ID,
    pub quantity: i64,
    /// Released after this unless the cart is active again.
    pub expires_at: DateTime<Utc>,
}

impl From<holds::Held> for StockHold {
    fn from(h: holds::Held) -> Self {
        StockHold {
            product_id: ID(h.product_id),
            quantity: h.quantity,
            expires_at: h.expires_at,
        }
    }
}

/// One order line to commit (internal).
#[derive(async_graphql::InputObject)]
#[graphql(inaccessible)]
pub struct StockLineInput {
    pub product_id: ID,
    pub quantity: i64,
}

/// The scope our services need for the fields that hold, commit and restock stock.
pub const HOLD_SCOPE: &str = "inventory:hold";

fn service_ctx<'a>(ctx: &Context<'a>) -> Result<&'a InventoryCtx> {
    shop_kit::internal::require_service(&caller(ctx), HOLD_SCOPE)?;
    ctx.data::<InventoryCtx>()
}

fn held_list(list: Vec<holds::Held>) -> Vec<StockHold> {
    list.into_iter().map(Into::into).collect()
}

pub struct QueryRoot;

#[Object(name = "Query")]
impl QueryRoot {
    /// A product's stock record (its supplier or an admin).
    #[graphql(directive = shop_kit::auth::authenticated::apply())]
    async fn stock_level(&self, ctx: &Context<'_>, product_id: ID) -> Result<StockLevel> {
        Ok(StockLevel(
            stock::level(ctx.data::<InventoryCtx>()?, &caller(ctx), &product_id).await?,
        ))
    }

    /// Stock records of a supplier's products, the ones furthest below their low-stock
    /// threshold first: what to restock comes first. A supplier gets their own;
    /// an admin a given supplier's, or everyone's. `lowStockOnly` keeps those at or
    /// below their threshold.
    #[graphql(directive = shop_kit::auth::authenticated::apply())]
    #[allow(clippy::too_many_arguments)]
    async fn stock_levels(
        &self,
        ctx: &Context<'_>,
        supplier_id: Option<ID>,
        low_stock_only: Option<bool>,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
    ) -> Result<Paged<StockLevel>> {
        let page = PageArgs {
            first,
            after,
            last,
            before,
        };
        let (window, rows) = stock::levels(
            ctx.data::<InventoryCtx>()?,
            &caller(ctx),
            supplier_id.as_ref().map(|s| s.as_str()),
            low_stock_only.unwrap_or(false),
            &page,
        )
        .await?;
        Ok(window.connection(rows.into_iter().map(StockLevel).collect()))
    }

    /// A product's stock changes, newest first (its supplier or an admin).
    #[graphql(directive = shop_kit::auth::authenticated::apply())]
    async fn stock_ledger(
        &self,
        ctx: &Context<'_>,
        product_id: ID,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
    ) -> Result<Paged<StockLedgerEntry>> {
        let page = PageArgs {
            first,
            after,
            last,
            before,
        };
        let (window, rows) = stock::ledger(
            ctx.data::<InventoryCtx>()?,
            &caller(ctx),
            &product_id,
            &page,
        )
        .await?;
        Ok(window.connection(rows.into_iter().map(Into::into).collect()))
    }

    /// How a product's current numbers came about, from its ledger (its supplier or
    /// an admin).
    #[graphql(directive = shop_kit::auth::authenticated::apply())]
    async fn stock_explanation(
        &self,
        ctx: &Context<'_>,
        product_id: ID,
    ) -> Result<StockExplanation> {
        Ok(
            stock::explain(ctx.data::<InventoryCtx>()?, &caller(ctx), &product_id)
                .await?
                .into(),
        )
    }

    /// Internal: what a cart holds, live and expired.
    #[graphql(inaccessible)]
    async fn stock_holds(&self, ctx: &Context<'_>, owner: String) -> Result<Vec<StockHold>> {
        let svc = service_ctx(ctx)?;
        Ok(held_list(holds::holds_of(svc, &owner).await?))
    }

    #[graphql(entity)]
    async fn find_product_by_id(&self, id: ID) -> Product {
        Product { id: id.0 }
    }
}

pub struct MutationRoot;

#[Object(name = "Mutation")]
impl MutationRoot {
    /// Internal: sets what `owner` (a cart) holds of a product to `quantity` (0 releases)
    /// and extends its other holds; OUT_OF_STOCK when the units are not there. Answers
    /// all the owner's holds, so the cart can show every line's expiry.
    #[graphql(inaccessible)]
    async fn hold_stock(
        &self,
        ctx: &Context<'_>,
        owner: String,
        product_id: ID,
        quantity: i64,
    ) -> Result<Vec<StockHold>> {
        let svc = service_ctx(ctx)?;
        holds::set_hold(svc, &owner, &product_id, quantity).await?;
        Ok(held_list(holds::holds_of(svc, &owner).await?))
    }

    /// Internal: extends the owner's live holds (activity on the cart).
    #[graphql(inaccessible)]
    async fn extend_holds(&self, ctx: &Context<'_>, owner: String) -> Result<Vec<StockHold>> {
        let svc = service_ctx(ctx)?;
        Ok(held_list(holds::extend(svc, &owner).await?))
    }

    /// Internal: releases everything the owner holds.
    #[graphql(inaccessible)]
    async fn release_holds(
        &self,
        ctx: &Context<'_>,
        owner: String,
        reason: String,
    ) -> Result<bool> {
        let svc = service_ctx(ctx)?;
        holds::release_all(svc, &owner, &reason).await?;
        Ok(true)
    }

    /// Internal: moves one owner's holds to another (a cart merged at sign-in).
    #[graphql(inaccessible)]
    async fn transfer_holds(
        &self,
        ctx: &Context<'_>,
        from: String,
        to: String,
    ) -> Result<Vec<StockHold>> {
        let svc = service_ctx(ctx)?;
        Ok(held_list(holds::transfer(svc, &from, &to).await?))
    }

    /// Internal: commits an order's lines from the owner's holds (and what is available
    /// where a hold falls short), all or none. Repeating it for the same order is a
    /// no-op.
    #[graphql(inaccessible)]
    async fn commit_stock(
        &self,
        ctx: &Context<'_>,
        owner: String,
        order_id: String,
        lines: Vec<StockLineInput>,
    ) -> Result<bool> {
        let svc = service_ctx(ctx)?;
        let mut wanted = std::collections::BTreeMap::new();
        for l in lines {
            *wanted.entry(l.product_id.0).or_insert(0) += l.quantity;
        }
        holds::commit(svc, &owner, &order_id, &wanted).await?;
        Ok(true)
    }

    /// Internal: returns an order's committed units (cancelled before shipping); with
    /// `holdFor`, to that cart as holds (a checkout that failed).
    #[graphql(inaccessible)]
    async fn restock_order(
        &self,
        ctx: &Context<'_>,
        order_id: String,
        reason: String,
        hold_for: Option<String>,
    ) -> Result<bool> {
        let svc = service_ctx(ctx)?;
        holds::restock_to(svc, &order_id, &reason, hold_for.as_deref()).await?;
        Ok(true)
    }

    /// Sets the units on hand; recorded in the ledger with `reason`.
    #[graphql(requires_scopes = "inventory:write")]
    async fn set_stock(
        &self,
        ctx: &Context<'_>,
        product_id: ID,
        quantity: i64,
        reason: String,
    ) -> Result<StockLevel> {
        let svc = ctx.data::<InventoryCtx>()?;
        Ok(StockLevel(
            stock::set(svc, &caller(ctx), &product_id, quantity, &reason).await?,
        ))
    }

    /// Adds `delta` units (negative to remove); recorded in the ledger with `reason`.
    #[graphql(requires_scopes = "inventory:write")]
    async fn adjust_stock(
        &self,
        ctx: &Context<'_>,
        product_id: ID,
        delta: i64,
        reason: String,
    ) -> Result<StockLevel> {
        let svc = ctx.data::<InventoryCtx>()?;
        Ok(StockLevel(
            stock::adjust(svc, &caller(ctx), &product_id, delta, &reason).await?,
        ))
    }

    /// Below this many available units the product counts as low on stock.
    #[graphql(requires_scopes = "inventory:write")]
    async fn set_low_stock_threshold(
        &self,
        ctx: &Context<'_>,
        product_id: ID,
        threshold: i32,
    ) -> Result<StockLevel> {
        let svc = ctx.data::<InventoryCtx>()?;
        Ok(StockLevel(
            stock::set_low_stock_threshold(svc, &caller(ctx), &product_id, threshold).await?,
        ))
    }
}
