//! Part transfer between replicas: the `Replication.FetchPart` gRPC service
//! (server side streams a part's files) and the client that receives them
//! into `tmp_fetch_*`, verifies every checksum and attaches the part.

use std::io::{Read, Write};
use std::path::Path;
use std::pin::Pin;
use std::sync::{Arc, Weak};

use futures::Stream;
use qh_proto::interserver::replication_client::ReplicationClient;
use qh_proto::interserver::replication_server::{
    Replication as ReplicationService, ReplicationServer,
};
use qh_proto::interserver::{
    FetchPartRequest, PartChunk, StageHeader, StagePartReply, StagedReply, StagedRequest,
};
use qh_storage::part::Checksums;
use qh_storage::{MergeTreeTable, Part};
use qh_types::PartName;
use tonic::{Request, Response, Status};
use tracing::{debug, info_span, warn, Instrument};

use crate::error::{ReplicationError, Result};
use crate::staging::StageInfo;
use crate::Replication;

/// Bytes per streamed chunk.
const CHUNK: usize = 1 << 20;
/// Parts at least this big are made durable with one `syncfs`.
const SYNCFS_FROM_BYTES: u64 = 64 << 20;
/// Largest message either side accepts (a chunk plus headers).
pub(crate) const MAX_MESSAGE: usize = 8 << 20;

/// Server side of part fetches.
pub struct FetchService {
    replication: Weak<Replication>,
}

impl Replication {
    /// The gRPC service other replicas fetch parts from (served on the
    /// interserver port).
    pub fn service(self: &Arc<Self>) -> ReplicationServer<FetchService> {
        ReplicationServer::new(FetchService {
            replication: Arc::downgrade(self),
        })
        .max_decoding_message_size(MAX_MESSAGE)
        .max_encoding_message_size(MAX_MESSAGE)
    }
}

impl FetchService {
    fn replication(&self) -> Result<Arc<Replication>, Status> {
        self.replication
            .upgrade()
            .ok_or_else(|| Status::unavailable("node is shutting down"))
    }
}

type ChunkStream = Pin<Box<dyn Stream<Item = Result<PartChunk, Status>> + Send>>;

#[tonic::async_trait]
impl ReplicationService for FetchService {
    type FetchPartStream = ChunkStream;

    async fn fetch_part(
        &self,
        request: Request<FetchPartRequest>,
    ) -> Result<Response<Self::FetchPartStream>, Status> {
        let req = request.into_inner();
        let span =
            info_span!("send_part", table = %req.table_path, part = %req.part, to = %req.replica);
        let repl = self.replication()?;
        let name: PartName = req
            .part
            .parse()
            .map_err(|e: String| Status::invalid_argument(e))?;
        let replica = repl
            .replica_by_path(&req.table_path)
            .ok_or_else(|| Status::not_found(format!("no table {} here", req.table_path)))?;
        let part = replica
            .table()
            .part_or_covering(&name)
            .ok_or_else(|| Status::not_found(format!("no part {name} or covering part here")))?;
        let (tx, rx) = tokio::sync::mpsc::channel::<Result<PartChunk, Status>>(4);
        // Reading files is blocking work; the Arc keeps the part's directory
        // alive (merges do not delete a part a reader holds).
        tokio::task::spawn_blocking(move || {
            let _e = span.enter();
            if let Err(e) = send_part(&part, &tx) {
                warn!(error = %e, "sending part failed");
                let _ = tx.blocking_send(Err(Status::internal(e)));
            }
        });
        Ok(Response::new(Box::pin(
            tokio_stream::wrappers::ReceiverStream::new(rx),
        )))
    }

    async fn stage_part(
        &self,
        request: Request<tonic::Streaming<PartChunk>>,
    ) -> Result<Response<StagePartReply>, Status> {
        let repl = self.replication()?;
        let mut stream = request.into_inner();
        let first = stream
            .message()
            .await?
            .ok_or_else(|| Status::invalid_argument("empty stage stream"))?;
        let header = first.stage.ok_or_else(|| {
            Status::invalid_argument("the first message must carry the stage header")
        })?;
        let span = info_span!("receive_stage", table = %header.table_path, stage = %header.stage_id, from = %header.writer);
        receive_stage(&repl, header, first.checksums, stream)
            .instrument(span)
            .await
            .map(Response::new)
    }

