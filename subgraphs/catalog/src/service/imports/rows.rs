//! One row of an import file: which of our columns each of the file's columns is, and
//! a row's cells validated into a [`ProductDoc`], or the reasons it cannot be one.

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};
use serde_json::Value as Json;
use sha2::{Digest, Sha256};

use crate::service::products::{
    MAX_ATTRIBUTES, MAX_DESCRIPTION, MAX_IMAGES, MAX_NAME, MAX_SIDE_MM, MAX_SKU, MAX_WEIGHT_GRAMS,
    Status, is_image_url,
};

/// Longest category path accepted (`A > B > C`), and deepest.
pub const MAX_CATEGORY_PATH: usize = 1000;
pub const MAX_CATEGORY_DEPTH: usize = 8;
pub const MAX_CATEGORY_NAME: usize = 200;
/// Stock on hand above this is refused (a typo, not a warehouse).
pub const MAX_STOCK: i64 = 1_000_000_000;
/// Columns a file may have.
pub const MAX_COLUMNS: usize = 200;
/// A cell longer than this fails its row whatever its column: room for the largest of
/// our fields, a description of `MAX_DESCRIPTION` characters of four bytes each (so
/// every product the API accepts exports and imports back).
pub const MAX_CELL_BYTES: usize = crate::service::products::MAX_DESCRIPTION * 4 + 1024;
/// How much of an offending value a row error keeps.
const MAX_ERROR_VALUE: usize = 200;

/// One of our columns.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Column {
    Sku,
    Name,
    Description,
    Price,
    Currency,
    Category,
    Images,
    /// A JSON object of attributes.
    Attributes,
    /// One attribute (`attr:color`).
    Attr(String),
    Stock,
    Status,
    /// Shipping weight in grams.
    WeightGrams,
    /// Outer dimensions in millimetres: length, width, height (all three or none).
    LengthMm,
    WidthMm,
    HeightMm,
    /// A column we do not know: reported once, its cells ignored.
    Unknown(String),
}

impl Column {
    /// Our column for a header name (already mapped through the supplier's mapping).
    pub fn from_name(name: &str) -> Column {
        let trimmed = name.trim();
        let lower = trimmed.to_ascii_lowercase();
        if lower.starts_with("attr:") {
            // "attr:" is ASCII, so byte 5 of the original is a character boundary.
            let attr = trimmed[5..].trim();
            if !attr.is_empty() && attr.chars().count() <= 100 {
                return Column::Attr(attr.to_string());
            }
        }
        match lower.as_str() {
            "sku" => Column::Sku,
            "name" => Column::Name,
            "description" => Column::Description,
            "price" => Column::Price,
            "currency" => Column::Currency,
            "category" => Column::Category,
            "images" => Column::Images,
            "attributes" => Column::Attributes,
            "stock" => Column::Stock,
            "status" => Column::Status,
            "weight_grams" | "weightgrams" => Column::WeightGrams,
            "length_mm" | "lengthmm" => Column::LengthMm,
            "width_mm" | "widthmm" => Column::WidthMm,
            "height_mm" | "heightmm" => Column::HeightMm,
            _ => Column::Unknown(trimmed.to_string()),
        }
    }

    pub fn label(&self) -> String {
        match self {
            Column::Sku => "sku".into(),
            Column::Name => "name".into(),
            Column::Description => "description".into(),
            Column::Price => "price".into(),
            Column::Currency => "currency".into(),
            Column::Category => "category".into(),
            Column::Images => "images".into(),
            Column::Attributes => "attributes".into(),
            Column::Attr(a) => format!("attr:{a}"),
            Column::Stock => "stock".into(),
            Column::Status => "status".into(),
            Column::WeightGrams => "weight_grams".into(),
            Column::LengthMm => "length_mm".into(),
            Column::WidthMm => "width_mm".into(),
            Column::HeightMm => "height_mm".into(),
            Column::Unknown(u) => u.clone(),
        }
    }
}

