//! Reviews and ratings. A shopper reviews a product they received once; the product's
//! star counts change in the same transaction as the review (counters moved by
//! `UPDATE … SET n = n ± 1`, so concurrent reviews never lose a count), and
//! `reviews.rating_changed` tells the catalog.

use chrono::Utc;
use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, PaginatorTrait, QueryFilter,
    QueryOrder, QuerySelect, Set,
};
use shop_kit::auth::Principal;
use shop_kit::input::check_id;
use shop_kit::pagination::{PageArgs, Window};
use shop_kit::{ApiError, ApiResult};

use super::{ReviewsCtx, purchases};
use crate::entity::{rating, report, review, vote};

pub const RATING_CHANGED: &str = "reviews.rating_changed";

/// Longest title and text, in characters.
pub const MAX_TITLE: usize = 200;
pub const MAX_BODY: usize = 5000;
pub const MAX_REPLY: usize = 2000;
pub const MAX_REASON: usize = 500;

pub const VISIBLE: &str = "VISIBLE";
pub const HIDDEN: &str = "HIDDEN";

/// What a shopper writes.
#[derive(Clone, Debug, Default)]
pub struct Draft {
    pub rating: Option<i32>,
    pub title: Option<String>,
    pub body: Option<String>,
}

/// How a product's reviews are listed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sort {
    Newest,
    Highest,
    Lowest,
    MostHelpful,
}

fn check_rating(r: i32) -> ApiResult<i32> {
    if (1..=5).contains(&r) {
        Ok(r)
    } else {
        Err(ApiError::bad_input("rating must be 1 to 5 stars"))
    }
}

/// Text trimmed and at most `max` characters; control characters other than line
/// breaks and tabs are refused (they have no place in a review and hide text).
fn check_text(field: &str, value: &str, max: usize) -> ApiResult<String> {
    let v = value.trim();
    let n = v.chars().count();
    if n > max {
        return Err(ApiError::bad_input(format!(
            "{field} is at most {max} characters ({n} given)"
        )));
    }
    if v.chars()
        .any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t'))
    {
        return Err(ApiError::bad_input(format!(
            "{field} must not contain control characters"
        )));
    }
    Ok(v.to_string())
}

/// Moves one star count of `product` by `delta` (creating its row), then announces the
/// rating as it now stands.
async fn count_stars<C: ConnectionTrait>(
    ctx: &ReviewsCtx,
    conn: &C,
    product: &str,
    changes: &[(i32, i64)],
) -> ApiResult<()> {
    let now = Utc::now();
    rating::Entity::insert(rating::ActiveModel {
        product_id: Set(product.to_string()),
        stars_1: Set(0),
        stars_2: Set(0),
        stars_3: Set(0),
        stars_4: Set(0),
        stars_5: Set(0),
        updated_at: Set(now),
    })
    .on_conflict_do_nothing()
    .exec(conn)
    .await?;
    for (stars, delta) in changes {
        let column = match stars {
            1 => rating::Column::Stars1,
            2 => rating::Column::Stars2,
            3 => rating::Column::Stars3,
            4 => rating::Column::Stars4,
            _ => rating::Column::Stars5,
        };
        rating::Entity::update_many()
            .col_expr(column, Expr::col(column).add(*delta))
            .col_expr(rating::Column::UpdatedAt, Expr::value(now))
            .filter(rating::Column::ProductId.eq(product))
            .exec(conn)
            .await?;
    }
    let r = rating::Entity::find_by_id(product.to_string())
        .one(conn)
        .await?
        .ok_or_else(|| ApiError::Internal("a rating row vanished".into()))?;
    let (count, hundredths) = summary(&r.histogram());
    ctx.outbox
        .write(
            conn,
            RATING_CHANGED,
            product,
            serde_json::json!({
                "productId": product, "count": count, "averageHundredths": hundredths,
                "histogram": r.histogram(),
            }),
        )
        .await?;
    Ok(())
}

