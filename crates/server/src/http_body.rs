//! What an HTTP request body holds: compressed per `Content-Encoding`
//! (clickhouse-connect always compresses its inserts, lz4 by default), and
//! either INSERT data (the query in the URL) or the query itself — which,
//! for `INSERT ... FORMAT X`, is followed by that format's data, as
//! ClickHouse reads it.

use std::io::{self, Cursor, Read};

/// `body` decoded per `Content-Encoding` (none, `identity`, `lz4` frames,
/// `zstd`, `gzip`, `deflate`); an unknown encoding is refused.
pub fn decoded(
    encoding: Option<&str>,
    body: Box<dyn Read + Send>,
) -> Result<Box<dyn Read + Send>, String> {
    Ok(
        match encoding.map(|e| e.trim().to_ascii_lowercase()).as_deref() {
            None | Some("" | "identity") => body,
            Some("lz4") => Box::new(Lz4Frames(lz4_flex::frame::FrameDecoder::new(
                io::BufReader::new(body),
            ))),
            Some("zstd") => Box::new(
                zstd::stream::read::Decoder::new(body)
                    .map_err(|e| format!("cannot start zstd decoding: {e}"))?,
            ),
            Some("gzip" | "x-gzip") => Box::new(flate2::read::MultiGzDecoder::new(body)),
            Some("deflate") => Box::new(flate2::read::ZlibDecoder::new(body)),
            Some(other) => {
                return Err(format!(
                    "Unknown Content-Encoding '{other}' (lz4, zstd, gzip, deflate)"
                ))
            }
        },
    )
}

/// `body` compressed with the first encoding of `accept` (an
/// `Accept-Encoding` value, in the client's order) that we write: zstd,
/// lz4 (one frame), gzip or deflate. `None` when none is acceptable.
pub fn encoded(accept: &str, body: &[u8]) -> Option<(&'static str, Vec<u8>)> {
    use std::io::Write;
    for token in accept.split(',') {
        let name = token
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        let out = match name.as_str() {
            "zstd" => zstd::stream::encode_all(body, 3).ok().map(|b| ("zstd", b)),
            "lz4" => {
                let mut e = lz4_flex::frame::FrameEncoder::new(Vec::new());
                e.write_all(body)
                    .ok()
                    .and_then(|_| e.finish().ok())
                    .map(|b| ("lz4", b))
            }
            "gzip" | "x-gzip" => {
                let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
                e.write_all(body)
                    .ok()
                    .and_then(|_| e.finish().ok())
                    .map(|b| ("gzip", b))
            }
            "deflate" => {
                let mut e =
                    flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::fast());
                e.write_all(body)
                    .ok()
                    .and_then(|_| e.finish().ok())
                    .map(|b| ("deflate", b))
            }
            _ => None,
        };
        if out.is_some() {
            return out;
        }
    }
    None
}

/// Concatenated lz4 frames (clickhouse-connect sends one per block):
/// lz4_flex's decoder reports the end of each frame as the end of data.
struct Lz4Frames<R: io::BufRead>(lz4_flex::frame::FrameDecoder<R>);

impl<R: io::BufRead> Read for Lz4Frames<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        loop {
            let n = self.0.read(buf)?;
            if n > 0 || self.0.get_mut().fill_buf()?.is_empty() {
                return Ok(n);
            }
        }
    }
}

/// The longest query a body may hold (an INSERT's data after its FORMAT
/// clause does not count). Longer ones are refused before they are read
/// whole, as ClickHouse's `max_query_size` does.
pub const MAX_QUERY_BYTES: usize = 16 << 20;

/// A body query passed [`MAX_QUERY_BYTES`] (the source of the `io::Error`).
#[derive(Debug)]
pub struct QueryTooLong;

impl std::fmt::Display for QueryTooLong {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Max query size exceeded: the query is longer than {MAX_QUERY_BYTES} bytes"
        )
    }
}

impl std::error::Error for QueryTooLong {}

