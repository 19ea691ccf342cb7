//! Catalog exports: a catalog's products as a file that imports back with no changes
//! (CSV, JSON Lines or Excel `.xlsx`, the import's own columns), streamed page by page
//! from the database. The download link is the credential: random, stored hashed, valid
//! for an hour. In CSV, cells that a spreadsheet would run as formulas (`=`, `+`, `-`,
//! `@`, tab or carriage return first) get a leading `'`, which the importer takes off
//! again; a workbook stores them as text cells marked as such (Excel's quote prefix),
//! which no spreadsheet runs.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};
use futures::stream::{BoxStream, StreamExt};
use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder, QuerySelect};
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
/// A worksheet's rows, less the header.
pub const MAX_XLSX_PRODUCTS: u64 = 1_048_575;

/// What `exportCatalog` answers.
pub struct ExportLink {
    pub url: String,
    pub file_name: String,
    pub expires_at: DateTime<Utc>,
}

/// The columns of an export, in order; the importer reads them all.
pub const COLUMNS: [&str; 14] = [
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
    "weight_grams",
    "length_mm",
    "width_mm",
    "height_mm",
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
    if format == Format::Xlsx {
        let n = product::Entity::find()
            .filter(product::Column::CatalogId.eq(cat.id.clone()))
            .count(&ctx.db)
            .await?;
        if n > MAX_XLSX_PRODUCTS {
            return Err(shop_kit::ApiError::bad_input(format!(
                "the catalog has {n} products; a workbook holds at most {MAX_XLSX_PRODUCTS}: export it as CSV or JSON Lines"
            )));
        }
    }
    let ext = format.as_str();
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
        Format::Xlsx => "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    };
    if format == Format::Xlsx {
        return Ok(Some((
            Grant {
                file_name: grant.file_name,
                content_type: content_type.to_string(),
            },
            xlsx_stream(ctx.db.clone(), grant.catalog_id, cats),
        )));
    }
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
        let rows = match page(&st.db, &st.catalog_id, st.after.as_deref()).await {
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
                Format::JsonLines | Format::Xlsx => {
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

/// The products of a catalog after SKU `after`, in SKU order.
async fn page(
    db: &sea_orm::DatabaseConnection,
    catalog_id: &str,
    after: Option<&str>,
) -> Result<Vec<product::Model>, sea_orm::DbErr> {
    let mut q = product::Entity::find()
        .filter(product::Column::CatalogId.eq(catalog_id.to_string()))
        .order_by_asc(product::Column::Sku)
        .limit(PAGE);
    if let Some(after) = after {
        q = q.filter(product::Column::Sku.gt(after.to_string()));
    }
    q.all(db).await
}

/// A workbook's bytes as they are written. The sheet is built on a blocking thread with
/// rust_xlsxwriter's constant-memory mode (rows go to a temporary file as they are
/// written), then zipped straight into the response.
fn xlsx_stream(
    db: sea_orm::DatabaseConnection,
    catalog_id: String,
    cats: Categories,
) -> BoxStream<'static, Result<Vec<u8>, std::io::Error>> {
    let (tx, rx) = tokio::sync::mpsc::channel::<std::io::Result<Vec<u8>>>(8);
    let runtime = tokio::runtime::Handle::current();
    tokio::task::spawn_blocking(move || {
        let mut out = ChannelWriter {
            tx: tx.clone(),
            buf: Vec::with_capacity(WRITE_CHUNK),
        };
        let res = write_xlsx(&db, &runtime, &catalog_id, &cats, &mut out)
            .and_then(|()| std::io::Write::flush(&mut out).map_err(|e| e.to_string()));
        if let Err(e) = res {
            tracing::warn!(catalog = %catalog_id, error = %e, "an xlsx export failed");
            let _ = tx.blocking_send(Err(std::io::Error::other(e)));
        }
    });
    futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|c| (c, rx)) }).boxed()
}

const WRITE_CHUNK: usize = 256 * 1024;