/// How many reviews a histogram holds and their average in hundredths of a star
/// (rounded half up; 0 for none).
pub fn summary(histogram: &[i64; 5]) -> (i64, i64) {
    let count: i64 = histogram.iter().sum();
    if count == 0 {
        return (0, 0);
    }
    let stars: i64 = histogram
        .iter()
        .enumerate()
        .map(|(i, n)| (i as i64 + 1) * n)
        .sum();
    (count, (stars * 100 + count / 2) / count)
}

pub async fn find<C: ConnectionTrait>(conn: &C, id: &str) -> ApiResult<review::Model> {
    check_id("id", id)?;
    review::Entity::find_by_id(id.to_string())
        .one(conn)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("review {id} not found")))
}

/// Who may see a review: anyone while visible; its author and admins when hidden.
pub fn may_see(p: Option<&Principal>, r: &review::Model) -> bool {
    r.status == VISIBLE || p.is_some_and(|p| p.is_admin() || p.user_id == r.user_id)
}

pub async fn visible(
    ctx: &ReviewsCtx,
    p: Option<&Principal>,
    id: &str,
) -> ApiResult<review::Model> {
    let r = find(&ctx.db, id).await?;
    if may_see(p, &r) {
        Ok(r)
    } else {
        Err(ApiError::not_found(format!("review {id} not found")))
    }
}

/// A shopper reviews a product they received.
pub async fn create(
    ctx: &ReviewsCtx,
    p: &Principal,
    product: &str,
    draft: Draft,
) -> ApiResult<review::Model> {
    check_id("productId", product)?;
    let rating = check_rating(draft.rating.unwrap_or(0))?;
    let title = check_text("title", draft.title.as_deref().unwrap_or(""), MAX_TITLE)?;
    let body = check_text("body", draft.body.as_deref().unwrap_or(""), MAX_BODY)?;
    let txn = shop_kit::db::begin_write(&ctx.db).await?;
    let bought = purchases::delivered(&txn, &p.user_id, product).await?;
    let Some(latest) = bought.first() else {
        return Err(ApiError::forbidden(
            "only shoppers who bought this product and received it may review it",
        ));
    };
    let refunded = bought.iter().all(|b| b.refunded);
    let now = Utc::now();
    let row = review::ActiveModel {
        id: Set(shop_kit::ids::new_id()),
        product_id: Set(product.to_string()),
        user_id: Set(p.user_id.clone()),
        supplier_id: Set(latest.supplier_id.clone()),
        rating: Set(rating),
        title: Set(title),
        body: Set(body),
        status: Set(VISIBLE.into()),
        moderation_note: Set(None),
        refunded: Set(refunded),
        helpful_votes: Set(0),
        reports: Set(0),
        reply: Set(None),
        replied_at: Set(None),
        created_at: Set(now),
        updated_at: Set(now),
    };
    let saved = match row.insert(&txn).await {
        Ok(r) => r,
        Err(e) if shop_kit::db::is_unique_violation(&e) => {
            return Err(ApiError::conflict(
                "you reviewed this product already: edit your review instead",
            ));
        }
        Err(e) => return Err(e.into()),
    };
    count_stars(ctx, &txn, product, &[(rating, 1)]).await?;
    txn.commit().await?;
    ctx.outbox.wake();
    Ok(saved)
}

/// Reads a review for a change, its row locked first on MySQL (touched), so two
/// changes of one review take turns and its counts stay right.
async fn locked<C: ConnectionTrait>(conn: &C, id: &str) -> ApiResult<review::Model> {
    check_id("id", id)?;
    review::Entity::update_many()
        .col_expr(review::Column::Id, Expr::col(review::Column::Id))
        .filter(review::Column::Id.eq(id))
        .exec(conn)
        .await?;
    find(conn, id).await
}