/// Splits a body that starts with the query: the query text, and for an
/// `INSERT ... FORMAT X` the data after it (after the format name, spaces
/// and at most one line break, so a binary format's first byte is never
/// eaten). Any other statement is the whole body.
pub fn split_query(
    mut body: Box<dyn Read + Send>,
) -> io::Result<(String, Option<Box<dyn Read + Send>>)> {
    let mut buf = Vec::new();
    let mut chunk = vec![0u8; 64 << 10];
    loop {
        let n = body.read(&mut chunk)?;
        let eof = n == 0;
        buf.extend_from_slice(&chunk[..n]);
        match data_start(&buf, eof) {
            Scan::More if !eof && buf.len() <= MAX_QUERY_BYTES => continue,
            Scan::More | Scan::QueryOnly => {
                if !eof && buf.len() <= MAX_QUERY_BYTES {
                    // Never more than the limit (+1 to tell it was passed).
                    let room = (MAX_QUERY_BYTES + 1 - buf.len()) as u64;
                    body.by_ref().take(room).read_to_end(&mut buf)?;
                }
                if buf.len() > MAX_QUERY_BYTES {
                    return Err(io::Error::new(io::ErrorKind::InvalidData, QueryTooLong));
                }
                let q = String::from_utf8(buf).map_err(|_| {
                    io::Error::new(io::ErrorKind::InvalidData, "the query is not UTF-8")
                })?;
                return Ok((q, None));
            }
            Scan::Data { query_end, data } => {
                let q = std::str::from_utf8(&buf[..query_end])
                    .map_err(|_| {
                        io::Error::new(io::ErrorKind::InvalidData, "the query is not UTF-8")
                    })?
                    .to_string();
                let rest = buf.split_off(data);
                return Ok((q, Some(Box::new(Cursor::new(rest).chain(body)))));
            }
        }
    }
}

#[derive(Debug, PartialEq, Eq)]
enum Scan {
    /// The body so far does not decide it.
    More,
    /// Not an INSERT with a FORMAT clause: the whole body is the query.
    QueryOnly,
    /// The query is `buf[..query_end]`, the data starts at `data`.
    Data { query_end: usize, data: usize },
}

/// Finds the end of `INSERT ... FORMAT name` in `buf`, skipping quoted
/// names, strings and comments.
fn data_start(buf: &[u8], eof: bool) -> Scan {
    let mut i = 0;
    let mut first_word = true;
    while i < buf.len() {
        let c = buf[i];
        match c {
            b'\'' | b'"' | b'`' => {
                let mut j = i + 1;
                loop {
                    match buf.get(j) {
                        None => return if eof { Scan::QueryOnly } else { Scan::More },
                        Some(b'\\') => j += 2,
                        Some(&q) if q == c => {
                            // A doubled quote stays inside.
                            if buf.get(j + 1) == Some(&c) {
                                j += 2;
                            } else {
                                break;
                            }
                        }
                        Some(_) => j += 1,
                    }
                }
                i = j + 1;
            }
            b'-' if buf.get(i + 1) == Some(&b'-') => {
                match buf[i..].iter().position(|b| *b == b'\n') {
                    Some(p) => i += p + 1,
                    None => return if eof { Scan::QueryOnly } else { Scan::More },
                }
            }
            b'/' if buf.get(i + 1) == Some(&b'*') => {
                match buf[i + 2..].windows(2).position(|w| w == b"*/") {
                    Some(p) => i += p + 4,
                    None => return if eof { Scan::QueryOnly } else { Scan::More },
                }
            }
            c if c.is_ascii_alphabetic() || c == b'_' => {
                let start = i;
                while i < buf.len() && (buf[i].is_ascii_alphanumeric() || buf[i] == b'_') {
                    i += 1;
                }
                if i == buf.len() && !eof {
                    return Scan::More;
                }
                let word = &buf[start..i];
                if first_word {
                    if !word.eq_ignore_ascii_case(b"INSERT") {
                        return Scan::QueryOnly;
                    }
                    first_word = false;
                } else if word.eq_ignore_ascii_case(b"FORMAT") {
                    return format_name(buf, i, eof);
                }
            }
            _ => i += 1,
        }
    }
    if eof {
        Scan::QueryOnly
    } else {
        Scan::More
    }
}

