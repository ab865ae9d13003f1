//! Recording audit events without slowing requests down: events are queued
//! in memory and written in batches by the server's background writer (and
//! at once by the CLI).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::store::{AuditEvent, Store, StoreError};

/// Most queued events; beyond this the newest are dropped and counted, so a
/// flood of failed sign-ins cannot exhaust memory.
const MAX_PENDING: usize = 10_000;

/// Most noisy events (rule denials, failed credentials) one client may
/// cause per minute.
const DENIALS_PER_MINUTE: u32 = 10;
/// Most clients tracked for that limit; the tracker starts over beyond.
const DENIAL_CLIENTS: usize = 10_000;

/// The audit queue.
pub struct Audit {
    store: Arc<Store>,
    pending: Mutex<Vec<AuditEvent>>,
    dropped: AtomicU64,
    /// Noisy events recorded per client in the current minute.
    denials: Mutex<HashMap<String, (Instant, u32)>>,
}

impl Audit {
    pub fn new(store: Arc<Store>) -> Audit {
        Audit {
            store,
            pending: Mutex::new(Vec::new()),
            dropped: AtomicU64::new(0),
            denials: Mutex::new(HashMap::new()),
        }
    }

    /// Queues an event happening now.
    pub fn record(
        &self,
        actor: &str,
        action: &str,
        target: &str,
        addr: Option<IpAddr>,
        detail: Option<String>,
    ) {
        let event = AuditEvent {
            at: time::OffsetDateTime::now_utc().unix_timestamp(),
            actor: actor.to_owned(),
            action: action.to_owned(),
            target: target.to_owned(),
            addr: addr.map(|a| a.to_string()),
            detail,
        };
        let mut pending = self.pending.lock().expect("audit lock");
        if pending.len() >= MAX_PENDING {
            self.dropped.fetch_add(1, Ordering::Relaxed);
            return;
        }
        pending.push(event);
    }

    /// Whether another event of a kind clients can cause at will (rule
    /// denials, failed credentials) may be recorded for `client` now: at
    /// most a few per minute each, so such requests cannot flood the log.
    pub fn admit_noisy(&self, client: &str, now: Instant) -> bool {
        let mut denials = self.denials.lock().expect("denials lock");
        if denials.len() >= DENIAL_CLIENTS {
            denials.clear();
        }
        let (since, count) = denials.entry(client.to_owned()).or_insert((now, 0));
        if now.duration_since(*since) >= Duration::from_secs(60) {
            (*since, *count) = (now, 0);
        }
        *count += 1;
        *count <= DENIALS_PER_MINUTE
    }

    /// Writes queued events; on failure they stay queued for the next try.
    pub fn flush(&self) -> Result<(), StoreError> {
        let events = std::mem::take(&mut *self.pending.lock().expect("audit lock"));
        let dropped = self.dropped.swap(0, Ordering::Relaxed);
        if dropped > 0 {
            tracing::warn!(
                audit.dropped = dropped,
                "audit queue overflowed; events were lost"
            );
        }
        self.store.append_audit(&events).inspect_err(|_| {
            let mut pending = self.pending.lock().expect("audit lock");
            let newer = std::mem::replace(&mut *pending, events);
            pending.extend(newer);
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::AuditFilter;

    #[test]
    fn rule_denials_are_limited_per_client() {
        let (_dir, store) = crate::store::temp_store();
        let audit = Audit::new(Arc::new(store));
        let now = Instant::now();
        let admitted = (0..50)
            .filter(|_| audit.admit_noisy("mallory", now))
            .count();
        assert_eq!(admitted, DENIALS_PER_MINUTE as usize);
        assert!(audit.admit_noisy("alice", now), "other clients unaffected");
        assert!(
            audit.admit_noisy("mallory", now + Duration::from_secs(61)),
            "next minute"
        );
    }

    #[test]
    fn queued_until_flushed() {
        let (_dir, store) = crate::store::temp_store();
        let store = Arc::new(store);
        let audit = Audit::new(Arc::clone(&store));
        audit.record("alice", "token.created", "alice/laptop", None, None);
        assert!(
            store
                .audit_events(&AuditFilter::default(), 10)
                .unwrap()
                .is_empty()
        );
        audit.flush().unwrap();
        let events = store.audit_events(&AuditFilter::default(), 10).unwrap();
        assert_eq!(events[0].action, "token.created");
        audit.flush().unwrap();
        assert_eq!(
            store
                .audit_events(&AuditFilter::default(), 10)
                .unwrap()
                .len(),
            1
        );
    }
}