/// The supplier's header names mapped onto ours (`{"Artikelnummer": "sku"}`), compared
/// without case and surrounding spaces.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct ColumnMapping(pub BTreeMap<String, String>);

impl ColumnMapping {
    pub fn resolve(&self, header: &str) -> Column {
        let key = header.trim().to_lowercase();
        match self
            .0
            .iter()
            .find(|(from, _)| from.trim().to_lowercase() == key)
        {
            Some((_, to)) => Column::from_name(to),
            None => Column::from_name(header),
        }
    }
}

/// What is wrong with a whole file: nothing of it is staged.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileError {
    pub code: &'static str,
    pub message: String,
}

impl FileError {
    pub fn new(code: &'static str, message: impl Into<String>) -> Self {
        FileError {
            code,
            message: message.into(),
        }
    }
}

/// A file's header: our column for each position.
#[derive(Clone, Debug)]
pub struct Header {
    pub columns: Vec<Column>,
    pub unknown: Vec<String>,
}

impl Header {
    pub fn new(names: &[String], mapping: &ColumnMapping) -> Result<Header, FileError> {
        if names.len() > MAX_COLUMNS {
            return Err(FileError::new(
                "TOO_MANY_COLUMNS",
                format!(
                    "the header has {} columns; at most {MAX_COLUMNS}",
                    names.len()
                ),
            ));
        }
        let mut columns = Vec::with_capacity(names.len());
        let mut unknown = Vec::new();
        let mut seen: HashMap<Column, usize> = HashMap::new();
        for (i, name) in names.iter().enumerate() {
            let col = mapping.resolve(name);
            if let Column::Unknown(u) = &col {
                if u.is_empty() {
                    // An unnamed trailing column, as spreadsheets export: ignored.
                    columns.push(col);
                    continue;
                }
                unknown.push(u.clone());
            } else if let Some(first) = seen.insert(col.clone(), i) {
                return Err(FileError::new(
                    "DUPLICATE_COLUMN",
                    format!(
                        "columns {} and {} both are '{}'",
                        first + 1,
                        i + 1,
                        col.label()
                    ),
                ));
            }
            columns.push(col);
        }
        for required in [Column::Sku, Column::Name, Column::Price] {
            if !seen.contains_key(&required) {
                let hint = if required == Column::Sku {
                    " (the key of every row; map your own header onto it with options.columns)"
                } else {
                    ""
                };
                return Err(FileError::new(
                    "MISSING_COLUMN",
                    format!("the file has no '{}' column{hint}", required.label()),
                ));
            }
        }
        Ok(Header { columns, unknown })
    }

    pub fn has(&self, col: &Column) -> bool {
        self.columns.contains(col)
    }
}

/// A product as an import sees it: everything a row can say, normalized, so that two
/// equal products have equal documents and equal [`ProductDoc::hash`]es.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProductDoc {
    pub sku: String,
    pub name: String,
    pub description: String,
    pub price_amount: i64,
    pub currency: String,
    /// The category's path (`Kitchen > Mugs`), empty for none.
    pub category: String,
    pub images: Vec<String>,
    /// Sorted by name.
    pub attributes: BTreeMap<String, Json>,
    pub status: String,
}

impl ProductDoc {
    /// A stable digest of the document (SHA-256, first 8 bytes as hex): stored with the
    /// changes an import wrote, so a rollback can tell whether anything touched a product
    /// since.
    pub fn hash(&self) -> String {
        format!("{:016x}", self.hash64())
    }

    /// [`ProductDoc::hash`] as a number, to keep a million of them compactly.
    pub fn hash64(&self) -> u64 {
        let bytes = serde_json::to_vec(self).unwrap_or_default();
        let digest = Sha256::digest(&bytes);
        let mut first = [0u8; 8];
        first.copy_from_slice(&digest[..8]);
        u64::from_be_bytes(first)
    }