    async fn activate_staged(
        &self,
        request: Request<StagedRequest>,
    ) -> Result<Response<StagedReply>, Status> {
        let req = request.into_inner();
        let repl = self.replication()?;
        let replica = repl
            .replica_by_path(&req.table_path)
            .ok_or_else(|| Status::not_found(format!("no table {} here", req.table_path)))?;
        let name: PartName = req
            .part
            .parse()
            .map_err(|e: String| Status::invalid_argument(e))?;
        // The writer calls this only after the commit was applied.
        match replica.activate_staged(&req.stage_id, &name).await {
            Ok(true) => Ok(Response::new(StagedReply {})),
            Ok(false) => Err(Status::not_found(format!(
                "no staged part {} here",
                req.stage_id
            ))),
            Err(e) => Err(Status::internal(e.to_string())),
        }
    }

    async fn discard_staged(
        &self,
        request: Request<StagedRequest>,
    ) -> Result<Response<StagedReply>, Status> {
        let req = request.into_inner();
        let repl = self.replication()?;
        if let Some(replica) = repl.replica_by_path(&req.table_path) {
            // The writer knows nothing was committed.
            if replica.staging.discard(&req.stage_id) {
                debug!(stage = %req.stage_id, "staged part discarded (insert failed)");
            }
        }
        Ok(Response::new(StagedReply {}))
    }
}

/// Receives a staged part into the table's staging area: files hashed on
/// arrival, one `syncfs`, then renamed and described. Answers the digest.
async fn receive_stage(
    repl: &Replication,
    header: StageHeader,
    checksums: Vec<u8>,
    mut stream: tonic::Streaming<PartChunk>,
) -> Result<StagePartReply, Status> {
    let replica = repl
        .replica_by_path(&header.table_path)
        .ok_or_else(|| Status::not_found(format!("no table {} here", header.table_path)))?;
    if header.exclusive {
        if let Some(other) = replica.uncommitted_quorum_stage(repl, &header.stage_id) {
            return Err(Status::failed_precondition(format!(
                "part staged by {} (stage {}) is not committed yet",
                other.info.writer, other.id
            )));
        }
    }
    let expected: Checksums = serde_json::from_slice(&checksums)
        .map_err(|e| Status::invalid_argument(format!("bad checksums.json: {e}")))?;
    crate::staging::valid_id(&header.stage_id)
        .map_err(|e| Status::invalid_argument(e.to_string()))?;
    let tmp = replica.staging.receive_dir(&header.stage_id);
    let received = receive_files(&tmp, &checksums, &expected, &mut stream).await;
    if let Err(e) = received {
        let _ = tokio::fs::remove_dir_all(&tmp).await;
        warn!(error = %e, "staging transfer failed");
        return Err(Status::aborted(e));
    }
    let name = PartName {
        partition_id: header.partition_id.clone(),
        min_block: 0,
        max_block: 0,
        level: 0,
    };
    let loaded = Part::load(&tmp, name).map_err(|e| Status::internal(e.to_string()))?;
    let digest = loaded.checksum_digest();
    let info = StageInfo {
        partition_id: header.partition_id,
        deadline_ms: header.deadline_ms,
        writer: header.writer,
        rows: header.rows,
        checksum: digest.clone(),
        quorum: header.quorum,
        exclusive: header.exclusive,
        staged_ms: qh_meta::now_ms(),
    };
    let id = header.stage_id.clone();
    let r = Arc::clone(&replica);
    tokio::task::spawn_blocking(move || r.staging.add(&id, &tmp, info, Some(loaded)))
        .await
        .map_err(|e| Status::internal(e.to_string()))?
        .map_err(|e| Status::internal(e.to_string()))?;
    debug!(stage = %header.stage_id, "part staged");
    Ok(StagePartReply { checksum: digest })
}

fn send_part(
    part: &Part,
    tx: &tokio::sync::mpsc::Sender<Result<PartChunk, Status>>,
) -> Result<(), String> {
    let checksums = std::fs::read(part.dir.join("checksums.json")).map_err(|e| e.to_string())?;
    let header = PartChunk {
        part: part.name.to_string(),
        checksums,
        ..Default::default()
    };
    if tx.blocking_send(Ok(header)).is_err() {
        return Ok(()); // the receiver went away
    }
    read_part_files(&part.dir, part.checksums.keys(), |c| {
        tx.blocking_send(Ok(c)).is_ok()
    })
}

