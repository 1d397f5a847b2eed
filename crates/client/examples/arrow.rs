//! Inserts Arrow record batches, streams a result back batch by batch, and
//! cancels a statement by its query id.
//!
//! ```sh
//! cargo run --release -- cluster up
//! cargo run -p qh-client --example arrow -- 127.0.0.1:9001,127.0.0.1:9002
//! ```

use std::sync::Arc;
use std::time::Duration;

use arrow::array::{RecordBatch, StringArray, UInt64Array};
use arrow::datatypes::{DataType, Field, Schema};
use qh_client::{Client, QueryOptions};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let hosts = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:9001".into());
    let endpoints: Vec<&str> = hosts.split(',').collect();
    let mut client = Client::connect(&endpoints).await?;
    println!("connected to {}", client.endpoint());
    client
        .query(
            "CREATE TABLE IF NOT EXISTS arrow_example (id UInt64, name String) \
             ENGINE = MergeTree ORDER BY id",
        )
        .await?;

    let schema = Arc::new(Schema::new(vec![
        Field::new("id", DataType::UInt64, false),
        Field::new("name", DataType::Utf8, false),
    ]));
    let ids: Vec<u64> = (0..10_000).collect();
    let names: Vec<String> = ids.iter().map(|i| format!("row {i}")).collect();
    let batch = RecordBatch::try_new(
        schema,
        vec![
            Arc::new(UInt64Array::from(ids)),
            Arc::new(StringArray::from(names)),
        ],
    )?;
    let summary = client
        .insert_batches(
            "arrow_example",
            &[batch],
            QueryOptions::new().query_id("arrow-example-insert"),
        )
        .await?;
    println!("inserted {} rows", summary.written_rows);

    let mut stream = client
        .query_stream(
            "SELECT id, name FROM arrow_example ORDER BY id",
            QueryOptions::new(),
        )
        .await?;
    let mut rows = 0;
    while let Some(batch) = stream.next_batch().await? {
        rows += batch.num_rows();
    }
    println!("read {rows} rows back (every run adds 10,000)");

    // A statement that would run for ever, stopped by its id.
    let canceller = client.clone();
    let mut runner = client.clone();
    let running = tokio::spawn(async move {
        runner
            .query_with(
                "SELECT count() FROM system.numbers WHERE number % 1000 = 1001",
                QueryOptions::new().query_id("arrow-example-endless"),
            )
            .await
    });
    while !canceller.cancel("arrow-example-endless").await? {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    match running.await? {
        Err(e) => println!("cancelled: {e} (code {}, {})", e.code(), e.name()),
        Ok(_) => println!("finished before it was cancelled"),
    }
    Ok(())
}
