//! One immutable data part on disk: its two layouts, loading, checksums.
//! Writing is in [`write`], reading rows in [`read`].
//!
//! As in ClickHouse, a part whose rows take fewer uncompressed bytes than
//! the table's `min_bytes_for_wide_part` (default 10 MiB), or that has fewer
//! rows than `min_rows_for_wide_part` (default 0), is **compact**: every
//! column in one file. Small inserts are most parts, and creating files is
//! what they cost (ext4 inode and journal work per file), so a compact part
//! is 4–5 files where a wide one is 5 + 2 per column.
//!
//! ```text
//! Wide (every part written before compact parts existed):
//! <table>/<partition>_<min>_<max>_<level>/
//!   columns.json      [{name, type}] of the columns stored in this part
//!   count.txt         number of rows
//!   partition.json    partition id and the printable partition value
//!   <col>.bin         zstd blocks, one per granule (see `codec`)
//!   <col>.mrk         per granule: u64 offset of its block in <col>.bin, u32 rows
//!   primary.idx       Arrow IPC: per granule min/max of the index columns
//!   checksums.json    size and xxh3 of every other file
//!
//! Compact:
//!   part.json         {version, kind, columns, rows, partition}
//!   data.bin          granule after granule; within one, each column's block
//!                     in column order
//!   data.mrk          per granule: u32 rows, then per column the u64 offset
//!                     of its block in data.bin (a block ends where the next
//!                     one starts, the last at the end of the file)
//!   primary.idx       as in a wide part
//!   checksums.json
//! ```
//! A part is written into `tmp_<something>/`, every file fsynced, then the
//! directory is renamed to its name and the table directory fsynced, so a part
//! directory that exists under its name is whole. `part.json` carries a
//! format version: a build refuses a part newer than it understands instead
//! of misreading it.

mod read;
mod write;

use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::path::{Path, PathBuf};

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::ipc::reader::FileReader;
use qh_types::{ChType, PartName};
use serde::{Deserialize, Serialize};
use xxhash_rust::xxh3::Xxh3;

use crate::error::{Result, StorageError};
use crate::fsutil::{escape_file_name, sync_dir};

pub use read::type_default;
pub use write::{write_part, PartFormat};

/// The newest `part.json` version this build writes and reads (2: blocks
/// carry their codec steps; version 1 parts hold zstd frames, still read).
pub const COMPACT_PART_VERSION: u32 = 2;

const COMPACT_HEADER: &str = "part.json";
const COMPACT_DATA: &str = "data.bin";
const COMPACT_MARKS: &str = "data.mrk";

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct PartColumn {
    pub name: String,
    #[serde(rename = "type")]
    pub ty: ChType,
    /// The codec the part's blocks of this column were written with (none
    /// recorded: the default). Reads do not need it: each block names its
    /// own steps.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub codec: Option<crate::codec::CodecChain>,
}