/// The author changes their review; the product's stars follow a new rating.
pub async fn update(
    ctx: &ReviewsCtx,
    p: &Principal,
    id: &str,
    draft: Draft,
) -> ApiResult<review::Model> {
    let rating = draft.rating.map(check_rating).transpose()?;
    let title = draft
        .title
        .as_deref()
        .map(|t| check_text("title", t, MAX_TITLE))
        .transpose()?;
    let body = draft
        .body
        .as_deref()
        .map(|b| check_text("body", b, MAX_BODY))
        .transpose()?;
    let txn = shop_kit::db::begin_write(&ctx.db).await?;
    let r = locked(&txn, id).await?;
    if r.user_id != p.user_id {
        return Err(ApiError::forbidden("only its author may edit a review"));
    }
    let before = r.rating;
    let visible = r.status == VISIBLE;
    let product = r.product_id.clone();
    let mut m: review::ActiveModel = r.into();
    if let Some(v) = rating {
        m.rating = Set(v);
    }
    if let Some(v) = title {
        m.title = Set(v);
    }
    if let Some(v) = body {
        m.body = Set(v);
    }
    m.updated_at = Set(Utc::now());
    let saved = m.update(&txn).await?;
    if visible && saved.rating != before {
        count_stars(ctx, &txn, &product, &[(before, -1), (saved.rating, 1)]).await?;
    }
    txn.commit().await?;
    ctx.outbox.wake();
    Ok(saved)
}

/// The author (or an admin) removes a review, with its votes and reports.
pub async fn delete(ctx: &ReviewsCtx, p: &Principal, id: &str) -> ApiResult<review::Model> {
    let txn = shop_kit::db::begin_write(&ctx.db).await?;
    let r = locked(&txn, id).await?;
    if r.user_id != p.user_id && !p.is_admin() {
        return Err(ApiError::forbidden(
            "only its author or an admin may delete a review",
        ));
    }
    review::Entity::delete_by_id(r.id.clone())
        .exec(&txn)
        .await?;
    vote::Entity::delete_many()
        .filter(vote::Column::ReviewId.eq(r.id.as_str()))
        .exec(&txn)
        .await?;
    report::Entity::delete_many()
        .filter(report::Column::ReviewId.eq(r.id.as_str()))
        .exec(&txn)
        .await?;
    if r.status == VISIBLE {
        count_stars(ctx, &txn, &r.product_id, &[(r.rating, -1)]).await?;
    }
    txn.commit().await?;
    ctx.outbox.wake();
    Ok(r)
}

/// A shopper finds a review helpful (or takes that back): one vote per shopper, never
/// for their own.
pub async fn vote(
    ctx: &ReviewsCtx,
    p: &Principal,
    id: &str,
    helpful: bool,
) -> ApiResult<review::Model> {
    let txn = shop_kit::db::begin_write(&ctx.db).await?;
    let r = locked(&txn, id).await?;
    if !may_see(Some(p), &r) {
        return Err(ApiError::not_found(format!("review {id} not found")));
    }
    if r.user_id == p.user_id {
        return Err(ApiError::forbidden("you cannot vote for your own review"));
    }
    if helpful {
        vote::Entity::insert(vote::ActiveModel {
            review_id: Set(r.id.clone()),
            user_id: Set(p.user_id.clone()),
            created_at: Set(Utc::now()),
        })
        .on_conflict_do_nothing()
        .exec(&txn)
        .await?;
    } else {
        vote::Entity::delete_many()
            .filter(vote::Column::ReviewId.eq(r.id.as_str()))
            .filter(vote::Column::UserId.eq(p.user_id.as_str()))
            .exec(&txn)
            .await?;
    }
    // Counted from the votes (the review's row is held), so a repeated vote or a
    // withdrawn one that was never cast changes nothing.
    let total = vote::Entity::find()
        .filter(vote::Column::ReviewId.eq(r.id.as_str()))
        .count(&txn)
        .await?;
    let mut m: review::ActiveModel = r.into();
    m.helpful_votes = Set(i64::try_from(total).unwrap_or(i64::MAX));
    let saved = m.update(&txn).await?;
    txn.commit().await?;
    Ok(saved)
}

