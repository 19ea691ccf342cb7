//! Reviews: who may review what (`purchases`, from order events), the reviews with
//! their votes, reports, moderation and replies, and each product's rating (`reviews`).

pub mod purchases;
pub mod reviews;

use sea_orm::DatabaseConnection;
use shop_kit::events::{Inbox, Outbox};

#[derive(Clone)]
pub struct ReviewsCtx {
    pub db: DatabaseConnection,
    pub outbox: Outbox,
    pub inbox: Inbox,
}

impl ReviewsCtx {
    pub fn new(db: DatabaseConnection) -> Self {
        ReviewsCtx {
            db,
            outbox: Outbox::new("reviews_outbox"),
            inbox: Inbox::new("reviews"),
        }
    }
}
