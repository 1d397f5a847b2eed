//! Connects to a node, creates a table, inserts CSV and reads it back.
//!
//! ```sh
//! quorumhouse server --data-dir /tmp/qh-example --port 9001 &
//! cargo run -p qh-client --example query -- http://127.0.0.1:9001
//! ```

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let endpoint = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "http://127.0.0.1:9001".into());
    let mut client = qh_client::Client::connect(&[endpoint]).await?;
    client
        .query("CREATE TABLE IF NOT EXISTS example (id UInt64, name String) ENGINE = MergeTree ORDER BY id")
        .await?;
    client
        .insert_bytes("INSERT INTO example FORMAT CSV", b"1,one\n2,two\n".to_vec())
        .await?;
    let out = client
        .query("SELECT count(), max(name) FROM example")
        .await?;
    for b in &out.batches {
        println!("{b:?}");
    }
    Ok(())
}