    /// The fields that differ from `other`, by our column names.
    pub fn changed_fields(&self, other: &ProductDoc) -> Vec<&'static str> {
        let mut out = Vec::new();
        if self.sku != other.sku {
            out.push("sku");
        }
        if self.name != other.name {
            out.push("name");
        }
        if self.description != other.description {
            out.push("description");
        }
        if self.price_amount != other.price_amount || self.currency != other.currency {
            out.push("price");
        }
        if self.category != other.category {
            out.push("category");
        }
        if self.images != other.images {
            out.push("images");
        }
        if self.attributes != other.attributes {
            out.push("attributes");
        }
        if self.status != other.status {
            out.push("status");
        }
        out
    }

    /// The attributes as the JSON object stored in the product's column.
    pub fn attributes_json(&self) -> Json {
        Json::Object(self.attributes.clone().into_iter().collect())
    }

    /// The value of one field, as the diff shows it.
    pub fn field(&self, name: &str) -> Json {
        match name {
            "sku" => Json::from(self.sku.clone()),
            "name" => Json::from(self.name.clone()),
            "description" => Json::from(self.description.clone()),
            "price" => {
                serde_json::json!({ "amount": self.price_amount, "currency": self.currency })
            }
            "category" => Json::from(self.category.clone()),
            "images" => Json::from(self.images.clone()),
            "attributes" => self.attributes_json(),
            "status" => Json::from(self.status.clone()),
            _ => Json::Null,
        }
    }
}

/// A validated row: the product and, when the file has a stock column, its on-hand
/// count; its weight and size where the file has those columns.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ValidRow {
    pub doc: ProductDoc,
    pub stock: Option<i64>,
    pub physical: Physical,
}

/// A product's weight and outer size as an import sees them. Like stock, they are not
/// part of [`ProductDoc`]: a file without these columns leaves the stored values as
/// they are (a supplier sending prices does not erase the weights shipping prices by).
/// `None`: not given; `Some(None)`: a blank cell, which clears the value.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Physical {
    pub weight_grams: Option<Option<i64>>,
    /// Length, width, height.
    pub dimensions: Option<Option<[i64; 3]>>,
}

impl Physical {
    /// A stored product's values (both given).
    pub fn stored(weight: Option<i64>, sides: [Option<i64>; 3]) -> Physical {
        let dimensions = match sides {
            [Some(l), Some(w), Some(h)] => Some([l, w, h]),
            _ => None,
        };
        Physical {
            weight_grams: Some(weight),
            dimensions: Some(dimensions),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.weight_grams.is_none() && self.dimensions.is_none()
    }

    /// The given parts that differ from `stored`, by the names changes show.
    pub fn changed(&self, stored: &Physical) -> Vec<&'static str> {
        let mut out = Vec::new();
        if self.weight_grams.is_some() && self.weight_grams != stored.weight_grams {
            out.push("weightGrams");
        }
        if self.dimensions.is_some() && self.dimensions != stored.dimensions {
            out.push("dimensions");
        }
        out
    }

    /// Whether every given part equals `stored`.
    pub fn matches(&self, stored: &Physical) -> bool {
        self.changed(stored).is_empty()
    }

    /// The given parts as keys of a change's document (`weightGrams`, `dimensions`).
    pub fn write_into(&self, doc: &mut serde_json::Map<String, Json>) {
        if let Some(w) = self.weight_grams {
            doc.insert("weightGrams".into(), w.map_or(Json::Null, Json::from));
        }
        if let Some(d) = self.dimensions {
            doc.insert(
                "dimensions".into(),
                d.map_or(
                    Json::Null,
                    |[l, w, h]| serde_json::json!({ "lengthMm": l, "widthMm": w, "heightMm": h }),
                ),
            );
        }
    }

    /// The parts [`Physical::write_into`] wrote, taken out of `doc`.
    pub fn take_from(doc: &mut serde_json::Map<String, Json>) -> Physical {
        let weight_grams = doc.remove("weightGrams").map(|w| w.as_i64());
        let dimensions = doc.remove("dimensions").map(|d| {
            match (
                d["lengthMm"].as_i64(),
                d["widthMm"].as_i64(),
                d["heightMm"].as_i64(),
            ) {
                (Some(l), Some(w), Some(h)) => Some([l, w, h]),
                _ => None,
            }
        });
        Physical {
            weight_grams,
            dimensions,
        }
    }
}

