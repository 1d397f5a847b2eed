//! Users across a real three-node cluster: a user created on one node logs
//! in on every node, over HTTP (basic auth, ClickHouse's headers, URL
//! parameters) and gRPC; wrong passwords, unknown users and refused hosts
//! all get the same AUTHENTICATION_FAILED; a changed or dropped user stops
//! working everywhere; passwords are never shown. Waits poll conditions.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use jepsen_like_tests::TestCluster;
use qh_client::Client;

const BIN: &str = env!("CARGO_BIN_EXE_quorumhouse");
const LONG: Duration = Duration::from_secs(60);

/// `POST /` with `sql` as the body over a fresh connection; the status and
/// the body.
fn post(addr: &str, path: &str, headers: &[(&str, &str)], sql: &str) -> (u16, String) {
    request("POST", addr, path, headers, sql)
}

fn request(
    method: &str,
    addr: &str,
    path: &str,
    headers: &[(&str, &str)],
    sql: &str,
) -> (u16, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: {}\r\n",
        sql.len()
    );
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    req.push_str(sql);
    s.write_all(req.as_bytes()).unwrap();
    let mut out = Vec::new();
    s.read_to_end(&mut out).unwrap();
    let out = String::from_utf8_lossy(&out).to_string();
    let (head, body) = out.split_once("\r\n\r\n").unwrap_or((&out, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, body.to_string())
}

fn basic(user: &str, password: &str) -> String {
    use base64::Engine as _;
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
    )
}

/// `SELECT currentUser()` on `addr` as `user`/`password` (basic auth).
fn whoami(addr: &str, user: &str, password: &str) -> (u16, String) {
    let auth = basic(user, password);
    post(
        addr,
        "/",
        &[("Authorization", auth.as_str())],
        "SELECT currentUser()",
    )
}

