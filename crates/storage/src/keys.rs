//! Sorting and partitioning of rows by the table's key expressions.
//!
//! Storage does not evaluate SQL: the query layer hands it a [`KeyEvaluator`]
//! compiled from the table's ORDER BY and PARTITION BY expressions.

use std::collections::HashMap;
use std::fmt::Debug;
use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, RecordBatch, UInt32Array};
use datafusion::arrow::compute::{lexsort_to_indices, take_record_batch, SortColumn};
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::row::{RowConverter, SortField};
use datafusion::common::ScalarValue;

use qh_types::ChType;

use crate::error::{Result, StorageError};
use crate::part::PartitionInfo;

/// Evaluates a table's key expressions over a batch of its rows.
pub trait KeyEvaluator: Send + Sync + Debug {
    /// The ORDER BY key columns, in order (empty for `ORDER BY tuple()`).
    fn sort_key(&self, batch: &RecordBatch) -> Result<Vec<ArrayRef>>;
    /// The PARTITION BY value of each row, or None when unpartitioned.
    fn partition_key(&self, batch: &RecordBatch) -> Result<Option<ArrayRef>>;
    /// What fills columns of parts written before the column was added.
    fn column_defaults(&self) -> ColumnDefaults {
        ColumnDefaults::default()
    }
}

/// A DEFAULT expression over other columns of the row (`DEFAULT x * 2`).
pub trait ComputedDefault: Send + Sync + Debug {
    /// The columns it reads, in the order [`ComputedDefault::evaluate`]'s
    /// batch holds them.
    fn inputs(&self) -> &SchemaRef;
    /// Its value for each row of `batch` (columns as in `inputs`).
    fn evaluate(&self, batch: &RecordBatch) -> Result<ArrayRef>;
}

/// How to read a column stored in a former type: that type, and the cast.
type Conversion = (ChType, Arc<dyn ComputedDefault>);

/// The values of columns a part lacks (added by ALTER after it was
/// written), as ClickHouse computes them: the column's DEFAULT, a constant
/// or an expression over the part's own rows, else the type's default.
///
/// It also holds how to read a column a part stores in a type the column
/// had before `MODIFY COLUMN` changed it: a `CAST` to the current type
/// compiled by the query layer, so old parts read exactly as the converted
/// ones a merge writes.
#[derive(Debug, Clone, Default)]
pub struct ColumnDefaults {
    constants: HashMap<String, ScalarValue>,
    computed: HashMap<String, Arc<dyn ComputedDefault>>,
    conversions: HashMap<String, Vec<Conversion>>,
}

impl ColumnDefaults {
    pub fn add_constant(&mut self, column: &str, v: ScalarValue) {
        self.constants.insert(column.to_string(), v);
    }

    pub fn add_computed(&mut self, column: &str, d: Arc<dyn ComputedDefault>) {
        self.computed.insert(column.to_string(), d);
    }

    pub fn constant(&self, column: &str) -> Option<&ScalarValue> {
        self.constants.get(column)
    }

    pub fn computed(&self, column: &str) -> Option<&Arc<dyn ComputedDefault>> {
        self.computed.get(column)
    }

    /// How to read `column` stored as `from` (a type it had before): an
    /// expression over one input column of type `from`.
    pub fn add_conversion(&mut self, column: &str, from: ChType, c: Arc<dyn ComputedDefault>) {
        self.conversions
            .entry(column.to_string())
            .or_default()
            .push((from, c));
    }

    pub fn conversion(&self, column: &str, from: &ChType) -> Option<&Arc<dyn ComputedDefault>> {
        self.conversions
            .get(column)?
            .iter()
            .find(|(t, _)| t == from)
            .map(|(_, c)| c)
    }

    /// Only the constants and conversions (what reads the inputs of a
    /// computed default).
    pub fn constants_only(&self) -> ColumnDefaults {
        ColumnDefaults {
            constants: self.constants.clone(),
            computed: HashMap::new(),
            conversions: self.conversions.clone(),
        }
    }
}

/// Sorts `batch` by `keys` (plus `extra` tie-breakers, all ascending); equal
/// keys keep their input order, so "the last inserted row" stays last.
pub fn sort_batch(batch: &RecordBatch, keys: &[ArrayRef]) -> Result<RecordBatch> {
    if keys.is_empty() || batch.num_rows() <= 1 {
        return Ok(batch.clone());
    }
    let mut cols: Vec<SortColumn> = keys
        .iter()
        .map(|k| SortColumn {
            values: Arc::clone(k),
            options: None,
        })
        .collect();
    let order: ArrayRef = Arc::new(UInt32Array::from_iter_values(0..batch.num_rows() as u32));
    cols.push(SortColumn {
        values: order,
        options: None,
    });
    let idx = lexsort_to_indices(&cols, None)?;
    Ok(take_record_batch(batch, &idx)?)
}