/// Why one cell (or the whole row) is refused.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RowError {
    pub column: Option<String>,
    pub code: String,
    pub message: String,
    pub value: Option<String>,
}

impl RowError {
    pub fn new(
        column: Option<&Column>,
        code: &str,
        message: impl Into<String>,
        value: Option<&str>,
    ) -> Self {
        RowError {
            column: column.map(Column::label),
            code: code.to_string(),
            message: message.into(),
            value: value.map(|v| shop_kit::input::shortened(v, MAX_ERROR_VALUE)),
        }
    }
}

/// One cell: text (CSV, xlsx) or a JSON value (JSON Lines).
#[derive(Clone, Copy, Debug)]
pub enum Cell<'a> {
    Text(&'a str),
    Json(&'a Json),
}

impl Cell<'_> {
    /// The cell as text; JSON strings unquoted, other JSON as written. A text cell
    /// that an export defused (`'=…`, `'+…`, `'-…`, `'@…`) gets its own value back.
    fn text(&self) -> std::borrow::Cow<'_, str> {
        match self {
            Cell::Text(t) => match t.strip_prefix('\'') {
                Some(rest) if rest.starts_with(['=', '+', '-', '@', '\t', '\r']) => {
                    std::borrow::Cow::Borrowed(rest)
                }
                _ => std::borrow::Cow::Borrowed(t),
            },
            Cell::Json(Json::String(s)) => std::borrow::Cow::Borrowed(s.as_str()),
            Cell::Json(Json::Null) => std::borrow::Cow::Borrowed(""),
            Cell::Json(other) => std::borrow::Cow::Owned(other.to_string()),
        }
    }
}

/// What the options say about rows: the currency of rows without one.
#[derive(Clone, Debug, Default)]
pub struct RowRules {
    pub default_currency: Option<String>,
}

