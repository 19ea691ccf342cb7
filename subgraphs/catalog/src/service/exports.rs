//! Catalog exports: a catalog's products as a file that imports back with no changes
//! (CSV or JSON Lines, the import's own columns), streamed page by page from the
//! database. The download link is the credential: random, stored hashed, valid for an
//! hour. Spreadsheet cells that would run as formulas (`=`, `+`, `-`, `@`, tab or
//! carriage return first) get a leading `'`; the importer takes it off again.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};
use futures::stream::{BoxStream, StreamExt};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect};
use serde_json::{Value as Json, json};
use shop_kit::ApiResult;
use shop_kit::auth::Caller;

use super::CatalogCtx;
use super::access::{require_writer, writable_catalog};
use super::imports::Format;
use super::imports::engine::{Categories, categories, doc_of};
use crate::entity::{export, product};

/// How long an export link works.
pub const LINK_MINUTES: i64 = 60;
/// Products read per page of the stream.
const PAGE: u64 = 1000;

/// What `exportCatalog` answers.
pub struct ExportLink {
    pub url: String,
    pub file_name: String,
    pub expires_at: DateTime<Utc>,
}

/// The columns of an export, in order; the importer reads them all.
pub const COLUMNS: [&str; 10] = [
    "sku",
    "name",
    "description",
    "price",
    "currency",
    "category",
    "images",
    "attributes",
    "status",
    "stock",
];

pub async fn create(
    ctx: &CatalogCtx,
    caller: &Caller,
    catalog_id: &str,
    format: Format,
) -> ApiResult<ExportLink> {
    let p = require_writer(caller)?;
    let cat = writable_catalog(&ctx.db, p, catalog_id).await?;
    let token = shop_kit::secrets::random_token()?;
    let now = shop_kit::db::now_as_stored(&ctx.db);
    let expires_at = now + Duration::minutes(LINK_MINUTES);
    let slug: String = cat
        .name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect::<String>()
        .split('-')
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join("-");
    let ext = match format {
        Format::Csv => "csv",
        Format::JsonLines => "jsonl",
    };
    let file_name = format!(
        "{}-{}.{ext}",
        if slug.is_empty() { "catalog" } else { &slug },
        now.format("%Y%m%d-%H%M%S")
    );
    shop_kit::db::insert_known(
        &ctx.db,
        export::ActiveModel::from(export::Model {
            token_hash: shop_kit::secrets::hash_token(&token),
            catalog_id: cat.id.clone(),
            format: format.as_str().to_string(),
            file_name: file_name.clone(),
            created_by: p.user_id.clone(),
            created_at: now,
            expires_at,
        }),
    )
    .await?;
    Ok(ExportLink {
        url: format!("/files/catalog/exports/{token}"),
        file_name,
        expires_at,
    })
}

/// What a download link grants.
pub struct Grant {
    pub file_name: String,
    pub content_type: String,
}

/// The export a link names, and its bytes as a stream; `None` for an unknown or expired
/// link.
pub async fn open(
    ctx: &CatalogCtx,
    token: &str,
) -> ApiResult<Option<(Grant, BoxStream<'static, Result<Vec<u8>, std::io::Error>>)>> {
    if token.len() > 100 {
        return Ok(None);
    }
    let Some(grant) = export::Entity::find_by_id(shop_kit::secrets::hash_token(token))
        .one(&ctx.db)
        .await?
    else {
        return Ok(None);
    };
    if grant.expires_at < Utc::now() {
        return Ok(None);
    }
    let format = Format::parse(&grant.format).unwrap_or(Format::Csv);
    let cats = categories(&ctx.db, &grant.catalog_id).await?;
    let content_type = match format {
        Format::Csv => "text/csv; charset=utf-8",
        Format::JsonLines => "application/x-ndjson",
    };
    struct Page {
        db: sea_orm::DatabaseConnection,
        catalog_id: String,
        cats: Categories,
        after: Option<String>,
        header: bool,
        done: bool,
        format: Format,
    }
    let state = Page {
        db: ctx.db.clone(),
        catalog_id: grant.catalog_id.clone(),
        cats,
        after: None,
        header: format == Format::Csv,
        done: false,
        format,
    };
    let stream = futures::stream::unfold(state, |mut st| async move {
        if st.done {
            return None;
        }
        if st.header {
            st.header = false;
            return Some((Ok(csv_line(COLUMNS.iter().map(|c| c.to_string()))), st));
        }
        let mut q = product::Entity::find()
            .filter(product::Column::CatalogId.eq(st.catalog_id.clone()))
            .order_by_asc(product::Column::Sku)
            .limit(PAGE);
        if let Some(after) = &st.after {
            q = q.filter(product::Column::Sku.gt(after.clone()));
        }
        let rows = match q.all(&st.db).await {
            Ok(rows) => rows,
            Err(e) => {
                st.done = true;
                return Some((Err(std::io::Error::other(e.to_string())), st));
            }
        };
        if rows.len() < PAGE as usize {
            st.done = true;
        }
        st.after = rows.last().map(|p| p.sku.clone());
        let mut out = Vec::with_capacity(rows.len() * 256);
        for p in &rows {
            match st.format {
                Format::Csv => out.extend(csv_line(csv_cells(p, &st.cats))),
                Format::JsonLines => {
                    out.extend(json_line(p, &st.cats).to_string().into_bytes());
                    out.push(b'\n');
                }
            }
        }
        Some((Ok(out), st))
    });
    Ok(Some((
        Grant {
            file_name: grant.file_name,
            content_type: content_type.to_string(),
        },
        stream.boxed(),
    )))
}

