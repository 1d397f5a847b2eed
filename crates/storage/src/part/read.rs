//! Reading rows of a part: granule ranges of the requested columns, with
//! columns the part lacks (added by ALTER later) filled from their defaults.

use std::fs::File;
use std::ops::Range;
use std::os::unix::fs::FileExt;
use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, RecordBatch};
use datafusion::arrow::compute::concat;
use datafusion::arrow::datatypes::{DataType, Field, SchemaRef};
use datafusion::common::ScalarValue;

use super::write::df_err;
use super::Part;
use crate::codec;
use crate::error::{Result, StorageError};
use crate::keys::{ColumnDefaults, ComputedDefault};

impl Part {
    /// Reads every row of the part.
    pub fn read_all(&self, schema: &SchemaRef, defaults: &ColumnDefaults) -> Result<RecordBatch> {
        let all = std::iter::once(0..self.granules()).collect::<Vec<_>>();
        self.read(schema, &all, defaults)
    }

    /// Reads the given granule ranges of the named columns into one batch of
    /// `schema`. Columns the part lacks (added by ALTER later) are filled
    /// from `defaults`.
    pub fn read(
        &self,
        schema: &SchemaRef,
        granules: &[Range<usize>],
        defaults: &ColumnDefaults,
    ) -> Result<RecordBatch> {
        let rows: usize = granules
            .iter()
            .flat_map(|r| self.granule_rows[r.clone()].iter())
            .map(|g| *g as usize)
            .sum();
        let mut arrays = Vec::with_capacity(schema.fields().len());
        for field in schema.fields() {
            let arr = if self.has_column(field.name()) {
                let a = self.read_column(field.name(), field.data_type(), granules, defaults)?;
                if a.data_type() != field.data_type() {
                    datafusion::arrow::compute::cast(&a, field.data_type())?
                } else {
                    a
                }
            } else if let Some(d) = defaults.computed(field.name()) {
                let inputs = self.read(d.inputs(), granules, &defaults.constants_only())?;
                computed(d.as_ref(), &inputs, field.data_type())?
            } else {
                constant_default(defaults, field)?
                    .to_array_of_size(rows)
                    .map_err(df_err)?
            };
            arrays.push(arr);
        }
        let opts = datafusion::arrow::array::RecordBatchOptions::new().with_row_count(Some(rows));
        Ok(RecordBatch::try_new_with_options(
            Arc::clone(schema),
            arrays,
            &opts,
        )?)
    }

    fn read_column(
        &self,
        name: &str,
        dt: &DataType,
        granules: &[Range<usize>],
        defaults: &ColumnDefaults,
    ) -> Result<ArrayRef> {
        let mut pieces = self.read_column_pieces(name, dt, granules, false, defaults)?;
        match pieces.len() {
            0 => {
                let stored = self.stored_type(name, dt);
                Ok(datafusion::arrow::array::new_empty_array(&stored))
            }
            1 => Ok(pieces.pop().expect("one piece")),
            _ => {
                let refs: Vec<&dyn Array> = pieces.iter().map(|a| a.as_ref()).collect();
                Ok(concat(&refs)?)
            }
        }
    }

    fn stored_type(&self, name: &str, dt: &DataType) -> DataType {
        self.columns
            .iter()
            .find(|c| c.name == name)
            .map(|c| c.ty.to_arrow())
            .unwrap_or_else(|| dt.clone())
    }

    /// Reads the given granules as one batch per granule (no concatenation:
    /// DataFusion works on batches of about this size anyway).
    pub fn read_granules(
        &self,
        schema: &SchemaRef,
        granules: &[Range<usize>],
        defaults: &ColumnDefaults,
    ) -> Result<Vec<RecordBatch>> {
        let columns = schema
            .fields()
            .iter()
            .map(|f| self.read_column_granules(f, granules, defaults, false))
            .collect::<Result<Vec<_>>>()?;
        let sizes = self.granule_sizes(granules);
        let mut out = Vec::with_capacity(sizes.len());
        for (i, n) in sizes.iter().enumerate() {
            let arrays = columns.iter().map(|c| Arc::clone(&c[i])).collect();
            let opts = datafusion::arrow::array::RecordBatchOptions::new().with_row_count(Some(*n));
            out.push(RecordBatch::try_new_with_options(
                Arc::clone(schema),
                arrays,
                &opts,
            )?);
        }
        Ok(out)
    }

