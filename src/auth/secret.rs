//! The format of bearer secrets: application tokens (`pcl_…`) and refresh
//! tokens (`pclr_…`). A prefix, 32 random base62 characters (~190 bits), and
//! a 6-character base62 CRC-32 of the random part, so secret scanners can
//! recognise a real token and typos are caught before any lookup.

use std::fmt;

use rand::Rng;
use rand::distr::Alphanumeric;
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

const RANDOM_LEN: usize = 32;
const CHECKSUM_LEN: usize = 6;
const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// Which kind of secret, by prefix.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SecretKind {
    AppToken,
    Refresh,
}

impl SecretKind {
    /// The prefix that starts every secret of this kind.
    pub fn prefix(self) -> &'static str {
        match self {
            SecretKind::AppToken => "pcl_",
            SecretKind::Refresh => "pclr_",
        }
    }
}

/// The SHA-256 of a secret: what the store keeps and looks up by.
pub type TokenDigest = [u8; 32];

/// A plaintext secret. Never logged, never serialised; wiped on drop.
#[derive(Clone, PartialEq, Eq)]
pub struct TokenSecret(Zeroizing<String>);

impl fmt::Debug for TokenSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TokenSecret(<redacted>)")
    }
}

impl TokenSecret {
    /// A fresh random secret of `kind`.
    pub fn generate(kind: SecretKind) -> TokenSecret {
        let random: String = rand::rng()
            .sample_iter(&Alphanumeric)
            .take(RANDOM_LEN)
            .map(char::from)
            .collect();
        let mut text = String::with_capacity(kind.prefix().len() + RANDOM_LEN + CHECKSUM_LEN);
        text.push_str(kind.prefix());
        text.push_str(&random);
        text.push_str(&checksum(&random));
        TokenSecret(Zeroizing::new(text))
    }

    /// Accepts `text` as a secret of `kind` if its shape and checksum hold.
    pub fn parse(kind: SecretKind, text: &str) -> Option<TokenSecret> {
        let body = text.strip_prefix(kind.prefix())?;
        if body.len() != RANDOM_LEN + CHECKSUM_LEN
            || !body.bytes().all(|b| b.is_ascii_alphanumeric())
        {
            return None;
        }
        let (random, sum) = body.split_at(RANDOM_LEN);
        (checksum(random) == sum).then(|| TokenSecret(Zeroizing::new(text.to_owned())))
    }

    /// Whether `text` claims to be a secret of `kind` (by prefix alone).
    pub fn looks_like(kind: SecretKind, text: &str) -> bool {
        text.starts_with(kind.prefix())
    }

    /// The plaintext, for showing once to its owner.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The digest the store keys this secret by.
    pub fn digest(&self) -> TokenDigest {
        Sha256::digest(self.0.as_bytes()).into()
    }
}

fn checksum(random: &str) -> String {
    let mut n = crc32fast::hash(random.as_bytes()) as u64;
    let mut out = [b'0'; CHECKSUM_LEN];
    for slot in out.iter_mut().rev() {
        *slot = BASE62[(n % 62) as usize];
        n /= 62;
    }
    String::from_utf8(out.to_vec()).expect("base62 is ASCII")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_secrets_parse_and_differ() {
        for kind in [SecretKind::AppToken, SecretKind::Refresh] {
            let a = TokenSecret::generate(kind);
            let b = TokenSecret::generate(kind);
            assert_ne!(a, b);
            assert!(a.expose().starts_with(kind.prefix()));
            assert_eq!(a.expose().len(), kind.prefix().len() + 38);
            assert_eq!(TokenSecret::parse(kind, a.expose()), Some(a.clone()));
            assert_ne!(a.digest(), b.digest());
        }
    }

    #[test]
    fn rejects_wrong_prefix_length_charset_and_checksum() {
        let good = TokenSecret::generate(SecretKind::AppToken);
        let text = good.expose();
        assert!(TokenSecret::parse(SecretKind::Refresh, text).is_none());
        assert!(TokenSecret::parse(SecretKind::AppToken, &text[..text.len() - 1]).is_none());
        assert!(TokenSecret::parse(SecretKind::AppToken, &format!("{text}0")).is_none());
        let mut flipped = text.to_owned().into_bytes();
        flipped[10] = if flipped[10] == b'a' { b'b' } else { b'a' };
        let flipped = String::from_utf8(flipped).unwrap();
        assert!(
            TokenSecret::parse(SecretKind::AppToken, &flipped).is_none(),
            "checksum"
        );
        let odd = format!("pcl_{}", "é".repeat(19));
        assert!(TokenSecret::parse(SecretKind::AppToken, &odd).is_none());
    }

    #[test]
    fn debug_hides_the_secret() {
        let secret = TokenSecret::generate(SecretKind::AppToken);
        assert!(!format!("{secret:?}").contains(&secret.expose()[4..]));
    }
}