/// A price in major units, as the importer reads it (`12.50`).
pub fn major_units(amount: i64, currency: &str) -> String {
    let exponent = u32::from(shop_kit::money::currency_exponent(currency).unwrap_or(2));
    if exponent == 0 {
        return amount.to_string();
    }
    let scale = 10_i64.pow(exponent);
    format!(
        "{}.{:0width$}",
        amount / scale,
        amount % scale,
        width = exponent as usize
    )
}

/// A cell a spreadsheet would run as a formula gets a leading `'`.
pub fn defuse(cell: String) -> String {
    match cell.chars().next() {
        Some('=' | '+' | '-' | '@' | '\t' | '\r') => format!("'{cell}"),
        _ => cell,
    }
}

fn csv_cells(p: &product::Model, cats: &Categories) -> Vec<String> {
    let doc = doc_of(p, cats);
    let attributes: BTreeMap<String, Json> = doc.attributes;
    vec![
        doc.sku,
        doc.name,
        doc.description,
        major_units(doc.price_amount, &doc.currency),
        doc.currency,
        doc.category,
        doc.images.join("|"),
        if attributes.is_empty() {
            String::new()
        } else {
            Json::Object(attributes.into_iter().collect()).to_string()
        },
        doc.status,
        p.stock_on_hand.map(|s| s.to_string()).unwrap_or_default(),
    ]
    .into_iter()
    .map(defuse)
    .collect()
}

fn csv_line(cells: impl IntoIterator<Item = String>) -> Vec<u8> {
    let mut w = csv::WriterBuilder::new()
        .terminator(csv::Terminator::CRLF)
        .from_writer(Vec::with_capacity(256));
    let cells: Vec<String> = cells.into_iter().collect();
    if w.write_record(&cells).is_err() {
        return Vec::new();
    }
    w.into_inner().unwrap_or_default()
}

fn json_line(p: &product::Model, cats: &Categories) -> Json {
    let doc = doc_of(p, cats);
    let mut v = json!({
        "sku": doc.sku,
        "name": doc.name,
        "description": doc.description,
        "price": major_units(doc.price_amount, &doc.currency),
        "currency": doc.currency,
        "category": doc.category,
        "images": doc.images,
        "attributes": Json::Object(doc.attributes.into_iter().collect()),
        "status": doc.status,
    });
    if let (Some(s), Json::Object(m)) = (p.stock_on_hand, &mut v) {
        m.insert("stock".into(), Json::from(s));
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prices_and_formulas_are_written_for_reimport() {
        assert_eq!(major_units(1250, "EUR"), "12.50");
        assert_eq!(major_units(5, "EUR"), "0.05");
        assert_eq!(major_units(1999, "JPY"), "1999");
        assert_eq!(major_units(1, "KWD"), "0.001");
        assert_eq!(defuse("=1+2".into()), "'=1+2");
        assert_eq!(defuse("@cmd".into()), "'@cmd");
        assert_eq!(defuse("-5 off".into()), "'-5 off");
        assert_eq!(defuse("Mug".into()), "Mug");
    }
}
