//! Passwords: argon2id hashing and a verifier that keeps argon2 off the async
//! workers, bounds how many run at once, and briefly remembers successes.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier as _, SaltString};
use argon2::{Argon2, password_hash::rand_core::OsRng};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use tokio::sync::{OnceCell, Semaphore};
use zeroize::Zeroizing;

use super::secret::{SecretKind, TokenSecret};

/// Shortest password accepted when one is set.
pub const MIN_PASSWORD_LEN: usize = 8;
/// Longest password accepted: bounds the work one request can cause.
pub const MAX_PASSWORD_LEN: usize = 1024;
/// How long a successful verification is remembered.
const CACHE_TTL: Duration = Duration::from_secs(300);
/// Most remembered verifications; the cache is cleared when it overflows.
const CACHE_CAPACITY: usize = 10_000;

/// A plaintext password. Never logged; wiped on drop.
#[derive(Clone)]
pub struct Password(Zeroizing<String>);

impl std::fmt::Debug for Password {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Password(<redacted>)")
    }
}

impl Password {
    pub fn new(text: impl Into<String>) -> Password {
        Password(Zeroizing::new(text.into()))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Checks the rules a new password must meet; the error reads as a
    /// sentence for the person choosing it.
    pub fn validate_new(&self) -> Result<(), &'static str> {
        let len = self.0.chars().count();
        if len < MIN_PASSWORD_LEN {
            return Err("the password must be at least 8 characters long");
        }
        if self.0.len() > MAX_PASSWORD_LEN {
            return Err("the password must be at most 1024 bytes long");
        }
        if TokenSecret::looks_like(SecretKind::AppToken, &self.0)
            || TokenSecret::looks_like(SecretKind::Refresh, &self.0)
        {
            return Err("the password must not look like an application token");
        }
        Ok(())
    }
}

/// Hashes a password with argon2id and the OWASP-recommended parameters
/// (the crate's defaults: 19 MiB, 2 passes, 1 lane). Slow: call it from a
/// blocking context.
pub fn hash(password: &Password) -> String {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.expose().as_bytes(), &salt)
        .expect("argon2 with default parameters cannot fail")
        .to_string()
}

/// Checks a password against a PHC hash. Slow: call it from a blocking context.
pub fn verify(password: &Password, phc: &str) -> bool {
    match PasswordHash::new(phc) {
        Ok(parsed) => Argon2::default()
            .verify_password(password.expose().as_bytes(), &parsed)
            .is_ok(),
        Err(_) => false,
    }
}

struct Remembered {
    epoch: u64,
    until: Instant,
}

/// Verifies passwords on the blocking pool, at most `permits` at a time, and
/// remembers successes for a few minutes, keyed by a MAC of user and password
/// under a server secret, so `docker pull` with a password does not pay argon2
/// on every request. An entry is ignored once the user's credential epoch moves
/// (password changed).
pub struct PasswordVerifier {
    limit: Arc<Semaphore>,
    mac_key: [u8; 32],
    remembered: Mutex<HashMap<[u8; 32], Remembered>>,
    /// Checks under way, so identical requests arriving together (a client
    /// fetching several tokens at once) share one argon2 run.
    in_flight: Mutex<HashMap<[u8; 32], Arc<OnceCell<bool>>>>,
    /// Verified against for unknown users, so they cost the same as known ones.
    decoy_hash: String,
}

impl PasswordVerifier {
    pub fn new(mac_key: [u8; 32], permits: usize) -> PasswordVerifier {
        PasswordVerifier {
            limit: Arc::new(Semaphore::new(permits.max(1))),
            mac_key,
            remembered: Mutex::new(HashMap::new()),
            in_flight: Mutex::new(HashMap::new()),
            decoy_hash: hash(&Password::new("decoy password for unknown users")),
        }
    }

    /// Whether `password` matches `phc` for `user` at `epoch`. With no hash
    /// (unknown user, or an account without a password) the same work is
    /// done against a decoy and the answer is false.
    pub async fn verify(
        &self,
        user: &str,
        epoch: u64,
        phc: Option<&str>,
        password: &Password,
        now: Instant,
    ) -> bool {
        let key = self.cache_key(user, phc.unwrap_or_default(), password);
        if phc.is_some() && self.is_remembered(&key, epoch, now) {
            return true;
        }

        let real = phc.is_some();
        let cell = {
            let mut in_flight = self.in_flight.lock().expect("in-flight lock");
            Arc::clone(in_flight.entry(key).or_default())
        };
        let ok = *cell
            .get_or_init(|| async {
                let Ok(_permit) = self.limit.acquire().await else {
                    return false;
                };
                let phc = phc.unwrap_or(&self.decoy_hash).to_owned();
                let password = password.clone();
                tokio::task::spawn_blocking(move || verify(&password, &phc))
                    .await
                    .unwrap_or(false)
            })
            .await;
        {
            let mut in_flight = self.in_flight.lock().expect("in-flight lock");
            if in_flight.get(&key).is_some_and(|c| Arc::ptr_eq(c, &cell)) {
                in_flight.remove(&key);
            }
        }

        if ok && real {
            self.remember(key, epoch, now);
        }
        ok && real
    }

