//! One recorded stock change.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "inventory_ledger")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub product_id: String,
    /// What moved: see [`Kind`].
    pub kind: String,
    /// The change to the level the kind moves (on hand, held or committed).
    pub delta: i64,
    /// On hand after the change.
    pub quantity_after: i64,
    pub held_after: i64,
    pub committed_after: i64,
    /// The cart (hold owner) or order the movement belongs to.
    pub reference: Option<String>,
    pub reason: String,
    pub actor_id: Option<String>,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

/// Kinds of stock movement. RECEIVE and ADJUST change units on hand; HOLD and RELEASE
/// the held units; COMMIT moves held units to committed; RESTOCK returns committed
/// units to available.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Receive,
    Adjust,
    Hold,
    Release,
    Commit,
    Restock,
}

impl Kind {
    pub const ALL: [Kind; 6] = [
        Kind::Receive,
        Kind::Adjust,
        Kind::Hold,
        Kind::Release,
        Kind::Commit,
        Kind::Restock,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Receive => "RECEIVE",
            Kind::Adjust => "ADJUST",
            Kind::Hold => "HOLD",
            Kind::Release => "RELEASE",
            Kind::Commit => "COMMIT",
            Kind::Restock => "RESTOCK",
        }
    }

    pub fn parse(s: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.as_str() == s)
    }
}