/// A shopper reports a review to the admins (once per shopper).
pub async fn report(
    ctx: &ReviewsCtx,
    p: &Principal,
    id: &str,
    reason: &str,
) -> ApiResult<review::Model> {
    let reason = check_text("reason", reason, MAX_REASON)?;
    if reason.is_empty() {
        return Err(ApiError::bad_input(
            "reason: say what is wrong with the review",
        ));
    }
    let txn = shop_kit::db::begin_write(&ctx.db).await?;
    let r = locked(&txn, id).await?;
    if !may_see(Some(p), &r) {
        return Err(ApiError::not_found(format!("review {id} not found")));
    }
    let inserted = report::Entity::insert(report::ActiveModel {
        review_id: Set(r.id.clone()),
        user_id: Set(p.user_id.clone()),
        created_at: Set(Utc::now()),
        reason: Set(reason),
    })
    .exec(&txn)
    .await;
    match inserted {
        Ok(_) => {}
        Err(e) if shop_kit::db::is_unique_violation(&e) => {
            return Err(ApiError::conflict("you reported this review already"));
        }
        Err(e) => return Err(e.into()),
    }
    let reports = r.reports + 1;
    let mut m: review::ActiveModel = r.into();
    m.reports = Set(reports);
    let saved = m.update(&txn).await?;
    txn.commit().await?;
    Ok(saved)
}

/// An admin hides a review (`hide`) or shows it again, with the reason kept; the
/// product's stars follow.
pub async fn moderate(
    ctx: &ReviewsCtx,
    p: &Principal,
    id: &str,
    hide: bool,
    reason: &str,
) -> ApiResult<review::Model> {
    if !p.is_admin() {
        return Err(ApiError::forbidden("only admins moderate reviews"));
    }
    let reason = check_text("reason", reason, MAX_REASON)?;
    if reason.is_empty() {
        return Err(ApiError::bad_input("reason: say why, for the record"));
    }
    let txn = shop_kit::db::begin_write(&ctx.db).await?;
    let r = locked(&txn, id).await?;
    let to = if hide { HIDDEN } else { VISIBLE };
    if r.status == to {
        return Err(ApiError::conflict(format!(
            "the review is {} already",
            to.to_lowercase()
        )));
    }
    let (product, stars) = (r.product_id.clone(), r.rating);
    let mut m: review::ActiveModel = r.into();
    m.status = Set(to.into());
    m.moderation_note = Set(Some(reason));
    m.updated_at = Set(Utc::now());
    let saved = m.update(&txn).await?;
    count_stars(ctx, &txn, &product, &[(stars, if hide { -1 } else { 1 })]).await?;
    txn.commit().await?;
    ctx.outbox.wake();
    Ok(saved)
}

/// The product's supplier answers a review, once, in public.
pub async fn reply(
    ctx: &ReviewsCtx,
    p: &Principal,
    id: &str,
    text: &str,
) -> ApiResult<review::Model> {
    let text = check_text("text", text, MAX_REPLY)?;
    if text.is_empty() {
        return Err(ApiError::bad_input("text: the reply is empty"));
    }
    let txn = shop_kit::db::begin_write(&ctx.db).await?;
    let r = locked(&txn, id).await?;
    if r.supplier_id != p.user_id {
        return Err(ApiError::forbidden(
            "only the supplier of the product may reply to its reviews",
        ));
    }
    if r.reply.is_some() {
        return Err(ApiError::conflict("the review has a reply already"));
    }
    let mut m: review::ActiveModel = r.into();
    m.reply = Set(Some(text));
    m.replied_at = Set(Some(Utc::now()));
    let saved = m.update(&txn).await?;
    txn.commit().await?;
    Ok(saved)
}

/// One page of `q` (already filtered) in the order `ordered` gives it.
async fn paged(
    ctx: &ReviewsCtx,
    q: sea_orm::Select<review::Entity>,
    ordered: impl FnOnce(sea_orm::Select<review::Entity>) -> sea_orm::Select<review::Entity>,
    page: &PageArgs,
) -> ApiResult<(Window, Vec<review::Model>)> {
    page.validate()?;
    let total = q.clone().count(&ctx.db).await?;
    let window = page.window(total)?;
    let rows = ordered(q)
        .order_by_desc(review::Column::Id)
        .offset(window.offset)
        .limit(window.limit)
        .all(&ctx.db)
        .await?;
    Ok((window, rows))
}

