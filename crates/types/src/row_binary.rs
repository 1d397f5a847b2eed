//! ClickHouse's `RowBinary`, `RowBinaryWithNames` and
//! `RowBinaryWithNamesAndTypes` result formats: what the JDBC driver
//! (DBeaver, Metabase) and most language clients read over HTTP.
//!
//! Rows one after another, each column's value in Native's encoding of one
//! value, except that `Nullable(T)` is one byte (1 = NULL) followed by T's
//! value only when it is not NULL, and `Array(T)` is a VarUInt length
//! followed by its elements. The header variants start with VarUInt columns
//! and the names (and then the type names) as length-prefixed strings.

use arrow::array::{Array, ArrayRef, AsArray, RecordBatch};
use arrow::datatypes::Schema;

use crate::native::{self, NativeError};
use crate::ChType;

/// Which header precedes the rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RowBinaryHeader {
    None,
    Names,
    NamesAndTypes,
}

impl RowBinaryHeader {
    /// The header a ClickHouse format name asks for; `None` when the name
    /// is not a RowBinary format.
    pub fn of_format(name: &str) -> Option<RowBinaryHeader> {
        Some(match name {
            "RowBinary" => RowBinaryHeader::None,
            "RowBinaryWithNames" => RowBinaryHeader::Names,
            "RowBinaryWithNamesAndTypes" => RowBinaryHeader::NamesAndTypes,
            _ => return None,
        })
    }
}

/// Writes result batches as RowBinary rows, with the types fixed by the
/// schema (as Native sends them).
pub struct RowBinaryWriter {
    types: Vec<ChType>,
    names: Vec<String>,
    header: RowBinaryHeader,
}

impl RowBinaryWriter {
    pub fn new(schema: &Schema, header: RowBinaryHeader) -> Result<Self, NativeError> {
        let mut types = Vec::with_capacity(schema.fields().len());
        for f in schema.fields() {
            types.push(
                native::column_type(f).ok_or_else(|| NativeError::Unsupported {
                    column: f.name().clone(),
                    ty: f.data_type().to_string(),
                })?,
            );
        }
        Ok(RowBinaryWriter {
            types,
            names: schema.fields().iter().map(|f| f.name().clone()).collect(),
            header,
        })
    }

    /// The bytes before the first row (empty for plain RowBinary).
    pub fn header(&self) -> Vec<u8> {
        let mut out = Vec::new();
        if self.header == RowBinaryHeader::None {
            return out;
        }
        native::var_uint(&mut out, self.names.len() as u64);
        for n in &self.names {
            native::string(&mut out, n.as_bytes());
        }
        if self.header == RowBinaryHeader::NamesAndTypes {
            for t in &self.types {
                native::string(&mut out, t.to_string().as_bytes());
            }
        }
        out
    }

    /// Every row of `batch`.
    pub fn write_batch(&self, batch: &RecordBatch) -> Result<Vec<u8>, NativeError> {
        let columns: Vec<ArrayRef> = batch
            .columns()
            .iter()
            .map(native::plain_column)
            .collect::<Result<_, _>>()?;
        let mut out = Vec::with_capacity(batch.get_array_memory_size());
        for row in 0..batch.num_rows() {
            for ((ty, col), name) in self.types.iter().zip(&columns).zip(&self.names) {
                write_value(&mut out, ty, col, row, name)?;
            }
        }
        Ok(out)
    }
}

fn write_value(
    out: &mut Vec<u8>,
    ty: &ChType,
    col: &ArrayRef,
    row: usize,
    name: &str,
) -> Result<(), NativeError> {
    match ty {
        ChType::Nullable(inner) => {
            if col.is_null(row) {
                out.push(1);
                Ok(())
            } else {
                out.push(0);
                write_value(out, inner, col, row, name)
            }
        }
        ChType::LowCardinality(inner) => write_value(out, inner, col, row, name),
        ChType::Array(inner) => {
            let list = col
                .as_list_opt::<i32>()
                .ok_or_else(|| native::unsupported(name, col))?;
            let values = native::plain_column(&list.value(row))?;
            native::var_uint(out, values.len() as u64);
            for i in 0..values.len() {
                write_value(out, inner, &values, i, name)?;
            }
            Ok(())
        }
        // One value is Native's encoding of a one-row column.
        _ => native::write_values(out, ty, &col.slice(row, 1), name),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::{ListArray, StringArray, UInt64Array};
    use arrow::datatypes::{DataType, Field, Int32Type};

    use super::*;

    #[test]
    fn rows_with_names_and_types() {
        let schema = Arc::new(Schema::new(vec![
            Field::new("n", DataType::UInt64, false),
            Field::new("s", DataType::Utf8, true),
            Field::new(
                "a",
                DataType::List(Arc::new(Field::new("item", DataType::Int32, true))),
                false,
            ),
        ]));
        let batch = RecordBatch::try_new(
            schema.clone(),
            vec![
                Arc::new(UInt64Array::from(vec![1, 2])),
                Arc::new(StringArray::from(vec![Some("ab"), None])),
                Arc::new(ListArray::from_iter_primitive::<Int32Type, _, _>(vec![
                    Some(vec![Some(7)]),
                    Some(vec![]),
                ])),
            ],
        )
        .unwrap();
        let w = RowBinaryWriter::new(&schema, RowBinaryHeader::NamesAndTypes).unwrap();
        let mut bytes = w.header();
        bytes.extend(w.write_batch(&batch).unwrap());
        let mut want = vec![3, 1, b'n', 1, b's', 1, b'a'];
        want.extend([6]);
        want.extend(b"UInt64");
        want.extend([16]);
        want.extend(b"Nullable(String)");
        want.extend([22]);
        want.extend(b"Array(Nullable(Int32))");
        // Row 1: 1u64, not NULL "ab", [7] (an element not NULL).
        want.extend(1u64.to_le_bytes());
        want.extend([0, 2, b'a', b'b']);
        want.extend([1, 0]);
        want.extend(7i32.to_le_bytes());
        // Row 2: 2u64, NULL, [].
        want.extend(2u64.to_le_bytes());
        want.extend([1]);
        want.extend([0]);
        assert_eq!(bytes, want);
    }
}
