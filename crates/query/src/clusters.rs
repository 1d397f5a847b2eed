//! Clusters: named layouts of the coordinator's nodes into shards of
//! replicas, for `ON CLUSTER` and `system.clusters` (ClickHouse's
//! `remote_servers`). Two exist without configuration and follow the
//! membership: `default`, one shard holding every node (a 1×N replicated
//! cluster), and `sharded`, every node its own shard (N×1). A node's config
//! file may define others, or redefine these, as `[clusters.<name>] shards =
//! [[1, 2], [3]]` (node ids).

use std::collections::BTreeMap;

use qh_meta::DdlHost;

/// Shards in order, each a list of node ids (its replicas in order).
pub type Layout = Vec<Vec<u64>>;

#[derive(Debug, Clone, Default)]
pub struct Clusters {
    configured: BTreeMap<String, Layout>,
}

impl Clusters {
    pub fn new(configured: BTreeMap<String, Layout>) -> Clusters {
        Clusters { configured }
    }

    /// Every cluster, given the coordinator's voters.
    pub fn all(&self, voters: &[u64]) -> BTreeMap<String, Layout> {
        let mut out = BTreeMap::new();
        out.insert("default".to_string(), vec![voters.to_vec()]);
        out.insert(
            "sharded".to_string(),
            voters.iter().map(|v| vec![*v]).collect(),
        );
        for (name, layout) in &self.configured {
            out.insert(name.clone(), layout.clone());
        }
        out
    }

    /// Whether `name` is `default` or `sharded` as built in, following the
    /// membership: a node that joins later is in it, so it replays the
    /// cluster's DDL tasks it never saw.
    pub fn follows_membership(&self, name: &str) -> bool {
        matches!(name, "default" | "sharded") && !self.configured.contains_key(name)
    }
}

/// Each node of `layout` with its 1-based shard and replica numbers (a node
/// listed twice keeps its first place).
pub fn hosts(layout: &Layout) -> Vec<DdlHost> {
    let mut out: Vec<DdlHost> = Vec::new();
    for (s, replicas) in layout.iter().enumerate() {
        for (r, node) in replicas.iter().enumerate() {
            if !out.iter().any(|h| h.node == *node) {
                out.push(DdlHost {
                    node: *node,
                    shard: s as u32 + 1,
                    replica: r as u32 + 1,
                });
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_and_sharded_follow_the_voters_and_config_wins() {
        let c = Clusters::default();
        assert_eq!(
            c.all(&[1, 2, 3]).remove("default"),
            Some(vec![vec![1, 2, 3]])
        );
        assert_eq!(
            c.all(&[1, 2, 3]).remove("sharded"),
            Some(vec![vec![1], vec![2], vec![3]])
        );
        assert_eq!(c.all(&[1]).remove("nope"), None);
        let c = Clusters::new(BTreeMap::from([(
            "two".to_string(),
            vec![vec![1, 2], vec![3]],
        )]));
        let h = hosts(&c.all(&[1, 2, 3]).remove("two").unwrap());
        let place = |n: u64| h.iter().find(|p| p.node == n).map(|p| (p.shard, p.replica));
        assert_eq!(place(2), Some((1, 2)));
        assert_eq!(place(3), Some((2, 1)));
    }
}
