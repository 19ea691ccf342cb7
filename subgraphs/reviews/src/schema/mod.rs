//! The reviews subgraph's GraphQL: `Review`, `Product.rating` and `Product.reviews`,
//! `User.reviews`, and the mutations of shoppers, suppliers and admins.

use async_graphql::{Context, Enum, ID, InputObject, Object, Result, SimpleObject};
use chrono::{DateTime, Utc};
use shop_kit::auth::caller;
use shop_kit::pagination::{PageArgs, Paged};

use crate::entity::review;
use crate::service::ReviewsCtx;
use crate::service::reviews::{self, Draft, Sort};

#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
pub enum ReviewSort {
    Newest,
    Highest,
    Lowest,
    MostHelpful,
}

impl From<ReviewSort> for Sort {
    fn from(s: ReviewSort) -> Self {
        match s {
            ReviewSort::Newest => Sort::Newest,
            ReviewSort::Highest => Sort::Highest,
            ReviewSort::Lowest => Sort::Lowest,
            ReviewSort::MostHelpful => Sort::MostHelpful,
        }
    }
}

#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
pub enum ReviewStatus {
    Visible,
    /// Hidden by an admin: seen only by its author and admins.
    Hidden,
}

/// The supplier's public answer.
#[derive(SimpleObject)]
pub struct ReviewReply {
    pub text: String,
    pub at: DateTime<Utc>,
}

/// A shopper's review of a product they received.
pub struct Review(pub review::Model);

#[Object]
impl Review {
    async fn id(&self) -> ID {
        ID(self.0.id.clone())
    }
    async fn product(&self) -> Product {
        Product {
            id: self.0.product_id.clone(),
        }
    }
    async fn author(&self) -> User {
        User {
            id: self.0.user_id.clone(),
        }
    }
    /// 1 to 5 stars.
    async fn rating(&self) -> i32 {
        self.0.rating
    }
    /// As written (JSON carries it safely; put it into HTML through `bodyHtml` or
    /// your own escaping).
    async fn title(&self) -> &str {
        &self.0.title
    }
    async fn body(&self) -> &str {
        &self.0.body
    }
    /// The text escaped for HTML, line breaks as `<br>`.
    async fn body_html(&self) -> String {
        shop_kit::input::escape_html(&self.0.body).replace('\n', "<br>")
    }
    /// Always true: only buyers who received the product can review it.
    async fn verified_purchase(&self) -> bool {
        true
    }
    /// The purchases it stands on were refunded since.
    async fn refunded_purchase(&self) -> bool {
        self.0.refunded
    }
    async fn helpful_votes(&self) -> i64 {
        self.0.helpful_votes
    }
    async fn status(&self) -> ReviewStatus {
        if self.0.status == reviews::HIDDEN {
            ReviewStatus::Hidden
        } else {
            ReviewStatus::Visible
        }
    }
    /// Why an admin hid or restored it: for its author and admins.
    async fn moderation_note(&self, ctx: &Context<'_>) -> Option<&str> {
        let c = caller(ctx);
        let mine =
            c.0.as_ref()
                .is_some_and(|p| p.is_admin() || p.user_id == self.0.user_id);
        if mine {
            self.0.moderation_note.as_deref()
        } else {
            None
        }
    }
    /// How many shoppers reported it: for admins (null for others).
    async fn reports(&self, ctx: &Context<'_>) -> Option<i64> {
        caller(ctx)
            .0
            .as_ref()
            .is_some_and(|p| p.is_admin())
            .then_some(self.0.reports)
    }
    async fn reply(&self) -> Option<ReviewReply> {
        Some(ReviewReply {
            text: self.0.reply.clone()?,
            at: self.0.replied_at?,
        })
    }
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
    async fn updated_at(&self) -> DateTime<Utc> {
        self.0.updated_at
    }
}

/// A product's stars.
pub struct ProductRating([i64; 5]);

