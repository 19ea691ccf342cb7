use sea_orm::entity::prelude::*;

/// A product's visible reviews counted by stars.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "reviews_ratings")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub product_id: String,
    pub stars_1: i64,
    pub stars_2: i64,
    pub stars_3: i64,
    pub stars_4: i64,
    pub stars_5: i64,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

impl Model {
    pub fn histogram(&self) -> [i64; 5] {
        [
            self.stars_1,
            self.stars_2,
            self.stars_3,
            self.stars_4,
            self.stars_5,
        ]
    }
}
