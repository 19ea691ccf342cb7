//! Shipping labels: the carrier's tracking number bought for a parcel, and the label as
//! a PDF (4 × 6 inches: sender, address block, carrier and service, weight, the
//! tracking number as a Code 128 barcode), downloaded through a link signed with the
//! deployment's key that expires.

use chrono::Utc;
use pdf_writer::{Content, Finish, Name, Pdf, Rect, Ref, Str};
use sea_orm::sea_query::Expr;
use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, Set};
use shop_kit::auth::Caller;
use shop_kit::input::check_id;
use shop_kit::{ApiError, ApiResult};

use super::ShippingCtx;
use super::shipments::{self, may_pack};
use crate::entity::{parcel, sender, shipment};

/// How long a label link works.
pub const LINK_TTL: chrono::Duration = chrono::Duration::minutes(15);

/// What a label shows.
#[derive(Clone, Debug)]
pub struct Label {
    pub tracking_number: String,
    pub carrier: String,
    pub service: String,
    pub weight_grams: i64,
    pub from: Vec<String>,
    pub to: Vec<String>,
    pub reference: String,
}

/// Text as the standard fonts' WinAnsi encoding has it: Latin-1 letters kept, anything
/// else shown as '?'.
fn win_ansi(s: &str) -> Vec<u8> {
    s.chars()
        .map(|c| match u32::from(c) {
            0x20..=0x7e | 0xa0..=0xff => c as u8,
            _ => b'?',
        })
        .collect()
}

fn kilograms(grams: i64) -> String {
    format!("{}.{:02} kg", grams / 1000, (grams % 1000) / 10)
}

/// The label as a one-page PDF.
pub fn pdf(label: &Label) -> ApiResult<Vec<u8>> {
    use barcoders::sym::code128::Code128;
    let bars = Code128::new(format!("\u{0181}{}", label.tracking_number))
        .map_err(|e| ApiError::Internal(format!("barcode: {e}")))?
        .encode();
    let (catalog_id, tree_id, page_id, content_id, font_id, bold_id) = (
        Ref::new(1),
        Ref::new(2),
        Ref::new(3),
        Ref::new(4),
        Ref::new(5),
        Ref::new(6),
    );
    let (width, height) = (288.0f32, 432.0f32);
    let mut pdf = Pdf::new();
    pdf.catalog(catalog_id).pages(tree_id);
    pdf.pages(tree_id).kids([page_id]).count(1);
    let mut page = pdf.page(page_id);
    page.media_box(Rect::new(0.0, 0.0, width, height));
    page.parent(tree_id);
    page.contents(content_id);
    page.resources()
        .fonts()
        .pair(Name(b"F1"), font_id)
        .pair(Name(b"F2"), bold_id);
    page.finish();
    pdf.type1_font(font_id)
        .base_font(Name(b"Helvetica"))
        .encoding_predefined(Name(b"WinAnsiEncoding"));
    pdf.type1_font(bold_id)
        .base_font(Name(b"Helvetica-Bold"))
        .encoding_predefined(Name(b"WinAnsiEncoding"));

    let mut c = Content::new();
    let text = |c: &mut Content, font: &[u8], size: f32, x: f32, y: f32, s: &str| {
        c.begin_text();
        c.set_font(Name(font), size);
        c.next_line(x, y);
        c.show(Str(&win_ansi(s)));
        c.end_text();
    };
    let mut y = height - 24.0;
    text(&mut c, b"F2", 9.0, 18.0, y, "FROM");
    for line in &label.from {
        y -= 11.0;
        text(&mut c, b"F1", 9.0, 18.0, y, line);
    }
    y -= 24.0;
    text(&mut c, b"F2", 9.0, 18.0, y, "SHIP TO");
    for line in &label.to {
        y -= 16.0;
        text(&mut c, b"F2", 13.0, 18.0, y, line);
    }
    y -= 28.0;
    text(
        &mut c,
        b"F1",
        10.0,
        18.0,
        y,
        &format!("{} - {}", label.carrier.to_uppercase(), label.service),
    );
    y -= 13.0;
    text(
        &mut c,
        b"F1",
        10.0,
        18.0,
        y,
        &format!(
            "Weight {}   Ref {}",
            kilograms(label.weight_grams),
            label.reference
        ),
    );
    // The barcode: one filled rectangle per run of dark modules, scaled to the width.
    let module = ((width - 36.0) / bars.len().max(1) as f32).min(1.5);
    let (bar_y, bar_h) = (70.0f32, 80.0f32);
    let mut i = 0;
    while i < bars.len() {
        if bars[i] == 1 {
            let start = i;
            while i < bars.len() && bars[i] == 1 {
                i += 1;
            }
            c.rect(
                18.0 + start as f32 * module,
                bar_y,
                (i - start) as f32 * module,
                bar_h,
            );
            c.fill_nonzero();
        } else {
            i += 1;
        }
    }
    text(
        &mut c,
        b"F2",
        12.0,
        18.0,
        bar_y - 18.0,
        &label.tracking_number,
    );
    pdf.stream(content_id, &c.finish());
    Ok(pdf.finish())
}

