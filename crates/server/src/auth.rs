//! Credentials at the client doors, checked against the node's users
//! (`qh_access`). HTTP takes them as ClickHouse does — basic auth, the
//! `X-ClickHouse-User` / `X-ClickHouse-Key` headers, or the `user` /
//! `password` parameters; gRPC from the `user` / `password` metadata. No
//! credentials at all means the `default` user with no password.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use axum::http::{header, HeaderMap};
use base64::Engine as _;
use qh_access::UserDef;
use qh_query::Engine;
use qh_types::ErrorCode;

use crate::metrics::Metrics;

/// Longest user name or password accepted before any lookup.
const MAX_CREDENTIAL_BYTES: usize = 4096;

/// Who a request says it is.
pub struct Credentials {
    pub user: String,
    password: String,
    /// An `Authorization` header that is not valid basic auth: refused,
    /// never read as "no credentials" (which would be `default`).
    malformed: bool,
}

/// Never prints the password.
impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("user", &self.user)
            .finish_non_exhaustive()
    }
}

impl Credentials {
    fn new(user: Option<String>, password: Option<String>) -> Self {
        Credentials {
            user: user
                .filter(|u| !u.is_empty())
                .unwrap_or_else(|| "default".into()),
            password: password.unwrap_or_default(),
            malformed: false,
        }
    }

    /// From an HTTP request: the basic-auth header, else the ClickHouse
    /// headers, else the URL parameters.
    pub fn from_http(headers: &HeaderMap, params: &HashMap<String, String>) -> Self {
        let text = |name: &str| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        if let Some(value) = headers.get(header::AUTHORIZATION) {
            let parsed = value.to_str().ok().and_then(basic);
            let malformed = parsed.is_none();
            let (user, password) = parsed.unzip();
            let mut c = Credentials::new(user, password);
            c.malformed = malformed;
            return c;
        }
        let user = text("x-clickhouse-user").or_else(|| params.get("user").cloned());
        let password = text("x-clickhouse-key").or_else(|| params.get("password").cloned());
        Credentials::new(user, password)
    }

    /// From gRPC metadata (`user`, `password`; `user-bin`, `password-bin`
    /// for values that are not ASCII).
    pub fn from_grpc(metadata: &tonic::metadata::MetadataMap) -> Self {
        let text = |name: &str| {
            metadata
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
                .or_else(|| {
                    let bin = metadata.get_bin(format!("{name}-bin"))?.to_bytes().ok()?;
                    String::from_utf8(bin.to_vec()).ok()
                })
        };
        Credentials::new(text("user"), text("password"))
    }

    /// The user these credentials prove, or AUTHENTICATION_FAILED (counted
    /// in `/metrics`) with ClickHouse's text, the same for every cause.
    pub async fn authenticate(
        &self,
        engine: &Engine,
        metrics: &Metrics,
        peer: Option<IpAddr>,
    ) -> Result<UserDef, (ErrorCode, String)> {
        let refused = || {
            metrics.failed_logins.fetch_add(1, Ordering::Relaxed);
            let e = qh_access::AccessError::AuthenticationFailed {
                user: self.user.chars().take(256).collect(),
            };
            tracing::info!(user = %self.user.chars().take(256).collect::<String>(), ?peer, "login refused");
            (e.code(), e.to_string())
        };
        if self.malformed
            || self.user.len() > MAX_CREDENTIAL_BYTES
            || self.password.len() > MAX_CREDENTIAL_BYTES
        {
            return Err(refused());
        }
        match engine.access() {
            Some(a) => a
                .authenticate(&self.user, &self.password, peer)
                .await
                .map_err(|_| refused()),
            // No coordinator (an in-process engine): only `default`.
            None if self.user == "default" && self.password.is_empty() => {
                Ok(UserDef::builtin_default())
            }
            None => Err(refused()),
        }
    }
}