    /// The MAC of user, stored hash and password: a remembered success is
    /// bound to the exact hash it was checked against, so a new password, or
    /// a deleted and re-created account of the same name, never matches it.
    fn cache_key(&self, user: &str, phc: &str, password: &Password) -> [u8; 32] {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.mac_key).expect("any key size");
        mac.update(user.as_bytes());
        mac.update(&[0]);
        mac.update(phc.as_bytes());
        mac.update(&[0]);
        mac.update(password.expose().as_bytes());
        mac.finalize().into_bytes().into()
    }

    fn is_remembered(&self, key: &[u8; 32], epoch: u64, now: Instant) -> bool {
        let cache = self.remembered.lock().expect("cache lock");
        cache
            .get(key)
            .is_some_and(|r| r.epoch == epoch && now < r.until)
    }

    fn remember(&self, key: [u8; 32], epoch: u64, now: Instant) {
        let mut cache = self.remembered.lock().expect("cache lock");
        if cache.len() >= CACHE_CAPACITY {
            cache.retain(|_, r| now < r.until);
            if cache.len() >= CACHE_CAPACITY {
                cache.clear();
            }
        }
        cache.insert(
            key,
            Remembered {
                epoch,
                until: now + CACHE_TTL,
            },
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_and_verify() {
        let pw = Password::new("correct horse");
        let phc = hash(&pw);
        assert!(phc.starts_with("$argon2id$"));
        assert!(verify(&pw, &phc));
        assert!(!verify(&Password::new("wrong horse"), &phc));
        assert!(!verify(&pw, "not a hash"));
    }

    #[test]
    fn new_password_rules() {
        assert!(Password::new("short").validate_new().is_err());
        assert!(Password::new("pcl_abcdefghijkl").validate_new().is_err());
        assert!(Password::new("x".repeat(1025)).validate_new().is_err());
        assert!(Password::new("long enough").validate_new().is_ok());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn identical_checks_at_once_share_one_argon2_run() {
        let verifier = Arc::new(PasswordVerifier::new([7; 32], 1));
        let pw = Password::new("correct horse");
        let phc = hash(&pw);
        let now = Instant::now();
        let checks = (0..8).map(|_| {
            let (verifier, pw, phc) = (Arc::clone(&verifier), pw.clone(), phc.clone());
            tokio::spawn(async move { verifier.verify("alice", 0, Some(&phc), &pw, now).await })
        });
        for check in checks.collect::<Vec<_>>() {
            assert!(check.await.unwrap());
        }
        assert!(
            verifier.in_flight.lock().unwrap().is_empty(),
            "nothing left behind"
        );
    }

    #[tokio::test]
    async fn remembers_success_for_the_same_hash_only() {
        let verifier = PasswordVerifier::new([7; 32], 2);
        let pw = Password::new("correct horse");
        let phc = hash(&pw);
        let now = Instant::now();
        assert!(verifier.verify("alice", 0, Some(&phc), &pw, now).await);
        let key = verifier.cache_key("alice", &phc, &pw);
        assert!(verifier.is_remembered(&key, 0, now));
        assert!(!verifier.is_remembered(&key, 1, now), "the epoch moved");
        let later = now + CACHE_TTL + Duration::from_secs(1);
        assert!(!verifier.is_remembered(&key, 0, later), "aged out");

        // A new hash under the same name (password changed, or the account
        // deleted and created again) is checked for real.
        let other = hash(&Password::new("another password"));
        assert!(!verifier.verify("alice", 0, Some(&other), &pw, now).await);
        assert!(!verifier.verify("alice", 0, Some("garbage"), &pw, now).await);
        assert!(
            !verifier.verify("bob", 0, None, &pw, now).await,
            "unknown user"
        );
        let wrong = Password::new("wrong horse");
        assert!(!verifier.verify("alice", 0, Some(&phc), &wrong, now).await);
    }
}
