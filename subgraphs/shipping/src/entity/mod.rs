pub mod method;
pub mod parcel;
pub mod parcel_item;
pub mod rate;
pub mod shipment;
pub mod shipment_line;
pub mod zone;
pub mod zone_country;
