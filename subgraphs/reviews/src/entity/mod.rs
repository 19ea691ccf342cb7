pub mod purchase;
pub mod rating;
pub mod report;
pub mod review;
pub mod vote;