#[Object]
impl ProductRating {
    /// Mean stars rounded to two decimals; 0 without reviews.
    async fn average(&self) -> f64 {
        reviews::summary(&self.0).1 as f64 / 100.0
    }
    /// The same in hundredths of a star, for exact sorting and comparing.
    async fn average_hundredths(&self) -> i64 {
        reviews::summary(&self.0).1
    }
    async fn count(&self) -> i64 {
        reviews::summary(&self.0).0
    }
    /// Reviews with 1, 2, 3, 4 and 5 stars.
    async fn histogram(&self) -> Vec<i64> {
        self.0.to_vec()
    }
}

/// Reviews' part of a product.
pub struct Product {
    pub id: String,
}

#[Object]
impl Product {
    async fn id(&self) -> ID {
        ID(self.id.clone())
    }
    /// Its visible reviews' stars.
    async fn rating(&self, ctx: &Context<'_>) -> Result<ProductRating> {
        let svc = ctx.data::<ReviewsCtx>()?;
        Ok(ProductRating(reviews::rating_of(svc, &self.id).await?))
    }
    /// Its visible reviews; `rating` keeps those with that many stars.
    async fn reviews(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        #[graphql(default_with = "ReviewSort::Newest")] sort: ReviewSort,
        rating: Option<i32>,
    ) -> Result<Paged<Review>> {
        let svc = ctx.data::<ReviewsCtx>()?;
        let (window, rows) = reviews::of_product(
            svc,
            &self.id,
            sort.into(),
            rating,
            &PageArgs::forward(first, after),
        )
        .await?;
        Ok(window.connection(rows.into_iter().map(Review).collect()))
    }
}

/// Reviews' part of a user.
pub struct User {
    pub id: String,
}

#[Object]
impl User {
    async fn id(&self) -> ID {
        ID(self.id.clone())
    }
    /// Their reviews, newest first (hidden ones too for themselves and admins).
    async fn reviews(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
    ) -> Result<Paged<Review>> {
        let svc = ctx.data::<ReviewsCtx>()?;
        let c = caller(ctx);
        let (window, rows) = reviews::of_user(
            svc,
            c.0.as_ref(),
            &self.id,
            &PageArgs::forward(first, after),
        )
        .await?;
        Ok(window.connection(rows.into_iter().map(Review).collect()))
    }
}

pub struct QueryRoot;

#[Object(name = "Query")]
impl QueryRoot {
    async fn review(&self, ctx: &Context<'_>, id: ID) -> Result<Review> {
        let svc = ctx.data::<ReviewsCtx>()?;
        let c = caller(ctx);
        Ok(Review(reviews::visible(svc, c.0.as_ref(), &id).await?))
    }

    /// Admins: reviews shoppers reported, most reported first.
    #[graphql(directive = shop_kit::auth::authenticated::apply())]
    async fn reported_reviews(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
    ) -> Result<Paged<Review>> {
        let svc = ctx.data::<ReviewsCtx>()?;
        let (window, rows) = reviews::reported(
            svc,
            caller(ctx).require()?,
            &PageArgs::forward(first, after),
        )
        .await?;
        Ok(window.connection(rows.into_iter().map(Review).collect()))
    }

    #[graphql(entity)]
    async fn find_product_by_id(&self, id: ID) -> Product {
        Product { id: id.0 }
    }

    #[graphql(entity)]
    async fn find_user_by_id(&self, id: ID) -> User {
        User { id: id.0 }
    }
}

#[derive(InputObject)]
pub struct NewReviewInput {
    pub product_id: ID,
    /// 1 to 5.
    pub rating: i32,
    /// At most 200 characters.
    #[graphql(default)]
    pub title: String,
    /// At most 5,000 characters.
    #[graphql(default)]
    pub body: String,
}

/// Leave a field out to keep it.
#[derive(InputObject)]
pub struct ReviewChangesInput {
    pub rating: Option<i32>,
    pub title: Option<String>,
    pub body: Option<String>,
}