/// What a link's signature covers.
fn grant(parcel_id: &str, expires: i64) -> String {
    format!("label:{parcel_id}:{expires}")
}

/// A link to the parcel's label, valid for [`LINK_TTL`], at the gateway's origin.
pub fn link(secret: &[u8], parcel_id: &str) -> String {
    link_until(secret, parcel_id, (Utc::now() + LINK_TTL).timestamp())
}

/// A link to the parcel's label valid until `expires` (Unix seconds).
pub fn link_until(secret: &[u8], parcel_id: &str, expires: i64) -> String {
    format!(
        "/files/shipping/labels/{parcel_id}?expires={expires}&signature={}",
        shop_kit::secrets::hmac_hex(secret, &[grant(parcel_id, expires).as_bytes()])
    )
}

/// Why a label link is refused.
#[derive(Debug, PartialEq, Eq)]
pub enum LinkError {
    Forged,
    Expired,
}

/// Checks a link's signature (in constant time) and expiry.
pub fn check_link(
    secret: &[u8],
    parcel_id: &str,
    expires: i64,
    given: &str,
) -> Result<(), LinkError> {
    if !shop_kit::secrets::hmac_matches(secret, &[grant(parcel_id, expires).as_bytes()], given) {
        return Err(LinkError::Forged);
    }
    if Utc::now().timestamp() > expires {
        return Err(LinkError::Expired);
    }
    Ok(())
}

/// Buys the parcel's label (once: a bought label is answered as it is) and returns the
/// parcel with its tracking number. The supplier's ship-from address must be set.
pub async fn buy(
    ctx: &ShippingCtx,
    caller: &Caller,
    parcel_id: &str,
) -> ApiResult<(parcel::Model, shipment::Model)> {
    let p = caller.require()?;
    check_id("parcelId", parcel_id)?;
    let txn = shop_kit::db::begin_write(&ctx.db).await?;
    let now = Utc::now();
    // Touched first: two buyers of one label take turns (the row is locked on MySQL).
    parcel::Entity::update_many()
        .col_expr(parcel::Column::UpdatedAt, Expr::value(now))
        .filter(parcel::Column::Id.eq(parcel_id))
        .exec(&txn)
        .await?;
    let not_found = || ApiError::not_found(format!("parcel {parcel_id} not found"));
    let parcel = parcel::Entity::find_by_id(parcel_id.to_string())
        .one(&txn)
        .await?
        .ok_or_else(not_found)?;
    let s = shipment::Entity::find_by_id(parcel.shipment_id.clone())
        .one(&txn)
        .await?
        .filter(|s| may_pack(p, s))
        .ok_or_else(not_found)?;
    if parcel.tracking_number.is_some() {
        txn.commit().await?;
        return Ok((parcel, s));
    }
    shipments::not_cancelled(&s)?;
    if sender::Entity::find_by_id(s.supplier_id.clone())
        .one(&txn)
        .await?
        .is_none()
    {
        return Err(ApiError::bad_input(
            "set the ship-from address first (setShipFromAddress): the label shows it",
        ));
    }
    let country = serde_json::from_str::<serde_json::Value>(&s.address)
        .ok()
        .and_then(|a| a["country"].as_str().map(str::to_string))
        .unwrap_or_default();
    // The carrier is asked inside the transaction, with the parcel's row held: a second
    // buyer waits and then finds the number, and the carrier sees one request per
    // parcel (the parcel id is its idempotency key should we crash before commit).
    let tracking = ctx
        .carriers
        .stored(&s.carrier)?
        .buy_label(&super::carriers::LabelRequest {
            parcel_id: parcel.id.clone(),
            weight_grams: parcel.weight_grams,
            country,
        })
        .await?;
    let mut m: parcel::ActiveModel = parcel.into();
    m.tracking_number = Set(Some(tracking));
    m.label_at = Set(Some(now));
    m.status = Set(super::tracking::ParcelStatus::Labelled.as_str().into());
    m.updated_at = Set(now);
    let parcel = m.update(&txn).await?;
    txn.commit().await?;
    Ok((parcel, s))
}

