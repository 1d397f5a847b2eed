//! Writing a part: the layout is chosen from its size, every file is
//! written under a temporary directory and fsynced together, and the part
//! comes back loaded (nothing is read back from disk).

use std::collections::HashMap;
use std::fs::{self, File};
use std::io::{BufWriter, Write};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use datafusion::arrow::array::{new_null_array, ArrayRef, RecordBatch};
use datafusion::arrow::datatypes::{Field, Schema};
use datafusion::arrow::ipc::writer::FileWriter;
use datafusion::common::ScalarValue;
use datafusion::functions_aggregate::min_max::{MaxAccumulator, MinAccumulator};
use datafusion::logical_expr::Accumulator;
use qh_types::PartName;
use xxhash_rust::xxh3::Xxh3;

use super::{
    json_err, Checksums, CompactHeader, FileChecksum, Part, PartColumn, PartKind, PartitionFile,
    PartitionInfo, PreparedPart, COMPACT_DATA, COMPACT_HEADER, COMPACT_MARKS, COMPACT_PART_VERSION,
};
use crate::codec;
use crate::error::{Result, StorageError};
use crate::fsutil::{escape_file_name, sync_dir, sync_files};

/// Uncompressed bytes below which a compact part's columns are encoded on
/// this thread (spawning threads costs more than encoding a small insert).
const PARALLEL_ENCODE_BYTES: u64 = 1 << 20;

/// A table's settings that shape its parts (ClickHouse's names and defaults).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PartFormat {
    /// `index_granularity`: rows per granule (mark).
    pub granularity: usize,
    /// `min_bytes_for_wide_part`: uncompressed bytes below which a part is compact.
    pub min_bytes_for_wide_part: u64,
    /// `min_rows_for_wide_part`: rows below which a part is compact.
    pub min_rows_for_wide_part: u64,
}

impl Default for PartFormat {
    fn default() -> Self {
        PartFormat {
            granularity: 8192,
            min_bytes_for_wide_part: 10 * 1024 * 1024,
            min_rows_for_wide_part: 0,
        }
    }
}

impl PartFormat {
    /// ClickHouse's rule: compact when either threshold is not reached.
    /// Depends only on the rows, so replicas merging the same parts agree.
    pub fn kind_for(&self, batch: &RecordBatch) -> PartKind {
        if uncompressed_bytes(batch) < self.min_bytes_for_wide_part
            || (batch.num_rows() as u64) < self.min_rows_for_wide_part
        {
            PartKind::Compact
        } else {
            PartKind::Wide
        }
    }
}

fn uncompressed_bytes(batch: &RecordBatch) -> u64 {
    batch
        .columns()
        .iter()
        .map(|c| c.to_data().get_slice_memory_size().unwrap_or(usize::MAX) as u64)
        .fold(0u64, u64::saturating_add)
}