/// Validates one row's cells (each with its column) into a product.
pub fn validate<'a>(
    cells: impl Iterator<Item = (&'a Column, Cell<'a>)>,
    rules: &RowRules,
) -> Result<ValidRow, Vec<RowError>> {
    let mut errors = Vec::new();
    let mut sku = None;
    let mut name = None;
    let mut description = String::new();
    let mut price_text: Option<(String, &Column)> = None;
    let mut currency = rules.default_currency.clone();
    let mut currency_given = None;
    let mut category = String::new();
    let mut images = Vec::new();
    let mut attributes: BTreeMap<String, Json> = BTreeMap::new();
    let mut stock = None;
    let mut status = Status::Active.as_str().to_string();
    let mut weight_grams = None;
    let mut sides: [Option<Option<i64>>; 3] = [None; 3];

    for (col, cell) in cells {
        let text = cell.text();
        if text.len() > MAX_CELL_BYTES {
            errors.push(RowError::new(
                Some(col),
                "TOO_LONG",
                format!(
                    "the cell has {} bytes; at most {MAX_CELL_BYTES}",
                    text.len()
                ),
                Some(&text),
            ));
            continue;
        }
        let value = text.trim();
        match col {
            Column::Unknown(_) => {}
            Column::Sku => match check_sku(value) {
                Ok(s) => sku = Some(s),
                Err(e) => errors.push(RowError::new(Some(col), e.0, e.1, Some(value))),
            },
            Column::Name => {
                if value.is_empty() {
                    errors.push(RowError::new(
                        Some(col),
                        "REQUIRED",
                        "a name is required",
                        None,
                    ));
                } else if value.chars().count() > MAX_NAME {
                    errors.push(too_long(col, MAX_NAME, value));
                } else {
                    name = Some(value.to_string());
                }
            }
            Column::Description => {
                if value.chars().count() > MAX_DESCRIPTION {
                    errors.push(too_long(col, MAX_DESCRIPTION, value));
                } else {
                    description = value.to_string();
                }
            }
            Column::Price => price_text = Some((value.to_string(), col)),
            Column::Currency => {
                if !value.is_empty() {
                    currency_given = Some(value.to_string());
                    let upper = value.to_ascii_uppercase();
                    if shop_kit::money::currency_exponent(&upper).is_some() {
                        currency = Some(upper);
                    } else {
                        errors.push(RowError::new(
                            Some(col),
                            "UNKNOWN_CURRENCY",
                            "not an ISO 4217 currency code we know (such as EUR or USD)",
                            Some(value),
                        ));
                        currency = None;
                    }
                }
            }
            Column::Category => match check_category(value) {
                Ok(path) => category = path,
                Err(msg) => errors.push(RowError::new(
                    Some(col),
                    "INVALID_CATEGORY",
                    msg,
                    Some(value),
                )),
            },
            Column::Images => match parse_images(cell) {
                Ok(list) => images = list,
                Err(msg) => {
                    errors.push(RowError::new(Some(col), "INVALID_IMAGES", msg, Some(value)))
                }
            },
            Column::Attributes => match parse_attribute_object(cell) {
                Ok(map) => {
                    for (k, v) in map {
                        attributes.insert(k, v);
                    }
                }
                Err(msg) => errors.push(RowError::new(
                    Some(col),
                    "INVALID_ATTRIBUTES",
                    msg,
                    Some(value),
                )),
            },
            Column::Attr(name) => {
                let v = match cell {
                    Cell::Json(j) if !j.is_string() && !j.is_null() => Some(j.clone()),
                    _ if value.is_empty() => None,
                    _ => Some(Json::from(value.to_string())),
                };
                if let Some(v) = v {
                    if v.is_object() {
                        errors.push(RowError::new(
                            Some(col),
                            "INVALID_ATTRIBUTES",
                            "an attribute is a value or a list of values",
                            Some(value),
                        ));
                    } else {
                        attributes.insert(name.clone(), v);
                    }
                }
            }
            Column::Stock => {
                if !value.is_empty() {
                    match value.parse::<i64>() {
                        Ok(n) if (0..=MAX_STOCK).contains(&n) => stock = Some(n),
                        _ => errors.push(RowError::new(
                            Some(col),
                            "INVALID_STOCK",
                            format!("stock on hand is a whole number from 0 to {MAX_STOCK}"),
                            Some(value),
                        )),
                    }
                }
            }
            Column::WeightGrams => match measure(value, 0, MAX_WEIGHT_GRAMS) {
                Ok(w) => weight_grams = Some(w),
                Err(msg) => {
                    errors.push(RowError::new(Some(col), "INVALID_WEIGHT", msg, Some(value)))
                }
            },
            Column::LengthMm | Column::WidthMm | Column::HeightMm => {
                let i = match col {
                    Column::LengthMm => 0,
                    Column::WidthMm => 1,
                    _ => 2,
                };
                match measure(value, 1, MAX_SIDE_MM) {
                    Ok(v) => sides[i] = Some(v),
                    Err(msg) => errors.push(RowError::new(
                        Some(col),
                        "INVALID_DIMENSIONS",
                        msg,
                        Some(value),
                    )),
                }
            }
            Column::Status => {
                if !value.is_empty() {
                    match Status::parse(value) {
                        Some(s) => status = s.as_str().to_string(),
                        None => errors.push(RowError::new(
                            Some(col),
                            "INVALID_STATUS",
                            "status is active, draft or archived",
                            Some(value),
                        )),
                    }
                }
            }
        }
    }

    if sku.is_none() && !errors.iter().any(|e| e.column.as_deref() == Some("sku")) {
        errors.push(RowError::new(
            Some(&Column::Sku),
            "REQUIRED",
            "a SKU is required",
            None,
        ));
    }
    if name.is_none() && !errors.iter().any(|e| e.column.as_deref() == Some("name")) {
        errors.push(RowError::new(
            Some(&Column::Name),
            "REQUIRED",
            "a name is required",
            None,
        ));
    }
    let dimensions = match sides {
        [None, None, None] => None,
        [Some(None), Some(None), Some(None)] => Some(None),
        [Some(Some(l)), Some(Some(w)), Some(Some(h))] => Some(Some([l, w, h])),
        _ => {
            if !errors.iter().any(|e| e.code == "INVALID_DIMENSIONS") {
                errors.push(RowError::new(
                    Some(&Column::LengthMm),
                    "INVALID_DIMENSIONS",
                    "give length_mm, width_mm and height_mm together, or leave all three blank",
                    None,
                ));
            }
            None
        }
    };
    if attributes.len() > MAX_ATTRIBUTES {
        errors.push(RowError::new(
            None,
            "INVALID_ATTRIBUTES",
            format!("{} attributes; at most {MAX_ATTRIBUTES}", attributes.len()),
            None,
        ));
    }
    let price = match (&price_text, &currency) {
        (None, _) => {
            errors.push(RowError::new(
                Some(&Column::Price),
                "REQUIRED",
                "a price is required",
                None,
            ));
            None
        }
        (Some(_), None) if currency_given.is_some() => None,
        (Some(_), None) => {
            errors.push(RowError::new(
                Some(&Column::Currency),
                "REQUIRED",
                "a currency is required (a currency column, or options.defaultCurrency)",
                None,
            ));
            None
        }
        (Some((text, col)), Some(cur)) => match parse_price(text, cur) {
            Ok(amount) => Some(amount),
            Err(msg) => {
                errors.push(RowError::new(Some(col), "INVALID_PRICE", msg, Some(text)));
                None
            }
        },
    };
    if !errors.is_empty() {
        return Err(errors);
    }
    let (Some(sku), Some(name), Some(price_amount), Some(currency)) = (sku, name, price, currency)
    else {
        return Err(vec![RowError::new(
            None,
            "INVALID_ROW",
            "the row is incomplete",
            None,
        )]);
    };
    Ok(ValidRow {
        doc: ProductDoc {
            sku,
            name,
            description,
            price_amount,
            currency,
            category,
            images,
            attributes,
            status,
        },
        stock,
        physical: Physical {
            weight_grams,
            dimensions,
        },
    })
}