/// The label of a parcel whose label was bought, as the link's holder gets it.
pub async fn label_of(ctx: &ShippingCtx, parcel_id: &str) -> ApiResult<Option<Label>> {
    let Some(parcel) = parcel::Entity::find_by_id(parcel_id.to_string())
        .one(&ctx.db)
        .await?
    else {
        return Ok(None);
    };
    let Some(tracking_number) = parcel.tracking_number.clone() else {
        return Ok(None);
    };
    let Some(s) = shipment::Entity::find_by_id(parcel.shipment_id.clone())
        .one(&ctx.db)
        .await?
    else {
        return Ok(None);
    };
    let from = sender::Entity::find_by_id(s.supplier_id.clone())
        .one(&ctx.db)
        .await?
        .map(|f| f.lines())
        .unwrap_or_default();
    let all = shipments::parcels(&ctx.db, &s.id).await?;
    let index = all.iter().position(|(q, _)| q.id == parcel.id).unwrap_or(0) + 1;
    let a: serde_json::Value = serde_json::from_str(&s.address).unwrap_or_default();
    let field = |k: &str| a[k].as_str().unwrap_or_default().trim().to_string();
    let to: Vec<String> = [
        field("name"),
        field("line1"),
        field("line2"),
        format!("{} {}", field("postalCode"), field("city")),
        field("region"),
        field("country"),
    ]
    .into_iter()
    .filter(|l| !l.trim().is_empty())
    .collect();
    Ok(Some(Label {
        tracking_number,
        carrier: s.carrier.clone(),
        service: s.method_name.clone(),
        weight_grams: parcel.weight_grams,
        from,
        to,
        reference: format!("{} ({index}/{})", s.order_number, all.len()),
    }))
}

/// A supplier's ship-from address as given.
pub struct ShipFrom {
    pub name: String,
    pub line1: String,
    pub line2: String,
    pub postal_code: String,
    pub city: String,
    pub country: String,
}

/// Whose ship-from address the caller means: a supplier's own; an admin's pick.
fn sender_of(p: &shop_kit::auth::Principal, supplier_id: Option<&str>) -> ApiResult<String> {
    match supplier_id {
        Some(s) if p.is_admin() || s == p.user_id => {
            check_id("supplierId", s)?;
            Ok(s.to_string())
        }
        Some(_) => Err(ApiError::forbidden(
            "suppliers manage only their own ship-from address",
        )),
        None => Ok(p.user_id.clone()),
    }
}

pub async fn set_ship_from(
    ctx: &ShippingCtx,
    caller: &Caller,
    supplier_id: Option<&str>,
    a: ShipFrom,
) -> ApiResult<sender::Model> {
    use shop_kit::input::{optional_text, required_text};
    let p = super::require_manager(caller)?;
    let supplier = sender_of(p, supplier_id)?;
    let row = sender::ActiveModel {
        supplier_id: Set(supplier.clone()),
        name: Set(required_text("name", &a.name, 200)?),
        line1: Set(required_text("line1", &a.line1, 200)?),
        line2: Set(optional_text("line2", &a.line2, 200)?),
        postal_code: Set(required_text("postalCode", &a.postal_code, 20)?),
        city: Set(required_text("city", &a.city, 100)?),
        country: Set(shop_kit::input::country("country", &a.country)?),
        updated_at: Set(Utc::now()),
    };
    let txn = shop_kit::db::begin_write(&ctx.db).await?;
    sender::Entity::delete_by_id(supplier.clone())
        .exec(&txn)
        .await?;
    let saved = row.insert(&txn).await?;
    txn.commit().await?;
    Ok(saved)
}

pub async fn ship_from(
    ctx: &ShippingCtx,
    caller: &Caller,
    supplier_id: Option<&str>,
) -> ApiResult<Option<sender::Model>> {
    let p = super::require_manager(caller)?;
    let supplier = sender_of(p, supplier_id)?;
    Ok(sender::Entity::find_by_id(supplier).one(&ctx.db).await?)
}
