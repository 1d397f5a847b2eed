//! Client sessions by id, shared by the gRPC and HTTP doors: `SET` and
//! `USE` persist within a session; settings and the database a single
//! request carries do not ([`Sessions::scoped`] restores them).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use qh_access::UserDef;
use qh_query::{Engine, Session};
use qh_types::Settings;
use tokio::sync::Mutex;

const MAX_SESSIONS: usize = 10_000;

type Slot = (Arc<Mutex<Session>>, Instant, Duration);

pub struct Sessions {
    engine: Arc<Engine>,
    map: parking_lot::Mutex<HashMap<String, Slot>>,
}

impl Sessions {
    pub fn new(engine: Arc<Engine>) -> Self {
        Sessions {
            engine,
            map: parking_lot::Mutex::new(HashMap::new()),
        }
    }

    /// The session `id` (a new one for an unknown id), forgotten after
    /// `idle` without use; an empty id is a session of its own.
    /// Sessions belong to their user: the same id of another user is
    /// another session.
    pub fn get(&self, user: &UserDef, id: &str, idle: Duration) -> Arc<Mutex<Session>> {
        let fresh = || {
            let mut s = self.engine.session();
            s.set_user(user);
            if let Some(db) = &user.default_database {
                if self.engine.catalog().has_database(db) {
                    s.set_database(db);
                }
            }
            Arc::new(Mutex::new(s))
        };
        if id.is_empty() {
            return fresh();
        }
        let id = format!("{}\0{id}", user.name);
        let mut map = self.map.lock();
        let now = Instant::now();
        map.retain(|_, (_, used, idle)| now.duration_since(*used) < *idle);
        if map.len() >= MAX_SESSIONS {
            // Full of live sessions: the least recently used goes.
            if let Some(oldest) = map.iter().min_by_key(|(_, s)| s.1).map(|(k, _)| k.clone()) {
                map.remove(&oldest);
            }
        }
        let slot = map.entry(id).or_insert_with(|| (fresh(), now, idle));
        slot.1 = now;
        slot.2 = idle;
        Arc::clone(&slot.0)
    }
}

/// What a request changed only for itself, to be undone after it.
pub struct Scope {
    saved: Settings,
    request: Vec<String>,
    saved_db: Option<String>,
}

/// Applies a request's own settings, database and address to `s`; [`restore`]
/// undoes them afterwards, keeping what a `SET` or `USE` of the request
/// changed.
pub fn scoped(
    s: &mut Session,
    settings: &[(String, String)],
    database: Option<&str>,
    peer: Option<IpAddr>,
) -> Scope {
    s.set_peer(peer);
    let saved = s.settings().clone();
    for (k, v) in settings {
        s.settings_mut().set(k, v.clone());
    }
    let saved_db = database.map(|db| {
        let old = s.database().to_string();
        s.set_database(db);
        old
    });
    Scope {
        saved,
        request: settings.iter().map(|(k, _)| k.clone()).collect(),
        saved_db,
    }
}

pub fn restore(s: &mut Session, scope: Scope) {
    if !scope.request.is_empty() {
        let mut merged = scope.saved;
        for (k, v) in s.settings().iter() {
            if !scope.request.iter().any(|r| r == k) {
                merged.set(k, v);
            }
        }
        *s.settings_mut() = merged;
    }
    if let Some(db) = scope.saved_db {
        s.set_database(&db);
    }
}