/// Writes `batch` (already sorted by the table's key) as a part under
/// `tmp_dir`. `index_columns` get a per-granule min/max index.
pub fn write_part(
    tmp_dir: &Path,
    batch: &RecordBatch,
    columns: &[PartColumn],
    index_columns: &[String],
    format: &PartFormat,
    partition: PartitionInfo,
) -> Result<PreparedPart> {
    fs::create_dir_all(tmp_dir).map_err(|e| StorageError::io(tmp_dir, e))?;
    let rows = batch.num_rows();
    let granularity = format.granularity.max(1);
    let granules: Vec<Range<usize>> = (0..rows)
        .step_by(granularity)
        .map(|s| s..(s + granularity).min(rows))
        .collect();
    let kind = format.kind_for(batch);
    let mut checksums = Checksums::new();
    // Files written without an fsync yet: synced together at the end.
    let mut unsynced: Vec<(PathBuf, File)> = Vec::new();
    let write_columns = match kind {
        PartKind::Wide => write_wide_columns,
        PartKind::Compact => write_compact_data,
    };
    let blocks = write_columns(
        tmp_dir,
        batch,
        columns,
        &granules,
        &mut checksums,
        &mut unsynced,
    )?;

    let index = if index_columns.is_empty() {
        None
    } else {
        let index = build_index(batch, columns, index_columns, &granules)?;
        let mut buf = Vec::new();
        {
            let mut w = FileWriter::try_new(&mut buf, &index.schema())?;
            w.write(&index)?;
            w.finish()?;
        }
        let sum = write_unsynced(&tmp_dir.join("primary.idx"), &buf, &mut unsynced)?;
        checksums.insert("primary.idx".into(), sum);
        Some(index)
    };
    let pf = PartitionFile {
        id: partition.id.clone(),
        value: partition.value.clone(),
    };
    match kind {
        PartKind::Wide => {
            let columns_json = serde_json::to_vec_pretty(columns).map_err(json_err)?;
            let pf_json = serde_json::to_vec(&pf).map_err(json_err)?;
            for (file, bytes) in [
                ("columns.json", columns_json.as_slice()),
                ("count.txt", rows.to_string().as_bytes()),
                ("partition.json", pf_json.as_slice()),
            ] {
                let sum = write_unsynced(&tmp_dir.join(file), bytes, &mut unsynced)?;
                checksums.insert(file.into(), sum);
            }
        }
        PartKind::Compact => {
            let header = CompactHeader {
                version: COMPACT_PART_VERSION,
                kind,
                columns: columns.to_vec(),
                rows: rows as u64,
                partition: pf,
            };
            let bytes = serde_json::to_vec_pretty(&header).map_err(json_err)?;
            let sum = write_unsynced(&tmp_dir.join(COMPACT_HEADER), &bytes, &mut unsynced)?;
            checksums.insert(COMPACT_HEADER.into(), sum);
        }
    }
    write_unsynced(
        &tmp_dir.join("checksums.json"),
        &serde_json::to_vec_pretty(&checksums).map_err(json_err)?,
        &mut unsynced,
    )?;
    let refs: Vec<(&Path, &File)> = unsynced.iter().map(|(p, f)| (p.as_path(), f)).collect();
    sync_files(&refs)?;
    sync_dir(tmp_dir)?;
    let part = Part {
        name: PartName {
            partition_id: partition.id.clone(),
            min_block: 0,
            max_block: 0,
            level: 0,
        },
        dir: tmp_dir.to_path_buf(),
        kind,
        rows: rows as u64,
        columns: columns.to_vec(),
        granule_rows: granules.iter().map(|g| g.len() as u32).collect(),
        blocks,
        index,
        partition: partition.value.clone(),
        bytes_on_disk: checksums.values().map(|c| c.size).sum(),
        checksums,
    };
    Ok(PreparedPart { part, partition })
}