/// Guards the shard-stage API on the client port (what `remote()` calls):
/// a caller must prove a user that may read everything, since a stage is a
/// plan fragment that can scan any table. Nodes reach each other's stage
/// API on the interserver port instead.
pub fn stage_gate(
    engine: Arc<Engine>,
    metrics: Arc<Metrics>,
) -> impl Fn(tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> + Clone {
    move |req: tonic::Request<()>| {
        let Some(access) = engine.access() else {
            return Ok(req);
        };
        let c = Credentials::from_grpc(req.metadata());
        let peer = req.remote_addr().map(|a| a.ip());
        let user = match access.authenticate_local(&c.user, &c.password, peer) {
            Ok(u) => u,
            Err(e) => {
                metrics.failed_logins.fetch_add(1, Ordering::Relaxed);
                return Err(tonic::Status::unauthenticated(e.to_string()));
            }
        };
        let need = qh_access::Need::global(qh_access::Privilege::Select);
        if user.may(&need, false) {
            Ok(req)
        } else {
            Err(tonic::Status::permission_denied(format!(
                "{}: Not enough privileges. To execute this query, it's necessary to have the grant {}",
                user.name,
                need.grant_text()
            )))
        }
    }
}

/// Guards the interserver port: a call must carry the cluster secret's
/// token (see `qh_meta::trust`). Refusals are counted and logged, at most
/// one line per ten seconds: a misconfigured peer retries Raft calls many
/// times a second.
pub fn interserver_gate(
    secret: qh_meta::ClusterSecret,
    metrics: Arc<Metrics>,
) -> impl Fn(tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> + Clone {
    let last_logged = Arc::new(std::sync::Mutex::new(None::<std::time::Instant>));
    move |req: tonic::Request<()>| {
        if secret.admits(req.metadata()) {
            return Ok(req);
        }
        let refused = metrics.interserver_refused.fetch_add(1, Ordering::Relaxed) + 1;
        if let Ok(mut last) = last_logged.lock() {
            if last.is_none_or(|t| t.elapsed() >= std::time::Duration::from_secs(10)) {
                *last = Some(std::time::Instant::now());
                tracing::warn!(
                    peer = ?req.remote_addr(),
                    refused_so_far = refused,
                    "interserver call refused: missing or wrong cluster secret"
                );
            }
        }
        Err(tonic::Status::unauthenticated(
            "Code: 516. DB::Exception: Interserver authentication failed: the call does not carry this cluster's secret. (AUTHENTICATION_FAILED)",
        ))
    }
}

/// `Basic base64(user:password)`.
fn basic(value: &str) -> Option<(String, String)> {
    let (scheme, b64) = value.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let raw = base64::engine::general_purpose::STANDARD
        .decode(b64.trim())
        .ok()?;
    let text = String::from_utf8(raw).ok()?;
    let (u, p) = text.split_once(':')?;
    Some((u.to_string(), p.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_credentials_in_clickhouse_order() {
        let mut h = HeaderMap::new();
        let params = HashMap::from([
            ("user".to_string(), "p".to_string()),
            ("password".to_string(), "pp".to_string()),
        ]);
        let c = Credentials::from_http(&h, &params);
        assert_eq!((c.user.as_str(), c.password.as_str()), ("p", "pp"));
        h.insert("x-clickhouse-user", "h".parse().unwrap());
        h.insert("x-clickhouse-key", "hk".parse().unwrap());
        let c = Credentials::from_http(&h, &params);
        assert_eq!((c.user.as_str(), c.password.as_str()), ("h", "hk"));
        // alice:s3:cret
        h.insert(
            header::AUTHORIZATION,
            "Basic YWxpY2U6czM6Y3JldA==".parse().unwrap(),
        );
        let c = Credentials::from_http(&h, &params);
        assert_eq!((c.user.as_str(), c.password.as_str()), ("alice", "s3:cret"));
        let c = Credentials::from_http(&HeaderMap::new(), &HashMap::new());
        assert_eq!((c.user.as_str(), c.password.as_str()), ("default", ""));
        assert!(!c.malformed);
        for bad in ["Basic !!!", "Bearer x", "Basic", "Basic bm9jb2xvbg=="] {
            h.insert(header::AUTHORIZATION, bad.parse().unwrap());
            assert!(Credentials::from_http(&h, &params).malformed, "{bad}");
        }
        assert!(!format!("{c:?}").contains("password"));
    }
}
