//! The TLS doors of a real node: a certificate signed by a test CA (made
//! with the openssl command), the gRPC client API and HTTPS on their own
//! ports; the Rust client, curl and clickhouse-connect connect with a user
//! and password; a client that does not trust the CA, or speaks plaintext
//! to a TLS port, gets nothing; `--tls-only` opens no plaintext door.

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use jepsen_like_tests::{free_port, TestCluster};
use qh_client::{Client, Tls};

const BIN: &str = env!("CARGO_BIN_EXE_quorumhouse");

/// The first row's cells of a query's answer, tab-separated.
async fn first_row(c: &mut Client, sql: &str) -> Result<String, qh_client::ClientError> {
    use datafusion::arrow::util::display::array_value_to_string;
    let out = c.query(sql).await?;
    let b = &out.batches[0];
    Ok((0..b.num_columns())
        .map(|i| array_value_to_string(b.column(i), 0).unwrap_or_default())
        .collect::<Vec<_>>()
        .join("\t"))
}
const LONG: Duration = Duration::from_secs(60);

/// A CA and a server certificate for `localhost` / 127.0.0.1 it signed, as
/// PEM files in `dir`: (ca, cert, key).
fn certificates(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    let openssl = |args: &[&str]| {
        let out = Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .output()
            .expect("the openssl command runs");
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"];
    openssl(
        &[
            &[
                "req",
                "-x509",
                "-nodes",
                "-days",
                "2",
                "-subj",
                "/CN=qh test CA",
            ][..],
            &ec,
            &["-keyout", "ca.key", "-out", "ca.pem"],
        ]
        .concat(),
    );
    openssl(
        &[
            &["req", "-nodes", "-subj", "/CN=localhost"][..],
            &ec,
            &["-keyout", "server.key", "-out", "server.csr"],
        ]
        .concat(),
    );
    std::fs::write(
        dir.join("san.ext"),
        "subjectAltName=DNS:localhost,IP:127.0.0.1\n",
    )
    .unwrap();
    openssl(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-days",
        "2",
        "-extfile",
        "san.ext",
        "-out",
        "server.pem",
    ]);
    (
        dir.join("ca.pem"),
        dir.join("server.pem"),
        dir.join("server.key"),
    )
}

fn tls_args<'a>(cert: &'a str, key: &'a str, secure: &'a str, https: &'a str) -> Vec<&'a str> {
    vec![
        "--tls-cert-file",
        cert,
        "--tls-key-file",
        key,
        "--secure-port",
        secure,
        "--https-port",
        https,
    ]
}