/// After `FORMAT` at `i`: the name, then the data.
fn format_name(buf: &[u8], mut i: usize, eof: bool) -> Scan {
    while i < buf.len() && buf[i].is_ascii_whitespace() {
        i += 1;
    }
    let start = i;
    while i < buf.len() && (buf[i].is_ascii_alphanumeric() || buf[i] == b'_') {
        i += 1;
    }
    if i == buf.len() && !eof {
        return Scan::More;
    }
    if i == start {
        return Scan::QueryOnly;
    }
    let query_end = i;
    while i < buf.len() && (buf[i] == b' ' || buf[i] == b'\t') {
        i += 1;
    }
    if buf.get(i) == Some(&b'\r') && buf.get(i + 1) == Some(&b'\n') {
        i += 2;
    } else if buf.get(i) == Some(&b'\n') {
        i += 1;
    } else if i == buf.len() && !eof {
        return Scan::More;
    }
    Scan::Data { query_end, data: i }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_insert_body_is_split_after_its_format() {
        let body = b"INSERT INTO `t` (`a`) FORMAT Native\n\x0a\x01rest".to_vec();
        assert_eq!(
            data_start(&body, true),
            Scan::Data {
                query_end: 35,
                data: 36
            }
        );
        // The first data byte is a newline (ten columns): kept.
        let (q, rest) = split_query(Box::new(Cursor::new(body))).unwrap();
        assert_eq!(q, "INSERT INTO `t` (`a`) FORMAT Native");
        let mut data = Vec::new();
        rest.unwrap().read_to_end(&mut data).unwrap();
        assert_eq!(data, b"\x0a\x01rest");
        // FORMAT inside a string or a name does not count.
        let v = b"INSERT INTO t VALUES ('FORMAT CSV\n'), (1)";
        assert_eq!(data_start(v, true), Scan::QueryOnly);
        assert_eq!(
            data_start(b"INSERT INTO `FORMAT` VALUES (1)", true),
            Scan::QueryOnly
        );
        assert_eq!(data_start(b"SELECT 1 FORMAT Native", true), Scan::QueryOnly);
        assert_eq!(data_start(b"INSERT INTO t FORM", false), Scan::More);
        assert_eq!(data_start(b"INSERT INTO t FORMAT Nat", false), Scan::More);
        assert_eq!(
            data_start(b"insert into t format CSV 1,2", true),
            Scan::Data {
                query_end: 24,
                data: 25
            }
        );
    }

    #[test]
    fn responses_are_encoded_as_the_client_accepts() {
        let raw = b"a result that compresses well well well well".repeat(20);
        assert!(encoded("br", &raw).is_none());
        for (accept, want) in [
            ("br, lz4;q=0.9, gzip", "lz4"),
            ("gzip", "gzip"),
            ("deflate", "deflate"),
            ("zstd", "zstd"),
        ] {
            let (enc, bytes) = encoded(accept, &raw).unwrap();
            assert_eq!(enc, want);
            assert!(bytes.len() < raw.len());
            let mut back = Vec::new();
            decoded(Some(enc), Box::new(Cursor::new(bytes)))
                .unwrap()
                .read_to_end(&mut back)
                .unwrap();
            assert_eq!(back, raw);
        }
    }

    #[test]
    fn encodings() {
        let raw = b"hello".to_vec();
        let mut z = Vec::new();
        zstd::stream::copy_encode(&raw[..], &mut z, 1).unwrap();
        let mut out = String::new();
        decoded(Some("zstd"), Box::new(Cursor::new(z)))
            .unwrap()
            .read_to_string(&mut out)
            .unwrap();
        assert_eq!(out, "hello");
        // Two lz4 frames, as clickhouse-connect sends one per block.
        let mut l = Vec::new();
        for part in [&b"hel"[..], &b"lo"[..]] {
            let mut e = lz4_flex::frame::FrameEncoder::new(Vec::new());
            std::io::Write::write_all(&mut e, part).unwrap();
            l.extend(e.finish().unwrap());
        }
        let mut out = String::new();
        decoded(Some("lz4"), Box::new(Cursor::new(l)))
            .unwrap()
            .read_to_string(&mut out)
            .unwrap();
        assert_eq!(out, "hello");
        assert!(decoded(Some("br"), Box::new(Cursor::new(Vec::new()))).is_err());
    }
}
