//! Record batches as Arrow IPC stream bytes.

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::Schema;
use datafusion::arrow::error::ArrowError;
use datafusion::arrow::ipc::writer::StreamWriter;

/// One self-contained IPC stream: the schema, then `batch` if given.
pub fn encode(schema: &Schema, batch: Option<&RecordBatch>) -> Result<Vec<u8>, ArrowError> {
    let mut buf = Vec::new();
    {
        let mut w = StreamWriter::try_new(&mut buf, schema)?;
        if let Some(b) = batch {
            w.write(b)?;
        }
        w.finish()?;
    }
    Ok(buf)
}