/// A weight or a side: blank clears it; else a whole number from `min` to `max`.
fn measure(value: &str, min: i32, max: i32) -> Result<Option<i64>, String> {
    if value.is_empty() {
        return Ok(None);
    }
    match value.parse::<i64>() {
        Ok(n) if (i64::from(min)..=i64::from(max)).contains(&n) => Ok(Some(n)),
        _ => Err(format!("a whole number from {min} to {max}")),
    }
}

fn too_long(col: &Column, max: usize, value: &str) -> RowError {
    RowError::new(
        Some(col),
        "TOO_LONG",
        format!("at most {max} characters ({} given)", value.chars().count()),
        Some(value),
    )
}

fn check_sku(value: &str) -> Result<String, (&'static str, String)> {
    if value.is_empty() {
        return Err(("REQUIRED", "a SKU is required".into()));
    }
    if value.chars().count() > MAX_SKU {
        return Err(("TOO_LONG", format!("at most {MAX_SKU} characters")));
    }
    if value.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err((
            "INVALID_SKU",
            "a SKU must not contain spaces or control characters".into(),
        ));
    }
    Ok(value.to_string())
}

/// `Kitchen > Mugs`: names separated by `>`, each trimmed; normalized to `A > B`.
pub fn check_category(value: &str) -> Result<String, String> {
    if value.is_empty() {
        return Ok(String::new());
    }
    if value.len() > MAX_CATEGORY_PATH {
        return Err(format!(
            "a category path has at most {MAX_CATEGORY_PATH} bytes"
        ));
    }
    let parts: Vec<&str> = value.split('>').map(str::trim).collect();
    if parts.len() > MAX_CATEGORY_DEPTH {
        return Err(format!(
            "a category path has at most {MAX_CATEGORY_DEPTH} levels"
        ));
    }
    if parts.iter().any(|p| p.is_empty()) {
        return Err("a category path is names separated by '>', none empty".into());
    }
    if parts.iter().any(|p| p.chars().count() > MAX_CATEGORY_NAME) {
        return Err(format!(
            "a category name has at most {MAX_CATEGORY_NAME} characters"
        ));
    }
    Ok(parts.join(" > "))
}

