//! The demo shop: three suppliers with a catalog each, a two-level category tree per
//! catalog, 110 products per catalog with varied attributes, prices, weights and stock,
//! and the platform's shipping zones, methods and rates.
//! Deterministic, and idempotent: a seeded database is left as it is.

use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder};
use shop_catalog::CatalogCtx;
use shop_catalog::entity::{catalog as catalog_entity, product as product_entity};
use shop_catalog::service::{catalogs, categories, products};
use shop_inventory::InventoryCtx;
use shop_inventory::entity::ledger;
use shop_kit::auth::{Caller, Principal, Role};
use shop_kit::money::MoneyInput;
use shop_shipping::ShippingCtx;
use shop_shipping::service::zones::{self, Kind, NewMethod, NewZone, RateRow};
use shop_users::UsersCtx;

/// The demo admin's user id (for `shop token --role ADMIN`).
pub const DEMO_ADMIN: &str = "00000000-0000-7000-8000-000000000001";

/// The demo suppliers' user ids and shop names.
pub const DEMO_SUPPLIERS: [(&str, &str); 3] = [
    (
        "00000000-0000-7000-8000-000000000101",
        "Northwind Outfitters",
    ),
    ("00000000-0000-7000-8000-000000000102", "Lumen Electronics"),
    ("00000000-0000-7000-8000-000000000103", "Harvest Kitchen"),
];

/// The demo customer's user id.
pub const DEMO_CUSTOMER: &str = "00000000-0000-7000-8000-000000000201";

/// The password of every demo account. For development only: the demo seed is off
/// (`SHOP_SEED=false`) anywhere real.
pub const DEMO_PASSWORD: &str = "shop-demo-2026";

/// The demo accounts: (id, e-mail, name, role).
pub const DEMO_ACCOUNTS: [(&str, &str, &str, Role); 5] = [
    (DEMO_ADMIN, "admin@demo.shop", "Demo Admin", Role::Admin),
    (
        DEMO_SUPPLIERS[0].0,
        "northwind@demo.shop",
        DEMO_SUPPLIERS[0].1,
        Role::Supplier,
    ),
    (
        DEMO_SUPPLIERS[1].0,
        "lumen@demo.shop",
        DEMO_SUPPLIERS[1].1,
        Role::Supplier,
    ),
    (
        DEMO_SUPPLIERS[2].0,
        "harvest@demo.shop",
        DEMO_SUPPLIERS[2].1,
        Role::Supplier,
    ),
    (
        DEMO_CUSTOMER,
        "customer@demo.shop",
        "Demo Customer",
        Role::Customer,
    ),
];

pub const PRODUCTS_PER_CATALOG: usize = 110;

struct Leaf {
    name: &'static str,
    nouns: &'static [&'static str],
    base_price: i64,
}

struct Root {
    name: &'static str,
    leaves: &'static [Leaf],
}