/// Hands what is written to the response in chunks; fails once the client is gone.
struct ChannelWriter {
    tx: tokio::sync::mpsc::Sender<std::io::Result<Vec<u8>>>,
    buf: Vec<u8>,
}

impl std::io::Write for ChannelWriter {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(data);
        if self.buf.len() >= WRITE_CHUNK {
            self.flush()?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = std::mem::replace(&mut self.buf, Vec::with_capacity(WRITE_CHUNK));
        self.tx
            .blocking_send(Ok(chunk))
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::BrokenPipe, "download closed"))
    }
}

fn write_xlsx(
    db: &sea_orm::DatabaseConnection,
    runtime: &tokio::runtime::Handle,
    catalog_id: &str,
    cats: &Categories,
    out: &mut ChannelWriter,
) -> Result<(), String> {
    use rust_xlsxwriter::{Format as Style, Workbook};
    let err = |e: rust_xlsxwriter::XlsxError| e.to_string();
    let mut book = Workbook::new();
    let text = Style::new().set_quote_prefix();
    let bold = Style::new().set_bold();
    let prices = [
        Style::new().set_num_format("0"),
        Style::new().set_num_format("0.0"),
        Style::new().set_num_format("0.00"),
        Style::new().set_num_format("0.000"),
        Style::new().set_num_format("0.0000"),
    ];
    let sheet = book.add_worksheet_with_constant_memory().map_err(err)?;
    sheet.set_name("Products").map_err(err)?;
    for (c, name) in COLUMNS.iter().enumerate() {
        sheet
            .write_string_with_format(0, c as u16, *name, &bold)
            .map_err(err)?;
    }
    let mut row: u32 = 0;
    let mut after: Option<String> = None;
    loop {
        let rows = runtime
            .block_on(page(db, catalog_id, after.as_deref()))
            .map_err(|e| e.to_string())?;
        for p in &rows {
            row += 1;
            for (c, cell) in cells(p, cats).into_iter().enumerate() {
                let col = c as u16;
                if cell.is_empty() {
                    continue;
                }
                match COLUMNS[c] {
                    // Numbers, so a spreadsheet can sum and sort them; they read back
                    // as the same decimal.
                    "price" => {
                        let exponent = shop_kit::money::currency_exponent(&p.price_currency)
                            .unwrap_or(2)
                            .min(4);
                        let value = p.price_amount as f64 / 10f64.powi(i32::from(exponent));
                        sheet
                            .write_number_with_format(row, col, value, &prices[exponent as usize])
                            .map_err(err)?;
                    }
                    "stock" | "weight_grams" | "length_mm" | "width_mm" | "height_mm" => {
                        let value = cell.parse::<i64>().unwrap_or_default() as f64;
                        sheet.write_number(row, col, value).map_err(err)?;
                    }
                    _ if cell.starts_with(['=', '+', '-', '@', '\t', '\r']) => {
                        sheet
                            .write_string_with_format(row, col, &cell, &text)
                            .map_err(err)?;
                    }
                    _ => {
                        sheet.write_string(row, col, &cell).map_err(err)?;
                    }
                }
            }
        }
        if rows.len() < PAGE as usize {
            break;
        }
        after = rows.last().map(|p| p.sku.clone());
    }
    book.save_to_writer(out).map_err(err)
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
    cells(p, cats).into_iter().map(defuse).collect()
}

/// A product's cells in `COLUMNS` order, as text.
fn cells(p: &product::Model, cats: &Categories) -> Vec<String> {
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
        number(p.stock_on_hand),
        number(p.weight_grams),
        number(p.length_mm),
        number(p.width_mm),
        number(p.height_mm),
    ]
}

fn number(n: Option<i64>) -> String {
    n.map(|n| n.to_string()).unwrap_or_default()
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
    if let Json::Object(m) = &mut v {
        for (key, value) in [
            ("stock", p.stock_on_hand),
            ("weight_grams", p.weight_grams),
            ("length_mm", p.length_mm),
            ("width_mm", p.width_mm),
            ("height_mm", p.height_mm),
        ] {
            if let Some(n) = value {
                m.insert(key.into(), Json::from(n));
            }
        }
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