fn refused_text(user: &str) -> String {
    format!("Code: 516. {user}: Authentication failed: password is incorrect, or there is no user with such name. (AUTHENTICATION_FAILED)\n")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn users_created_on_one_node_log_in_on_every_node() {
    let c = TestCluster::start(Path::new(BIN), 3, &[]).expect("cluster starts");
    c.leader(&c.all(), LONG).await.unwrap();
    let [n1, n2, n3] = [1, 2, 3].map(|i| c.http_addr(i));

    // Before any user exists: `default`, no password, as ClickHouse ships.
    assert_eq!(
        post(&n1, "/", &[], "SELECT currentUser()"),
        (200, "default\n".into())
    );
    let (status, body) = post(
        &n1,
        "/",
        &[],
        "CREATE USER alice IDENTIFIED BY 's3cret' HOST LOCAL",
    );
    assert_eq!(status, 200, "{body}");

    // At once on another node (a node that has not applied the user yet
    // asks the leader before refusing).
    assert_eq!(whoami(&n3, "alice", "s3cret"), (200, "alice\n".into()));
    let (_, body) = post(
        &n2,
        "/?user=alice&password=s3cret",
        &[],
        "SELECT currentUser()",
    );
    assert_eq!(body, "alice\n");
    let (_, body) = post(
        &n2,
        "/",
        &[
            ("X-ClickHouse-User", "alice"),
            ("X-ClickHouse-Key", "s3cret"),
        ],
        "SELECT currentUser()",
    );
    assert_eq!(body, "alice\n");

    // A wrong password and an unknown user read the same.
    assert_eq!(whoami(&n2, "alice", "wrong"), (403, refused_text("alice")));
    assert_eq!(
        whoami(&n2, "nobody", "s3cret"),
        (403, refused_text("nobody"))
    );
    // A host the user may not come from, likewise.
    post(
        &n1,
        "/",
        &[],
        "CREATE USER far IDENTIFIED BY 'x' HOST IP '10.99.0.0/16'",
    );
    assert_eq!(whoami(&n1, "far", "x"), (403, refused_text("far")));

    // gRPC: the client library's credentials.
    let mut g = Client::connect(&[c.client_endpoint(2)])
        .await
        .unwrap()
        .with_credentials("alice", "s3cret");
    let out = g.query("SELECT currentUser()").await.unwrap();
    assert_eq!(out.num_rows(), 1);
    let mut bad = Client::connect(&[c.client_endpoint(2)])
        .await
        .unwrap()
        .with_credentials("alice", "nope");
    let e = bad.query("SELECT 1").await.unwrap_err();
    assert_eq!(e.code(), 516, "{e}");

    // The password is never shown: not by SHOW CREATE USER, not by
    // system.users, not in the statement as system.processes lists it.
    let (_, body) = post(&n3, "/", &[], "SHOW CREATE USER alice");
    assert_eq!(
        body,
        "CREATE USER alice IDENTIFIED WITH sha256_password HOST LOCAL\n"
    );
    let (_, body) = post(
        &n3,
        "/",
        &[],
        "SELECT name, auth_type, host_ip FROM system.users ORDER BY name FORMAT TSV",
    );
    assert_eq!(
        body,
        "alice\tsha256_password\t::1, 127.0.0.1\ndefault\tno_password\t::1, 127.0.0.1\nfar\tsha256_password\t10.99.0.0/16\n"
    );

    // The CLI: flags, or the environment every tool reads.
    let cli = |args: &[&str], env: &[(&str, &str)]| {
        let out = Command::new(BIN)
            .args([
                "client",
                "--host",
                &c.client_endpoint(3).replace("http://", ""),
            ])
            .args(args)
            .envs(env.iter().copied())
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr)
    };
    assert_eq!(
        cli(
            &[
                "--user",
                "alice",
                "--password",
                "s3cret",
                "-q",
                "SELECT currentUser()"
            ],
            &[]
        ),
        "alice\n"
    );
    assert_eq!(
        cli(
            &["-q", "SELECT currentUser()"],
            &[
                ("QUORUMHOUSE_USER", "alice"),
                ("QUORUMHOUSE_PASSWORD", "s3cret")
            ]
        ),
        "alice\n"
    );
    assert!(cli(
        &["--user", "alice", "--password", "no", "-q", "SELECT 1"],
        &[]
    )
    .contains("Code: 516."));

    // A changed password: the old one stops working on every node.
    let (status, body) = post(&n2, "/", &[], "ALTER USER alice IDENTIFIED BY 'n3w'");
    assert_eq!(status, 200, "{body}");
    for addr in [&n1, &n2, &n3] {
        c.wait_for("the old password to be refused", LONG, || async {
            (whoami(addr, "alice", "s3cret").0 == 403).then_some(())
        })
        .await
        .unwrap();
        assert_eq!(whoami(addr, "alice", "n3w"), (200, "alice\n".into()));
    }

    // Creating her twice is an error with ClickHouse's code; IF NOT EXISTS is not.
    let (status, body) = post(&n1, "/", &[], "CREATE USER alice");
    assert_eq!(status, 500, "{body}");
    assert!(body.starts_with("Code: 493."), "{body}");
    assert_eq!(
        post(&n1, "/", &[], "CREATE USER IF NOT EXISTS alice").0,
        200
    );

    // A dropped user is refused everywhere.
    assert_eq!(post(&n3, "/", &[], "DROP USER alice, far").0, 200);
    for addr in [&n1, &n2, &n3] {
        c.wait_for("the dropped user to be refused", LONG, || async {
            (whoami(addr, "alice", "n3w").0 == 403).then_some(())
        })
        .await
        .unwrap();
    }
    let (_, body) = post(&n1, "/", &[], "DROP USER alice");
    assert!(body.starts_with("Code: 192."), "{body}");

    // `default` is an ordinary user now: given a password, it needs it.
    assert_eq!(
        post(&n1, "/", &[], "ALTER USER default IDENTIFIED BY 'admin'").0,
        200
    );
    for addr in [&n1, &n2, &n3] {
        c.wait_for("default to need its password", LONG, || async {
            (post(addr, "/", &[], "SELECT 1").0 == 403).then_some(())
        })
        .await
        .unwrap();
        assert_eq!(whoami(addr, "default", "admin"), (200, "default\n".into()));
    }
    let (_, metrics) = request("GET", &n1, "/metrics", &[], "");
    let failed: u64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("qh_failed_logins_total "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    assert!(failed >= 3, "{metrics}");

    // clickhouse-connect, as Superset would log in (skipped, saying why,
    // where it is not installed).
    let probe = Command::new("python3")
        .args(["-c", "import clickhouse_connect"])
        .output();
    if !probe.is_ok_and(|o| o.status.success()) {
        println!("skipped: python3 with clickhouse-connect is not available");
        return;
    }
    let (host, port) = n2.rsplit_once(':').unwrap();
    let script = format!(
        "import clickhouse_connect\n\
         c = clickhouse_connect.get_client(host='{host}', port={port}, username='default', password='admin')\n\
         print(c.command('SELECT currentUser()'))\n\
         try:\n    clickhouse_connect.get_client(host='{host}', port={port}, username='default', password='bad')\n\
         except Exception as e:\n    print('refused', 'AUTHENTICATION_FAILED' in str(e))\n"
    );
    let out = Command::new("python3")
        .args(["-c", &script])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        text,
        "default\nrefused True\n",
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The ClickHouse code at the start of an error body (0 for a result).
fn code_of(body: &str) -> u32 {
    body.strip_prefix("Code: ")
        .and_then(|r| r.split('.').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grants_allow_exactly_what_they_name_on_every_node() {
    let c = TestCluster::start(Path::new(BIN), 3, &[]).expect("cluster starts");
    c.leader(&c.all(), LONG).await.unwrap();
    let [n1, n2, n3] = [1, 2, 3].map(|i| c.http_addr(i));
    for sql in [
        "CREATE DATABASE db ON CLUSTER default",
        "CREATE TABLE db.t ON CLUSTER default (a UInt64, b String) ENGINE = ReplicatedMergeTree ORDER BY a",
        "CREATE TABLE db.u ON CLUSTER default (a UInt64, secret String) ENGINE = ReplicatedMergeTree ORDER BY a",
        "INSERT INTO db.t VALUES (1, 'x')",
        "CREATE TABLE db.d ON CLUSTER default AS db.t ENGINE = Distributed(default, db, t)",
        "CREATE USER bob IDENTIFIED BY 'pw'",
    ] {
        let (status, body) = post(&n1, "/", &[], sql);
        assert_eq!(status, 200, "{sql}: {body}");
    }
    let auth = basic("bob", "pw");
    let bob = |addr: &str, sql: &str| post(addr, "/", &[("Authorization", auth.as_str())], sql);
    let denied = |grant: &str| {
        format!("Code: 497. bob: Not enough privileges. To execute this query, it's necessary to have the grant {grant}. (ACCESS_DENIED)\n")
    };

    // A new user may log in and compute, nothing else.
    assert_eq!(
        bob(&n3, "SELECT count() FROM numbers(10)"),
        (200, "10\n".into())
    );
    assert_eq!(
        bob(&n3, "SELECT a FROM db.t"),
        (403, denied("SELECT(a) ON db.t"))
    );

    // Granted on node 1, it holds on node 3.
    assert_eq!(post(&n1, "/", &[], "GRANT SELECT ON db.t TO bob").0, 200);
    c.wait_for("the grant to reach node 3", LONG, || async {
        (bob(&n3, "SELECT a, b FROM db.t") == (200, "1\tx\n".to_string())).then_some(())
    })
    .await
    .unwrap();
    // ... and allows exactly what it names.
    for (sql, grant) in [
        ("SELECT * FROM db.u", "SELECT ON db.u"),
        ("SELECT a FROM db.t JOIN db.u USING a", "SELECT(a) ON db.u"),
        ("INSERT INTO db.t VALUES (2, 'y')", "INSERT ON db.t"),
        ("DROP TABLE db.t", "DROP ON db.t"),
        ("TRUNCATE TABLE db.t", "TRUNCATE ON db.t"),
        ("ALTER TABLE db.t ADD COLUMN c UInt8", "ALTER ON db.t"),
        ("OPTIMIZE TABLE db.t FINAL", "OPTIMIZE ON db.t"),
        (
            "CREATE TABLE db.v (a UInt8) ENGINE = Memory",
            "CREATE ON db.v",
        ),
        ("CREATE DATABASE db2", "CREATE ON db2.*"),
        ("SYSTEM SYNC REPLICA db.t", "SYSTEM ON *.*"),
        ("CREATE USER eve", "ACCESS MANAGEMENT ON *.*"),
        ("SHOW TABLES FROM db", "SHOW ON db.*"),
        ("SELECT * FROM remote('127.0.0.1', db.u)", "SELECT ON *.*"),
        ("SELECT name FROM system.users", "ACCESS MANAGEMENT ON *.*"),
        ("SELECT * FROM system.grants", "ACCESS MANAGEMENT ON *.*"),
    ] {
        assert_eq!(bob(&n3, sql), (403, denied(grant)), "{sql}");
    }
    // Without the grant option it cannot be passed on.
    let (status, body) = bob(&n3, "GRANT SELECT ON db.t TO default");
    assert_eq!(
        (status, body),
        (403, denied("SELECT ON db.t WITH GRANT OPTION"))
    );

    // Column grants cover their columns only; a database grant its tables.
    assert_eq!(post(&n2, "/", &[], "GRANT INSERT ON db.* TO bob").0, 200);
    assert_eq!(post(&n2, "/", &[], "GRANT SELECT(a) ON db.u TO bob").0, 200);
    c.wait_for("the column grant to reach node 3", LONG, || async {
        (bob(&n3, "SELECT count(a) FROM db.u").0 == 200).then_some(())
    })
    .await
    .unwrap();
    assert_eq!(
        bob(&n3, "SELECT secret FROM db.u"),
        (403, denied("SELECT(secret) ON db.u"))
    );
    assert_eq!(bob(&n3, "INSERT INTO db.u VALUES (5, 's')").0, 200);
    let (_, grants) = post(&n1, "/", &[], "SHOW GRANTS FOR bob");
    assert_eq!(
        grants,
        "GRANT INSERT ON db.* TO bob\nGRANT SELECT ON db.t TO bob\nGRANT SELECT(a) ON db.u TO bob\n"
    );
    assert_eq!(
        post(&n1, "/", &[], "SHOW GRANTS").1,
        "GRANT ALL ON *.* TO default WITH GRANT OPTION\n"
    );

    let (_, rows) = post(
        &n1,
        "/",
        &[],
        "SELECT access_type, database, table, column, grant_option FROM system.grants WHERE user_name = 'bob' ORDER BY access_type, table, column FORMAT TSV",
    );
    assert_eq!(
        rows,
        "INSERT\tdb\t\\N\t\\N\t0\nSELECT\tdb\tt\t\\N\t0\nSELECT\tdb\tu\ta\t0\n"
    );

    // Through a Distributed table the shards read the table under it: the
    // user needs SELECT on both, as ClickHouse checks on every shard.
    assert_eq!(post(&n1, "/", &[], "GRANT SELECT ON db.d TO bob").0, 200);
    c.wait_for("the grant on db.d to reach node 3", LONG, || async {
        (bob(&n3, "SELECT a FROM db.d").1 != denied("SELECT(a) ON db.d")).then_some(())
    })
    .await
    .unwrap();
    assert_eq!(bob(&n3, "SELECT count() FROM db.d").0, 200);
    post(&n1, "/", &[], "REVOKE SELECT ON db.t FROM bob");
    c.wait_for("the revoke of db.t to reach node 3", LONG, || async {
        (bob(&n3, "SELECT a FROM db.d") == (403, denied("SELECT(a) ON db.t"))).then_some(())
    })
    .await
    .unwrap();
    assert_eq!(post(&n1, "/", &[], "GRANT SELECT ON db.t TO bob").0, 200);

    // A view: the reader needs SELECT on it and on what it reads
    // (ClickHouse's default SQL SECURITY INVOKER).
    for sql in [
        "CREATE VIEW db.vu AS SELECT a, secret FROM db.u",
        "CREATE VIEW db.va AS SELECT a FROM db.u",
    ] {
        assert_eq!(post(&n3, "/", &[], sql).0, 200, "{sql}");
    }
    assert_eq!(
        bob(&n3, "SELECT a FROM db.va"),
        (403, denied("SELECT(a) ON db.va"))
    );
    assert_eq!(post(&n1, "/", &[], "GRANT SELECT ON db.va TO bob").0, 200);
    assert_eq!(post(&n1, "/", &[], "GRANT SELECT ON db.vu TO bob").0, 200);
    // Node 3 authenticates from its own applied state: both grants must have
    // reached it (the second may lag the first).
    c.wait_for("the grants on the views to reach node 3", LONG, || async {
        let va = bob(&n3, "SELECT a FROM db.va") == (200, "5\n".to_string());
        let vu = !bob(&n3, "SELECT a FROM db.vu").1.contains("ON db.vu");
        (va && vu).then_some(())
    })
    .await
    .unwrap();
    let (status, body) = bob(&n3, "SELECT a FROM db.vu");
    assert_eq!(status, 403, "{body}");
    assert!(
        body.contains("secret") && body.contains("ON db.u"),
        "{body}"
    );
    for view in ["va", "vu"] {
        let sql = format!("REVOKE SELECT ON db.{view} FROM bob");
        assert_eq!(post(&n1, "/", &[], &sql).0, 200);
    }

    // Revoked on node 2: the next query on node 3 fails.
    assert_eq!(post(&n2, "/", &[], "REVOKE SELECT ON db.t FROM bob").0, 200);
    c.wait_for("the revoke to reach node 3", LONG, || async {
        (bob(&n3, "SELECT a FROM db.t").0 == 403).then_some(())
    })
    .await
    .unwrap();
    // A revoke narrower than a grant is refused, never silently ignored.
    let (_, body) = post(&n1, "/", &[], "REVOKE SELECT ON db.t FROM default");
    assert_eq!(code_of(&body), 48, "{body}");

    // Roles: a group's rights in one place; roles hold roles; every node.
    for sql in [
        "CREATE ROLE reader",
        "CREATE ROLE IF NOT EXISTS analyst, reader",
        "GRANT SELECT ON db.t TO reader",
        "GRANT reader TO analyst",
        "GRANT OPTIMIZE ON db.t TO analyst",
        "GRANT analyst TO bob",
    ] {
        let (status, body) = post(&n1, "/", &[], sql);
        assert_eq!(status, 200, "{sql}: {body}");
    }
    c.wait_for("the role's grant to reach node 3", LONG, || async {
        (bob(&n3, "SELECT a, b FROM db.t") == (200, "1\tx\n".to_string())).then_some(())
    })
    .await
    .unwrap();
    assert_eq!(bob(&n3, "OPTIMIZE TABLE db.t FINAL").0, 200);
    assert_eq!(bob(&n3, "DROP TABLE db.t"), (403, denied("DROP ON db.t")));
    assert_eq!(
        post(&n1, "/", &[], "SHOW GRANTS FOR bob").1,
        "GRANT INSERT ON db.* TO bob\nGRANT SELECT ON db.d TO bob\nGRANT SELECT(a) ON db.u TO bob\nGRANT analyst TO bob\n"
    );
    assert_eq!(
        post(&n2, "/", &[], "SHOW GRANTS FOR analyst").1,
        "GRANT OPTIMIZE ON db.t TO analyst\nGRANT reader TO analyst\n"
    );
    assert_eq!(
        post(
            &n2,
            "/",
            &[],
            "SELECT name FROM system.roles ORDER BY name FORMAT TSV"
        )
        .1,
        "analyst\nreader\n"
    );
    assert_eq!(
        post(
            &n2,
            "/",
            &[],
            "SELECT user_name, role_name, granted_role_name, with_admin_option FROM system.role_grants ORDER BY granted_role_name FORMAT TSV"
        )
        .1,
        "bob\t\\N\tanalyst\t0\n\\N\tanalyst\treader\t0\n"
    );
    assert_eq!(
        post(
            &n2,
            "/",
            &[],
            "SELECT role_name, access_type, table FROM system.grants WHERE role_name != '' ORDER BY role_name FORMAT TSV"
        )
        .1,
        "analyst\tOPTIMIZE\tt\nreader\tSELECT\tt\n"
    );
    // A cycle, an unknown role and a name taken by the other kind: refused.
    for (sql, code) in [
        ("GRANT analyst TO reader", 36),
        ("GRANT reader TO reader", 36),
        ("GRANT nope TO bob", 511),
        ("GRANT reader TO nobody", 192),
        ("CREATE USER reader", 493),
        ("CREATE ROLE bob", 493),
        ("CREATE ROLE analyst", 493),
        ("DROP ROLE nope", 511),
    ] {
        let (_, body) = post(&n1, "/", &[], sql);
        assert_eq!(code_of(&body), code, "{sql}: {body}");
    }
    // Holding a role is not administering it.
    let (status, body) = bob(&n3, "GRANT analyst TO default");
    assert_eq!((status, code_of(&body)), (403, 497), "{body}");
    // Revoked on node 2: bob's next query on node 3 fails.
    assert_eq!(post(&n2, "/", &[], "REVOKE analyst FROM bob").0, 200);
    c.wait_for("the role's revoke to reach node 3", LONG, || async {
        (bob(&n3, "SELECT a FROM db.t").0 == 403).then_some(())
    })
    .await
    .unwrap();
    // A dropped role is gone from everyone who held it.
    assert_eq!(post(&n1, "/", &[], "GRANT analyst TO bob").0, 200);
    c.wait_for("the role to be back on node 3", LONG, || async {
        (bob(&n3, "SELECT a FROM db.t").0 == 200).then_some(())
    })
    .await
    .unwrap();
    assert_eq!(post(&n1, "/", &[], "DROP ROLE reader").0, 200);
    c.wait_for("the drop to reach node 3", LONG, || async {
        (bob(&n3, "SELECT a FROM db.t").0 == 403).then_some(())
    })
    .await
    .unwrap();
    assert_eq!(
        post(&n1, "/", &[], "SHOW GRANTS FOR analyst").1,
        "GRANT OPTIMIZE ON db.t TO analyst\n"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_and_oversized_credentials_are_refused_and_the_node_stays_up() {
    let c = TestCluster::start(Path::new(BIN), 1, &[]).expect("node starts");
    c.leader(&c.all(), LONG).await.unwrap();
    let n = c.http_addr(1);
    let long = "x".repeat(64 << 10);
    let huge_basic = basic(&long, &long);
    for (name, value) in [
        ("Authorization", "Basic !!!not base64"),
        ("Authorization", "Bearer token"),
        ("Authorization", "Basic bm9jb2xvbg=="), // "nocolon"
        ("Authorization", huge_basic.as_str()),
        ("X-ClickHouse-User", long.as_str()),
    ] {
        let (status, body) = post(&n, "/", &[(name, value)], "SELECT 1");
        // Refused as a login (403, 516), or the header refused whole by
        // the HTTP layer (431): never a query run as `default`.
        assert!(
            (status == 403 && code_of(&body) == 516) || status == 431,
            "{name}: {status} {body}"
        );
    }
    assert_eq!(post(&n, "/", &[], "SELECT 1"), (200, "1\n".into()));
}

/// The shard-stage API on the client port (what `remote()` calls) runs
/// plan fragments that can scan any table: it answers only a caller that
/// proves a user who may read everything.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_stage_api_on_the_client_port_needs_a_user_who_may_read_everything() {
    let c = TestCluster::start(Path::new(BIN), 1, &[]).expect("node starts");
    c.leader(&c.all(), LONG).await.unwrap();
    let n = c.http_addr(1);
    let client_port = c.client_endpoint(1).rsplit(':').next().unwrap().to_string();
    let remote = format!("SELECT count() FROM remote('127.0.0.1:{client_port}', default, t)");
    for sql in [
        "CREATE TABLE t (a UInt64) ENGINE = MergeTree ORDER BY a",
        "INSERT INTO t VALUES (1), (2)",
    ] {
        assert_eq!(post(&n, "/", &[], sql).0, 200, "{sql}");
    }
    // `default` without a password: the node calls as `default`.
    assert_eq!(post(&n, "/", &[], &remote), (200, "2\n".into()));
    // With a password the anonymous stage call is refused.
    assert_eq!(
        post(&n, "/", &[], "ALTER USER default IDENTIFIED BY 'pw'").0,
        200
    );
    let auth = basic("default", "pw");
    let (status, body) = post(&n, "/", &[("Authorization", auth.as_str())], &remote);
    assert_ne!(status, 200, "{body}");
    assert!(body.contains("Authentication failed"), "{body}");
    // The same node's own tables stay readable to the user.
    assert_eq!(
        post(
            &n,
            "/",
            &[("Authorization", auth.as_str())],
            "SELECT count() FROM t"
        ),
        (200, "2\n".into())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn settings_profiles_set_and_constrain_a_users_sessions_on_every_node() {
    let c = TestCluster::start(Path::new(BIN), 2, &[]).expect("cluster starts");
    c.leader(&c.all(), LONG).await.unwrap();
    let [n1, n2] = [1, 2].map(|i| c.http_addr(i));
    let admin = |sql: &str| {
        let (status, body) = post(&n1, "/", &[], sql);
        assert_eq!(status, 200, "{sql}: {body}");
    };
    for sql in [
        "CREATE TABLE t ON CLUSTER default (a UInt64) ENGINE = ReplicatedMergeTree ORDER BY a",
        "CREATE USER robin IDENTIFIED BY 'pw'",
        "GRANT SELECT, INSERT ON default.t TO robin",
        "CREATE SETTINGS PROFILE xyz SETTINGS max_memory_usage = 100000001 MIN 90000000 MAX 110000000 TO robin",
    ] {
        admin(sql);
    }
    let auth = basic("robin", "pw");
    let robin = |path: &str, sql: &str| post(&n2, path, &[("Authorization", auth.as_str())], sql);
    let setting = "SELECT value FROM system.settings WHERE name = 'max_memory_usage'";
    // Made on node 1, the profile sets robin's sessions on node 2.
    c.wait_for("the profile to reach node 2", LONG, || async {
        (robin("/", setting) == (200, "100000001\n".to_string())).then_some(())
    })
    .await
    .unwrap();
    let err =
        |code: u32, name: &str, text: &str| (code, format!("Code: {code}. {text}. ({name})\n"));
    let refused = |(_, body): (u16, String)| (code_of(&body), body);
    // Its MIN and MAX hold for SETTINGS, SET and a request's parameters.
    assert_eq!(
        refused(robin("/", "SELECT 1 SETTINGS max_memory_usage = 80000000")),
        err(
            452,
            "SETTING_CONSTRAINT_VIOLATION",
            "Setting max_memory_usage shouldn't be less than 90000000"
        )
    );
    assert_eq!(
        refused(robin("/?max_memory_usage=120000000", "SELECT 1")),
        err(
            452,
            "SETTING_CONSTRAINT_VIOLATION",
            "Setting max_memory_usage shouldn't be greater than 110000000"
        )
    );
    assert_eq!(
        robin("/", "SELECT 1 SETTINGS max_memory_usage = 100000000"),
        (200, "1\n".into())
    );
    // Anyone else is free.
    assert_eq!(
        post(&n2, "/", &[], "SELECT 1 SETTINGS max_memory_usage = 1").0,
        200
    );

    // readonly = 1 from a profile: reads only, no setting changes, even
    // by a parameter; a GET still reads.
    admin("ALTER SETTINGS PROFILE xyz SETTINGS readonly = 1");
    c.wait_for("readonly to reach node 2", LONG, || async {
        // A probe that writes nothing while readonly is not there yet.
        (code_of(&robin("/", "SELECT 1 SETTINGS max_threads = 1").1) == 164).then_some(())
    })
    .await
    .unwrap();
    assert_eq!(code_of(&robin("/", "INSERT INTO t VALUES (1)").1), 164);
    assert_eq!(
        refused(robin("/", "SELECT 1 SETTINGS max_threads = 1")),
        err(
            164,
            "READONLY",
            "Cannot modify 'max_threads' setting in readonly mode"
        )
    );
    assert_eq!(
        refused(robin("/?readonly=0", "INSERT INTO t VALUES (1)")),
        err(
            164,
            "READONLY",
            "Cannot modify 'readonly' setting in readonly mode"
        )
    );
    assert_eq!(
        request(
            "GET",
            &n2,
            "/?query=SELECT%20count()%20FROM%20t",
            &[("Authorization", auth.as_str())],
            ""
        ),
        (200, "0\n".into())
    );

    // A role's settings: CONST is never changed; the profile no longer
    // applies once it applies to nobody.
    admin("ALTER SETTINGS PROFILE xyz TO NONE");
    admin("CREATE ROLE limited SETTINGS max_result_rows = 5 CONST");
    admin("GRANT limited TO robin");
    c.wait_for("the role's settings to reach node 2", LONG, || async {
        (code_of(&robin("/", "SELECT number FROM numbers(100)").1) == 396).then_some(())
    })
    .await
    .unwrap();
    assert_eq!(robin("/", "INSERT INTO t VALUES (1)").0, 200);
    assert_eq!(
        refused(robin("/", "SELECT 1 SETTINGS max_result_rows = 1000")),
        err(
            452,
            "SETTING_CONSTRAINT_VIOLATION",
            "Setting max_result_rows should not be changed"
        )
    );

    // Shown as ClickHouse shows them, to access managers only.
    assert_eq!(
        post(&n2, "/", &[], "SHOW CREATE SETTINGS PROFILE xyz"),
        (
            200,
            "CREATE SETTINGS PROFILE xyz SETTINGS readonly = 1\n".into()
        )
    );
    assert_eq!(
        post(&n2, "/", &[], "SHOW CREATE ROLE limited"),
        (
            200,
            "CREATE ROLE limited SETTINGS max_result_rows = 5 CONST\n".into()
        )
    );
    assert_eq!(
        post(
            &n2,
            "/",
            &[],
            "SELECT profile_name, role_name, setting_name, value, writability FROM system.settings_profile_elements ORDER BY setting_name FORMAT CSV"
        ),
        (
            200,
            "\\N,\"limited\",\"max_result_rows\",\"5\",\"CONST\"\n\"xyz\",\\N,\"readonly\",\"1\",\\N\n".into()
        )
    );
    assert_eq!(
        code_of(&robin("/", "SELECT * FROM system.settings_profiles").1),
        497
    );

    // Mistakes are refused with ClickHouse's codes and change nothing.
    for (sql, code) in [
        (
            "CREATE SETTINGS PROFILE bad SETTINGS no_such_setting = 1",
            115,
        ),
        (
            "CREATE SETTINGS PROFILE bad SETTINGS PROFILE 'missing'",
            180,
        ),
        ("CREATE SETTINGS PROFILE xyz", 493),
        ("DROP SETTINGS PROFILE missing", 180),
        ("ALTER ROLE missing SETTINGS NONE", 511),
    ] {
        assert_eq!(code_of(&post(&n1, "/", &[], sql).1), code, "{sql}");
    }
    admin("DROP SETTINGS PROFILE xyz");
    admin("DROP SETTINGS PROFILE IF EXISTS xyz");
    assert_eq!(
        post(&n1, "/", &[], "SHOW SETTINGS PROFILES"),
        (200, String::new())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quotas_refuse_a_users_statements_once_a_limit_is_used_up() {
    let c = TestCluster::start(Path::new(BIN), 2, &[]).expect("cluster starts");
    c.leader(&c.all(), LONG).await.unwrap();
    let [n1, n2] = [1, 2].map(|i| c.http_addr(i));
    let admin = |addr: &str, sql: &str| {
        let (status, body) = post(addr, "/", &[], sql);
        assert_eq!(status, 200, "{sql}: {body}");
        body
    };
    for sql in [
        "CREATE TABLE t ON CLUSTER default (a UInt64) ENGINE = ReplicatedMergeTree ORDER BY a",
        "INSERT INTO t SELECT number FROM numbers(100)",
        "CREATE USER amy IDENTIFIED BY 'pw'",
        "CREATE ROLE analysts",
        "GRANT SELECT ON default.t TO analysts",
        "GRANT analysts TO amy",
        "CREATE QUOTA q KEYED BY user_name FOR INTERVAL 1 hour MAX queries = 3 TO analysts",
    ] {
        admin(&n1, sql);
    }
    // Wait without spending amy's queries: as default, for the quota, the
    // role and the rows to reach node 2.
    c.wait_for("the quota to reach node 2", LONG, || async {
        let q = post(&n2, "/", &[], "SELECT count() FROM system.quotas");
        let r = post(
            &n2,
            "/",
            &[],
            "SELECT count() FROM system.role_grants WHERE user_name = 'amy'",
        );
        let rows = post(&n2, "/", &[], "SELECT count() FROM t");
        (q.1 == "1\n" && r.1 == "1\n" && rows.1 == "100\n").then_some(())
    })
    .await
    .unwrap();
    let auth = basic("amy", "pw");
    let amy = |addr: &str, sql: &str| post(addr, "/", &[("Authorization", auth.as_str())], sql);
    for _ in 0..3 {
        assert_eq!(amy(&n2, "SELECT 1"), (200, "1\n".into()));
    }
    let (status, body) = amy(&n2, "SELECT 1");
    assert_eq!(status, 429, "{body}");
    assert!(
        body.starts_with("Code: 201. Quota for user `amy` for 3600s has been exceeded: queries = 4/3. Interval will end at "),
        "{body}"
    );
    assert!(
        body.ends_with(". Name of quota template: `q`. (QUOTA_EXCEEDED)\n"),
        "{body}"
    );
    // Others are not limited; each node counts its own, as ClickHouse's
    // servers do.
    assert_eq!(post(&n2, "/", &[], "SELECT 1").0, 200);
    assert_eq!(
        amy(
            &n1,
            "SELECT quota_name, quota_key, queries, max_queries FROM system.quota_usage FORMAT CSV"
        ),
        (200, "\"q\",\"amy\",1,3\n".into())
    );

    // A changed quota applies to the next statement; rows read count too,
    // and the statement that crosses the limit completes.
    admin(
        &n1,
        "ALTER QUOTA q FOR INTERVAL 1 hour MAX queries = 1000, read_rows = 50",
    );
    c.wait_for("the new limit to reach node 2", LONG, || async {
        (amy(&n2, "SELECT 1").0 == 200).then_some(())
    })
    .await
    .unwrap();
    assert_eq!(amy(&n2, "SELECT sum(a) FROM t"), (200, "4950\n".into()));
    let body = amy(&n2, "SELECT 1").1;
    let read: u64 = body
        .split_once("has been exceeded: read_rows = ")
        .and_then(|(_, r)| r.split_once("/50."))
        .and_then(|(n, _)| n.parse().ok())
        .unwrap_or_else(|| panic!("{body}"));
    assert!(read >= 100, "{body}");
    assert_eq!(
        admin(&n2, "SHOW CREATE QUOTA q"),
        "CREATE QUOTA q KEYED BY user_name FOR INTERVAL 1 hour MAX queries = 1000, read_rows = 50 TO analysts\n"
    );
    assert_eq!(
        admin(&n2, "SELECT quota_name, duration, max_queries, max_read_rows, max_errors FROM system.quota_limits FORMAT CSV"),
        "\"q\",3600,1000,50,\\N\n"
    );
    assert_eq!(code_of(&amy(&n2, "SHOW QUOTAS").1), 497);

    // Without the role the quota no longer applies.
    admin(&n1, "REVOKE analysts FROM amy");
    admin(&n1, "GRANT SELECT ON default.t TO amy");
    c.wait_for("the revoke to reach node 2", LONG, || async {
        (amy(&n2, "SELECT count() FROM t") == (200, "100\n".to_string())).then_some(())
    })
    .await
    .unwrap();
    for (sql, code) in [
        ("DROP QUOTA missing", 199),
        ("CREATE QUOTA q", 493),
        ("CREATE QUOTA bad FOR INTERVAL 1 hour MAX cpu = 1", 36),
    ] {
        assert_eq!(code_of(&post(&n1, "/", &[], sql).1), code, "{sql}");
    }
    admin(&n1, "DROP QUOTA q");
    assert_eq!(admin(&n1, "SHOW QUOTAS"), "");
}

/// Shards run a distributed query's stages with the initiating user's
/// rights as each shard knows them: a user only node 1's config file
/// defines reads node 1's shard and is refused by node 2's; a replicated
/// user with the grants reads every shard.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shards_check_the_initiating_users_rights() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("node1.toml");
    std::fs::write(
        &config,
        "[users.etl]\npassword = \"pw\"\ngrants = [\"SELECT ON default.*\"]\n",
    )
    .unwrap();
    let config = config.display().to_string();
    let c = TestCluster::start_each(Path::new(BIN), 2, |id| match id {
        1 => vec!["--config".to_string(), config.clone()],
        _ => Vec::new(),
    })
    .expect("cluster starts");
    c.leader(&c.all(), LONG).await.unwrap();
    let n1 = c.http_addr(1);
    for sql in [
        "CREATE TABLE t ON CLUSTER sharded (a UInt64) ENGINE = MergeTree ORDER BY a",
        "CREATE TABLE d ON CLUSTER sharded AS t ENGINE = Distributed(sharded, default, t, a)",
        "INSERT INTO d SELECT number FROM numbers(10)",
        "CREATE USER bob IDENTIFIED BY 'b'",
        "GRANT SELECT ON default.* TO bob",
    ] {
        let (status, body) = post(&n1, "/", &[], sql);
        assert_eq!(status, 200, "{sql}: {body}");
    }
    c.wait_for("the rows on both shards", LONG, || async {
        (post(&n1, "/", &[], "SELECT count() FROM d").1 == "10\n").then_some(())
    })
    .await
    .unwrap();
    let as_user = |user: &str, password: &str, sql: &str| {
        let auth = basic(user, password);
        post(&n1, "/", &[("Authorization", auth.as_str())], sql)
    };
    assert_eq!(
        as_user("bob", "b", "SELECT count() FROM d"),
        (200, "10\n".into())
    );
    // etl passes node 1's check (its config grants it) but node 2 has no
    // such user: its shard refuses the stage.
    assert_eq!(as_user("etl", "pw", "SELECT count() FROM t").0, 200);
    let (_, body) = as_user("etl", "pw", "SELECT count() FROM d");
    assert!(body.contains("There is no user `etl`"), "{body}");
}
