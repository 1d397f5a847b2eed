//! A result set in any output format, for every door that prints one (HTTP,
//! the CLI client, `quorumhouse local`): the text formats of [`Writer`],
//! ClickHouse's `Native` and `RowBinary*`, Arrow IPC (`Arrow`, `ArrowStream`)
//! and `Parquet`. One encoder per result; each call returns the bytes to send
//! next, so a door can stream them.

use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use arrow::ipc::writer::{FileWriter, StreamWriter};
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::WriterProperties;

use crate::formats::{FormatOptions, OutputFormat, Writer};
use crate::native::NativeWriter;
use crate::row_binary::{RowBinaryHeader, RowBinaryWriter};
use crate::ErrorCode;

/// Why a result cannot be encoded: the format is unknown, or a column's
/// type has no representation in it.
#[derive(Debug, thiserror::Error)]
pub enum EncodeError {
    #[error("Unknown output format {0}")]
    UnknownFormat(String),
    #[error("{0}")]
    Column(String),
}

impl EncodeError {
    pub fn code(&self) -> ErrorCode {
        match self {
            EncodeError::UnknownFormat(_) => ErrorCode::UNKNOWN_FORMAT,
            EncodeError::Column(_) => ErrorCode::ILLEGAL_COLUMN,
        }
    }
}

fn column_err(e: impl std::fmt::Display) -> EncodeError {
    EncodeError::Column(e.to_string())
}

enum Kind {
    Text(Writer),
    Native { w: NativeWriter, wrote: bool },
    RowBinary { w: RowBinaryWriter, started: bool },
    ArrowFile(FileWriter<Vec<u8>>),
    ArrowStream(StreamWriter<Vec<u8>>),
    Parquet(Option<ArrowWriter<Vec<u8>>>),
}

/// Encodes one result set.
pub struct ResultEncoder {
    kind: Kind,
    name: String,
}

impl ResultEncoder {
    /// An encoder for the format `name` (ClickHouse's names; `None`:
    /// TabSeparated).
    pub fn new(
        name: Option<&str>,
        schema: &SchemaRef,
        opts: FormatOptions,
    ) -> Result<ResultEncoder, EncodeError> {
        let name = name.unwrap_or("TabSeparated");
        let kind = if let Some(header) = RowBinaryHeader::of_format(name) {
            Kind::RowBinary {
                w: RowBinaryWriter::new(schema, header).map_err(column_err)?,
                started: false,
            }
        } else {
            match name {
                "Native" => Kind::Native {
                    w: NativeWriter::new(schema).map_err(column_err)?,
                    wrote: false,
                },
                "Arrow" => {
                    Kind::ArrowFile(FileWriter::try_new(Vec::new(), schema).map_err(column_err)?)
                }
                "ArrowStream" => Kind::ArrowStream(
                    StreamWriter::try_new(Vec::new(), schema).map_err(column_err)?,
                ),
                "Parquet" => {
                    // ClickHouse's default codec (output_format_parquet_compression_method).
                    let props = WriterProperties::builder()
                        .set_compression(Compression::ZSTD(ZstdLevel::default()))
                        .build();
                    let w = ArrowWriter::try_new(Vec::new(), Arc::clone(schema), Some(props))
                        .map_err(column_err)?;
                    Kind::Parquet(Some(w))
                }
                n => match OutputFormat::parse(n) {
                    Some(f) => Kind::Text(Writer::with_options(f, Arc::clone(schema), opts)),
                    None => return Err(EncodeError::UnknownFormat(n.to_string())),
                },
            }
        };
        Ok(ResultEncoder {
            kind,
            name: name.to_string(),
        })
    }

    /// The format's name as given (for `X-ClickHouse-Format`).
    pub fn format_name(&self) -> &str {
        &self.name
    }

    /// Binary formats are not text, whatever the terminal thinks.
    pub fn is_binary(&self) -> bool {
        !matches!(self.kind, Kind::Text(_))
    }

