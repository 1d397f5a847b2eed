//! What the engine-level tests share: an engine without background merges
//! (so parts stay as inserted), running a statement, printing batches.

use std::sync::Arc;

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::util::pretty::pretty_format_batches;
use qh_query::{Engine, EngineOptions, Session, Summary};

pub fn engine(dir: &std::path::Path) -> Arc<Engine> {
    let opts = EngineOptions {
        background_merges: false,
        ..Default::default()
    };
    Engine::open(dir, opts).expect("engine")
}

pub async fn run(s: &mut Session, sql: &str) -> (Vec<RecordBatch>, Summary) {
    let r = s
        .execute(sql, &mut None)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
    (r.batches, r.summary)
}

/// The batches as a table. Zero-row batches are left out: a plan may end in
/// one empty batch or in none, and the client prints the same for both.
pub fn text(b: &[RecordBatch]) -> String {
    let rows: Vec<RecordBatch> = b.iter().filter(|b| b.num_rows() > 0).cloned().collect();
    pretty_format_batches(&rows).expect("format").to_string()
}