    /// Rows of each granule in `granules`, in order.
    pub fn granule_sizes(&self, granules: &[Range<usize>]) -> Vec<usize> {
        granules
            .iter()
            .flat_map(|r| self.granule_rows[r.clone()].iter())
            .map(|g| *g as usize)
            .collect()
    }

    /// One column's values in the given granules, one array per granule, of
    /// `field`'s type; columns the part lacks come from `defaults`. With
    /// `keep_dictionary`, a LowCardinality column's dictionary blocks come
    /// back as `DictionaryArray<UInt32, Utf8>` instead. A `field` typed as a
    /// dictionary always gets dictionaries: the stored ones as they are,
    /// any other block (an older part, a default) encoded into one.
    pub fn read_column_granules(
        &self,
        field: &Field,
        granules: &[Range<usize>],
        defaults: &ColumnDefaults,
        keep_dictionary: bool,
    ) -> Result<Vec<ArrayRef>> {
        if let DataType::Dictionary(_, values) = field.data_type() {
            let plain = Field::new(field.name(), values.as_ref().clone(), field.is_nullable());
            let arrays = self.read_column_granules(&plain, granules, defaults, true)?;
            return arrays
                .into_iter()
                .map(|a| {
                    if a.data_type() == field.data_type() {
                        Ok(a)
                    } else {
                        Ok(datafusion::arrow::compute::cast(&a, field.data_type())?)
                    }
                })
                .collect();
        }
        if self.has_column(field.name()) {
            let mut p = self.read_column_pieces(
                field.name(),
                field.data_type(),
                granules,
                keep_dictionary,
                defaults,
            )?;
            for a in p.iter_mut() {
                let dictionary = field.data_type() == &DataType::Utf8
                    && matches!(a.data_type(), DataType::Dictionary(..));
                if a.data_type() != field.data_type() && !dictionary {
                    *a = datafusion::arrow::compute::cast(a, field.data_type())?;
                }
            }
            Ok(p)
        } else if let Some(d) = defaults.computed(field.name()) {
            self.read_granules(d.inputs(), granules, &defaults.constants_only())?
                .iter()
                .map(|inputs| computed(d.as_ref(), inputs, field.data_type()))
                .collect()
        } else {
            let v = constant_default(defaults, field)?;
            self.granule_sizes(granules)
                .iter()
                .map(|n| v.to_array_of_size(*n).map_err(df_err))
                .collect()
        }
    }

    /// The column's blocks in the given granules; a block stored in a type
    /// the column had before MODIFY COLUMN comes back converted.
    fn read_column_pieces(
        &self,
        name: &str,
        dt: &DataType,
        granules: &[Range<usize>],
        keep_dictionary: bool,
        defaults: &ColumnDefaults,
    ) -> Result<Vec<ArrayRef>> {
        let stored = self.columns.iter().find(|c| c.name == name);
        if let Some(convert) = stored.and_then(|c| defaults.conversion(name, &c.ty)) {
            let plain = ColumnDefaults::default();
            return self
                .read_column_pieces(name, dt, granules, false, &plain)?
                .into_iter()
                .map(|a| {
                    let opts = datafusion::arrow::array::RecordBatchOptions::new()
                        .with_row_count(Some(a.len()));
                    let input = RecordBatch::try_new_with_options(
                        Arc::clone(convert.inputs()),
                        vec![a],
                        &opts,
                    )?;
                    convert.evaluate(&input)
                })
                .collect();
        }
        let stored_dt = self.stored_type(name, dt);
        let blocks = self.blocks.get(name).ok_or_else(|| StorageError::Corrupt {
            file: self.dir.display().to_string(),
            detail: format!("no marks for column {name}"),
        })?;
        let path = self.dir.join(self.file_of(name));
        let what = path.display().to_string();
        let file = File::open(&path).map_err(|e| StorageError::io(&path, e))?;
        let mut pieces: Vec<ArrayRef> = Vec::new();
        for r in granules {
            let mut g = r.start;
            while g < r.end {
                // One read for a run of adjacent blocks (a wide column's
                // granules are; a compact part's columns interleave).
                let mut last = g;
                while last + 1 < r.end && blocks[last].1 == blocks[last + 1].0 {
                    last += 1;
                }
                let (start, end) = (blocks[g].0, blocks[last].1);
                let mut buf = vec![0u8; (end - start) as usize];
                file.read_exact_at(&mut buf, start)
                    .map_err(|e| StorageError::io(&path, e))?;
                let rows = &self.granule_rows[g..=last];
                for (&(s, e), &n) in blocks[g..=last].iter().zip(rows) {
                    let (s, e) = ((s - start) as usize, (e - start) as usize);
                    let block = &buf[s..e];
                    pieces.push(if keep_dictionary {
                        codec::decode_block_keep_dictionary(block, &stored_dt, n as usize, &what)?
                    } else {
                        codec::decode_block(block, &stored_dt, n as usize, &what)?
                    });
                }
                g = last + 1;
            }
        }
        Ok(pieces)
    }
}