/// Reads `files` of the part at `dir` as chunks, in order, handing each to
/// `emit` (which answers false when the receiver went away). Blocking.
pub(crate) fn read_part_files<'a>(
    dir: &Path,
    files: impl Iterator<Item = &'a String>,
    mut emit: impl FnMut(PartChunk) -> bool,
) -> Result<(), String> {
    for file in files {
        let path = dir.join(file);
        let mut f = std::fs::File::open(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        let mut offset = 0u64;
        loop {
            // Not zero-filled: the read decides the length.
            let mut buf = Vec::with_capacity(CHUNK);
            let n = (&mut f)
                .take(CHUNK as u64)
                .read_to_end(&mut buf)
                .map_err(|e| format!("{}: {e}", path.display()))?;
            // An empty file still sends one chunk, so the receiver creates it.
            if n == 0 && offset > 0 {
                break;
            }
            let chunk = PartChunk {
                file: file.clone(),
                offset,
                data: buf,
                ..Default::default()
            };
            if !emit(chunk) {
                return Ok(());
            }
            offset += n as u64;
            if n < CHUNK {
                break;
            }
        }
    }
    Ok(())
}

/// Fetches `name` (or a part covering it) of `table` from the replica at
/// `address`, verifies it and makes it active. Returns the attached part.
pub async fn fetch_part(
    repl: &Replication,
    table: &Arc<MergeTreeTable>,
    table_path: &str,
    me: &str,
    name: &PartName,
    from: &str,
    address: &str,
) -> Result<Arc<Part>> {
    let err = |why: String| ReplicationError::Fetch {
        part: name.to_string(),
        replica: from.to_string(),
        why,
    };
    let channel = repl.channel(address)?;
    let mut client = ReplicationClient::new(channel)
        .max_decoding_message_size(MAX_MESSAGE)
        .max_encoding_message_size(MAX_MESSAGE);
    let span = info_span!("fetch_part", part = %name, from = %from);
    async move {
        let mut stream = client
            .fetch_part(FetchPartRequest {
                table_path: table_path.to_string(),
                part: name.to_string(),
                replica: me.to_string(),
            })
            .await
            .map_err(|s| err(s.message().to_string()))?
            .into_inner();
        let header = stream
            .message()
            .await
            .map_err(|s| err(s.message().to_string()))?
            .ok_or_else(|| err("empty answer".into()))?;
        let actual: PartName = header.part.parse().map_err(err)?;
        if actual != *name && !actual.covers(name) {
            return Err(err(format!("sent {actual}, which does not cover {name}")));
        }
        let expected: Checksums = serde_json::from_slice(&header.checksums)
            .map_err(|e| err(format!("bad checksums.json: {e}")))?;
        let tmp = table.fetch_dir(&actual);
        let received = receive_files(&tmp, &header.checksums, &expected, &mut stream).await;
        if let Err(e) = received {
            let _ = tokio::fs::remove_dir_all(&tmp).await;
            return Err(err(e));
        }
        let t = Arc::clone(table);
        let bytes: u64 = expected.values().map(|c| c.size).sum();
        // Every file was hashed on arrival: attach without reading it again.
        let part = tokio::task::spawn_blocking(move || t.attach_fetched(&tmp, actual, false))
            .await
            .map_err(|e| err(e.to_string()))??;
        debug!(part = %part.name, bytes, "part fetched");
        Ok(part)
    }
    .instrument(span)
    .await
}

/// Receives the streamed files into `tmp`. Disk work (writes, hashing,
/// fsync) runs on a blocking thread fed through a small channel, so a slow
/// fsync never stalls the runtime's workers (and with them other fetches).
async fn receive_files(
    tmp: &Path,
    checksums_json: &[u8],
    expected: &Checksums,
    stream: &mut tonic::Streaming<PartChunk>,
) -> Result<(), String> {
    let (tx, rx) = tokio::sync::mpsc::channel::<PartChunk>(8);
    let (dir, json, want) = (tmp.to_path_buf(), checksums_json.to_vec(), expected.clone());
    let writer = tokio::task::spawn_blocking(move || write_files(&dir, &json, &want, rx));
    let mut network = Ok(());
    loop {
        match stream.message().await {
            Ok(Some(chunk)) => {
                if tx.send(chunk).await.is_err() {
                    break; // the writer failed; its error wins
                }
            }
            Ok(None) => break,
            Err(s) => {
                network = Err(s.message().to_string());
                break;
            }
        }
    }
    drop(tx);
    let written = writer.await.map_err(|e| e.to_string())?;
    network.and(written)
}

/// Writes chunks as they arrive, hashing each file: every file must match
/// its size and xxh3 in `expected` (so the part needs no second read to be
/// verified), and every file must arrive.
fn write_files(
    tmp: &Path,
    checksums_json: &[u8],
    expected: &Checksums,
    mut rx: tokio::sync::mpsc::Receiver<PartChunk>,
) -> Result<(), String> {
    std::fs::create_dir_all(tmp).map_err(|e| format!("{}: {e}", tmp.display()))?;
    let mut open: Option<OpenFile> = None;
    let mut done: Vec<(std::path::PathBuf, std::fs::File)> = Vec::new();
    while let Some(chunk) = rx.blocking_recv() {
        if !expected.contains_key(&chunk.file) || chunk.file.contains('/') {
            return Err(format!("unexpected file {:?} in the stream", chunk.file));
        }
        if open.as_ref().map(|f| &f.name) != Some(&chunk.file) {
            if let Some(f) = open.take() {
                done.push(f.finish(tmp, expected)?);
            }
            let path = tmp.join(&chunk.file);
            let file =
                std::fs::File::create(&path).map_err(|e| format!("{}: {e}", path.display()))?;
            open = Some(OpenFile {
                name: chunk.file.clone(),
                file: std::io::BufWriter::with_capacity(1 << 20, file),
                hasher: xxhash_rust::xxh3::Xxh3::new(),
                size: 0,
            });
        }
        if let Some(f) = open.as_mut() {
            f.hasher.update(&chunk.data);
            f.size += chunk.data.len() as u64;
            f.file.write_all(&chunk.data).map_err(|e| e.to_string())?;
        }
    }
    if let Some(f) = open.take() {
        done.push(f.finish(tmp, expected)?);
    }
    if done.len() != expected.len() {
        return Err(format!(
            "stream ended after {} of {} files",
            done.len(),
            expected.len()
        ));
    }
    let path = tmp.join("checksums.json");
    let mut f = std::fs::File::create(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    f.write_all(checksums_json).map_err(|e| e.to_string())?;
    // The part is durable before it is renamed into place either way. A big
    // part: one flush of the filesystem instead of an fsync per file. A
    // small one: its files' fsyncs at once (one journal commit) — a syncfs
    // would also flush every other writer's dirty pages.
    let bytes: u64 = expected.values().map(|c| c.size).sum();
    if bytes >= SYNCFS_FROM_BYTES {
        sync_filesystem(&f).map_err(|e| format!("{}: {e}", tmp.display()))?;
    } else {
        done.push((path, f));
        let refs: Vec<(&Path, &std::fs::File)> =
            done.iter().map(|(p, f)| (p.as_path(), f)).collect();
        qh_storage::fsutil::sync_files(&refs).map_err(|e| e.to_string())?;
        qh_storage::fsutil::sync_dir(tmp).map_err(|e| e.to_string())?;
    }
    Ok(())
}

fn sync_filesystem(f: &std::fs::File) -> std::io::Result<()> {
    use std::os::fd::AsRawFd;
    // SAFETY: syncfs only reads the descriptor, which `f` keeps open.
    let r = unsafe { libc::syncfs(f.as_raw_fd()) };
    if r == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

struct OpenFile {
    name: String,
    file: std::io::BufWriter<std::fs::File>,
    hasher: xxhash_rust::xxh3::Xxh3,
    size: u64,
}

impl OpenFile {
    /// Flushes the file (made durable with the rest of the part) and checks
    /// it against its checksum.
    fn finish(
        self,
        dir: &Path,
        expected: &Checksums,
    ) -> Result<(std::path::PathBuf, std::fs::File), String> {
        let file = self.file.into_inner().map_err(|e| e.to_string())?;
        let want = expected
            .get(&self.name)
            .ok_or_else(|| format!("unexpected file {}", self.name))?;
        let got = format!("{:016x}", self.hasher.digest());
        if self.size != want.size || got != want.hash {
            return Err(format!(
                "checksum mismatch in {}: expected {} bytes xxh3 {}, got {} bytes xxh3 {got} (CHECKSUM_DOESNT_MATCH)",
                self.name, want.size, want.hash, self.size
            ));
        }
        Ok((dir.join(&self.name), file))
    }
}
