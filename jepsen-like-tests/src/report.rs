//! Results as text: one line of verdict, the safety figures, and a table of
//! faults with the write gap each caused.

use comfy_table::Table;

use crate::run::Results;

fn secs(v: Option<f64>) -> String {
    v.map(|s| format!("{s:.2}")).unwrap_or_else(|| "-".into())
}

pub fn text(r: &Results) -> String {
    let mut out = format!(
        "{} {} seed={} time={}s rate={}/s quorum={} nodes={} net={}: {}\n",
        r.workload,
        r.nemesis,
        r.seed,
        r.time_s,
        r.rate,
        r.quorum,
        r.nodes,
        r.net,
        if r.valid { "VALID" } else { "INVALID" }
    );
    for p in &r.problems {
        out.push_str(&format!("  problem: {p}\n"));
    }
    out.push_str(&format!(
        "  ops ok={} fail={} info={}",
        r.ops.ok, r.ops.fail, r.ops.info
    ));
    if let Some(s) = &r.set {
        out.push_str(&format!(
            "; acknowledged ids={} recovered={} unknown-absent={}; lost={} duplicates={} unexpected={} partial={}",
            s.acknowledged,
            s.recovered,
            s.unknown_absent,
            s.lost.len(),
            s.duplicates.len(),
            s.unexpected.len(),
            s.partial.len(),
        ));
    }
    if let Some(s) = &r.sequential {
        out.push_str(&format!(
            "; reads={} refused={} stale={}",
            s.reads,
            s.refused,
            s.stale.len()
        ));
    }
    if let Some(s) = &r.replacing {
        out.push_str(&format!(
            "; keys={} acknowledged rows={} wrong FINAL={}",
            s.keys,
            s.acknowledged,
            s.wrong.len()
        ));
    }
    if let Some(r) = &r.register {
        out.push_str(&format!(
            "; registers={} reads ok={} writes ok/info={}/{} cas ok/fail/info={}/{}/{} linearizable={}{}",
            r.keys,
            r.reads.ok,
            r.writes.ok,
            r.writes.info,
            r.cas.ok,
            r.cas.fail,
            r.cas.info,
            r.linearizable(),
            match r.unknown.len() {
                0 => String::new(),
                n => format!(" (search budget exhausted on {n} keys)"),
            }
        ));
    }
    out.push_str(&format!(
        "; converged after heal {}s\n",
        secs(r.converged_s)
    ));
    if !r.faults.is_empty() {
        let mut t = Table::new();
        t.set_header([
            "fault",
            "node",
            "start s",
            "heal s",
            "longest write gap s",
            "first ack after fault s",
            "first ack after heal s",
        ]);
        for f in &r.faults {
            t.add_row([
                f.fault.clone(),
                f.node.map(|n| n.to_string()).unwrap_or_default(),
                format!("{:.1}", f.start_s),
                secs(f.heal_s),
                format!("{:.2}", f.longest_gap_s),
                secs(f.first_ack_after_fault_s),
                secs(f.first_ack_after_heal_s),
            ]);
        }
        out.push_str(&t.to_string());
        out.push('\n');
    }
    out.push_str(&format!(
        "  history and results: {}\n  timeline: {}\n",
        r.dir.display(),
        r.timeline
    ));
    out
}