/// A constant DEFAULT of a column the part lacks, else its type's default.
fn constant_default(defaults: &ColumnDefaults, field: &Field) -> Result<ScalarValue> {
    match defaults.constant(field.name()) {
        Some(v) => Ok(v.clone()),
        None => type_default(field.data_type(), field.is_nullable()),
    }
}

/// A computed DEFAULT over `inputs` (the part's rows), as `dt`.
fn computed(d: &dyn ComputedDefault, inputs: &RecordBatch, dt: &DataType) -> Result<ArrayRef> {
    let v = d.evaluate(inputs)?;
    Ok(if v.data_type() == dt {
        v
    } else {
        datafusion::arrow::compute::cast(&v, dt)?
    })
}

/// The value ClickHouse fills in for a column absent from a part: NULL for
/// Nullable, else zero / empty / epoch.
pub fn type_default(dt: &DataType, nullable: bool) -> Result<ScalarValue> {
    if nullable {
        return ScalarValue::try_from(dt).map_err(df_err);
    }
    match dt {
        // An empty list whose element field is the column's own (a
        // non-Nullable element type stays non-nullable).
        DataType::List(f) => Ok(ScalarValue::List(std::sync::Arc::new(
            datafusion::arrow::array::ListArray::new(
                std::sync::Arc::clone(f),
                datafusion::arrow::buffer::OffsetBuffer::from_lengths([0]),
                datafusion::arrow::array::new_empty_array(f.data_type()),
                None,
            ),
        ))),
        // Each element's default: NULL for a Nullable one.
        DataType::Struct(fields) => {
            let columns = fields
                .iter()
                .map(|f| {
                    type_default(f.data_type(), f.is_nullable())?
                        .to_array()
                        .map_err(df_err)
                })
                .collect::<Result<Vec<_>>>()?;
            Ok(ScalarValue::Struct(std::sync::Arc::new(
                datafusion::arrow::array::StructArray::try_new(fields.clone(), columns, None)?,
            )))
        }
        // An empty map (DataFusion's `new_default` panics on a map type).
        DataType::Map(entries, sorted) => {
            let DataType::Struct(kv) = entries.data_type() else {
                return Err(StorageError::Unsupported(format!("map type {dt}")));
            };
            let entries_array = datafusion::arrow::array::StructArray::try_new(
                kv.clone(),
                kv.iter()
                    .map(|f| datafusion::arrow::array::new_empty_array(f.data_type()))
                    .collect(),
                None,
            )?;
            Ok(ScalarValue::Map(std::sync::Arc::new(
                datafusion::arrow::array::MapArray::try_new(
                    std::sync::Arc::clone(entries),
                    datafusion::arrow::buffer::OffsetBuffer::from_lengths([0]),
                    entries_array,
                    None,
                    *sorted,
                )?,
            )))
        }
        _ => ScalarValue::new_zero(dt)
            .or_else(|_| ScalarValue::try_from_string(String::new(), dt))
            .map_err(df_err),
    }
}
