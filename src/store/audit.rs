//! The audit log: who did what to whom, when, from where. Never a secret.
//!
//! Events are numbered in commit order. A per-user index lets a user's own
//! events, and an admin's filter by user, be read without a full scan.

use redb::{ReadableTable, ReadableTableMetadata};
use serde::{Deserialize, Serialize};

use super::{AUDIT, AUDIT_BY_USER, META, Result, Store, decode, encode, index_key};

pub(super) const SEQUENCE_KEY: &str = "audit_sequence";

/// One recorded event.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct AuditEvent {
    /// Unix seconds.
    pub at: i64,
    /// Who acted: a user name, `cli` for the local command line, or empty
    /// for an anonymous client.
    pub actor: String,
    /// What happened, dotted: `token.created`, `signin.failure`, …
    pub action: String,
    /// What it happened to: a user, `user/token-name`, a group, a scope.
    pub target: String,
    /// The client address, when there was a client.
    pub addr: Option<String>,
    /// Anything else worth knowing, in words.
    pub detail: Option<String>,
}

impl AuditEvent {
    /// The users this event concerns: the actor and the user in the target.
    pub(super) fn users(&self) -> Vec<&str> {
        let target_user = self.target.split('/').next().unwrap_or_default();
        let mut users = vec![self.actor.as_str(), target_user];
        users.retain(|u| !u.is_empty() && *u != "cli");
        users.dedup();
        users
    }
}

/// Which events to read.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct AuditFilter {
    /// Events concerning this user, as actor or target.
    pub user: Option<String>,
    /// Events whose action starts with this (`token.` for all token events).
    pub action: Option<String>,
    /// Events at or after this time (unix seconds).
    pub since: Option<i64>,
}

impl AuditFilter {
    fn admits(&self, event: &AuditEvent) -> bool {
        self.action
            .as_ref()
            .is_none_or(|a| event.action.starts_with(a.as_str()))
            && self.since.is_none_or(|s| event.at >= s)
            && self
                .user
                .as_ref()
                .is_none_or(|u| event.users().contains(&u.as_str()))
    }
}

impl Store {
    /// Appends events in one transaction.
    pub fn append_audit(&self, events: &[AuditEvent]) -> Result<()> {
        if events.is_empty() {
            return Ok(());
        }
        let txn = self.db.begin_write()?;
        {
            let mut meta = txn.open_table(META)?;
            let mut next = match meta.get(SEQUENCE_KEY)? {
                Some(v) => u64::from_be_bytes(v.value().try_into().unwrap_or([0; 8])),
                None => 0,
            };
            let mut audit = txn.open_table(AUDIT)?;
            let mut by_user = txn.open_table(AUDIT_BY_USER)?;
            for event in events {
                next += 1;
                audit.insert(next, encode(event).as_slice())?;
                for user in event.users() {
                    by_user.insert(index_key(user, &format!("{next:020}")).as_str(), next)?;
                }
            }
            meta.insert(SEQUENCE_KEY, next.to_be_bytes().as_slice())?;
        }
        txn.commit()?;
        Ok(())
    }

    /// Up to `limit` matching events, newest first.
    pub fn audit_events(&self, filter: &AuditFilter, limit: usize) -> Result<Vec<AuditEvent>> {
        let txn = self.db.begin_read()?;
        let audit = txn.open_table(AUDIT)?;
        let mut out = Vec::new();
        if let Some(user) = &filter.user {
            let by_user = txn.open_table(AUDIT_BY_USER)?;
            let (start, end) = (format!("{user}\0"), format!("{user}\u{1}"));
            for entry in by_user.range(start.as_str()..end.as_str())?.rev() {
                let seq = entry?.1.value();
                let Some(value) = audit.get(seq)? else {
                    continue;
                };
                let event: AuditEvent = decode("audit", value.value())?;
                if filter.admits(&event) {
                    out.push(event);
                    if out.len() >= limit {
                        break;
                    }
                }
            }
            return Ok(out);
        }
        for entry in audit.iter()?.rev() {
            let event: AuditEvent = decode("audit", entry?.1.value())?;
            if filter.admits(&event) {
                out.push(event);
                if out.len() >= limit {
                    break;
                }
            }
        }
        Ok(out)
    }

    /// Drops events older than `before`, and the oldest beyond `keep`;
    /// returns how many went.
    pub fn prune_audit(&self, before: i64, keep: u64) -> Result<usize> {
        let txn = self.db.begin_write()?;
        let mut dropped = 0;
        {
            let mut audit = txn.open_table(AUDIT)?;
            let mut by_user = txn.open_table(AUDIT_BY_USER)?;
            let mut excess = audit.len()?.saturating_sub(keep);
            let mut doomed = Vec::new();
            for entry in audit.iter()? {
                let (seq, value) = entry?;
                let event: AuditEvent = decode("audit", value.value())?;
                if excess == 0 && event.at >= before {
                    break;
                }
                excess = excess.saturating_sub(1);
                doomed.push((seq.value(), event));
            }
            for (seq, event) in doomed {
                audit.remove(seq)?;
                for user in event.users() {
                    by_user.remove(index_key(user, &format!("{seq:020}")).as_str())?;
                }
                dropped += 1;
            }
        }
        txn.commit()?;
        Ok(dropped)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::temp_store;

    fn event(at: i64, actor: &str, action: &str, target: &str) -> AuditEvent {
        AuditEvent {
            at,
            actor: actor.into(),
            action: action.into(),
            target: target.into(),
            addr: Some("127.0.0.1".into()),
            detail: None,
        }
    }

    #[test]
    fn filters_newest_first_and_prunes() {
        let (_dir, store) = temp_store();
        store
            .append_audit(&[
                event(1, "alice", "signin.success", "alice"),
                event(2, "alice", "token.created", "alice/laptop"),
                event(3, "admin", "user.disabled", "bob"),
                event(4, "cli", "token.revoked", "alice/laptop"),
            ])
            .unwrap();
        let all = store.audit_events(&AuditFilter::default(), 10).unwrap();
        assert_eq!(all.iter().map(|e| e.at).collect::<Vec<_>>(), [4, 3, 2, 1]);

        let alice = AuditFilter {
            user: Some("alice".into()),
            ..AuditFilter::default()
        };
        let mine = store.audit_events(&alice, 10).unwrap();
        assert_eq!(mine.iter().map(|e| e.at).collect::<Vec<_>>(), [4, 2, 1]);
        let tokens = AuditFilter {
            action: Some("token.".into()),
            ..alice.clone()
        };
        assert_eq!(store.audit_events(&tokens, 1).unwrap()[0].at, 4);
        let bob = AuditFilter {
            user: Some("bob".into()),
            ..AuditFilter::default()
        };
        assert_eq!(store.audit_events(&bob, 10).unwrap().len(), 1);

        assert_eq!(store.prune_audit(2, 100).unwrap(), 1, "older than 2");
        assert_eq!(store.prune_audit(0, 2).unwrap(), 1, "beyond 2 kept");
        let left = store.audit_events(&AuditFilter::default(), 10).unwrap();
        assert_eq!(left.iter().map(|e| e.at).collect::<Vec<_>>(), [4, 3]);
        assert_eq!(
            store.audit_events(&alice, 10).unwrap().len(),
            1,
            "index pruned too"
        );
    }
}
