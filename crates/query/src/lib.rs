//! The SQL front end of a node.
//!
//! Owns: parsing ClickHouse statements ([`statement`]), turning them into
//! catalog changes ([`ddl`]), inserts through the input formats ([`input`])
//! and SELECTs planned and run by DataFusion over MergeTree parts
//! ([`provider`], with ClickHouse's functions in [`functions`] and the AST
//! rewrite in [`rewrite`]). [`Engine`] and [`Session`] are the entry points.
//!
//! **Architecture Invariant:** this crate does no network I/O; the server and
//! the `local` command both drive a [`Session`].

pub mod clusters;
pub mod complexity;
pub mod ddl;
mod distinct_order;
pub mod distributed;
pub mod engine;
pub mod error;
pub mod functions;
pub mod input;
mod joins;
mod keeper_map;
mod keyed_row_number;
pub mod keys;
mod large_filters;
pub mod limits;
mod operators;
pub mod processes;
pub mod provider;
mod read;
pub mod rewrite;
pub mod statement;
mod subquery_order;
mod subquery_sets;
pub mod system;
pub mod table;
mod topmost;
pub mod totals;
mod tuple_sets;
mod type_names;
mod typecheck;
mod use_nulls;

pub use engine::{Engine, EngineOptions, Input, QueryResult, Session, Summary};
pub use error::{QueryError, Result};
pub use statement::{bind_parameters, split_statements};
