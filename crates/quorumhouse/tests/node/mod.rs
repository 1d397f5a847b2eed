//! One `quorumhouse server` process on free ports for a test, and helpers to
//! talk to it over gRPC and HTTP. Shared by the test files that `mod node;`.
#![allow(dead_code)]

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use qh_client::Client;

pub struct Node {
    pub child: Child,
    pub endpoint: String,
    pub http_port: u16,
    pub interserver_port: u16,
    pub _dir: tempfile::TempDir,
}

impl Node {
    pub async fn start() -> Node {
        Node::start_with(&[]).await
    }

    /// A node with extra `server` arguments (`--config F`, ...).
    pub async fn start_with(args: &[&str]) -> Node {
        let dir = tempfile::tempdir().unwrap();
        let port = jepsen_like_tests::free_port().unwrap();
        let http_port = jepsen_like_tests::free_port().unwrap();
        let inter_port = jepsen_like_tests::free_port().unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_quorumhouse"))
            .args(["server", "--data-dir"])
            .arg(dir.path())
            .args(["--port", &port.to_string()])
            .args(["--http-port", &http_port.to_string()])
            .args(["--interserver-port", &inter_port.to_string()])
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let endpoint = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(mut c) = Client::connect(&[&endpoint]).await {
                if c.ping().await.is_ok() {
                    break;
                }
            }
            assert!(Instant::now() < deadline, "server did not come up");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Node {
            child,
            endpoint,
            http_port,
            interserver_port: inter_port,
            _dir: dir,
        }
    }

    pub async fn client(&self) -> Client {
        Client::connect(&[&self.endpoint]).await.unwrap()
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn text(out: &qh_client::QueryOutput) -> String {
    let mut s = String::new();
    for b in &out.batches {
        let mut w = qh_types::formats::Writer::new(
            qh_types::formats::OutputFormat::TabSeparated,
            b.schema(),
        );
        s.push_str(&w.write_batch(b));
    }
    s
}

/// A minimal HTTP/1.1 exchange over a fresh connection.
pub fn http(port: u16, method: &str, path_and_query: &str, body: &[u8]) -> (u16, String, String) {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    let head = format!(
        "{method} {path_and_query} HTTP/1.1\r\nHost: localhost\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).unwrap();
    // The server may answer (an error) and close before reading the whole
    // body; what it answered is still read below (status 0 if nothing).
    let _ = s.write_all(body);
    let mut resp = Vec::new();
    let _ = s.read_to_end(&mut resp);
    let resp = String::from_utf8_lossy(&resp).to_string();
    let (headers, body) = resp.split_once("\r\n\r\n").unwrap_or((&resp, ""));
    let status: u16 = headers
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, headers.to_string(), body.to_string())
}

pub fn url(q: &str) -> String {
    let mut out = String::from("/?query=");
    for b in q.bytes() {
        if b.is_ascii_alphanumeric() {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}