/// A product's visible reviews in `sort` order, those with `stars` only when given.
pub async fn of_product(
    ctx: &ReviewsCtx,
    product: &str,
    sort: Sort,
    stars: Option<i32>,
    page: &PageArgs,
) -> ApiResult<(Window, Vec<review::Model>)> {
    let mut q = review::Entity::find()
        .filter(review::Column::ProductId.eq(product))
        .filter(review::Column::Status.eq(VISIBLE));
    if let Some(s) = stars {
        q = q.filter(review::Column::Rating.eq(check_rating(s)?));
    }
    paged(
        ctx,
        q,
        |q| match sort {
            Sort::Newest => q.order_by_desc(review::Column::CreatedAt),
            Sort::Highest => q
                .order_by_desc(review::Column::Rating)
                .order_by_desc(review::Column::CreatedAt),
            Sort::Lowest => q
                .order_by_asc(review::Column::Rating)
                .order_by_desc(review::Column::CreatedAt),
            Sort::MostHelpful => q
                .order_by_desc(review::Column::HelpfulVotes)
                .order_by_desc(review::Column::CreatedAt),
        },
        page,
    )
    .await
}

/// A user's reviews, newest first: the visible ones, and hidden ones too for the user
/// and admins.
pub async fn of_user(
    ctx: &ReviewsCtx,
    viewer: Option<&Principal>,
    user: &str,
    page: &PageArgs,
) -> ApiResult<(Window, Vec<review::Model>)> {
    let mut q = review::Entity::find().filter(review::Column::UserId.eq(user));
    if !viewer.is_some_and(|p| p.is_admin() || p.user_id == user) {
        q = q.filter(review::Column::Status.eq(VISIBLE));
    }
    paged(ctx, q, |q| q.order_by_desc(review::Column::CreatedAt), page).await
}

/// Admins: reviews with reports, most reported first.
pub async fn reported(
    ctx: &ReviewsCtx,
    p: &Principal,
    page: &PageArgs,
) -> ApiResult<(Window, Vec<review::Model>)> {
    if !p.is_admin() {
        return Err(ApiError::forbidden("only admins see reported reviews"));
    }
    let q = review::Entity::find().filter(review::Column::Reports.gt(0));
    paged(
        ctx,
        q,
        |q| {
            q.order_by_desc(review::Column::Reports)
                .order_by_desc(review::Column::CreatedAt)
        },
        page,
    )
    .await
}

/// A product's star counts (all zero before its first review).
pub async fn rating_of(ctx: &ReviewsCtx, product: &str) -> ApiResult<[i64; 5]> {
    Ok(rating::Entity::find_by_id(product.to_string())
        .one(&ctx.db)
        .await?
        .map(|r| r.histogram())
        .unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn averages_are_hundredths_rounded_half_up() {
        assert_eq!(summary(&[0, 0, 0, 0, 0]), (0, 0));
        assert_eq!(summary(&[0, 0, 0, 0, 2]), (2, 500));
        assert_eq!(summary(&[1, 0, 0, 0, 1]), (2, 300));
        assert_eq!(summary(&[0, 0, 1, 1, 1]), (3, 400));
        // 13 / 3 = 4.333…
        assert_eq!(summary(&[0, 0, 0, 2, 1]), (3, 433));
        // 14 / 3 = 4.666…
        assert_eq!(summary(&[0, 0, 0, 1, 2]), (3, 467));
    }

    #[test]
    fn texts_are_bounded_and_free_of_control_characters() {
        assert_eq!(check_text("title", "  Great  ", 10).unwrap(), "Great");
        assert!(check_text("title", &"x".repeat(11), 10).is_err());
        assert!(check_text("body", "a\u{0}b", 10).is_err());
        assert_eq!(check_text("body", "a\nb", 10).unwrap(), "a\nb");
        assert!(check_rating(0).is_err() && check_rating(6).is_err());
        assert_eq!(check_rating(5).unwrap(), 5);
    }
}