struct CatalogPlan {
    currency: &'static str,
    description: &'static str,
    roots: &'static [Root],
    attribute: (&'static str, &'static [&'static str]),
}

const PLANS: [CatalogPlan; 3] = [
    CatalogPlan {
        currency: "EUR",
        description: "Clothing and gear for the outdoors.",
        attribute: ("material", &["cotton", "wool", "nylon", "leather", "linen"]),
        roots: &[
            Root {
                name: "Apparel",
                leaves: &[
                    Leaf {
                        name: "Shirts",
                        nouns: &["Shirt", "Tee", "Polo"],
                        base_price: 2499,
                    },
                    Leaf {
                        name: "Jackets",
                        nouns: &["Jacket", "Parka", "Windbreaker"],
                        base_price: 8999,
                    },
                    Leaf {
                        name: "Shoes",
                        nouns: &["Sneaker", "Boot", "Sandal"],
                        base_price: 6999,
                    },
                ],
            },
            Root {
                name: "Outdoor",
                leaves: &[
                    Leaf {
                        name: "Tents",
                        nouns: &["Tent", "Shelter"],
                        base_price: 14999,
                    },
                    Leaf {
                        name: "Backpacks",
                        nouns: &["Backpack", "Daypack"],
                        base_price: 5999,
                    },
                ],
            },
            Root {
                name: "Accessories",
                leaves: &[
                    Leaf {
                        name: "Hats",
                        nouns: &["Cap", "Beanie", "Sun Hat"],
                        base_price: 1999,
                    },
                    Leaf {
                        name: "Bags",
                        nouns: &["Tote", "Duffel", "Pouch"],
                        base_price: 3499,
                    },
                ],
            },
        ],
    },
    CatalogPlan {
        currency: "USD",
        description: "Computers, audio and phone accessories.",
        attribute: (
            "brand",
            &["Voltix", "Aurora", "Pixelcraft", "Sonique", "Kestrel"],
        ),
        roots: &[
            Root {
                name: "Computers",
                leaves: &[
                    Leaf {
                        name: "Laptops",
                        nouns: &["Laptop", "Ultrabook"],
                        base_price: 89999,
                    },
                    Leaf {
                        name: "Monitors",
                        nouns: &["Monitor", "Display"],
                        base_price: 24999,
                    },
                    Leaf {
                        name: "Keyboards",
                        nouns: &["Keyboard", "Keypad"],
                        base_price: 7999,
                    },
                ],
            },
            Root {
                name: "Audio",
                leaves: &[
                    Leaf {
                        name: "Headphones",
                        nouns: &["Headphones", "Earbuds"],
                        base_price: 12999,
                    },
                    Leaf {
                        name: "Speakers",
                        nouns: &["Speaker", "Soundbar"],
                        base_price: 9999,
                    },
                ],
            },
            Root {
                name: "Phones",
                leaves: &[
                    Leaf {
                        name: "Cases",
                        nouns: &["Case", "Bumper"],
                        base_price: 1999,
                    },
                    Leaf {
                        name: "Chargers",
                        nouns: &["Charger", "Power Bank", "Cable"],
                        base_price: 2999,
                    },
                ],
            },
        ],
    },
    CatalogPlan {
        currency: "EUR",
        description: "Cookware, tableware and a well-stocked pantry.",
        attribute: (
            "finish",
            &["matte", "glossy", "brushed", "enamel", "natural"],
        ),
        roots: &[
            Root {
                name: "Cookware",
                leaves: &[
                    Leaf {
                        name: "Pans",
                        nouns: &["Frying Pan", "Skillet", "Wok"],
                        base_price: 3999,
                    },
                    Leaf {
                        name: "Pots",
                        nouns: &["Stock Pot", "Saucepan", "Dutch Oven"],
                        base_price: 5999,
                    },
                ],
            },
            Root {
                name: "Tableware",
                leaves: &[
                    Leaf {
                        name: "Plates",
                        nouns: &["Plate", "Platter"],
                        base_price: 1499,
                    },
                    Leaf {
                        name: "Mugs",
                        nouns: &["Mug", "Cup"],
                        base_price: 1299,
                    },
                    Leaf {
                        name: "Glasses",
                        nouns: &["Tumbler", "Wine Glass"],
                        base_price: 999,
                    },
                ],
            },
            Root {
                name: "Pantry",
                leaves: &[
                    Leaf {
                        name: "Coffee",
                        nouns: &["Espresso Beans", "Filter Coffee"],
                        base_price: 1299,
                    },
                    Leaf {
                        name: "Tea",
                        nouns: &["Green Tea", "Black Tea", "Herbal Tea"],
                        base_price: 899,
                    },
                ],
            },
        ],
    },
];

const ADJECTIVES: &[&str] = &[
    "Classic", "Alpine", "Urban", "Coastal", "Midnight", "Summit", "Everyday", "Heritage",
    "Nordic", "Trail", "Studio", "Compact", "Deluxe", "Vintage", "Crimson",
];
const COLORS: &[&str] = &["red", "blue", "green", "black", "white", "grey", "orange"];
const SIZES: &[&str] = &["S", "M", "L", "XL"];
const STOCK_PATTERN: &[i64] = &[25, 0, 12, 40, 3, 60, 8, 0, 17, 33, 1];

#[derive(Debug, Default)]
pub struct SeedReport {
    pub accounts: usize,
    pub catalogs: usize,
    pub categories: usize,
    pub products: usize,
    pub stocked: usize,
    pub shipping_methods: usize,
    pub already_seeded: bool,
}

fn admin() -> Caller {
    Caller(Some(Principal::with_roles(
        DEMO_ADMIN,
        &[Role::Admin],
        "seed",
    )))
}

fn fail(e: shop_kit::ApiError) -> anyhow::Error {
    // The operator runs this: the full cause, database errors included, is what helps.
    anyhow::anyhow!("seeding failed: {e:?}")
}

/// Seeds empty databases; leaves seeded ones alone.
pub async fn seed(
    users: &UsersCtx,
    catalog: &CatalogCtx,
    inventory: &InventoryCtx,
    shipping: &ShippingCtx,
) -> anyhow::Result<SeedReport> {
    let mut report = SeedReport::default();
    for (id, email, name, role) in DEMO_ACCOUNTS {
        if shop_users::service::admin::seed_account(users, id, email, name, DEMO_PASSWORD, &[role])
            .await
            .map_err(fail)?
        {
            report.accounts += 1;
        }
    }
    let existing = catalog_entity::Entity::find().count(&catalog.db).await?;
    if existing == 0 {
        seed_catalogs(catalog, &mut report).await?;
    } else {
        report.already_seeded = true;
    }
    // Stock is seeded separately so a crash between the two steps heals on next start.
    if ledger::Entity::find().count(&inventory.db).await? == 0 {
        report.stocked = seed_stock(catalog, inventory).await?;
    }
    if zones::zones(shipping, None).await.map_err(fail)?.is_empty() {
        report.shipping_methods = seed_shipping(shipping).await?;
    }
    Ok(report)
}

/// The platform's zones: Germany, the rest of the EU, the United States. Each ships
/// standard and express in euros and dollars (the demo catalogs sell in both), by
/// weight bands up to 31.5 kg, standard free from 50.00.
async fn seed_shipping(ctx: &ShippingCtx) -> anyhow::Result<usize> {
    let caller = admin();
    let zones_to_make: [(&str, &[&str], i32, i64); 3] = [
        ("Germany", &["DE"], 1, 0),
        (
            "European Union",
            &[
                "AT", "BE", "BG", "CY", "CZ", "DK", "EE", "ES", "FI", "FR", "GR", "HR", "HU", "IE",
                "IT", "LT", "LU", "LV", "MT", "NL", "PL", "PT", "RO", "SE", "SI", "SK",
            ],
            3,
            500,
        ),
        ("United States", &["US"], 5, 1_000),
    ];
    let mut made = 0;
    for (name, countries, days, surcharge) in zones_to_make {
        let zone = zones::create_zone(
            ctx,
            &caller,
            NewZone {
                name: name.into(),
                countries: countries.iter().map(|c| c.to_string()).collect(),
                supplier_id: None,
            },
        )
        .await
        .map_err(fail)?;
        for currency in ["EUR", "USD"] {
            for (kind, label, min_days, max_days, free_over, prices) in [
                (
                    Kind::Standard,
                    "Standard",
                    days,
                    days + 2,
                    Some(5_000),
                    [490, 690, 1_290],
                ),
                (
                    Kind::Express,
                    "Express",
                    1,
                    days,
                    None,
                    [1_490, 1_790, 2_490],
                ),
            ] {
                let m = zones::create_method(
                    ctx,
                    &caller,
                    NewMethod {
                        zone_id: zone.zone.id.clone(),
                        kind,
                        name: format!("{label} ({currency})"),
                        carrier: "simulated".into(),
                        min_days,
                        max_days,
                        currency: currency.into(),
                        free_over,
                        supplier_id: None,
                    },
                )
                .await
                .map_err(fail)?;
                let bands = [(0, 1_000), (1_000, 5_000), (5_000, 31_500)];
                let rows = bands
                    .iter()
                    .zip(prices)
                    .map(|(&(min_weight, max_weight), price)| RateRow {
                        min_weight,
                        max_weight,
                        min_order: 0,
                        price: price + surcharge,
                    })
                    .collect();
                zones::set_rates(ctx, &caller, &m.id, rows)
                    .await
                    .map_err(fail)?;
                made += 1;
            }
        }
    }
    Ok(made)
}

async fn seed_catalogs(ctx: &CatalogCtx, report: &mut SeedReport) -> anyhow::Result<()> {
    let caller = admin();
    for (n, ((supplier_id, shop_name), plan)) in DEMO_SUPPLIERS.iter().zip(PLANS.iter()).enumerate()
    {
        let cat = catalogs::create(
            ctx,
            &caller,
            catalogs::NewCatalog {
                name: shop_name.to_string(),
                description: Some(plan.description.to_string()),
                supplier_id: Some(supplier_id.to_string()),
            },
        )
        .await
        .map_err(fail)?;
        report.catalogs += 1;
        let mut leaves = Vec::new();
        for root in plan.roots {
            let r = categories::create(ctx, &caller, &cat.id, None, root.name)
                .await
                .map_err(fail)?;
            report.categories += 1;
            for leaf in root.leaves {
                let l = categories::create(ctx, &caller, &cat.id, Some(&r.id), leaf.name)
                    .await
                    .map_err(fail)?;
                report.categories += 1;
                leaves.push((l.id, leaf));
            }
        }
        let txn = shop_kit::db::begin_write(&ctx.db).await?;
        for i in 0..PRODUCTS_PER_CATALOG {
            let (category_id, leaf) = &leaves[i % leaves.len()];
            let noun = leaf.nouns[(i / leaves.len()) % leaf.nouns.len()];
            let adjective = ADJECTIVES[(i * 7 + n * 3) % ADJECTIVES.len()];
            let color = COLORS[(i * 3 + n) % COLORS.len()];
            let (attr_name, attr_values) = plan.attribute;
            let mut attributes = serde_json::json!({
                "color": color,
                attr_name: attr_values[(i * 5 + n) % attr_values.len()],
            });
            if n == 0 {
                attributes["sizes"] = serde_json::json!(SIZES[..1 + i % SIZES.len()]);
            }
            // Prices vary around the category's base, in whole minor units.
            let price = leaf.base_price + ((i as i64 * 137) % 40) * 100 - 1000;
            let input = products::NewProduct {
                catalog_id: cat.id.clone(),
                category_id: Some(category_id.clone()),
                sku: format!("{}-{:04}", ["NW", "LM", "HK"][n], i + 1),
                name: format!("{adjective} {noun}"),
                description: Some(format!(
                    "A {color} {} from {shop_name}'s {} range.",
                    noun.to_lowercase(),
                    leaf.name.to_lowercase()
                )),
                price: MoneyInput {
                    amount: price.max(99),
                    currency: plan.currency.into(),
                },
                // Drawn by the web app (`/images/demo/…`): the demo needs no image host.
                images: vec![format!(
                    "/images/demo/{color}/{}.svg",
                    noun.to_lowercase().replace(' ', "-")
                )],
                attributes: Some(attributes),
                // Parcels of 150 g to 3 kg, so the demo's rate bands all come up.
                weight_grams: Some(150 + ((i as i32 * 373 + n as i32 * 211) % 2850)),
                dimensions: Some(products::Dimensions(
                    200 + (i as i32 % 5) * 50,
                    150,
                    40 + (i as i32 % 3) * 30,
                )),
                status: None,
            };
            products::insert(ctx, &txn, &cat, input)
                .await
                .map_err(fail)?;
            report.products += 1;
        }
        txn.commit().await?;
        ctx.outbox.wake();
    }
    Ok(())
}

async fn seed_stock(catalog: &CatalogCtx, inventory: &InventoryCtx) -> anyhow::Result<usize> {
    let mut stocked = 0;
    for (supplier_id, _) in DEMO_SUPPLIERS {
        let cats = catalog_entity::Entity::find()
            .filter(catalog_entity::Column::SupplierId.eq(supplier_id))
            .all(&catalog.db)
            .await?;
        for cat in cats {
            let items = product_entity::Entity::find()
                .filter(product_entity::Column::CatalogId.eq(&cat.id))
                .order_by_asc(product_entity::Column::Sku)
                .all(&catalog.db)
                .await?;
            for (i, p) in items.iter().enumerate() {
                let qty = STOCK_PATTERN[i % STOCK_PATTERN.len()];
                shop_inventory::service::stock::receive_initial(
                    inventory,
                    &p.id,
                    &cat.id,
                    supplier_id,
                    qty,
                    "initial stock (demo data)",
                )
                .await
                .map_err(fail)?;
                stocked += 1;
            }
        }
    }
    Ok(stocked)
}

/// Shoppers in the demo's purchase history.
pub const HISTORY_SHOPPERS: usize = 400;

/// Plants a purchase history in recommendations' tables, so "also bought", trending
/// and personal recommendations have something to show in the demo: shoppers each
/// with a taste (one leaf category of the demo catalogs) who buy mostly within it,
/// plus a dozen best-sellers everybody buys (see `shop_recommendations::synthetic`).
/// Only recommendations learn these orders; the orders subgraph has none of them.
/// Skipped when recommendations already learned any order. Returns the orders learned.
pub async fn seed_history(
    catalog: &CatalogCtx,
    recs: &shop_recommendations::RecsCtx,
) -> anyhow::Result<usize> {
    use shop_recommendations::entity::product as recs_product;
    use shop_recommendations::synthetic::{self, Assortment, Shape};
    let learned = recs_product::Entity::find()
        .filter(recs_product::Column::Orders.gt(0))
        .count(&recs.db)
        .await?;
    if learned > 0 {
        return Ok(0);
    }
    let mut supplied = Vec::new();
    for (supplier_id, _) in DEMO_SUPPLIERS {
        for cat in catalog_entity::Entity::find()
            .filter(catalog_entity::Column::SupplierId.eq(supplier_id))
            .all(&catalog.db)
            .await?
        {
            supplied.extend(
                product_entity::Entity::find()
                    .filter(product_entity::Column::CatalogId.eq(&cat.id))
                    .order_by_asc(product_entity::Column::Sku)
                    .all(&catalog.db)
                    .await?,
            );
        }
    }
    // Every 27th product sells to everybody; the rest go by leaf category.
    let mut popular = Vec::new();
    let mut by_category: std::collections::BTreeMap<String, Vec<String>> = Default::default();
    for (i, p) in supplied.into_iter().enumerate() {
        match (i % 27 == 0, p.category_id) {
            (true, _) | (_, None) => popular.push(p.id),
            (false, Some(c)) => by_category.entry(c).or_default().push(p.id),
        }
    }
    let assortment = Assortment {
        tastes: by_category.into_values().collect(),
        popular,
    };
    // The default shape is this history's (recbench evaluates the same structure).
    let shape = Shape {
        shoppers: HISTORY_SHOPPERS,
        ..Shape::default()
    };
    let mut orders = 0;
    for shopper in synthetic::history_over(shape, &assortment, 2026) {
        for order in &shopper.orders {
            let e = synthetic::order_event(&shopper.id, order);
            shop_recommendations::service::learn(recs, &e)
                .await
                .map_err(fail)?;
            orders += 1;
        }
    }
    Ok(orders)
}
