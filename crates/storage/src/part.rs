//! One immutable data part on disk, and how it is written and read.
//!
//! ```text
//! <table>/<partition>_<min>_<max>_<level>/
//!   columns.json      [{name, type}] of the columns stored in this part
//!   count.txt         number of rows
//!   partition.json    partition id and the printable partition value
//!   <col>.bin         zstd blocks, one per granule (see `codec`)
//!   <col>.mrk         per granule: u64 offset of its block in <col>.bin, u32 rows
//!   primary.idx       Arrow IPC: per granule min/max of the index columns
//!   checksums.json    size and xxh3 of every other file
//! ```
//! A part is written into `tmp_<something>/`, every file fsynced, then the
//! directory is renamed to its name and the table directory fsynced, so a part
//! directory that exists under its name is whole.

use std::collections::{BTreeMap, HashMap};
use std::fs::{self, File};
use std::io::{BufWriter, Write};
use std::ops::Range;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use datafusion::arrow::array::{new_null_array, Array, ArrayRef, RecordBatch};
use datafusion::arrow::compute::concat;
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::arrow::ipc::reader::FileReader;
use datafusion::arrow::ipc::writer::FileWriter;
use datafusion::common::ScalarValue;
use datafusion::functions_aggregate::min_max::{MaxAccumulator, MinAccumulator};
use datafusion::logical_expr::Accumulator;
use qh_types::{ChType, PartName};
use serde::{Deserialize, Serialize};
use xxhash_rust::xxh3::Xxh3;

