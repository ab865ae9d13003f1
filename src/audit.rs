//! Recording audit events without slowing requests down: events are queued
//! in memory and written in batches by the server's background writer (and
//! at once by the CLI).

use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use crate::store::{AuditEvent, Store, StoreError};

/// Most queued events; beyond this the newest are dropped and counted, so a
/// flood of failed sign-ins cannot exhaust memory.
const MAX_PENDING: usize = 10_000;

/// The audit queue.
pub struct Audit {
    store: Arc<Store>,
    pending: Mutex<Vec<AuditEvent>>,
    dropped: AtomicU64,
}

impl Audit {
    pub fn new(store: Arc<Store>) -> Audit {
        Audit {
            store,
            pending: Mutex::new(Vec::new()),
            dropped: AtomicU64::new(0),
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
