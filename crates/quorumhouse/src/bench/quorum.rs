//! `quorumhouse bench quorum` on a three-node loopback cluster: the cost of
//! `insert_quorum` = 0, 2 and 3 side by side in one run — large batches from
//! a few writers (rows/s) and small inserts from many writers (inserts/s,
//! latency percentiles, errors), one writer's latency — plus the nodes' peak
//! memory. `--layouts compact,wide` runs it all for both part layouts (wide:
//! `min_bytes_for_wide_part = 0`, every part one file pair per column).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use clap::Args;
use serde::Serialize;

use super::{peak_rss_mb, percentiles, Rng};

#[derive(Args, Debug)]
pub struct QuorumArgs {
    /// Quorums compared (0 = off).
    #[arg(long, value_delimiter = ',', default_values_t = vec![0u64, 2, 3])]
    pub quorums: Vec<u64>,
    /// Writers of large batches.
    #[arg(long, default_value_t = 4)]
    pub batch_writers: usize,
    /// Large batches per writer.
    #[arg(long, default_value_t = 5)]
    pub batches: usize,
    /// Rows per large batch.
    #[arg(long, default_value_t = 100_000)]
    pub batch_rows: u64,
    /// Writers of small inserts.
    #[arg(long, default_value_t = 16)]
    pub small_writers: usize,
    /// Small inserts per writer.
    #[arg(long, default_value_t = 100)]
    pub small_inserts: usize,
    /// Rows per small insert.
    #[arg(long, default_value_t = 100)]
    pub small_rows: u64,
    /// Part layouts compared: compact (the table defaults: small parts are
    /// compact) and/or wide (`min_bytes_for_wide_part = 0`).
    #[arg(long, value_delimiter = ',', default_values_t = vec![String::from("compact")])]
    pub layouts: Vec<String>,
    /// Inserts of `small_rows` rows by one writer, one after another.
    #[arg(long, default_value_t = 100)]
    pub single_inserts: usize,
    /// Writer counts of the async_insert on/off comparison (at the highest
    /// quorum, first layout); empty: skipped.
    #[arg(long, value_delimiter = ',', default_values_t = vec![16usize, 64])]
    pub async_writers: Vec<usize>,
    /// Inserts per writer in the async_insert comparison.
    #[arg(long, default_value_t = 20)]
    pub async_inserts: usize,
    /// Seconds one replica (then the coordinator leader) is frozen with
    /// SIGSTOP under insert_quorum = 2 inserts; 0: skipped.
    #[arg(long, default_value_t = 10)]
    pub freeze_secs: u64,
    /// Write the figures as JSON here too.
    #[arg(long)]
    pub json: Option<PathBuf>,
}

#[derive(Debug, Serialize, Default, Clone)]
struct Row {
    layout: String,
    quorum: u64,
    batch_rows_per_s: f64,
    /// Until every replica holds the batches (SYNC REPLICA on all three).
    batch_rows_per_s_all_replicas: f64,
    batch_errors: usize,
    small_inserts_per_s: f64,
    small_p50_ms: f64,
    small_p99_ms: f64,
    small_errors: usize,
    single_p50_ms: f64,
    single_p99_ms: f64,
}

#[derive(Debug, Serialize, Default)]
struct Figures {
    rows: Vec<Row>,
    node_peak_rss_mb: Vec<f64>,
    /// Small inserts with async_insert = 0 and 1, per writer count.
    sync_inserts: Vec<SmallInserts>,
    async_inserts: Vec<SmallInserts>,
    async_quorum: u64,
    /// A node frozen (SIGSTOP) under insert_quorum = 2 inserts.
    frozen: Vec<Frozen>,
    /// Replica SIGKILLed → a quorum=3 insert answered (285), ms.
    kill_to_285_ms: f64,
    kill_error_code: i32,
}

fn csv(rng: &mut Rng, writer: usize, batch: usize, rows: u64) -> Vec<u8> {
    use std::fmt::Write as _;
    let mut s = String::with_capacity(rows as usize * 64);
    for id in 0..rows {
        let _ = writeln!(
            s,
            "{writer},{batch},{id},{:016x}{:016x}",
            rng.next(),
            rng.next()
        );
    }
    s.into_bytes()
}

async fn connect(
    cluster: &qh_local_cluster::LocalCluster,
    node: u64,
) -> anyhow::Result<qh_client::Client> {
    Ok(qh_client::Client::connect(&[cluster.client_endpoint(node)]).await?)
}

