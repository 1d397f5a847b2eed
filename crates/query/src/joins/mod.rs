//! ClickHouse's join behaviour where DataFusion's differs: which side a
//! hash join builds on (`build_side.rs`, a physical rule) and what the key
//! column of a `USING` join holds (`using.rs`, a logical rewrite).

pub mod build_side;
pub mod using;
