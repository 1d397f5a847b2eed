use proptest::prelude::*;

use super::*;
use crate::command::{Check, LogEntry, Op, OpResult, Request, Response};

fn req(ops: Vec<Op>, now_ms: u64) -> Request {
    let mut r = Request::ops(ops);
    r.now_ms = now_ms;
    r
}

fn table_setup() -> MetaState {
    let mut s = MetaState::default();
    let ops = vec![
        Op::CreateDatabase { name: "db".into() },
        Op::CreateTable {
            table: "db.t".into(),
            engine: "ReplicatedMergeTree".into(),
            create_sql: "CREATE".into(),
            max_log_entries: 0,
        },
        Op::AddReplica {
            table: "db.t".into(),
            replica: "r1".into(),
            node_id: 1,
            address: "a".into(),
        },
        Op::AddReplica {
            table: "db.t".into(),
            replica: "r2".into(),
            node_id: 2,
            address: "b".into(),
        },
    ];
    assert!(s.apply(&req(ops, 1)).is_ok());
    s
}

#[test]
fn insert_transaction_dedups_and_allocates() {
    let mut s = table_setup();
    let insert = |block: &str, part: &str| {
        req(
            vec![
                Op::AllocateBlock {
                    table: "db.t".into(),
                    partition: "all".into(),
                },
                Op::AppendLog {
                    table: "db.t".into(),
                    entry: LogEntry::GetPart {
                        part: part.into(),
                        block_id: Some(block.into()),
                        holders: ["r1".to_string()].into(),
                        stage: None,
                    },
                },
                Op::AddDedupBlock {
                    table: "db.t".into(),
                    block_id: block.into(),
                    part: part.into(),
                    window: 2,
                    window_seconds: 3600,
                },
            ],
            10,
        )
        .with_checks(vec![Check::DedupAbsent {
            table: "db.t".into(),
            block_id: block.into(),
        }])
    };
    let r = s.apply(&insert("all_1", "all_1_1_0"));
    assert_eq!(
        r,
        Response::Ok {
            results: vec![OpResult::Block(1), OpResult::LogIndex(1), OpResult::Done]
        }
    );
    let before = s.to_bytes();
    match s.apply(&insert("all_1", "all_2_2_0")) {
        Response::CheckFailed { detail, .. } => {
            assert_eq!(detail.as_deref(), Some("all_1_1_0"))
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(s.to_bytes(), before, "a failed check changes nothing");
    assert!(s.apply(&insert("all_2", "all_2_2_0")).is_ok());
    assert!(s.apply(&insert("all_3", "all_3_3_0")).is_ok());
    // Window of 2: the oldest id fell out.
    assert!(s.dedup_block("db.t", "all_1").is_none());
    assert!(s.dedup_block("db.t", "all_3").is_some());
    assert_eq!(s.log_from("db.t", 0).len(), 3);
    assert_eq!(s.parts_of("db.t").len(), 3);
}

#[test]
fn merges_never_overlap_and_drop_range_removes_parts() {
    let mut s = table_setup();
    let get = |p: &str| Op::AppendLog {
        table: "db.t".into(),
        entry: LogEntry::GetPart {
            part: p.into(),
            block_id: None,
            holders: ["r1".to_string()].into(),
            stage: None,
        },
    };
    let merge = |parts: &[&str], new: &str| {
        req(
            vec![Op::AppendLog {
                table: "db.t".into(),
                entry: LogEntry::MergeParts {
                    parts: parts.iter().map(|p| p.to_string()).collect(),
                    new_part: new.into(),
                },
            }],
            1,
        )
    };
    for p in ["all_1_1_0", "all_2_2_0", "all_3_3_0"] {
        assert!(s.apply(&req(vec![get(p)], 1)).is_ok());
    }
    assert!(s
        .apply(&merge(&["all_1_1_0", "all_2_2_0"], "all_1_2_1"))
        .is_ok());
    // all_2_2_0 is already taken by a merge: an overlapping one is refused.
    let r = s.apply(&merge(&["all_2_2_0", "all_3_3_0"], "all_2_3_1"));
    assert!(matches!(r, Response::Rejected { .. }), "{r:?}");
    let holder = |part: &str, replica: &str, sum: &str| Op::AddPartHolder {
        table: "db.t".into(),
        part: part.into(),
        replica: replica.into(),
        checksum: Some(sum.into()),
    };
    assert!(s
        .apply(&req(vec![holder("all_1_2_1", "r1", "aa")], 1))
        .is_ok());
    // A replica whose merge result differs is refused as a holder.
    let r = s.apply(&req(vec![holder("all_1_2_1", "r2", "bb")], 1));
    assert!(matches!(r, Response::Rejected { .. }), "{r:?}");
    assert!(s
        .apply(&req(vec![holder("all_1_2_1", "r2", "aa")], 1))
        .is_ok());
    // Sources stay fetchable until their last holder executed the merge.
    let drop_holder = |part: &str| Op::RemovePartHolder {
        table: "db.t".into(),
        part: part.into(),
        replica: "r1".into(),
    };
    assert!(s
        .apply(&req(
            vec![drop_holder("all_1_1_0"), drop_holder("all_2_2_0")],
            1
        ))
        .is_ok());
    let names: Vec<String> = s.parts_of("db.t").into_iter().map(|(n, _)| n).collect();
    assert_eq!(names, vec!["all_1_2_1", "all_3_3_0"]);
    let drop = req(
        vec![Op::AppendLog {
            table: "db.t".into(),
            entry: LogEntry::DropRange {
                partition: "all".into(),
                max_block: 2,
            },
        }],
        1,
    );
    assert!(s.apply(&drop).is_ok());
    let names: Vec<String> = s.parts_of("db.t").into_iter().map(|(n, _)| n).collect();
    assert_eq!(names, vec!["all_3_3_0"]);
}

#[test]
fn a_merge_covers_only_its_sources_and_no_uncommitted_block() {
    let mut s = table_setup();
    let alloc = req(
        vec![Op::AllocateBlock {
            table: "db.t".into(),
            partition: "all".into(),
        }],
        1_000,
    );
    let get = |p: &str| {
        req(
            vec![Op::AppendLog {
                table: "db.t".into(),
                entry: LogEntry::GetPart {
                    part: p.into(),
                    block_id: None,
                    holders: ["r1".to_string()].into(),
                    stage: None,
                },
            }],
            1_000,
        )
    };
    let merge = |parts: &[&str], new: &str, now| {
        req(
            vec![Op::AppendLog {
                table: "db.t".into(),
                entry: LogEntry::MergeParts {
                    parts: parts.iter().map(|p| p.to_string()).collect(),
                    new_part: new.into(),
                },
            }],
            now,
        )
    };
    for _ in 0..4 {
        assert!(s.apply(&alloc).is_ok());
    }
    // Blocks 1, 2 and 4 committed; 3 is still on its way.
    for p in ["all_1_1_0", "all_2_2_0", "all_4_4_0"] {
        assert!(s.apply(&get(p)).is_ok());
    }
    let r = s.apply(&merge(
        &["all_1_1_0", "all_2_2_0", "all_4_4_0"],
        "all_1_4_1",
        2_000,
    ));
    assert!(
        matches!(r, Response::Rejected { ref reason, .. } if reason.contains("block 3")),
        "{r:?}"
    );
    assert!(s.apply(&get("all_3_3_0")).is_ok());
    // Leaving a committed part out of the range is refused too.
    let r = s.apply(&merge(
        &["all_1_1_0", "all_2_2_0", "all_4_4_0"],
        "all_1_4_1",
        2_000,
    ));
    assert!(
        matches!(r, Response::Rejected { ref reason, .. } if reason.contains("all_3_3_0")),
        "{r:?}"
    );
    assert!(s
        .apply(&merge(
            &["all_1_1_0", "all_2_2_0", "all_3_3_0", "all_4_4_0"],
            "all_1_4_1",
            2_000
        ))
        .is_ok());
    // A part inside a merged range can no longer be committed.
    assert!(!s.apply(&get("all_2_2_0")).is_ok());
    // An insert that never committed stops holding merges back after a while.
    assert!(s.apply(&alloc).is_ok()); // block 5, abandoned
    assert!(s.apply(&alloc).is_ok());
    assert!(s.apply(&get("all_6_6_0")).is_ok());
    let late = 1_000 + INFLIGHT_BLOCK_MS + 1;
    assert!(!s
        .apply(&merge(&["all_1_4_1", "all_6_6_0"], "all_1_6_2", 2_000))
        .is_ok());
    assert!(s
        .apply(&merge(&["all_1_4_1", "all_6_6_0"], "all_1_6_2", late))
        .is_ok());
}

#[test]
fn failed_op_rolls_back_the_whole_transaction() {
    let mut s = table_setup();
    let before = s.to_bytes();
    let r = s.apply(&req(
        vec![
            Op::AllocateBlock {
                table: "db.t".into(),
                partition: "p".into(),
            },
            Op::Put {
                key: "k".into(),
                value: "v".into(),
            },
            Op::CreateDatabase { name: "db".into() },
        ],
        5,
    ));
    assert!(matches!(r, Response::Rejected { index: 2, .. }), "{r:?}");
    assert_eq!(s.to_bytes(), before);
}

#[test]
fn log_is_trimmed_behind_every_replica() {
    let mut s = table_setup();
    for i in 0..5 {
        let entry = LogEntry::DropRange {
            partition: "p".into(),
            max_block: i,
        };
        assert!(s
            .apply(&req(
                vec![Op::AppendLog {
                    table: "db.t".into(),
                    entry
                }],
                1
            ))
            .is_ok());
    }
    let ptr = |r: &str, p| Op::SetLogPointer {
        table: "db.t".into(),
        replica: r.into(),
        pointer: p,
    };
    assert!(s.apply(&req(vec![ptr("r1", 4)], 1)).is_ok());
    assert_eq!(
        s.log_from("db.t", 0).len(),
        5,
        "r2 has not executed anything"
    );
    assert!(s.apply(&req(vec![ptr("r2", 3)], 1)).is_ok());
    assert_eq!(s.log_from("db.t", 0).first().map(|e| e.0), Some(3));
    assert!(matches!(
        s.apply(&req(vec![ptr("r2", 99)], 1)),
        Response::Rejected { .. }
    ));
}

#[test]
fn stale_schema_version_fails_cleanly() {
    let mut s = table_setup();
    let alter = Op::AlterTable {
        table: "db.t".into(),
        create_sql: "v2".into(),
    };
    let r = req(vec![alter], 1).with_checks(vec![Check::TableVersion {
        table: "db.t".into(),
        version: 1,
    }]);
    assert!(s.apply(&r).is_ok());
    assert!(matches!(s.apply(&r), Response::CheckFailed { .. }));
    assert_eq!(s.tables["db.t"].version, 2);
}

#[test]
fn leases_expire_by_the_stamped_clock() {
    let mut s = MetaState::default();
    let renew = Op::RenewLease {
        node_id: 3,
        address: "x".into(),
        ttl_ms: 4000,
    };
    assert!(s.apply(&req(vec![renew], 1000)).is_ok());
    assert!(s.lease_active(3, 4999));
    assert!(!s.lease_active(3, 5000));
    assert!(!s.lease_active(4, 0));
}

fn staged(partition: &str, stage: &str, block_id: Option<&str>) -> NewPart {
    NewPart {
        partition: partition.into(),
        stage: stage.into(),
        block_id: block_id.map(String::from),
        batch_ids: Vec::new(),
        holders: ["r1".to_string(), "r2".to_string()].into(),
        checksum: format!("sum-{stage}"),
    }
}

fn commit(parts: Vec<NewPart>, deadline_ms: u64) -> Op {
    Op::CommitParts {
        table: "db.t".into(),
        parts,
        deadline_ms,
        quorum: 2,
        window: 100,
        window_seconds: 1000,
    }
}

#[test]
fn commit_parts_allocates_logs_and_records_holders_atomically() {
    let mut s = table_setup();
    let r = s.apply(&req(
        vec![commit(
            vec![
                staged("202401", "s1", Some("202401_h1")),
                staged("202402", "s2", Some("202402_h2")),
            ],
            5000,
        )],
        10,
    ));
    let Response::Ok { results } = r else {
        panic!("{r:?}")
    };
    let OpResult::Parts(parts) = &results[0] else {
        panic!("{results:?}")
    };
    assert_eq!(parts[0].part, "202401_1_1_0");
    assert_eq!(parts[1].part, "202402_1_1_0");
    let recs = s.parts_of("db.t");
    assert_eq!(recs.len(), 2);
    assert!(recs
        .iter()
        .all(|(_, m)| m.holders.len() == 2 && m.quorum == 2));
    assert_eq!(recs[0].1.checksum.as_deref(), Some("sum-s1"));
    let log = s.log_from("db.t", 0);
    assert!(matches!(&log[0].1, LogEntry::GetPart { stage: Some(st), .. } if st == "s1"));

    // A retry of the same insert (new stages, same block ids) writes nothing.
    let r = s.apply(&req(
        vec![commit(
            vec![
                staged("202401", "s3", Some("202401_h1")),
                staged("202402", "s4", Some("202402_h2")),
            ],
            5000,
        )],
        20,
    ));
    let Response::Ok { results } = r else {
        panic!("{r:?}")
    };
    assert_eq!(
        results[0],
        OpResult::Parts(vec![
            CommittedPart {
                part: "202401_1_1_0".into(),
                log_index: None,
                duplicate_ids: Vec::new(),
            },
            CommittedPart {
                part: "202402_1_1_0".into(),
                log_index: None,
                duplicate_ids: Vec::new(),
            },
        ])
    );
    assert_eq!(s.log_from("db.t", 0).len(), 2);
}

/// Async inserts buffered into parts: every batch id is remembered, and a
/// later op naming one of them (or naming one twice) commits nothing and
/// says which.
#[test]
fn batched_inserts_commit_all_their_ids_or_nothing() {
    let mut s = table_setup();
    let batch = |stage: &str, partition: &str, ids: &[&str]| NewPart {
        batch_ids: ids.iter().map(|i| i.to_string()).collect(),
        ..staged(partition, stage, None)
    };
    let parts_of = |r: Response| {
        let Response::Ok { results } = r else {
            panic!("{r:?}")
        };
        let Some(OpResult::Parts(parts)) = results.into_iter().next() else {
            panic!("no parts")
        };
        parts
    };
    let first = parts_of(s.apply(&req(
        vec![commit(
            vec![
                batch("s1", "202401", &["202401_a", "202401_b"]),
                batch("s2", "202402", &["202402_b"]),
            ],
            5000,
        )],
        10,
    )));
    assert!(first
        .iter()
        .all(|p| p.log_index.is_some() && p.duplicate_ids.is_empty()));
    assert_eq!(
        s.dedup_block("db.t", "202401_b").map(|b| b.part.as_str()),
        Some("202401_1_1_0")
    );
    assert_eq!(
        s.dedup_block("db.t", "202402_b").map(|b| b.part.as_str()),
        Some("202402_1_1_0")
    );
    // b again, with a new c: nothing is committed, b is named.
    let log_len = s.log_from("db.t", 0).len();
    let again = parts_of(s.apply(&req(
        vec![commit(
            vec![
                batch("s3", "202401", &["202401_c", "202401_b"]),
                batch("s4", "202402", &["202402_c"]),
            ],
            5000,
        )],
        20,
    )));
    assert!(again
        .iter()
        .all(|p| p.log_index.is_none() && p.duplicate_ids == ["202401_b"]));
    assert_eq!(s.log_from("db.t", 0).len(), log_len);
    assert!(s.dedup_block("db.t", "202401_c").is_none());
    // An id twice in one op is a duplicate too.
    let twice = parts_of(s.apply(&req(
        vec![commit(
            vec![batch("s5", "202401", &["202401_d", "202401_d"])],
            5000,
        )],
        30,
    )));
    assert_eq!(twice[0].duplicate_ids, ["202401_d"]);
    // The retry without b commits c.
    let retry = parts_of(s.apply(&req(
        vec![commit(
            vec![
                batch("s6", "202401", &["202401_c"]),
                batch("s7", "202402", &["202402_c"]),
            ],
            5000,
        )],
        40,
    )));
    assert!(retry.iter().all(|p| p.log_index.is_some()));
}

#[test]
fn a_stage_commits_at_most_once_and_never_after_its_deadline() {
    let mut s = table_setup();
    assert!(s
        .apply(&req(vec![commit(vec![staged("p", "s1", None)], 100)], 50))
        .is_ok());
    // The same proposal applied again (a retried forward) is refused.
    let again = s.apply(&req(vec![commit(vec![staged("p", "s1", None)], 100)], 60));
    assert!(matches!(again, Response::Rejected { .. }), "{again:?}");
    // Past its deadline (by the coordinator's clock) nothing commits,
    // and the remembered stage ids of passed deadlines are pruned.
    let late = s.apply(&req(vec![commit(vec![staged("p", "s2", None)], 100)], 101));
    assert!(matches!(late, Response::Rejected { .. }), "{late:?}");
    assert!(s
        .apply(&req(vec![commit(vec![staged("p", "s3", None)], 500)], 102))
        .is_ok());
    assert_eq!(s.committed_stages.len(), 1);
    // A proposer with a slow clock cannot move the coordinator's clock back.
    let slow = s.apply(&req(vec![commit(vec![staged("p", "s4", None)], 101)], 90));
    assert!(matches!(slow, Response::Rejected { .. }), "{slow:?}");
    // All or nothing: a bad part refuses the whole insert.
    let before = s.parts_of("db.t").len();
    let mixed = s.apply(&req(
        vec![commit(
            vec![staged("p", "s5", None), staged("p", "s3", None)],
            900,
        )],
        103,
    ));
    assert!(matches!(mixed, Response::Rejected { .. }), "{mixed:?}");
    assert_eq!(s.parts_of("db.t").len(), before);
}

#[test]
fn merged_parts_keep_the_quorum_of_their_sources() {
    let mut s = table_setup();
    let ops = vec![commit(
        vec![staged("p", "s1", None), staged("p", "s2", None)],
        900,
    )];
    assert!(s.apply(&req(ops, 1)).is_ok());
    let merge = Op::AppendLog {
        table: "db.t".into(),
        entry: LogEntry::MergeParts {
            parts: vec!["p_1_1_0".into(), "p_2_2_0".into()],
            new_part: "p_1_2_1".into(),
        },
    };
    assert!(s.apply(&req(vec![merge], 2)).is_ok());
    let recs: BTreeMap<String, PartMeta> = s.parts_of("db.t").into_iter().collect();
    assert_eq!(recs["p_1_2_1"].quorum, 2);
    // The sources are listed: their own records go once nobody holds them.
    assert_eq!(recs["p_1_2_1"].merged_from, vec!["p_1_1_0", "p_2_2_0"]);
}

#[test]
fn newer_command_versions_are_rejected() {
    let mut s = MetaState::default();
    let mut r = req(
        vec![Op::Put {
            key: "k".into(),
            value: "v".into(),
        }],
        1,
    );
    r.v = 99;
    assert!(matches!(s.apply(&r), Response::Rejected { .. }));
    assert!(s.kv.is_empty());
}

fn arb_op() -> impl Strategy<Value = Op> {
    let table = prop_oneof![
        Just("db.t".to_string()),
        Just("db.u".to_string()),
        Just("x.t".to_string())
    ];
    let name = "[a-c]{1,2}";
    prop_oneof![
        name.prop_map(|n| Op::CreateDatabase {
            name: format!("d{n}")
        }),
        Just(Op::CreateDatabase { name: "db".into() }),
        table.clone().prop_map(|t| Op::CreateTable {
            table: t,
            engine: "e".into(),
            create_sql: "s".into(),
            max_log_entries: 0,
        }),
        table.clone().prop_map(|t| Op::DropTable { table: t }),
        (table.clone(), name).prop_map(|(t, r)| Op::AddReplica {
            table: t,
            replica: r,
            node_id: 1,
            address: "a".into()
        }),
        (table.clone(), name).prop_map(|(t, p)| Op::AppendLog {
            table: t,
            entry: LogEntry::GetPart {
                part: p,
                block_id: None,
                holders: Default::default(),
                stage: None,
            }
        }),
        (table.clone(), name, 0u64..6).prop_map(|(t, r, p)| Op::SetLogPointer {
            table: t,
            replica: r,
            pointer: p
        }),
        (
            table.clone(),
            name,
            name,
            proptest::option::of(name),
            0u64..6000
        )
            .prop_map(|(t, partition, stage, block_id, deadline_ms)| {
                Op::CommitParts {
                    table: t,
                    parts: vec![NewPart {
                        partition,
                        stage,
                        block_id,
                        batch_ids: Vec::new(),
                        holders: ["r1".to_string()].into(),
                        checksum: "c".into(),
                    }],
                    deadline_ms,
                    quorum: 2,
                    window: 3,
                    window_seconds: 1,
                }
            }),
        (table.clone(), name).prop_map(|(t, p)| Op::AllocateBlock {
            table: t,
            partition: p
        }),
        (table.clone(), name, 1u64..4).prop_map(|(t, b, w)| Op::AddDedupBlock {
            table: t,
            block_id: b,
            part: "p".into(),
            window: w,
            window_seconds: 1
        }),
        (1u64..4).prop_map(|n| Op::RenewLease {
            node_id: n,
            address: "a".into(),
            ttl_ms: 100
        }),
        (name, name).prop_map(|(k, v)| Op::Put { key: k, value: v }),
        name.prop_map(|k| Op::Delete { key: k }),
        Just(Op::EnqueueDdl {
            query: "q".into(),
            initiator: 1,
            database: "db".into(),
            cluster: "c".into(),
            hosts: vec![crate::command::DdlHost {
                node: 1,
                shard: 1,
                replica: 1,
            }],
        }),
    ]
}

fn arb_request() -> impl Strategy<Value = Request> {
    (
        proptest::collection::vec(arb_op(), 1..4),
        0u64..5000,
        proptest::option::of("[a-c]{1,2}"),
    )
        .prop_map(|(ops, now, dedup)| {
            let mut r = req(ops, now);
            if let Some(b) = dedup {
                r.checks.push(Check::DedupAbsent {
                    table: "db.t".into(),
                    block_id: b,
                });
            }
            r
        })
}

proptest! {
    /// Two replicas applying the same commands hold the same bytes, also
    /// when one of them restarts from a snapshot (serialize + load) midway.
    #[test]
    fn replicas_converge(cmds in proptest::collection::vec(arb_request(), 1..60), cut in 0usize..60) {
        let mut a = MetaState::default();
        let mut b = MetaState::default();
        let mut responses = (Vec::new(), Vec::new());
        for (i, c) in cmds.iter().enumerate() {
            if i == cut {
                b = serde_json::from_slice(&b.to_bytes()).unwrap();
            }
            responses.0.push(a.apply(c));
            responses.1.push(b.apply(c));
        }
        prop_assert_eq!(responses.0, responses.1);
        prop_assert_eq!(a.to_bytes(), b.to_bytes());
    }

    /// A command that does not apply leaves the state byte-for-byte as it was.
    #[test]
    fn failures_change_nothing(cmds in proptest::collection::vec(arb_request(), 1..40)) {
        let mut s = MetaState::default();
        for c in &cmds {
            let before = s.to_bytes();
            if !s.apply(c).is_ok() {
                prop_assert_eq!(before, s.to_bytes());
            }
        }
    }
}

#[test]
fn a_command_with_an_id_applies_once_and_answers_its_first_outcome() {
    let mut s = MetaState::default();
    let put = |v: &str| Op::Put {
        key: "r".into(),
        value: v.into(),
    };
    let first = req(vec![put("1")], 10).once("a".into());
    assert!(s.apply(&first).is_ok());
    assert!(s.apply(&req(vec![put("2")], 20)).is_ok());
    // Proposed again (its first attempt's fate was unknown to the proposer):
    // the newer value stays.
    assert_eq!(
        s.apply(&first),
        Response::Ok {
            results: vec![OpResult::Done]
        }
    );
    assert_eq!(s.key("r"), Some("2"));
    // A refused command answers its refusal again, even once it would pass.
    let guarded = req(vec![put("3")], 30)
        .with_checks(vec![Check::KeyEquals {
            key: "r".into(),
            value: Some("1".into()),
        }])
        .once("b".into());
    assert!(matches!(s.apply(&guarded), Response::CheckFailed { .. }));
    assert!(s.apply(&req(vec![put("1")], 40)).is_ok());
    assert!(matches!(s.apply(&guarded), Response::CheckFailed { .. }));
    assert_eq!(s.key("r"), Some("1"));
    // Past the window the id is forgotten (and the state stays bounded).
    let late = REQUEST_ID_WINDOW_MS + 100;
    assert!(s.apply(&req(vec![put("4")], late).once("c".into())).is_ok());
    assert!(!s.applied_ids.contains_key("a") && !s.applied_ids.contains_key("b"));
    assert_eq!(s.applied_ids.len(), 1);
    assert_eq!(s.applied_order.len(), 1);
}
