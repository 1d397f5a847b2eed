//! Part names: `<partition_id>_<min_block>_<max_block>_<level>`.

use std::fmt;
use std::str::FromStr;

/// The name of an immutable data part; it says which partition and which range
/// of block numbers the part covers, and how many merges made it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PartName {
    pub partition_id: String,
    pub min_block: u64,
    pub max_block: u64,
    pub level: u32,
}

impl PartName {
    /// Whether `self` covers `other`: same partition, a block range that
    /// contains the other's, and a level at least as high.
    pub fn covers(&self, other: &PartName) -> bool {
        self.partition_id == other.partition_id
            && self.min_block <= other.min_block
            && self.max_block >= other.max_block
            && self.level >= other.level
            && self != other
    }

    /// The name of the part that merging `parts` (same partition) gives.
    pub fn merged(parts: &[&PartName]) -> Option<PartName> {
        let first = parts.first()?;
        Some(PartName {
            partition_id: first.partition_id.clone(),
            min_block: parts.iter().map(|p| p.min_block).min()?,
            max_block: parts.iter().map(|p| p.max_block).max()?,
            level: parts.iter().map(|p| p.level).max()? + 1,
        })
    }
}

impl fmt::Display for PartName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}_{}_{}_{}",
            self.partition_id, self.min_block, self.max_block, self.level
        )
    }
}

impl FromStr for PartName {
    type Err = String;

    /// Partition ids may themselves contain `_`, so the numbers are taken from
    /// the right.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || format!("unexpected part name: {s}");
        let mut it = s.rsplitn(4, '_');
        let level = it.next().ok_or_else(bad)?.parse().map_err(|_| bad())?;
        let max_block = it.next().ok_or_else(bad)?.parse().map_err(|_| bad())?;
        let min_block = it.next().ok_or_else(bad)?.parse().map_err(|_| bad())?;
        let partition_id = it.next().ok_or_else(bad)?.to_string();
        if partition_id.is_empty() {
            return Err(bad());
        }
        Ok(PartName {
            partition_id,
            min_block,
            max_block,
            level,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_print() {
        let p: PartName = "202401_3_7_1".parse().unwrap();
        assert_eq!(p.partition_id, "202401");
        assert_eq!((p.min_block, p.max_block, p.level), (3, 7, 1));
        assert_eq!(p.to_string(), "202401_3_7_1");
        assert!("all_1_x_0".parse::<PartName>().is_err());
        assert!("_1_1_0".parse::<PartName>().is_err());
    }

    #[test]
    fn merged_covers_sources() {
        let a: PartName = "all_1_1_0".parse().unwrap();
        let b: PartName = "all_2_4_1".parse().unwrap();
        let m = PartName::merged(&[&a, &b]).unwrap();
        assert_eq!(m.to_string(), "all_1_4_2");
        assert!(m.covers(&a) && m.covers(&b));
        assert!(!a.covers(&b));
    }
}