/// Splits `batch` by partition. Returns one (partition, rows) per distinct
/// partition value, in first-seen order.
pub fn split_by_partition(
    batch: &RecordBatch,
    key: Option<ArrayRef>,
) -> Result<Vec<(PartitionInfo, RecordBatch)>> {
    let Some(key) = key else {
        return Ok(vec![(
            PartitionInfo {
                id: "all".into(),
                value: "tuple()".into(),
            },
            batch.clone(),
        )]);
    };
    let conv = RowConverter::new(vec![SortField::new(key.data_type().clone())])?;
    let rows = conv.convert_columns(&[Arc::clone(&key)])?;
    let mut groups: HashMap<&[u8], Vec<u32>> = HashMap::new();
    let mut order: Vec<&[u8]> = Vec::new();
    for i in 0..rows.num_rows() {
        let r = rows.row(i);
        let e = groups.entry(r.data()).or_insert_with(|| {
            order.push(r.data());
            Vec::new()
        });
        e.push(i as u32);
    }
    let mut out = Vec::with_capacity(order.len());
    for k in order {
        let idx = UInt32Array::from(groups.remove(k).unwrap_or_default());
        let first = idx.value(0) as usize;
        let v = ScalarValue::try_from_array(&key, first)
            .map_err(|e| StorageError::Key(e.to_string()))?;
        out.push((partition_info(&v), take_record_batch(batch, &idx)?));
    }
    Ok(out)
}

/// ClickHouse's partition ids: the number for integer keys, YYYYMMDD for
/// dates, otherwise a hash of the value.
pub fn partition_info(v: &ScalarValue) -> PartitionInfo {
    use ScalarValue::*;
    let (id, value) = match v {
        Int8(Some(x)) => (x.to_string(), x.to_string()),
        Int16(Some(x)) => (x.to_string(), x.to_string()),
        Int32(Some(x)) => (x.to_string(), x.to_string()),
        Int64(Some(x)) => (x.to_string(), x.to_string()),
        UInt8(Some(x)) => (x.to_string(), x.to_string()),
        UInt16(Some(x)) => (x.to_string(), x.to_string()),
        UInt32(Some(x)) => (x.to_string(), x.to_string()),
        UInt64(Some(x)) => (x.to_string(), x.to_string()),
        Boolean(Some(b)) => ((*b as u8).to_string(), (*b as u8).to_string()),
        // Integer arithmetic that DataFusion widened (UInt64 % 2 is Decimal(20, 0)).
        Decimal128(Some(x), _, 0) => (x.to_string(), x.to_string()),
        Date32(Some(_)) => {
            let s = v.to_string();
            (s.replace('-', ""), format!("'{s}'"))
        }
        Utf8(Some(s)) | LargeUtf8(Some(s)) | Utf8View(Some(s)) => (
            format!("{:032x}", xxhash_rust::xxh3::xxh3_128(s.as_bytes())),
            format!("'{}'", s.replace('\'', "\\'")),
        ),
        other => {
            let s = other.to_string();
            (
                format!("{:032x}", xxhash_rust::xxh3::xxh3_128(s.as_bytes())),
                s,
            )
        }
    };
    PartitionInfo { id, value }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::{Int64Array, StringArray};
    use datafusion::arrow::datatypes::{DataType, Field, Schema};

    #[test]
    fn sort_is_stable_and_split_groups() {
        let schema = Arc::new(Schema::new(vec![
            Field::new("k", DataType::Int64, false),
            Field::new("v", DataType::Utf8, false),
        ]));
        let b = RecordBatch::try_new(
            schema,
            vec![
                Arc::new(Int64Array::from(vec![2, 1, 2, 1])),
                Arc::new(StringArray::from(vec!["a", "b", "c", "d"])),
            ],
        )
        .unwrap();
        let sorted = sort_batch(&b, &[b.column(0).clone()]).unwrap();
        let v = sorted
            .column(1)
            .as_any()
            .downcast_ref::<StringArray>()
            .unwrap();
        assert_eq!(
            v.iter().flatten().collect::<Vec<_>>(),
            vec!["b", "d", "a", "c"]
        );
        let parts = split_by_partition(&b, Some(b.column(0).clone())).unwrap();
        assert_eq!(parts.len(), 2);
        assert_eq!(parts[0].0.id, "2");
        assert_eq!(parts[0].1.num_rows(), 2);
    }
}