/// Wide: one `.bin` + `.mrk` per column, encoded on a thread per column
/// (fsynced later, with the part's other files). Returns each column's
/// block ranges.
fn write_wide_columns(
    dir: &Path,
    batch: &RecordBatch,
    columns: &[PartColumn],
    granules: &[Range<usize>],
    checksums: &mut Checksums,
    unsynced: &mut Vec<(PathBuf, File)>,
) -> Result<HashMap<String, Vec<(u64, u64)>>> {
    let results: Vec<Result<WrittenColumn>> = std::thread::scope(|s| {
        let handles: Vec<_> = columns
            .iter()
            .enumerate()
            .map(|(i, col)| {
                let array = batch.column(i).clone();
                s.spawn(move || write_wide_column(dir, col, &array, granules))
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
    let mut blocks = HashMap::new();
    for (col, r) in columns.iter().zip(results) {
        let w = r?;
        checksums.insert(w.bin.0, w.bin.1);
        checksums.insert(w.mrk.0, w.mrk.1);
        blocks.insert(col.name.clone(), w.ranges);
        unsynced.extend(w.files);
    }
    Ok(blocks)
}

struct WrittenColumn {
    bin: (String, FileChecksum),
    mrk: (String, FileChecksum),
    ranges: Vec<(u64, u64)>,
    /// Written, not yet fsynced.
    files: Vec<(PathBuf, File)>,
}

fn write_wide_column(
    dir: &Path,
    col: &PartColumn,
    array: &ArrayRef,
    granules: &[Range<usize>],
) -> Result<WrittenColumn> {
    let encoding = col.encoding();
    let base = escape_file_name(&col.name);
    let bin_name = format!("{base}.bin");
    let mrk_name = format!("{base}.mrk");
    let bin_path = dir.join(&bin_name);
    let file = File::create(&bin_path).map_err(|e| StorageError::io(&bin_path, e))?;
    let mut w = BufWriter::with_capacity(1 << 20, file);
    let mut hasher = Xxh3::new();
    let mut marks = Vec::with_capacity(granules.len() * 12);
    let mut ranges = Vec::with_capacity(granules.len());
    let mut offset = 0u64;
    for g in granules {
        let block = codec::encode_block(array.slice(g.start, g.len()).as_ref(), &encoding)?;
        marks.extend_from_slice(&offset.to_le_bytes());
        marks.extend_from_slice(&(g.len() as u32).to_le_bytes());
        w.write_all(&block)
            .map_err(|e| StorageError::io(&bin_path, e))?;
        hasher.update(&block);
        ranges.push((offset, offset + block.len() as u64));
        offset += block.len() as u64;
    }
    let file = w
        .into_inner()
        .map_err(|e| StorageError::io(&bin_path, e.into_error()))?;
    let bin_sum = FileChecksum {
        size: offset,
        hash: format!("{:016x}", hasher.digest()),
    };
    let mrk_path = dir.join(&mrk_name);
    let mut mf = File::create(&mrk_path).map_err(|e| StorageError::io(&mrk_path, e))?;
    mf.write_all(&marks)
        .map_err(|e| StorageError::io(&mrk_path, e))?;
    Ok(WrittenColumn {
        bin: (bin_name, bin_sum),
        mrk: (mrk_name, checksum_of(&marks)),
        ranges,
        files: vec![(bin_path, file), (mrk_path, mf)],
    })
}

/// Compact: `data.bin` (granule-major) and `data.mrk`, not yet fsynced.
/// Returns each column's block ranges.
fn write_compact_data(
    dir: &Path,
    batch: &RecordBatch,
    columns: &[PartColumn],
    granules: &[Range<usize>],
    checksums: &mut Checksums,
    unsynced: &mut Vec<(PathBuf, File)>,
) -> Result<HashMap<String, Vec<(u64, u64)>>> {
    let encoded = encode_columns(batch, columns, granules)?;
    let total: usize = encoded.iter().flatten().map(Vec::len).sum();
    let mut data = Vec::with_capacity(total);
    let mut marks = Vec::with_capacity(granules.len() * (4 + 8 * columns.len()));
    let mut ranges: Vec<Vec<(u64, u64)>> = vec![Vec::with_capacity(granules.len()); columns.len()];
    for (g, rows) in granules.iter().enumerate() {
        marks.extend_from_slice(&(rows.len() as u32).to_le_bytes());
        for (c, blocks) in encoded.iter().enumerate() {
            let start = data.len() as u64;
            marks.extend_from_slice(&start.to_le_bytes());
            data.extend_from_slice(&blocks[g]);
            ranges[c].push((start, data.len() as u64));
        }
    }
    let sum = write_unsynced(&dir.join(COMPACT_DATA), &data, unsynced)?;
    checksums.insert(COMPACT_DATA.into(), sum);
    let sum = write_unsynced(&dir.join(COMPACT_MARKS), &marks, unsynced)?;
    checksums.insert(COMPACT_MARKS.into(), sum);
    Ok(columns.iter().map(|c| c.name.clone()).zip(ranges).collect())
}

/// Every column's blocks, one per granule; columns on threads of their own
/// when the batch is big enough to pay for them.
fn encode_columns(
    batch: &RecordBatch,
    columns: &[PartColumn],
    granules: &[Range<usize>],
) -> Result<Vec<Vec<Vec<u8>>>> {
    let encode = |(array, col): (&ArrayRef, &PartColumn)| -> Result<Vec<Vec<u8>>> {
        let encoding = col.encoding();
        granules
            .iter()
            .map(|g| codec::encode_block(array.slice(g.start, g.len()).as_ref(), &encoding))
            .collect()
    };
    if batch.num_columns() < 2 || uncompressed_bytes(batch) < PARALLEL_ENCODE_BYTES {
        return batch.columns().iter().zip(columns).map(encode).collect();
    }
    std::thread::scope(|s| {
        let handles: Vec<_> = batch
            .columns()
            .iter()
            .zip(columns)
            .map(|c| s.spawn(move || encode(c)))
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join().unwrap_or_else(|_| {
                    Err(StorageError::Unsupported("column encoder panicked".into()))
                })
            })
            .collect()
    })
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
    Ok(checksum_of(bytes))
}

fn checksum_of(bytes: &[u8]) -> FileChecksum {
    FileChecksum {
        size: bytes.len() as u64,
        hash: format!("{:016x}", xxhash_rust::xxh3::xxh3_64(bytes)),
    }
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

pub(super) fn df_err(e: datafusion::error::DataFusionError) -> StorageError {
    StorageError::Key(e.to_string())
}