/// Images: a JSON array, or URLs separated by `|` (URLs may hold commas).
fn parse_images(cell: Cell<'_>) -> Result<Vec<String>, String> {
    let list: Vec<String> = match cell {
        Cell::Json(Json::Array(items)) => items
            .iter()
            .map(|i| {
                i.as_str()
                    .map(str::to_string)
                    .ok_or("images are URLs (strings)")
            })
            .collect::<Result<_, _>>()?,
        _ => {
            let text = cell.text();
            let text = text.trim();
            if text.starts_with('[') {
                serde_json::from_str::<Vec<String>>(text)
                    .map_err(|_| "a JSON list of image URLs was expected".to_string())?
            } else {
                text.split('|')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(str::to_string)
                    .collect()
            }
        }
    };
    if list.len() > MAX_IMAGES {
        return Err(format!("at most {MAX_IMAGES} images"));
    }
    for url in &list {
        if !is_image_url(url) {
            return Err(format!("'{url}' is not an http(s) URL or an absolute path"));
        }
    }
    Ok(list)
}

fn parse_attribute_object(cell: Cell<'_>) -> Result<Vec<(String, Json)>, String> {
    let owned;
    let value = match cell {
        Cell::Json(j) if j.is_object() => j,
        _ => {
            let text = cell.text();
            if text.trim().is_empty() {
                return Ok(Vec::new());
            }
            owned = serde_json::from_str::<Json>(text.trim())
                .map_err(|_| "attributes are a JSON object".to_string())?;
            &owned
        }
    };
    let Json::Object(map) = value else {
        return Err("attributes are a JSON object".into());
    };
    let mut out = Vec::with_capacity(map.len());
    for (k, v) in map {
        let k = k.trim();
        if k.is_empty() || k.chars().count() > 100 {
            return Err("attribute names have 1 to 100 characters".into());
        }
        if v.is_object() {
            return Err(format!(
                "attribute '{k}' is an object; values or lists of values only"
            ));
        }
        if !v.is_null() {
            out.push((k.to_string(), v.clone()));
        }
    }
    Ok(out)
}