impl PartColumn {
    /// How this column's blocks are written: its codec (default LZ4), and
    /// a dictionary per block for `LowCardinality(String)`.
    pub fn encoding(&self) -> crate::codec::ColumnEncoding {
        crate::codec::ColumnEncoding {
            codec: self.codec.clone().unwrap_or_default(),
            dictionary: matches!(self.ty, ChType::LowCardinality(_))
                && self.ty.to_arrow() == datafusion::arrow::datatypes::DataType::Utf8,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct FileChecksum {
    pub size: u64,
    pub hash: String,
}

/// Checksums of all files of a part, keyed by file name. Replicas compare
/// these to know that two copies of a part are byte-identical.
pub type Checksums = BTreeMap<String, FileChecksum>;

/// How a part lays out its columns (`system.parts.part_type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum PartKind {
    /// One `.bin` and one `.mrk` file per column.
    Wide,
    /// Every column in `data.bin`.
    Compact,
}

impl PartKind {
    pub fn as_str(self) -> &'static str {
        match self {
            PartKind::Wide => "Wide",
            PartKind::Compact => "Compact",
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct PartitionFile {
    id: String,
    value: String,
}

/// `part.json` of a compact part.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct CompactHeader {
    version: u32,
    kind: PartKind,
    columns: Vec<PartColumn>,
    rows: u64,
    partition: PartitionFile,
}

/// A loaded, immutable part.
#[derive(Debug, Clone)]
pub struct Part {
    pub name: PartName,
    pub dir: PathBuf,
    pub kind: PartKind,
    pub rows: u64,
    pub columns: Vec<PartColumn>,
    /// Rows in each granule.
    pub granule_rows: Vec<u32>,
    /// Per column: the byte range of each granule's block in the column's
    /// file (see [`Part::file_of`]).
    blocks: HashMap<String, Vec<(u64, u64)>>,
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

/// A part written under `tmp_*`, not yet visible. It travels loaded: the
/// files are not read back before it is activated.
#[derive(Debug)]
pub struct PreparedPart {
    /// `part.dir` is the temporary directory; `part.name` a placeholder.
    pub part: Part,
    pub partition: PartitionInfo,
}

impl PreparedPart {
    pub fn rows(&self) -> u64 {
        self.part.rows
    }

    pub fn tmp_dir(&self) -> &Path {
        &self.part.dir
    }

    /// Renames the part to its final name.
    pub fn commit(self, table_dir: &Path, name: PartName) -> Result<Part> {
        let dir = table_dir.join(name.to_string());
        fs::rename(&self.part.dir, &dir).map_err(|e| StorageError::io(&dir, e))?;
        sync_dir(table_dir)?;
        Ok(self.part.moved(dir, name))
    }

    /// Removes the temporary directory (the insert failed).
    pub fn discard(self) {
        let _ = fs::remove_dir_all(&self.part.dir);
    }
}

fn json_err(e: serde_json::Error) -> StorageError {
    StorageError::Unsupported(format!("json: {e}"))
}

impl Part {
    /// The same part after its directory was renamed to `dir` as `name`.
    pub fn moved(mut self, dir: PathBuf, name: PartName) -> Part {
        self.dir = dir;
        self.name = name;
        self
    }

    /// Loads a part's small files (metadata, marks, index, checksums).
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
        let file_len = |f: &str| {
            checksums
                .get(f)
                .map(|c| c.size)
                .ok_or_else(|| corrupt("checksums.json", format!("no entry for {f}")))
        };
        let (kind, columns, rows, partition, granule_rows, blocks) = if checksums
            .contains_key(COMPACT_HEADER)
        {
            let h: CompactHeader = serde_json::from_slice(&read(COMPACT_HEADER)?)
                .map_err(|e| corrupt(COMPACT_HEADER, e.to_string()))?;
            if h.version > COMPACT_PART_VERSION {
                return Err(StorageError::Unsupported(format!(
                    "part {} has format version {}, this build reads up to {COMPACT_PART_VERSION}",
                    dir.display(),
                    h.version
                )));
            }
            let (granule_rows, blocks) =
                compact_marks(&read(COMPACT_MARKS)?, &h.columns, file_len(COMPACT_DATA)?)
                    .map_err(|d| corrupt(COMPACT_MARKS, d))?;
            (
                PartKind::Compact,
                h.columns,
                h.rows,
                h.partition.value,
                granule_rows,
                blocks,
            )
        } else {
            let columns: Vec<PartColumn> = serde_json::from_slice(&read("columns.json")?)
                .map_err(|e| corrupt("columns.json", e.to_string()))?;
            let rows: u64 = String::from_utf8_lossy(&read("count.txt")?)
                .trim()
                .parse()
                .map_err(|e: std::num::ParseIntError| corrupt("count.txt", e.to_string()))?;
            let pf: PartitionFile = serde_json::from_slice(&read("partition.json")?)
                .map_err(|e| corrupt("partition.json", e.to_string()))?;
            let mut blocks = HashMap::new();
            let mut granule_rows: Option<Vec<u32>> = None;
            for c in &columns {
                let base = escape_file_name(&c.name);
                let mrk_name = format!("{base}.mrk");
                let (sizes, ranges) =
                    wide_marks(&read(&mrk_name)?, file_len(&format!("{base}.bin"))?)
                        .map_err(|d| corrupt(&mrk_name, d))?;
                match &granule_rows {
                    None => granule_rows = Some(sizes),
                    Some(g) if *g != sizes => {
                        return Err(corrupt(&mrk_name, "granules differ between columns".into()))
                    }
                    Some(_) => {}
                }
                blocks.insert(c.name.clone(), ranges);
            }
            (
                PartKind::Wide,
                columns,
                rows,
                pf.value,
                granule_rows.unwrap_or_default(),
                blocks,
            )
        };
        if granule_rows.iter().map(|g| *g as u64).sum::<u64>() != rows {
            return Err(corrupt("count", "row count does not match marks".into()));
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
            kind,
            rows,
            columns,
            granule_rows,
            blocks,
            index,
            partition,
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
        self.blocks.contains_key(name)
    }

    pub fn granules(&self) -> usize {
        self.granule_rows.len()
    }

    /// The file holding `column`'s blocks.
    fn file_of(&self, column: &str) -> String {
        match self.kind {
            PartKind::Wide => format!("{}.bin", escape_file_name(column)),
            PartKind::Compact => COMPACT_DATA.to_string(),
        }
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

/// Rows per granule, and per column the byte range of each granule's block.
type Marks = (Vec<u32>, HashMap<String, Vec<(u64, u64)>>);

/// Rows per granule and the byte range of each granule's block.
type ColumnMarks = (Vec<u32>, Vec<(u64, u64)>);

/// A wide `<col>.mrk` (12 bytes per granule: offset, rows): the rows of
/// each granule and the byte range of its block in a `.bin` of `bin_len`.
fn wide_marks(mrk: &[u8], bin_len: u64) -> std::result::Result<ColumnMarks, String> {
    if !mrk.len().is_multiple_of(12) {
        return Err("bad marks length".into());
    }
    let mut starts = Vec::with_capacity(mrk.len() / 12);
    let mut sizes = Vec::with_capacity(mrk.len() / 12);
    for m in mrk.chunks_exact(12) {
        starts.push(u64::from_le_bytes(m[0..8].try_into().expect("8 bytes")));
        sizes.push(u32::from_le_bytes(m[8..12].try_into().expect("4 bytes")));
    }
    let ends = starts.iter().skip(1).copied().chain([bin_len]);
    let ranges: Vec<(u64, u64)> = starts.iter().copied().zip(ends).collect();
    check_ranges(&ranges, bin_len)?;
    Ok((sizes, ranges))
}

/// `data.mrk` of a compact part: granule rows and, per column, the byte
/// range of each granule's block in a `data.bin` of `bin_len`.
fn compact_marks(
    mrk: &[u8],
    columns: &[PartColumn],
    bin_len: u64,
) -> std::result::Result<Marks, String> {
    let stride = 4 + 8 * columns.len();
    if !mrk.len().is_multiple_of(stride) {
        return Err("bad marks length".into());
    }
    let granules = mrk.len() / stride;
    let mut sizes = Vec::with_capacity(granules);
    // Every block's start, in file order (granule-major).
    let mut starts = Vec::with_capacity(granules * columns.len());
    for m in mrk.chunks_exact(stride) {
        sizes.push(u32::from_le_bytes(m[0..4].try_into().expect("4 bytes")));
        for c in m[4..].chunks_exact(8) {
            starts.push(u64::from_le_bytes(c.try_into().expect("8 bytes")));
        }
    }
    let ends = starts.iter().skip(1).copied().chain([bin_len]);
    let ranges: Vec<(u64, u64)> = starts.iter().copied().zip(ends).collect();
    check_ranges(&ranges, bin_len)?;
    let mut blocks: HashMap<String, Vec<(u64, u64)>> = columns
        .iter()
        .map(|c| (c.name.clone(), Vec::with_capacity(granules)))
        .collect();
    for (i, r) in ranges.into_iter().enumerate() {
        let col = &columns[i % columns.len()].name;
        if let Some(v) = blocks.get_mut(col) {
            v.push(r);
        }
    }
    Ok((sizes, blocks))
}

/// Blocks follow each other without gaps or overlaps inside the file.
fn check_ranges(ranges: &[(u64, u64)], file_len: u64) -> std::result::Result<(), String> {
    let mut at = 0;
    for &(start, end) in ranges {
        if start != at || end < start || end > file_len {
            return Err("marks do not match the data file".into());
        }
        at = end;
    }
    if at != file_len {
        return Err("marks do not cover the data file".into());
    }
    Ok(())
}