pub async fn quorum(a: QuorumArgs) -> anyhow::Result<()> {
    let exe = std::env::current_exe()?;
    let mut cluster = qh_local_cluster::LocalCluster::start(Path::new(&exe), 3, &[])?;
    cluster
        .leader(&cluster.all(), Duration::from_secs(30))
        .await?;
    let mut tables = Vec::new();
    for layout in &a.layouts {
        let (suffix, settings) = match layout.as_str() {
            "compact" => ("", ""),
            "wide" => ("_wide", " SETTINGS min_bytes_for_wide_part = 0"),
            other => anyhow::bail!("unknown layout {other:?} (compact or wide)"),
        };
        for q in &a.quorums {
            let table = format!("bench_q{q}{suffix}");
            let create = format!(
                "CREATE TABLE {table} (writer UInt64, batch UInt64, id UInt64, payload String) \
                 ENGINE = ReplicatedMergeTree('/bench/{table}', '{{replica}}') ORDER BY (writer, batch, id){settings}"
            );
            for n in 1..=3 {
                connect(&cluster, n).await?.query(&create).await?;
            }
            tables.push((layout.clone(), *q, table));
        }
    }
    // Quorum inserts count replicas with a live lease.
    let mut probe = connect(&cluster, 1).await?;
    let started = Instant::now();
    loop {
        let out = probe
            .query("SELECT min(active_replicas) FROM system.replicas")
            .await?;
        let live = out
            .batches
            .first()
            .map(|b| qh_types::text::value_text(b.column(0).as_ref(), 0))
            .unwrap_or_default();
        if live == "3" {
            break;
        }
        if started.elapsed() > Duration::from_secs(30) {
            anyhow::bail!("replicas did not all become active");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut rng = Rng(0x0051_0A7E_BEEF_0003);
    // Warm up every node and table (connections, first parts) off the clock.
    for (_, q, table) in &tables {
        for n in 1..=3 {
            connect(&cluster, n)
                .await?
                .insert_bytes(
                    &format!("INSERT INTO {table} SETTINGS insert_quorum = {q} FORMAT CSV"),
                    csv(&mut rng, 9999, n as usize, 1000),
                )
                .await?;
        }
    }
    let mut fig = Figures::default();
    for (layout, q, table) in &tables {
        let q = *q;
        let mut row = Row {
            layout: layout.clone(),
            quorum: q,
            ..Default::default()
        };
        let insert = format!("INSERT INTO {table} SETTINGS insert_quorum = {q} FORMAT CSV");
        // Large batches: writers spread over the nodes.
        let data: Vec<Vec<Vec<u8>>> = (0..a.batch_writers)
            .map(|w| {
                (0..a.batches)
                    .map(|b| csv(&mut rng, w, b, a.batch_rows))
                    .collect()
            })
            .collect();
        eprintln!(
            "{layout} parts, insert_quorum={q}: {} writers x {} batches of {} rows ...",
            a.batch_writers, a.batches, a.batch_rows
        );
        let mut clients = Vec::new();
        for w in 0..a.batch_writers {
            clients.push(connect(&cluster, w as u64 % 3 + 1).await?);
        }
        let t = Instant::now();
        let results =
            futures::future::join_all(clients.into_iter().zip(data).map(|(mut c, batches)| {
                let insert = insert.clone();
                async move {
                    let mut errors = 0;
                    for b in batches {
                        if c.insert_bytes(&insert, b).await.is_err() {
                            errors += 1;
                        }
                    }
                    errors
                }
            }))
            .await;
        let secs = t.elapsed().as_secs_f64();
        row.batch_errors = results.iter().sum();
        let total = (a.batch_writers * a.batches) as u64 * a.batch_rows;
        row.batch_rows_per_s = total as f64 / secs;
        for n in 1..=3 {
            connect(&cluster, n)
                .await?
                .query(&format!("SYSTEM SYNC REPLICA {table}"))
                .await?;
        }
        row.batch_rows_per_s_all_replicas = total as f64 / t.elapsed().as_secs_f64();

        // Small inserts: many writers, latency per insert.
        eprintln!(
            "{layout} parts, insert_quorum={q}: {} writers x {} inserts of {} rows ...",
            a.small_writers, a.small_inserts, a.small_rows
        );
        let m = small_inserts(
            &cluster,
            &insert,
            a.small_writers,
            a.small_inserts,
            a.small_rows,
            &mut rng,
        )
        .await?;
        row.small_inserts_per_s = m.per_s;
        (row.small_p50_ms, row.small_p99_ms) = (m.p50_ms, m.p99_ms);
        row.small_errors = m.errors;

        // One writer alone: the latency an insert costs, without queueing.
        let mut c = connect(&cluster, 1).await?;
        let mut lat = Vec::with_capacity(a.single_inserts);
        for i in 0..a.single_inserts {
            let b = csv(&mut rng, 5000, i, a.small_rows);
            let s = Instant::now();
            if c.insert_bytes(&insert, b).await.is_ok() {
                lat.push(s.elapsed().as_secs_f64());
            } else {
                row.small_errors += 1;
            }
        }
        (row.single_p50_ms, row.single_p99_ms) = percentiles(lat);
        fig.rows.push(row);
    }

    // async_insert off / on: many writers of small inserts at the highest
    // quorum.
    if let Some((_, q, table)) = tables.iter().max_by_key(|(_, q, _)| *q) {
        fig.async_quorum = *q;
        for &writers in &a.async_writers {
            for on in [false, true] {
                eprintln!(
                    "async_insert={}, insert_quorum={q}: {writers} writers x {} inserts of {} rows ...",
                    on as u8, a.async_inserts, a.small_rows
                );
                let insert = format!(
                    "INSERT INTO {table} SETTINGS insert_quorum = {q}, async_insert = {} FORMAT CSV",
                    on as u8
                );
                let m = small_inserts(
                    &cluster,
                    &insert,
                    writers,
                    a.async_inserts,
                    a.small_rows,
                    &mut rng,
                )
                .await?;
                if on {
                    fig.async_inserts.push(m);
                } else {
                    fig.sync_inserts.push(m);
                }
            }
        }
    }

    fig.node_peak_rss_mb = cluster
        .pids()
        .iter()
        .map(|p| peak_rss_mb(&p.to_string()))
        .collect();

    // A node frozen under quorum = 2 inserts: a replica, then the leader.
    if a.freeze_secs > 0 {
        if let Some((_, _, table)) = tables.first() {
            let leader = cluster
                .leader(&cluster.all(), Duration::from_secs(30))
                .await?;
            let follower = (1..=3).rev().find(|&n| n != leader).unwrap_or(3);
            for (role, node) in [("replica", follower), ("leader", leader)] {
                eprintln!(
                    "insert_quorum=2 while node {node} ({role}) is frozen for {} s ...",
                    a.freeze_secs
                );
                let f = frozen(&cluster, table, role, node, a.freeze_secs, &mut rng).await?;
                fig.frozen.push(f);
            }
        }
    }

    // A replica dies: how fast does a quorum=3 insert learn it?
    let top = tables
        .iter()
        .max_by_key(|(_, q, _)| *q)
        .map(|(_, _, t)| t.clone())
        .unwrap_or_default();
    let mut n1 = connect(&cluster, 1).await?;
    cluster.kill(3);
    let t = Instant::now();
    let r = n1
        .insert_bytes(
            &format!("INSERT INTO {top} SETTINGS insert_quorum = 3 FORMAT CSV"),
            csv(&mut rng, 7777, 0, 10_000),
        )
        .await;
    fig.kill_to_285_ms = t.elapsed().as_secs_f64() * 1000.0;
    fig.kill_error_code = r.err().map(|e| e.code()).unwrap_or(0);

    println!(
        "insert_quorum on 3 replicas: {} x {} batches of {} rows; {} x {} inserts of {} rows",
        a.batch_writers, a.batches, a.batch_rows, a.small_writers, a.small_inserts, a.small_rows
    );
    println!(
        "{:>7} {:>6} | {:>12} {:>6} | {:>12} {:>6} | {:>6} | {:>9} {:>6} {:>7} {:>7} {:>6} {:>6} | {:>10} {:>10}",
        "layout",
        "quorum",
        "batch rows/s",
        "vs q0",
        "on all 3 /s",
        "vs q0",
        "errors",
        "inserts/s",
        "vs q0",
        "p50 ms",
        "p99 ms",
        "+p50",
        "errors",
        "1w p50 ms",
        "1w p99 ms"
    );
    for r in &fig.rows {
        // Ratios are to insert_quorum = 0 with the same layout.
        let base = fig
            .rows
            .iter()
            .find(|b| b.quorum == 0 && b.layout == r.layout);
        let ratio = |f: fn(&Row) -> f64| base.map_or(f64::NAN, |b| f(r) / f(b));
        let dp = base.map_or(f64::NAN, |b| r.small_p50_ms - b.small_p50_ms);
        println!(
            "{:>7} {:>6} | {:>12.0} {:>5.2}x | {:>12.0} {:>5.2}x | {:>6} | {:>9.0} {:>5.2}x {:>7.1} {:>7.1} {:>6.1} {:>6} | {:>10.1} {:>10.1}",
            r.layout,
            r.quorum,
            r.batch_rows_per_s,
            ratio(|r| r.batch_rows_per_s),
            r.batch_rows_per_s_all_replicas,
            ratio(|r| r.batch_rows_per_s_all_replicas),
            r.batch_errors,
            r.small_inserts_per_s,
            ratio(|r| r.small_inserts_per_s),
            r.small_p50_ms,
            r.small_p99_ms,
            dp,
            r.small_errors,
            r.single_p50_ms,
            r.single_p99_ms
        );
    }
    if !fig.async_inserts.is_empty() {
        println!(
            "{} x {}-row inserts, insert_quorum={}: async_insert off vs on",
            a.async_inserts, a.small_rows, fig.async_quorum
        );
        println!(
            "{:>8} | {:>10} {:>8} {:>8} {:>6} | {:>10} {:>8} {:>8} {:>6} | {:>6}",
            "writers",
            "off ins/s",
            "p50 ms",
            "p99 ms",
            "errors",
            "on ins/s",
            "p50 ms",
            "p99 ms",
            "errors",
            "on/off"
        );
        for (off, on) in fig.sync_inserts.iter().zip(&fig.async_inserts) {
            println!(
                "{:>8} | {:>10.0} {:>8.1} {:>8.1} {:>6} | {:>10.0} {:>8.1} {:>8.1} {:>6} | {:>5.2}x",
                off.writers, off.per_s, off.p50_ms, off.p99_ms, off.errors, on.per_s, on.p50_ms, on.p99_ms, on.errors,
                on.per_s / off.per_s
            );
        }
    }
    println!(
        "peak RSS per node (MB): {}",
        fig.node_peak_rss_mb
            .iter()
            .map(|m| format!("{m:.0}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    for f in &fig.frozen {
        println!(
            "{} frozen {} s under insert_quorum=2 ({} writers): {} acks, longest gap between acks {:.0} ms (first ack after the freeze {:.0} ms), p50 {:.1} ms, p99 {:.1} ms, {} errors; frozen node caught up after SIGCONT: {}",
            f.frozen, f.freeze_secs, f.writers, f.acks, f.longest_gap_ms, f.first_ack_after_freeze_ms,
            f.p50_ms, f.p99_ms, f.errors, if f.caught_up { "yes" } else { "NO" }
        );
    }
    println!(
        "replica SIGKILLed -> quorum=3 insert answered in {:.0} ms with code {} (285 = TOO_FEW_LIVE_REPLICAS)",
        fig.kill_to_285_ms, fig.kill_error_code
    );
    if let Some(p) = &a.json {
        std::fs::write(p, serde_json::to_vec_pretty(&fig)?)?;
    }
    Ok(())
}

/// Inserts/s, latency percentiles and errors of `writers` clients (spread
/// over the nodes) each running `inserts` inserts of `rows` rows.
#[derive(Debug, Serialize, Default, Clone)]
struct SmallInserts {
    writers: usize,
    per_s: f64,
    p50_ms: f64,
    p99_ms: f64,
    errors: usize,
}

async fn small_inserts(
    cluster: &qh_local_cluster::LocalCluster,
    insert: &str,
    writers: usize,
    inserts: usize,
    rows: u64,
    rng: &mut Rng,
) -> anyhow::Result<SmallInserts> {
    let mut clients = Vec::new();
    let mut payloads = Vec::new();
    for w in 0..writers {
        clients.push(connect(cluster, w as u64 % 3 + 1).await?);
        payloads.push(
            (0..inserts)
                .map(|i| csv(rng, 1000 + w, i, rows))
                .collect::<Vec<_>>(),
        );
    }
    let t = Instant::now();
    let results = futures::future::join_all(clients.into_iter().zip(payloads).map(
        |(mut c, inserts)| async move {
            let mut lat = Vec::new();
            let mut errors = 0;
            for b in inserts {
                let s = Instant::now();
                match c.insert_bytes(insert, b).await {
                    Ok(_) => lat.push(s.elapsed().as_secs_f64()),
                    Err(_) => errors += 1,
                }
            }
            (lat, errors)
        },
    ))
    .await;
    let secs = t.elapsed().as_secs_f64();
    let mut m = SmallInserts {
        writers,
        ..Default::default()
    };
    let mut lat = Vec::new();
    for (l, e) in results {
        lat.extend(l);
        m.errors += e;
    }
    m.per_s = lat.len() as f64 / secs;
    (m.p50_ms, m.p99_ms) = percentiles(lat);
    Ok(m)
}

/// Quorum inserts while one node is frozen.
#[derive(Debug, Serialize, Default, Clone)]
struct Frozen {
    /// "replica" or "leader".
    frozen: String,
    freeze_secs: u64,
    writers: usize,
    acks: usize,
    errors: usize,
    /// The longest time without an acknowledged insert, from the freeze on.
    longest_gap_ms: f64,
    first_ack_after_freeze_ms: f64,
    p50_ms: f64,
    p99_ms: f64,
    /// After SIGCONT the frozen node holds every row the others hold.
    caught_up: bool,
}

/// Writers on the other two nodes insert 100-row batches with
/// insert_quorum = 2 for 2 s, then `node` is frozen (SIGSTOP) for `secs`,
/// resumed, and the writers go on for 3 s more. Each insert is bounded by
/// a client-side timeout of `secs` + 20 s.
async fn frozen(
    cluster: &qh_local_cluster::LocalCluster,
    table: &str,
    role: &str,
    node: u64,
    secs: u64,
    rng: &mut Rng,
) -> anyhow::Result<Frozen> {
    const WRITERS: usize = 4;
    let pid = cluster
        .pid(node)
        .ok_or_else(|| anyhow::anyhow!("node {node} is not running"))? as i32;
    let others: Vec<u64> = (1..=3).filter(|&n| n != node).collect();
    let insert = format!("INSERT INTO {table} SETTINGS insert_quorum = 2 FORMAT CSV");
    let warm = Duration::from_secs(2);
    let freeze = Duration::from_secs(secs);
    let total = warm + freeze + Duration::from_secs(3);
    let per_insert = freeze + Duration::from_secs(20);
    let mut clients = Vec::new();
    for w in 0..WRITERS {
        clients.push(connect(cluster, others[w % others.len()]).await?);
    }
    let seeds: Vec<u64> = (0..WRITERS).map(|_| rng.next()).collect();
    let start = Instant::now();
    let writers = clients
        .into_iter()
        .zip(seeds)
        .enumerate()
        .map(|(w, (mut c, seed))| {
            let insert = insert.clone();
            async move {
                let mut rng = Rng(seed | 1);
                let mut acks = Vec::new();
                let mut errors = 0;
                let mut i = 0;
                while start.elapsed() < total {
                    let b = csv(&mut rng, 3000 + w, i, 100);
                    i += 1;
                    let s = Instant::now();
                    match tokio::time::timeout(per_insert, c.insert_bytes(&insert, b)).await {
                        Ok(Ok(_)) => acks.push((s - start, s.elapsed())),
                        _ => errors += 1,
                    }
                }
                (acks, errors)
            }
        });
    let nemesis = async {
        tokio::time::sleep(warm).await;
        let frozen_at = start.elapsed();
        // SAFETY: kill(2) on a child process id this cluster started.
        unsafe { libc::kill(pid, libc::SIGSTOP) };
        tokio::time::sleep(freeze).await;
        unsafe { libc::kill(pid, libc::SIGCONT) };
        frozen_at
    };
    let (results, frozen_at) = tokio::join!(futures::future::join_all(writers), nemesis);
    let mut f = Frozen {
        frozen: role.to_string(),
        freeze_secs: secs,
        writers: WRITERS,
        ..Default::default()
    };
    let mut done: Vec<Duration> = Vec::new();
    let mut lat = Vec::new();
    for (acks, errors) in results {
        f.errors += errors;
        for (began, took) in acks {
            done.push(began + took);
            lat.push(took.as_secs_f64());
        }
    }
    f.acks = done.len();
    (f.p50_ms, f.p99_ms) = percentiles(lat);
    done.sort();
    let after: Vec<Duration> = done.into_iter().filter(|d| *d >= frozen_at).collect();
    f.first_ack_after_freeze_ms = after
        .first()
        .map_or(f64::NAN, |d| (*d - frozen_at).as_secs_f64() * 1000.0);
    let mut prev = frozen_at;
    let mut gap = Duration::ZERO;
    for d in after
        .iter()
        .copied()
        .chain(std::iter::once(total.max(start.elapsed())))
    {
        gap = gap.max(d.saturating_sub(prev));
        prev = d;
    }
    f.longest_gap_ms = gap.as_secs_f64() * 1000.0;
    // The frozen node catches up: the same count as the others.
    let count = format!("SELECT count() FROM {table}");
    let expected = cluster.sql(others[0], &count).await?;
    f.caught_up = cluster
        .wait_for(
            "the frozen node to catch up",
            Duration::from_secs(60),
            || async {
                let got = cluster.sql(node, &count).await.ok()?;
                (got == expected).then_some(())
            },
        )
        .await
        .is_ok();
    Ok(f)
}