    pub fn content_type(&self) -> &'static str {
        if self.is_binary() {
            "application/octet-stream"
        } else {
            "text/plain; charset=UTF-8"
        }
    }

    /// The bytes for `batch` (the text formats' header before the first).
    pub fn write_batch(&mut self, batch: &RecordBatch) -> Result<Vec<u8>, EncodeError> {
        match &mut self.kind {
            Kind::Text(w) => Ok(w.write_batch(batch).into_bytes()),
            Kind::Native { w, wrote } => {
                // ClickHouse sends no empty blocks but the header of an empty result.
                if batch.num_rows() == 0 {
                    return Ok(Vec::new());
                }
                *wrote = true;
                w.write_block(batch).map_err(column_err)
            }
            Kind::RowBinary { w, started } => {
                let mut out = if *started { Vec::new() } else { w.header() };
                *started = true;
                out.extend(w.write_batch(batch).map_err(column_err)?);
                Ok(out)
            }
            Kind::ArrowFile(w) => {
                w.write(batch).map_err(column_err)?;
                Ok(std::mem::take(w.get_mut()))
            }
            Kind::ArrowStream(w) => {
                w.write(batch).map_err(column_err)?;
                Ok(std::mem::take(w.get_mut()))
            }
            Kind::Parquet(w) => {
                let w = w
                    .as_mut()
                    .ok_or_else(|| column_err("Parquet: written after the end"))?;
                w.write(batch).map_err(column_err)?;
                // The writer counts its own offsets; what it flushed can go.
                Ok(std::mem::take(w.inner_mut()))
            }
        }
    }

    /// The `WITH TOTALS` row: the text formats print it; the binary ones,
    /// as ClickHouse's HTTP interface, leave it out.
    pub fn write_totals(&mut self, totals: &RecordBatch) -> Vec<u8> {
        match &mut self.kind {
            Kind::Text(w) => w.write_totals(totals).into_bytes(),
            _ => Vec::new(),
        }
    }

    /// JSON's `statistics` object; call before [`ResultEncoder::finish`].
    pub fn set_statistics(&mut self, elapsed_seconds: f64, rows_read: u64, bytes_read: u64) {
        if let Kind::Text(w) = &mut self.kind {
            w.set_statistics(elapsed_seconds, rows_read, bytes_read);
        }
    }

    /// The bytes that end the result (a header for an empty one, a footer).
    pub fn finish(&mut self) -> Result<Vec<u8>, EncodeError> {
        match &mut self.kind {
            Kind::Text(w) => Ok(w.finish().into_bytes()),
            Kind::Native { w, wrote } => Ok(if *wrote {
                Vec::new()
            } else {
                *wrote = true;
                w.header_block()
            }),
            Kind::RowBinary { w, started } => Ok(if *started {
                Vec::new()
            } else {
                *started = true;
                w.header()
            }),
            Kind::ArrowFile(w) => {
                w.finish().map_err(column_err)?;
                Ok(std::mem::take(w.get_mut()))
            }
            Kind::ArrowStream(w) => {
                w.finish().map_err(column_err)?;
                Ok(std::mem::take(w.get_mut()))
            }
            Kind::Parquet(w) => match w.take() {
                Some(w) => w.into_inner().map_err(column_err),
                None => Ok(Vec::new()),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Int64Array, StringArray};
    use arrow::datatypes::{DataType, Field, Schema};

    fn batch() -> RecordBatch {
        let schema = Arc::new(Schema::new(vec![
            Field::new("n", DataType::Int64, false),
            Field::new("s", DataType::Utf8, true),
        ]));
        RecordBatch::try_new(
            schema,
            vec![
                Arc::new(Int64Array::from(vec![1, 2, 3])),
                Arc::new(StringArray::from(vec![Some("a/b"), None, Some("c")])),
            ],
        )
        .unwrap()
    }

    fn encode(name: &str, batches: &[RecordBatch]) -> Vec<u8> {
        let schema = batch().schema();
        let mut e = ResultEncoder::new(Some(name), &schema, FormatOptions::default()).unwrap();
        let mut out = Vec::new();
        for b in batches {
            out.extend(e.write_batch(b).unwrap());
        }
        out.extend(e.finish().unwrap());
        out
    }

    #[test]
    fn parquet_round_trips_through_arrows_reader() {
        let b = batch();
        let bytes = encode("Parquet", &[b.clone(), b.clone()]);
        let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(
            bytes::Bytes::from(bytes),
        )
        .unwrap()
        .build()
        .unwrap();
        let got: Vec<RecordBatch> = reader.map(|b| b.unwrap()).collect();
        let rows: usize = got.iter().map(|b| b.num_rows()).sum();
        assert_eq!(rows, 6);
        let back = arrow::compute::concat_batches(&got[0].schema(), &got).unwrap();
        assert_eq!(back.column(1).slice(0, 3).as_ref(), b.column(1).as_ref());
        assert_eq!(back.column(0).slice(3, 3).as_ref(), b.column(0).as_ref());
    }

    #[test]
    fn arrow_file_and_stream_read_back_whole() {
        let b = batch();
        let file = encode("Arrow", &[b.clone(), b.clone()]);
        let r = arrow::ipc::reader::FileReader::try_new(std::io::Cursor::new(file), None).unwrap();
        assert_eq!(r.map(|b| b.unwrap().num_rows()).sum::<usize>(), 6);
        let stream = encode("ArrowStream", std::slice::from_ref(&b));
        let r =
            arrow::ipc::reader::StreamReader::try_new(std::io::Cursor::new(stream), None).unwrap();
        assert_eq!(r.map(|b| b.unwrap().num_rows()).sum::<usize>(), 3);
    }

    #[test]
    fn empty_results_still_carry_their_header() {
        let native = encode("Native", &[]);
        assert!(!native.is_empty());
        let rb = encode("RowBinaryWithNames", &[]);
        assert_eq!(rb[0], 2, "two column names");
        assert!(encode("RowBinary", &[]).is_empty());
        assert!(matches!(
            ResultEncoder::new(Some("Nope"), &batch().schema(), FormatOptions::default()),
            Err(EncodeError::UnknownFormat(_))
        ));
    }

    #[test]
    fn json_options_quote_and_escape_as_asked() {
        let schema = batch().schema();
        let quoted = FormatOptions {
            json_quote_64bit_integers: true,
            json_escape_forward_slashes: false,
        };
        let mut e = ResultEncoder::new(Some("JSONEachRow"), &schema, quoted).unwrap();
        let text = String::from_utf8(e.write_batch(&batch()).unwrap()).unwrap();
        assert!(text.starts_with("{\"n\":\"1\",\"s\":\"a/b\"}\n"), "{text}");
        let plain = String::from_utf8(encode("JSONEachRow", &[batch()])).unwrap();
        assert!(plain.starts_with("{\"n\":1,\"s\":\"a\\/b\"}\n"), "{plain}");
    }
}