/// Waits until something accepts TCP connections on `port`.
async fn listening(c: &TestCluster, port: u16) {
    c.wait_for("the TLS port to listen", LONG, || async {
        TcpStream::connect(("127.0.0.1", port)).ok().map(|_| ())
    })
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_connect_over_tls_with_a_user_and_password() {
    let dir = tempfile::tempdir().unwrap();
    let (ca, cert, key) = certificates(dir.path());
    let (secure, https) = (free_port().unwrap(), free_port().unwrap());
    let (cert_s, key_s) = (cert.display().to_string(), key.display().to_string());
    let (secure_s, https_s) = (secure.to_string(), https.to_string());
    let c = TestCluster::start(
        Path::new(BIN),
        1,
        &tls_args(&cert_s, &key_s, &secure_s, &https_s),
    )
    .expect("node starts");
    c.leader(&c.all(), LONG).await.unwrap();
    c.sql(1, "CREATE USER alice IDENTIFIED BY 's3cret'")
        .await
        .unwrap();
    listening(&c, secure).await;
    listening(&c, https).await;
    let endpoint = [format!("localhost:{secure}")];

    // The Rust client trusting the CA, as alice.
    let tls = Tls::with_ca_file(&ca).unwrap();
    let mut alice = Client::connect_tls(&endpoint, LONG, &tls)
        .await
        .expect("TLS connect")
        .with_credentials("alice", "s3cret");
    assert_eq!(
        first_row(&mut alice, "SELECT currentUser(), 1 + 1")
            .await
            .unwrap(),
        "alice\t2"
    );
    // A wrong password over TLS is still 516.
    let mut bad = Client::connect_tls(&endpoint, LONG, &tls)
        .await
        .unwrap()
        .with_credentials("alice", "nope");
    assert_eq!(bad.query("SELECT 1").await.unwrap_err().code(), 516);
    // Not trusting the CA (the system's roots only): no connection.
    let untrusted = Client::connect_tls(&endpoint, Duration::from_secs(5), &Tls::default()).await;
    let refused = match untrusted {
        Err(e) => e.to_string(),
        Ok(mut c) => c.query("SELECT 1").await.unwrap_err().to_string(),
    };
    assert!(
        refused.to_lowercase().contains("certificate") || refused.contains("UnknownIssuer"),
        "{refused}"
    );
    // Plaintext gRPC to the TLS port: no answer.
    let plain = Client::connect_with_timeout(&endpoint, Duration::from_secs(5)).await;
    if let Ok(mut p) = plain {
        assert!(p.query("SELECT 1").await.is_err());
    }

    // HTTPS: curl with the CA, basic auth.
    let out = Command::new("curl")
        .args(["-sS", "--cacert"])
        .arg(&ca)
        .args(["-u", "alice:s3cret"])
        .arg(format!(
            "https://localhost:{https}/?query=SELECT%20currentUser()"
        ))
        .output()
        .expect("curl runs");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "alice\n",
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // ... and without it, curl refuses the certificate.
    let out = Command::new("curl")
        .args(["-sS"])
        .arg(format!("https://localhost:{https}/?query=SELECT%201"))
        .output()
        .expect("curl runs");
    assert!(!out.status.success());
    // clickhouse-connect, as Superset would connect (when installed).
    let probe = Command::new("python3")
        .args(["-c", "import clickhouse_connect"])
        .output();
    if probe.is_ok_and(|o| o.status.success()) {
        let script = format!(
            "import clickhouse_connect\n\
             c = clickhouse_connect.get_client(host='localhost', port={https}, secure=True, ca_cert='{}', username='alice', password='s3cret')\n\
             print(c.query('SELECT currentUser(), 1 + 1').result_rows)\n",
            ca.display()
        );
        let out = Command::new("python3")
            .args(["-c", &script])
            .output()
            .unwrap();
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            "[('alice', 2)]\n",
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    } else {
        println!(
            "skipped clickhouse-connect over TLS: python3 with clickhouse-connect is not available"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_only_opens_no_plaintext_door() {
    let dir = tempfile::tempdir().unwrap();
    let (ca, cert, key) = certificates(dir.path());
    let (secure, https) = (free_port().unwrap(), free_port().unwrap());
    let (cert_s, key_s) = (cert.display().to_string(), key.display().to_string());
    let (secure_s, https_s) = (secure.to_string(), https.to_string());
    let mut args = tls_args(&cert_s, &key_s, &secure_s, &https_s);
    args.push("--tls-only");
    let c = TestCluster::start(Path::new(BIN), 1, &args).expect("node starts");
    // The harness's own probes use the plaintext port: ask over TLS instead.
    listening(&c, secure).await;
    let tls = Tls::with_ca_file(&ca).unwrap();
    let endpoint = [format!("127.0.0.1:{secure}")];
    c.wait_for("a coordinator leader, asked over TLS", LONG, || async {
        let mut client = Client::connect_tls(&endpoint, LONG, &tls).await.ok()?;
        let leader = first_row(&mut client, "SELECT leader FROM system.coordinator")
            .await
            .ok()?;
        (leader == "1").then_some(())
    })
    .await
    .unwrap();
    let node = &c.nodes[&1];
    for port in [node.port, node.http_port] {
        assert!(
            TcpStream::connect(("127.0.0.1", port)).is_err(),
            "plaintext port {port} is open"
        );
    }
}

/// Interserver mutual TLS: three nodes whose certificates one CA signed
/// elect a leader, replicate a table and answer a distributed query; a
/// caller speaking plaintext, or presenting a certificate of another CA,
/// gets nothing from the interserver port even with the cluster secret.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_talk_over_mutual_tls_and_refuse_strangers() {
    let dir = tempfile::tempdir().unwrap();
    let (ca, cert, key) = certificates(dir.path());
    let other = tempfile::tempdir().unwrap();
    let (other_ca, other_cert, other_key) = certificates(other.path());
    let path = |p: &Path| p.display().to_string();
    let c = TestCluster::start_each(Path::new(BIN), 3, |_| {
        let (secure, https) = (free_port().unwrap(), free_port().unwrap());
        [
            "--tls-cert-file".into(),
            path(&cert),
            "--tls-key-file".into(),
            path(&key),
            "--tls-ca-file".into(),
            path(&ca),
            "--interserver-tls".into(),
            "--secure-port".into(),
            secure.to_string(),
            "--https-port".into(),
            https.to_string(),
        ]
        .to_vec()
    })
    .expect("nodes start");
    c.leader(&c.all(), LONG).await.unwrap();
    c.sql(
        1,
        "CREATE TABLE t ON CLUSTER default (a UInt64) ENGINE = ReplicatedMergeTree ORDER BY a",
    )
    .await
    .unwrap();
    // A quorum of 3 counts replicas whose lease is live: a node that just
    // started may not have renewed its first one yet.
    c.live_replicas(1, "t", 3, LONG).await.unwrap();
    c.sql(
        1,
        "INSERT INTO t SELECT number FROM numbers(1000) SETTINGS insert_quorum = 3",
    )
    .await
    .unwrap();
    // Fetched by every replica over TLS, and read across shards.
    assert_eq!(c.sql(3, "SELECT count() FROM t").await.unwrap(), "1000\n");
    c.sql(
        2,
        "CREATE TABLE d ON CLUSTER default AS t ENGINE = Distributed(sharded, default, t)",
    )
    .await
    .unwrap();
    assert_eq!(c.sql(2, "SELECT count() FROM d").await.unwrap(), "3000\n");
    let log = c.log_text(1);
    assert!(log.contains("interserver API over mutual TLS"), "{log}");

    let secret = c.cluster_secret();
    let inter = c.inter_addr(2);
    let pem = |p: &Path| std::fs::read(p).unwrap();
    let ours = qh_meta::InterTls {
        ca_pem: pem(&ca),
        cert_pem: pem(&cert),
        key_pem: pem(&key),
    };
    let client = |tls: Option<&qh_meta::InterTls>| {
        qh_meta::MetaClient::with_tls(&inter, &qh_meta::ClusterSecret::new(secret), tls).unwrap()
    };
    // The positive control: our CA's certificate and the secret.
    client(Some(&ours))
        .status()
        .await
        .expect("a member is answered");
    // Plaintext, even with the secret: nothing.
    assert!(client(None).status().await.is_err());
    // Another CA's certificate: the handshake fails.
    let stranger = qh_meta::InterTls {
        ca_pem: pem(&other_ca),
        cert_pem: pem(&other_cert),
        key_pem: pem(&other_key),
    };
    assert!(client(Some(&stranger)).status().await.is_err());
    // Trusting our CA but presenting no certificate of it: refused too.
    let no_identity = qh_meta::InterTls {
        ca_pem: pem(&ca),
        cert_pem: pem(&other_cert),
        key_pem: pem(&other_key),
    };
    assert!(client(Some(&no_identity)).status().await.is_err());
}
