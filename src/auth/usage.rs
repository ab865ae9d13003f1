//! Last-used times of tokens, kept in memory and written in batches so the
//! token endpoint never writes to the database on its hot path.

use std::collections::HashMap;
use std::sync::Mutex;

use crate::store::TokenUse;

use super::secret::TokenDigest;

/// Pending uses, newest per token.
#[derive(Default)]
pub struct UsageLog {
    pending: Mutex<HashMap<TokenDigest, TokenUse>>,
}

impl UsageLog {
    /// Remembers that the token with `digest` was used at `at` from `addr`.
    pub fn record(&self, digest: TokenDigest, at: i64, addr: String) {
        let mut pending = self.pending.lock().expect("usage lock");
        let entry = pending.entry(digest).or_insert_with(|| TokenUse {
            digest,
            at,
            addr: String::new(),
        });
        if entry.at <= at {
            entry.at = at;
            entry.addr = addr;
        }
    }

    /// The newest unwritten use of a token, if any.
    pub fn last_use(&self, digest: &TokenDigest) -> Option<i64> {
        self.pending
            .lock()
            .expect("usage lock")
            .get(digest)
            .map(|u| u.at)
    }

    /// Takes every pending use, leaving the log empty.
    pub fn take(&self) -> Vec<TokenUse> {
        let mut pending = self.pending.lock().expect("usage lock");
        pending.drain().map(|(_, u)| u).collect()
    }

    /// Puts uses back after a failed write, keeping anything newer.
    pub fn restore(&self, uses: Vec<TokenUse>) {
        for u in uses {
            self.record(u.digest, u.at, u.addr);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_newest_use_per_token() {
        let log = UsageLog::default();
        log.record([1; 32], 10, "a".into());
        log.record([1; 32], 5, "b".into());
        log.record([2; 32], 7, "c".into());
        assert_eq!(log.last_use(&[1; 32]), Some(10));
        let mut taken = log.take();
        taken.sort_by_key(|u| u.at);
        assert_eq!(
            taken
                .iter()
                .map(|u| (u.at, u.addr.as_str()))
                .collect::<Vec<_>>(),
            [(7, "c"), (10, "a")]
        );
        assert!(log.take().is_empty());
        log.restore(taken);
        assert_eq!(log.last_use(&[2; 32]), Some(7));
    }
}
