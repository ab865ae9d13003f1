//! One-time hand-over of a new token's secret from the POST that created it
//! to the page that shows it. Kept in memory only, keyed by session, taken on
//! first display, so a reload cannot show it again and it never reaches disk.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::auth::secret::TokenSecret;

/// How long an unshown secret waits for its page.
const TTL: Duration = Duration::from_secs(600);

/// A created token waiting to be shown once.
pub struct Created {
    pub name: String,
    /// Whose token it is: the visitor, or a service account an admin issued it for.
    pub owner: String,
    pub secret: TokenSecret,
}

#[derive(Default)]
pub struct SecretStash {
    waiting: Mutex<HashMap<[u8; 32], (Created, Instant)>>,
}

impl SecretStash {
    pub fn put(&self, session: [u8; 32], created: Created, now: Instant) {
        let mut waiting = self.waiting.lock().expect("stash lock");
        waiting.retain(|_, (_, at)| now.duration_since(*at) < TTL);
        waiting.insert(session, (created, now));
    }

    pub fn take(&self, session: &[u8; 32], now: Instant) -> Option<Created> {
        let mut waiting = self.waiting.lock().expect("stash lock");
        let (created, at) = waiting.remove(session)?;
        (now.duration_since(at) < TTL).then_some(created)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::secret::SecretKind;

    #[test]
    fn taken_once_and_expires() {
        let stash = SecretStash::default();
        let now = Instant::now();
        let created = || Created {
            name: "t".into(),
            owner: "alice".into(),
            secret: TokenSecret::generate(SecretKind::AppToken),
        };
        stash.put([1; 32], created(), now);
        assert!(stash.take(&[2; 32], now).is_none());
        assert!(stash.take(&[1; 32], now).is_some());
        assert!(stash.take(&[1; 32], now).is_none());
        stash.put([1; 32], created(), now);
        assert!(stash.take(&[1; 32], now + TTL).is_none());
    }
}