pub struct MutationRoot;

#[Object(name = "Mutation")]
impl MutationRoot {
    /// Reviews a product you bought and received (once per product: edit it after).
    /// FORBIDDEN before the delivery, CONFLICT for a second review.
    #[graphql(directive = shop_kit::auth::authenticated::apply())]
    async fn create_review(&self, ctx: &Context<'_>, input: NewReviewInput) -> Result<Review> {
        let svc = ctx.data::<ReviewsCtx>()?;
        let draft = Draft {
            rating: Some(input.rating),
            title: Some(input.title),
            body: Some(input.body),
        };
        Ok(Review(
            reviews::create(svc, caller(ctx).require()?, &input.product_id, draft).await?,
        ))
    }

    /// Changes your review.
    #[graphql(directive = shop_kit::auth::authenticated::apply())]
    async fn update_review(
        &self,
        ctx: &Context<'_>,
        id: ID,
        input: ReviewChangesInput,
    ) -> Result<Review> {
        let svc = ctx.data::<ReviewsCtx>()?;
        let draft = Draft {
            rating: input.rating,
            title: input.title,
            body: input.body,
        };
        Ok(Review(
            reviews::update(svc, caller(ctx).require()?, &id, draft).await?,
        ))
    }

    /// Removes your review (admins: any).
    #[graphql(directive = shop_kit::auth::authenticated::apply())]
    async fn delete_review(&self, ctx: &Context<'_>, id: ID) -> Result<Review> {
        let svc = ctx.data::<ReviewsCtx>()?;
        Ok(Review(
            reviews::delete(svc, caller(ctx).require()?, &id).await?,
        ))
    }

    /// Marks a review helpful (`helpful: false` takes it back); once per shopper.
    #[graphql(directive = shop_kit::auth::authenticated::apply())]
    async fn mark_review_helpful(
        &self,
        ctx: &Context<'_>,
        id: ID,
        #[graphql(default = true)] helpful: bool,
    ) -> Result<Review> {
        let svc = ctx.data::<ReviewsCtx>()?;
        Ok(Review(
            reviews::vote(svc, caller(ctx).require()?, &id, helpful).await?,
        ))
    }

    /// Reports a review to the admins, saying why (once per shopper).
    #[graphql(directive = shop_kit::auth::authenticated::apply())]
    async fn report_review(&self, ctx: &Context<'_>, id: ID, reason: String) -> Result<Review> {
        let svc = ctx.data::<ReviewsCtx>()?;
        Ok(Review(
            reviews::report(svc, caller(ctx).require()?, &id, &reason).await?,
        ))
    }

    /// Admins: hides a review from everyone but its author, with the reason.
    #[graphql(directive = shop_kit::auth::authenticated::apply())]
    async fn hide_review(&self, ctx: &Context<'_>, id: ID, reason: String) -> Result<Review> {
        let svc = ctx.data::<ReviewsCtx>()?;
        Ok(Review(
            reviews::moderate(svc, caller(ctx).require()?, &id, true, &reason).await?,
        ))
    }

    /// Admins: shows a hidden review again, with the reason.
    #[graphql(directive = shop_kit::auth::authenticated::apply())]
    async fn restore_review(&self, ctx: &Context<'_>, id: ID, reason: String) -> Result<Review> {
        let svc = ctx.data::<ReviewsCtx>()?;
        Ok(Review(
            reviews::moderate(svc, caller(ctx).require()?, &id, false, &reason).await?,
        ))
    }

    /// The product's supplier: answers a review in public, once.
    #[graphql(directive = shop_kit::auth::authenticated::apply())]
    async fn reply_to_review(&self, ctx: &Context<'_>, id: ID, text: String) -> Result<Review> {
        let svc = ctx.data::<ReviewsCtx>()?;
        Ok(Review(
            reviews::reply(svc, caller(ctx).require()?, &id, &text).await?,
        ))
    }
}
