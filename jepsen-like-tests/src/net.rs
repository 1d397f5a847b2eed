//! A private network for a test cluster: each node in its own network
//! namespace, joined by veth pairs to one bridge in the harness's namespace
//! (which reaches every node, as Jepsen's control node does). Faults are
//! iptables rules and `tc netem` queues inside a node's namespace, so they
//! touch nothing outside the run; dropping the [`Network`] removes it all.
//!
//! Needs root (CAP_NET_ADMIN). [`Network::create`] says so when it is
//! missing rather than letting a partition silently not happen.

use std::path::Path;
use std::process::Command;

use qh_local_cluster::Placement;

pub struct Network {
    /// Names start with this (`qhj<k>`); addresses are 10.201.<k>.<node>.
    prefix: String,
    k: u32,
    nodes: Vec<u64>,
    forward_rule: bool,
}

fn run(args: &[&str]) -> anyhow::Result<()> {
    let out = Command::new(args[0]).args(&args[1..]).output()?;
    if out.status.success() {
        Ok(())
    } else {
        anyhow::bail!(
            "`{}` failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        )
    }
}

impl Network {
    /// Creates the bridge and one namespace per node.
    pub fn create(nodes: &[u64]) -> anyhow::Result<Network> {
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            anyhow::bail!(
                "network namespaces need root (CAP_NET_ADMIN): run as root, or pick a nemesis without partitions and --net loopback"
            );
        }
        let start = std::process::id() % 200;
        let k = (0..200)
            .map(|i| (start + i) % 200 + 1)
            .find(|k| {
                !Path::new(&format!("/sys/class/net/qhj{k}b")).exists()
                    && !Path::new(&format!("/run/netns/qhj{k}n1")).exists()
            })
            .ok_or_else(|| anyhow::anyhow!("no free qhj<k> network name"))?;
        let mut net = Network {
            prefix: format!("qhj{k}"),
            k,
            nodes: Vec::new(),
            forward_rule: false,
        };
        let br = net.bridge();
        run(&["ip", "link", "add", &br, "type", "bridge"])?;
        // Registered now so Drop removes whatever was made if a step fails.
        net.nodes = nodes.to_vec();
        run(&[
            "ip",
            "addr",
            "add",
            &format!("10.201.{k}.254/24"),
            "dev",
            &br,
        ])?;
        run(&["ip", "link", "set", &br, "up"])?;
        // Docker sets FORWARD's policy to DROP; with br_netfilter loaded that
        // would drop traffic between the nodes on our bridge.
        run(&[
            "iptables", "-I", "FORWARD", "-i", &br, "-o", &br, "-j", "ACCEPT",
        ])?;
        net.forward_rule = true;
        for &id in nodes {
            let ns = net.netns(id);
            let (host_side, node_side) = (
                format!("{}h{id}", net.prefix),
                format!("{}n{id}", net.prefix),
            );
            run(&["ip", "netns", "add", &ns])?;
            run(&[
                "ip", "link", "add", &host_side, "type", "veth", "peer", "name", &node_side,
            ])?;
            run(&["ip", "link", "set", &node_side, "netns", &ns])?;
            run(&["ip", "link", "set", &host_side, "master", &br])?;
            run(&["ip", "link", "set", &host_side, "up"])?;
            let in_ns = |args: &[&str]| {
                let mut all = vec!["ip", "netns", "exec", ns.as_str()];
                all.extend_from_slice(args);
                run(&all)
            };
            in_ns(&["ip", "link", "set", "lo", "up"])?;
            in_ns(&[
                "ip",
                "addr",
                "add",
                &format!("{}/24", net.addr(id)),
                "dev",
                &node_side,
            ])?;
            in_ns(&["ip", "link", "set", &node_side, "up"])?;
        }
        Ok(net)
    }

    fn bridge(&self) -> String {
        format!("{}b", self.prefix)
    }

    pub fn netns(&self, id: u64) -> String {
        format!("{}n{id}", self.prefix)
    }

    pub fn addr(&self, id: u64) -> String {
        format!("10.201.{}.{id}", self.k)
    }

    pub fn placement(&self, id: u64) -> Placement {
        Placement {
            host: self.addr(id),
            netns: Some(self.netns(id)),
            data_dir: None,
            env: Vec::new(),
        }
    }

    fn in_ns(&self, id: u64, args: &[&str]) -> anyhow::Result<()> {
        let ns = self.netns(id);
        let mut all = vec!["ip", "netns", "exec", ns.as_str()];
        all.extend_from_slice(args);
        run(&all)
    }

    /// Node `to` stops receiving anything from node `from` (one way).
    pub fn drop_from(&self, to: u64, from: u64) -> anyhow::Result<()> {
        let src = self.addr(from);
        self.in_ns(to, &["iptables", "-A", "INPUT", "-s", &src, "-j", "DROP"])
    }

    /// Cuts `id` off from every other node, both ways (the harness still
    /// reaches it, as a client on another network would).
    pub fn isolate(&self, id: u64) -> anyhow::Result<()> {
        for &other in self.nodes.iter().filter(|&&o| o != id) {
            self.drop_from(id, other)?;
            self.drop_from(other, id)?;
        }
        Ok(())
    }

    /// Delay and loss on every packet `id` sends (`tc netem`).
    pub fn slow(&self, id: u64, delay_ms: u32, loss_pct: u32) -> anyhow::Result<()> {
        let dev = format!("{}n{id}", self.prefix);
        let (delay, jitter, loss) = (
            format!("{delay_ms}ms"),
            format!("{}ms", delay_ms / 2),
            format!("{loss_pct}%"),
        );
        self.in_ns(
            id,
            &[
                "tc", "qdisc", "replace", "dev", &dev, "root", "netem", "delay", &delay, &jitter,
                "loss", &loss,
            ],
        )
    }

    /// Removes every rule and queue a fault added.
    pub fn heal(&self) -> anyhow::Result<()> {
        for &id in &self.nodes {
            self.in_ns(id, &["iptables", "-F"])?;
            let dev = format!("{}n{id}", self.prefix);
            // Absent unless `slow` ran: its failure means nothing to remove.
            let _ = self.in_ns(id, &["tc", "qdisc", "del", "dev", &dev, "root"]);
        }
        Ok(())
    }
}

impl Drop for Network {
    fn drop(&mut self) {
        for &id in &self.nodes {
            // Deleting the namespace deletes the veth pair with it.
            let _ = run(&["ip", "netns", "del", &self.netns(id)]);
        }
        if self.forward_rule {
            let br = self.bridge();
            let _ = run(&[
                "iptables", "-D", "FORWARD", "-i", &br, "-o", &br, "-j", "ACCEPT",
            ]);
        }
        let _ = run(&["ip", "link", "del", &self.bridge()]);
    }
}