/// A price in major units as written by people and spreadsheets (`12.5`, `1999`,
/// `0.99`) into minor units of `currency`. A comma is refused rather than guessed at:
/// `1,234` is a thousand in one country and one point two in another.
pub fn parse_price(text: &str, currency: &str) -> Result<i64, String> {
    let exponent = u32::from(shop_kit::money::currency_exponent(currency).unwrap_or(2));
    if text.contains(',') {
        return Err(
            "write prices with a point for decimals and no thousands separator (12.50, not 12,50)"
                .into(),
        );
    }
    let (whole, frac) = match text.split_once('.') {
        Some((w, f)) => (w, f),
        None => (text, ""),
    };
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if !digits(whole)
        || (!frac.is_empty() && !digits(frac))
        || (text.contains('.') && frac.is_empty())
    {
        return Err("a price is a non-negative number such as 12.50".into());
    }
    let frac_trimmed = frac.trim_end_matches('0');
    if frac_trimmed.len() > exponent as usize {
        return Err(format!("{currency} has {exponent} decimal places"));
    }
    let max = i64::from(i32::MAX);
    let scale = 10_i64.pow(exponent);
    let whole: i64 = whole
        .parse::<i64>()
        .ok()
        .filter(|w| *w <= max / scale)
        .ok_or_else(|| format!("a price is at most {} minor units", max))?;
    let mut frac_value: i64 = 0;
    for (i, b) in frac_trimmed.bytes().enumerate() {
        frac_value += i64::from(b - b'0') * 10_i64.pow(exponent - 1 - i as u32);
    }
    let amount = whole * scale + frac_value;
    if amount > max {
        return Err(format!("a price is at most {max} minor units"));
    }
    Ok(amount)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prices_are_read_in_minor_units_of_their_currency() {
        assert_eq!(parse_price("12.5", "EUR"), Ok(1250));
        assert_eq!(parse_price("12.50", "EUR"), Ok(1250));
        assert_eq!(parse_price("1999", "JPY"), Ok(1999));
        assert_eq!(parse_price("0.001", "KWD"), Ok(1));
        assert_eq!(parse_price("0.99", "USD"), Ok(99));
        assert_eq!(parse_price("3.000", "EUR"), Ok(300));
        for bad in [
            "12,50",
            "1,234.00",
            "-1",
            "1e3",
            "",
            ".5",
            "5.",
            "12.505",
            "abc",
            "99999999999",
        ] {
            assert!(parse_price(bad, "EUR").is_err(), "{bad} was accepted");
        }
        assert!(parse_price("1.5", "JPY").is_err());
    }

    #[test]
    fn category_paths_are_normalized() {
        assert_eq!(
            check_category(" Kitchen>Mugs  "),
            Ok("Kitchen > Mugs".to_string())
        );
        assert_eq!(check_category(""), Ok(String::new()));
        assert!(check_category("Kitchen > > Mugs").is_err());
    }

    #[test]
    fn headers_need_the_key_columns_and_map_the_suppliers_names() {
        let names = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let e = Header::new(&names(&["name", "price"]), &ColumnMapping::default()).unwrap_err();
        assert_eq!(e.code, "MISSING_COLUMN");
        assert!(e.message.contains("'sku'"), "{}", e.message);
        let mapping = ColumnMapping([("Artikelnummer".to_string(), "sku".to_string())].into());
        let h = Header::new(
            &names(&["ARTIKELNUMMER", "Name", "price", "Colour", "attr:Size"]),
            &mapping,
        )
        .unwrap();
        assert_eq!(h.columns[0], Column::Sku);
        assert_eq!(h.columns[4], Column::Attr("Size".into()));
        assert_eq!(h.unknown, vec!["Colour".to_string()]);
        let e = Header::new(
            &names(&["sku", "SKU", "name", "price"]),
            &ColumnMapping::default(),
        )
        .unwrap_err();
        assert_eq!(e.code, "DUPLICATE_COLUMN");
    }

    #[test]
    fn a_row_with_several_faults_names_each() {
        let cols = [
            Column::Sku,
            Column::Name,
            Column::Price,
            Column::Currency,
            Column::Stock,
        ];
        let cells = ["A 1", "", "12,5", "XXX", "-3"];
        let errs = validate(
            cols.iter().zip(cells.iter().map(|c| Cell::Text(c))),
            &RowRules::default(),
        )
        .unwrap_err();
        let codes: Vec<(&str, Option<&str>)> = errs
            .iter()
            .map(|e| (e.code.as_str(), e.column.as_deref()))
            .collect();
        assert_eq!(
            codes,
            vec![
                ("INVALID_SKU", Some("sku")),
                ("REQUIRED", Some("name")),
                ("UNKNOWN_CURRENCY", Some("currency")),
                ("INVALID_STOCK", Some("stock")),
            ]
        );
    }

    #[test]
    fn equal_products_hash_equal_whatever_the_attribute_order() {
        let rules = RowRules {
            default_currency: Some("EUR".into()),
        };
        let cols = [Column::Sku, Column::Name, Column::Price, Column::Attributes];
        let a = validate(
            cols.iter().zip(
                ["S1", "Mug", "3", r#"{"b":1,"a":"x"}"#]
                    .iter()
                    .map(|c| Cell::Text(c)),
            ),
            &rules,
        )
        .unwrap();
        let b = validate(
            cols.iter().zip(
                ["S1", " Mug ", "3.00", r#"{"a":"x","b":1}"#]
                    .iter()
                    .map(|c| Cell::Text(c)),
            ),
            &rules,
        )
        .unwrap();
        assert_eq!(a.doc.hash(), b.doc.hash());
        assert_eq!(a.doc.price_amount, 300);
    }
}