use crate::codec;
use crate::error::{Result, StorageError};
use crate::fsutil::{escape_file_name, sync_dir, sync_files};
use crate::keys::{ColumnDefaults, ComputedDefault};

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct PartColumn {
    pub name: String,
    #[serde(rename = "type")]
    pub ty: ChType,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct FileChecksum {
    pub size: u64,
    pub hash: String,
}

/// Checksums of all files of a part, keyed by file name. Replicas compare
/// these to know that two copies of a part are byte-identical.
pub type Checksums = BTreeMap<String, FileChecksum>;

#[derive(Debug, Clone, Serialize, Deserialize)]
struct PartitionFile {
    id: String,
    value: String,
}

/// A loaded, immutable part.
#[derive(Debug)]
pub struct Part {
    pub name: PartName,
    pub dir: PathBuf,
    pub rows: u64,
    pub columns: Vec<PartColumn>,
    /// Rows in each granule.
    pub granule_rows: Vec<u32>,
    /// Per column: offset of each granule's block in `<col>.bin`, plus the
    /// file length as a final entry.
    marks: HashMap<String, Vec<u64>>,
    /// Per granule min/max of the index columns (`min.<col>`, `max.<col>`).
    pub index: Option<RecordBatch>,
    /// Printable partition value, as in `system.parts.partition`.
    pub partition: String,
    pub bytes_on_disk: u64,
    pub checksums: Checksums,
}

/// What the writer needs to know about the partition of a part.
#[derive(Debug, Clone)]
pub struct PartitionInfo {
    pub id: String,
    pub value: String,
}

/// A part written under `tmp_*`, not yet visible.
#[derive(Debug)]
pub struct PreparedPart {
    pub tmp_dir: PathBuf,
    pub partition: PartitionInfo,
    pub rows: u64,
}

impl PreparedPart {
    /// Renames the part to its final name and loads it.
    pub fn commit(self, table_dir: &Path, name: PartName) -> Result<Part> {
        let dir = table_dir.join(name.to_string());
        fs::rename(&self.tmp_dir, &dir).map_err(|e| StorageError::io(&dir, e))?;
        sync_dir(table_dir)?;
        Part::load(&dir, name)
    }

    /// Removes the temporary directory (the insert failed).
    pub fn discard(self) {
        let _ = fs::remove_dir_all(&self.tmp_dir);
    }
}

/// Writes `batch` (already sorted by the table's key) as a part under
/// `tmp_dir`. `index_columns` get a per-granule min/max index.
pub fn write_part(
    tmp_dir: &Path,
    batch: &RecordBatch,
    columns: &[PartColumn],
    index_columns: &[String],
    granularity: usize,
    partition: PartitionInfo,
) -> Result<PreparedPart> {
    fs::create_dir_all(tmp_dir).map_err(|e| StorageError::io(tmp_dir, e))?;
    let rows = batch.num_rows();
    let granularity = granularity.max(1);
    let granules: Vec<Range<usize>> = (0..rows)
        .step_by(granularity)
        .map(|s| s..(s + granularity).min(rows))
        .collect();

    // Columns are independent files: encode them on a few threads.
    let results: Vec<Result<(String, FileChecksum, String, FileChecksum)>> =
        std::thread::scope(|s| {
            let handles: Vec<_> = columns
                .iter()
                .enumerate()
                .map(|(i, col)| {
                    let array = batch.column(i).clone();
                    let granules = &granules;
                    s.spawn(move || write_column(tmp_dir, &col.name, &array, granules))
                })
                .collect();
            handles
                .into_iter()
                .map(|h| {
                    h.join().unwrap_or_else(|_| {
                        Err(StorageError::Unsupported("column writer panicked".into()))
                    })
                })
                .collect()
        });
    let mut checksums = Checksums::new();
    for r in results {
        let (bin, bin_sum, mrk, mrk_sum) = r?;
        checksums.insert(bin, bin_sum);
        checksums.insert(mrk, mrk_sum);
    }
    // The small files below are written first and fsynced together.
    let mut small: Vec<(PathBuf, File)> = Vec::new();

    if !index_columns.is_empty() {
        let index = build_index(batch, columns, index_columns, &granules)?;
        let path = tmp_dir.join("primary.idx");
        let mut buf = Vec::new();
        {
            let mut w = FileWriter::try_new(&mut buf, &index.schema())?;
            w.write(&index)?;
            w.finish()?;
        }
        checksums.insert(
            "primary.idx".into(),
            write_unsynced(&path, &buf, &mut small)?,
        );
    }
    let columns_json = serde_json::to_vec_pretty(columns).map_err(json_err)?;
    checksums.insert(
        "columns.json".into(),
        write_unsynced(&tmp_dir.join("columns.json"), &columns_json, &mut small)?,
    );
    checksums.insert(
        "count.txt".into(),
        write_unsynced(
            &tmp_dir.join("count.txt"),
            rows.to_string().as_bytes(),
            &mut small,
        )?,
    );
    let pf = PartitionFile {
        id: partition.id.clone(),
        value: partition.value.clone(),
    };
    checksums.insert(
        "partition.json".into(),
        write_unsynced(
            &tmp_dir.join("partition.json"),
            &serde_json::to_vec(&pf).map_err(json_err)?,
            &mut small,
        )?,
    );
    write_unsynced(
        &tmp_dir.join("checksums.json"),
        &serde_json::to_vec_pretty(&checksums).map_err(json_err)?,
        &mut small,
    )?;
    let refs: Vec<(&Path, &File)> = small.iter().map(|(p, f)| (p.as_path(), f)).collect();
    sync_files(&refs)?;
    sync_dir(tmp_dir)?;
    Ok(PreparedPart {
        tmp_dir: tmp_dir.to_path_buf(),
        partition,
        rows: rows as u64,
    })
}

fn json_err(e: serde_json::Error) -> StorageError {
    StorageError::Unsupported(format!("json: {e}"))
}

/// Writes a small file whose fsync the caller batches with others.
fn write_unsynced(
    path: &Path,
    bytes: &[u8],
    unsynced: &mut Vec<(PathBuf, File)>,
) -> Result<FileChecksum> {
    let mut f = File::create(path).map_err(|e| StorageError::io(path, e))?;
    f.write_all(bytes).map_err(|e| StorageError::io(path, e))?;
    unsynced.push((path.to_path_buf(), f));
    Ok(FileChecksum {
        size: bytes.len() as u64,
        hash: format!("{:016x}", xxhash_rust::xxh3::xxh3_64(bytes)),
    })
}

fn write_file(path: &Path, bytes: &[u8]) -> Result<FileChecksum> {
    let mut f = File::create(path).map_err(|e| StorageError::io(path, e))?;
    f.write_all(bytes).map_err(|e| StorageError::io(path, e))?;
    f.sync_all().map_err(|e| StorageError::io(path, e))?;
    Ok(FileChecksum {
        size: bytes.len() as u64,
        hash: format!("{:016x}", xxhash_rust::xxh3::xxh3_64(bytes)),
    })
}

fn write_column(
    dir: &Path,
    name: &str,
    array: &ArrayRef,
    granules: &[Range<usize>],
) -> Result<(String, FileChecksum, String, FileChecksum)> {
    let base = escape_file_name(name);
    let bin_name = format!("{base}.bin");
    let mrk_name = format!("{base}.mrk");
    let bin_path = dir.join(&bin_name);
    let file = File::create(&bin_path).map_err(|e| StorageError::io(&bin_path, e))?;
    let mut w = BufWriter::with_capacity(1 << 20, file);
    let mut hasher = Xxh3::new();
    let mut marks = Vec::with_capacity(granules.len() * 12);
    let mut offset = 0u64;
    for g in granules {
        let block = codec::encode_block(array.slice(g.start, g.len()).as_ref())?;
        marks.extend_from_slice(&offset.to_le_bytes());
        marks.extend_from_slice(&(g.len() as u32).to_le_bytes());
        w.write_all(&block)
            .map_err(|e| StorageError::io(&bin_path, e))?;
        hasher.update(&block);
        offset += block.len() as u64;
    }
    let file = w
        .into_inner()
        .map_err(|e| StorageError::io(&bin_path, e.into_error()))?;
    file.sync_all()
        .map_err(|e| StorageError::io(&bin_path, e))?;
    let bin_sum = FileChecksum {
        size: offset,
        hash: format!("{:016x}", hasher.digest()),
    };
    let mrk_sum = write_file(&dir.join(&mrk_name), &marks)?;
    Ok((bin_name, bin_sum, mrk_name, mrk_sum))
}

fn build_index(
    batch: &RecordBatch,
    columns: &[PartColumn],
    index_columns: &[String],
    granules: &[Range<usize>],
) -> Result<RecordBatch> {
    let mut fields = Vec::new();
    let mut arrays: Vec<ArrayRef> = Vec::new();
    for name in index_columns {
        let Some(pos) = columns.iter().position(|c| &c.name == name) else {
            continue;
        };
        let array = batch.column(pos);
        let dt = array.data_type().clone();
        let mut mins = Vec::with_capacity(granules.len());
        let mut maxs = Vec::with_capacity(granules.len());
        for g in granules {
            let slice = array.slice(g.start, g.len());
            let mut mn = MinAccumulator::try_new(&dt).map_err(df_err)?;
            let mut mx = MaxAccumulator::try_new(&dt).map_err(df_err)?;
            mn.update_batch(&[Arc::clone(&slice)]).map_err(df_err)?;
            mx.update_batch(&[slice]).map_err(df_err)?;
            mins.push(mn.evaluate().map_err(df_err)?);
            maxs.push(mx.evaluate().map_err(df_err)?);
        }
        for (prefix, vals) in [("min", mins), ("max", maxs)] {
            let arr = if vals.is_empty() {
                new_null_array(&dt, 0)
            } else {
                ScalarValue::iter_to_array(vals).map_err(df_err)?
            };
            fields.push(Field::new(format!("{prefix}.{name}"), dt.clone(), true));
            arrays.push(arr);
        }
    }
    let schema = Arc::new(Schema::new(fields));
    if arrays.is_empty() {
        return Ok(RecordBatch::new_empty(schema));
    }
    Ok(RecordBatch::try_new(schema, arrays)?)
}

fn df_err(e: datafusion::error::DataFusionError) -> StorageError {
    StorageError::Key(e.to_string())
}

impl Part {
    /// Loads a part's small files (columns, count, marks, index, checksums).
    pub fn load(dir: &Path, name: PartName) -> Result<Part> {
        let read = |f: &str| -> Result<Vec<u8>> {
            let p = dir.join(f);
            fs::read(&p).map_err(|e| StorageError::io(&p, e))
        };
        let corrupt = |f: &str, d: String| StorageError::Corrupt {
            file: dir.join(f).display().to_string(),
            detail: d,
        };
        let checksums: Checksums = serde_json::from_slice(&read("checksums.json")?)
            .map_err(|e| corrupt("checksums.json", e.to_string()))?;
        let columns: Vec<PartColumn> = serde_json::from_slice(&read("columns.json")?)
            .map_err(|e| corrupt("columns.json", e.to_string()))?;
        let rows: u64 = String::from_utf8_lossy(&read("count.txt")?)
            .trim()
            .parse()
            .map_err(|e: std::num::ParseIntError| corrupt("count.txt", e.to_string()))?;
        let pf: PartitionFile = serde_json::from_slice(&read("partition.json")?)
            .map_err(|e| corrupt("partition.json", e.to_string()))?;
        let mut marks = HashMap::new();
        let mut granule_rows: Option<Vec<u32>> = None;
        for c in &columns {
            let base = escape_file_name(&c.name);
            let mrk = read(&format!("{base}.mrk"))?;
            if mrk.len() % 12 != 0 {
                return Err(corrupt(&format!("{base}.mrk"), "bad marks length".into()));
            }
            let mut offs = Vec::with_capacity(mrk.len() / 12 + 1);
            let mut sizes = Vec::with_capacity(mrk.len() / 12);
            for m in mrk.chunks_exact(12) {
                offs.push(u64::from_le_bytes(m[0..8].try_into().expect("8 bytes")));
                sizes.push(u32::from_le_bytes(m[8..12].try_into().expect("4 bytes")));
            }
            let bin_len = checksums
                .get(&format!("{base}.bin"))
                .map(|c| c.size)
                .ok_or_else(|| corrupt("checksums.json", format!("no entry for {base}.bin")))?;
            offs.push(bin_len);
            match &granule_rows {
                None => granule_rows = Some(sizes),
                Some(g) if *g != sizes => {
                    return Err(corrupt(
                        &format!("{base}.mrk"),
                        "granules differ between columns".into(),
                    ))
                }
                Some(_) => {}
            }
            marks.insert(c.name.clone(), offs);
        }
        let granule_rows = granule_rows.unwrap_or_default();
        if granule_rows.iter().map(|g| *g as u64).sum::<u64>() != rows {
            return Err(corrupt(
                "count.txt",
                "row count does not match marks".into(),
            ));
        }
        let index = if checksums.contains_key("primary.idx") {
            let bytes = read("primary.idx")?;
            let mut r = FileReader::try_new(std::io::Cursor::new(bytes), None)?;
            match r.next() {
                Some(b) => Some(b?),
                None => None,
            }
        } else {
            None
        };
        let bytes_on_disk = checksums.values().map(|c| c.size).sum::<u64>();
        Ok(Part {
            name,
            dir: dir.to_path_buf(),
            rows,
            columns,
            granule_rows,
            marks,
            index,
            partition: pf.value,
            bytes_on_disk,
            checksums,
        })
    }

    /// One hash over every file's checksum: replicas compare it to know two
    /// copies of a part (e.g. the same merge done on each) are byte-identical.
    pub fn checksum_digest(&self) -> String {
        let mut h = Xxh3::new();
        for (file, sum) in &self.checksums {
            h.update(file.as_bytes());
            h.update(&sum.size.to_le_bytes());
            h.update(sum.hash.as_bytes());
        }
        format!("{:032x}", h.digest128())
    }

    pub fn has_column(&self, name: &str) -> bool {
        self.marks.contains_key(name)
    }

    pub fn granules(&self) -> usize {
        self.granule_rows.len()
    }

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
                let a = self.read_column(field.name(), field.data_type(), granules)?;
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
    ) -> Result<ArrayRef> {
        let mut pieces = self.read_column_pieces(name, dt, granules)?;
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
        let sizes: Vec<usize> = granules
            .iter()
            .flat_map(|r| self.granule_rows[r.clone()].iter())
            .map(|g| *g as usize)
            .collect();
        let mut columns: Vec<Vec<ArrayRef>> = Vec::with_capacity(schema.fields().len());
        for field in schema.fields() {
            let pieces = if self.has_column(field.name()) {
                let mut p = self.read_column_pieces(field.name(), field.data_type(), granules)?;
                for a in p.iter_mut() {
                    if a.data_type() != field.data_type() {
                        *a = datafusion::arrow::compute::cast(a, field.data_type())?;
                    }
                }
                p
            } else if let Some(d) = defaults.computed(field.name()) {
                self.read_granules(d.inputs(), granules, &defaults.constants_only())?
                    .iter()
                    .map(|inputs| computed(d.as_ref(), inputs, field.data_type()))
                    .collect::<Result<Vec<_>>>()?
            } else {
                let v = constant_default(defaults, field)?;
                sizes
                    .iter()
                    .map(|n| v.to_array_of_size(*n).map_err(df_err))
                    .collect::<Result<Vec<_>>>()?
            };
            columns.push(pieces);
        }
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

    fn read_column_pieces(
        &self,
        name: &str,
        dt: &DataType,
        granules: &[Range<usize>],
    ) -> Result<Vec<ArrayRef>> {
        let stored_dt = self
            .columns
            .iter()
            .find(|c| c.name == name)
            .map(|c| c.ty.to_arrow())
            .unwrap_or_else(|| dt.clone());
        let marks = &self.marks[name];
        let file_name = format!("{}.bin", escape_file_name(name));
        let path = self.dir.join(&file_name);
        let what = path.display().to_string();
        let file = File::open(&path).map_err(|e| StorageError::io(&path, e))?;
        let mut pieces: Vec<ArrayRef> = Vec::new();
        for r in granules {
            if r.is_empty() {
                continue;
            }
            let start = marks[r.start];
            let end = marks[r.end];
            let mut buf = vec![0u8; (end - start) as usize];
            file.read_exact_at(&mut buf, start)
                .map_err(|e| StorageError::io(&path, e))?;
            let mut pos = 0usize;
            for g in r.clone() {
                let len = (marks[g + 1] - marks[g]) as usize;
                let block = buf
                    .get(pos..pos + len)
                    .ok_or_else(|| StorageError::Corrupt {
                        file: what.clone(),
                        detail: "marks point past the end of the file".into(),
                    })?;
                pieces.push(codec::decode_block(
                    block,
                    &stored_dt,
                    self.granule_rows[g] as usize,
                    &what,
                )?);
                pos += len;
            }
        }
        Ok(pieces)
    }

    /// Re-hashes every file and compares with `checksums.json` (CHECK TABLE,
    /// and a fetched part before it is accepted).
    pub fn verify(&self) -> Result<()> {
        for (file, sum) in &self.checksums {
            let p = self.dir.join(file);
            let bytes = fs::read(&p).map_err(|e| StorageError::io(&p, e))?;
            let actual = xxhash_rust::xxh3::xxh3_64(&bytes);
            let expected = u64::from_str_radix(&sum.hash, 16).unwrap_or(0);
            if bytes.len() as u64 != sum.size || actual != expected {
                return Err(StorageError::ChecksumMismatch {
                    file: p.display().to_string(),
                    expected,
                    actual,
                });
            }
        }
        Ok(())
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
        _ => ScalarValue::new_zero(dt)
            .or_else(|_| ScalarValue::try_from_string(String::new(), dt))
            .map_err(df_err),
    }
}
