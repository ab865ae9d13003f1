//! Changing keys without downtime.
//!
//! - `rotate_signing`: a new signing key certified by the current CA. Tokens
//!   signed before stay valid (they carry their own certificate in `x5c`),
//!   and registries need no change, since they trust the CA.
//! - Replacing the CA itself takes two steps, because registries read their
//!   certificate bundle only at start: `stage_ca` creates the next CA and
//!   publishes it in the bundle beside the current one (restart registries
//!   with that bundle), then `retire_ca` switches signing to the new CA and
//!   drops the old one from the bundle (restart registries again: tokens
//!   signed under the old CA are then refused).
//!
//! Retired certificates are kept (never their private keys) for `list` and
//! the JWKS file.

use std::fs;
use std::path::Path;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Serialize;
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

use super::keys::{
    self, CA_CERT, CA_KEY, KeyError, Keys, NEXT_CA_CERT, NEXT_CA_KEY, SIGNING_CERT, SIGNING_KEY,
};

/// Where retired certificates go, inside the data directory.
const RETIRED: &str = "retired";

/// One certificate, as `key list` shows it.
#[derive(Debug, Serialize)]
pub struct KeyInfo {
    /// `signing`, `ca`, `ca (staged)`, `signing (retired)`, `ca (retired)`.
    pub role: String,
    pub subject: String,
    /// The libtrust key id of its public key.
    pub kid: String,
    pub not_before: i64,
    pub not_after: i64,
}

/// Replaces the signing key with a new one certified by the current CA.
pub fn rotate_signing(dir: &Path, now: OffsetDateTime) -> Result<Keys, KeyError> {
    let _lock = keys::lock(dir)?;
    retire_signing(dir, now)?;
    keys::load_locked(dir, now)
}

/// Creates the next CA and adds it to the bundle; signing is unchanged.
pub fn stage_ca(dir: &Path, now: OffsetDateTime) -> Result<Keys, KeyError> {
    let _lock = keys::lock(dir)?;
    let cert_path = dir.join(NEXT_CA_CERT);
    if cert_path.exists() {
        return Err(KeyError::Invalid {
            path: cert_path,
            problem: "a new CA is already staged; run `key retire` to switch to it".into(),
        });
    }
    let key = keys::load_or_create_key(&dir.join(NEXT_CA_KEY))?;
    let cert = keys::ca_params(now)?.self_signed(&key)?;
    keys::write_atomic(&cert_path, cert.pem().as_bytes(), 0o644)?;
    keys::load_locked(dir, now)
}

/// Switches to the staged CA: a new signing key under it, and the old CA
/// out of the bundle.
pub fn retire_ca(dir: &Path, now: OffsetDateTime) -> Result<Keys, KeyError> {
    let _lock = keys::lock(dir)?;
    let next_cert = dir.join(NEXT_CA_CERT);
    if !next_cert.exists() {
        return Err(KeyError::Invalid {
            path: next_cert,
            problem: "no new CA is staged; run `key rotate --ca` first".into(),
        });
    }
    let retired = retired_dir(dir)?;
    move_file(&dir.join(CA_CERT), &retired.join(retired_name("ca", now)))?;
    move_file(&next_cert, &dir.join(CA_CERT))?;
    move_file(&dir.join(NEXT_CA_KEY), &dir.join(CA_KEY))?;
    retire_signing(dir, now)?;
    keys::load_locked(dir, now)
}

/// Every certificate: current, staged and retired.
pub fn list(dir: &Path) -> Result<Vec<KeyInfo>, KeyError> {
    let mut out = Vec::new();
    for (role, name) in [
        ("signing", SIGNING_CERT),
        ("ca", CA_CERT),
        ("ca (staged)", NEXT_CA_CERT),
    ] {
        let path = dir.join(name);
        if path.exists() {
            out.push(describe(role, &path)?);
        }
    }
    for path in retired_files(dir)? {
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        let role = if name.starts_with("ca-") {
            "ca (retired)"
        } else {
            "signing (retired)"
        };
        out.push(describe(role, &path)?);
    }
    Ok(out)
}

/// A JWKS document (registry 3.x `auth.token.jwks`) with the current and
/// the still-valid retired signing keys, each keyed by its RFC 7638
/// thumbprint.
pub fn jwks(dir: &Path, now: OffsetDateTime) -> Result<serde_json::Value, KeyError> {
    let mut paths = vec![dir.join(SIGNING_CERT)];
    paths.extend(retired_files(dir)?.into_iter().filter(|p| {
        p.file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.starts_with("signing-"))
    }));
    // Only keys certified by a CA registries still trust: after `key
    // retire`, keys of the old CA must stop verifying in JWKS mode too.
    let mut trusted = Vec::new();
    for name in [CA_CERT, NEXT_CA_CERT] {
        let path = dir.join(name);
        if path.exists() {
            trusted.push(keys::pem_to_der(&path, &keys::read(&path)?)?);
        }
    }
    let mut keys = Vec::new();
    for path in paths {
        let der = keys::pem_to_der(&path, &keys::read(&path)?)?;
        if keys::cert_not_after(&path, &der)? > now && issued_by_any(&der, &trusted) {
            keys.push(jwk(&path, &der)?);
        }
    }
    Ok(serde_json::json!({ "keys": keys }))
}

fn issued_by_any(der: &[u8], cas: &[Vec<u8>]) -> bool {
    let Ok((_, cert)) = x509_parser::parse_x509_certificate(der) else {
        return false;
    };
    cas.iter().any(|ca| {
        x509_parser::parse_x509_certificate(ca)
            .is_ok_and(|(_, ca)| cert.verify_signature(Some(ca.public_key())).is_ok())
    })
}

/// Moves the signing certificate to the retired folder and deletes its
/// private key; the next load creates a new pair.
fn retire_signing(dir: &Path, now: OffsetDateTime) -> Result<(), KeyError> {
    let retired = retired_dir(dir)?;
    let cert = dir.join(SIGNING_CERT);
    if cert.exists() {
        move_file(&cert, &retired.join(retired_name("signing", now)))?;
    }
    let key = dir.join(SIGNING_KEY);
    match fs::remove_file(&key) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(keys::io(&key)(e)),
    }
}

/// A name no other retired file has: the time, and random bits so that two
/// rotations in the same instant do not overwrite each other.
fn retired_name(role: &str, now: OffsetDateTime) -> String {
    let nonce: u32 = rand::random();
    format!("{role}-{}-{nonce:08x}.crt", now.unix_timestamp_nanos())
}

fn jwk(path: &Path, der: &[u8]) -> Result<serde_json::Value, KeyError> {
    let (_, cert) = x509_parser::parse_x509_certificate(der).map_err(|e| invalid(path, e))?;
    let point = &cert.public_key().subject_public_key.data;
    // An uncompressed P-256 point: 0x04, then x and y, 32 bytes each.
    if point.len() != 65 || point[0] != 4 {
        return Err(invalid(path, "not an uncompressed P-256 public key"));
    }
    let (x, y) = (
        URL_SAFE_NO_PAD.encode(&point[1..33]),
        URL_SAFE_NO_PAD.encode(&point[33..]),
    );
    // RFC 7638: the required members, sorted, no whitespace.
    let canonical = format!(r#"{{"crv":"P-256","kty":"EC","x":"{x}","y":"{y}"}}"#);
    let thumbprint = URL_SAFE_NO_PAD.encode(Sha256::digest(canonical.as_bytes()));
    Ok(serde_json::json!({
        "kty": "EC", "crv": "P-256", "x": x, "y": y,
        "kid": thumbprint, "use": "sig", "alg": "ES256",
    }))
}

fn describe(role: &str, path: &Path) -> Result<KeyInfo, KeyError> {
    let der = keys::pem_to_der(path, &keys::read(path)?)?;
    let (_, cert) = x509_parser::parse_x509_certificate(&der).map_err(|e| invalid(path, e))?;
    Ok(KeyInfo {
        role: role.to_owned(),
        subject: cert.subject().to_string(),
        kid: keys::libtrust_kid(cert.public_key().raw),
        not_before: cert.validity().not_before.timestamp(),
        not_after: cert.validity().not_after.timestamp(),
    })
}

fn retired_dir(dir: &Path) -> Result<std::path::PathBuf, KeyError> {
    let path = dir.join(RETIRED);
    fs::create_dir_all(&path).map_err(keys::io(&path))?;
    Ok(path)
}

fn retired_files(dir: &Path) -> Result<Vec<std::path::PathBuf>, KeyError> {
    let path = dir.join(RETIRED);
    let entries = match fs::read_dir(&path) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(keys::io(&path)(e)),
    };
    let mut files: Vec<_> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "crt"))
        .collect();
    files.sort();
    Ok(files)
}

fn move_file(from: &Path, to: &Path) -> Result<(), KeyError> {
    fs::rename(from, to).map_err(keys::io(from))
}

fn invalid(path: &Path, problem: impl std::fmt::Display) -> KeyError {
    KeyError::Invalid {
        path: path.to_owned(),
        problem: problem.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::engine::general_purpose::STANDARD;

    fn issuer_of(keys: &Keys) -> String {
        let ca = STANDARD.decode(&keys.signer.x5c[1]).unwrap();
        let (_, ca) = x509_parser::parse_x509_certificate(&ca).unwrap();
        ca.public_key()
            .raw
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    #[test]
    fn rotating_the_signing_key_keeps_the_ca() {
        let dir = tempfile::tempdir().unwrap();
        let now = OffsetDateTime::now_utc();
        let before = keys::load_or_create(dir.path(), now).unwrap();
        let after = rotate_signing(dir.path(), now).unwrap();
        assert_ne!(before.signer.kid, after.signer.kid);
        assert_eq!(before.ca_pem, after.ca_pem, "registries need no change");
        assert_eq!(issuer_of(&before), issuer_of(&after));
        let roles: Vec<String> = list(dir.path())
            .unwrap()
            .into_iter()
            .map(|k| k.role)
            .collect();
        assert_eq!(roles, ["signing", "ca", "signing (retired)"]);
        assert_eq!(
            jwks(dir.path(), now).unwrap()["keys"]
                .as_array()
                .unwrap()
                .len(),
            2
        );
        rotate_signing(dir.path(), now).unwrap();
        rotate_signing(dir.path(), now).unwrap();
        let keys = jwks(dir.path(), now).unwrap();
        assert_eq!(
            keys["keys"].as_array().unwrap().len(),
            4,
            "rotations at one instant all kept"
        );
    }

    #[test]
    fn replacing_the_ca_takes_two_steps() {
        let dir = tempfile::tempdir().unwrap();
        let now = OffsetDateTime::now_utc();
        let first = keys::load_or_create(dir.path(), now).unwrap();
        assert!(retire_ca(dir.path(), now).is_err(), "nothing staged");

        let staged = stage_ca(dir.path(), now).unwrap();
        assert_eq!(
            staged.ca_pem.matches("BEGIN CERTIFICATE").count(),
            2,
            "both trusted"
        );
        assert_eq!(staged.signer.kid, first.signer.kid, "signing unchanged");
        assert!(stage_ca(dir.path(), now).is_err(), "one at a time");

        let switched = retire_ca(dir.path(), now).unwrap();
        let published = jwks(dir.path(), now).unwrap();
        assert_eq!(
            published["keys"].as_array().unwrap().len(),
            1,
            "old-CA keys leave JWKS"
        );
        assert_eq!(switched.ca_pem.matches("BEGIN CERTIFICATE").count(), 1);
        assert_ne!(
            issuer_of(&switched),
            issuer_of(&first),
            "signed under the new CA"
        );
        assert!(
            staged.ca_pem.contains(switched.ca_pem.trim()),
            "the staged one became current"
        );
        assert!(!dir.path().join(NEXT_CA_KEY).exists());
        let reloaded = keys::load_or_create(dir.path(), now).unwrap();
        assert_eq!(reloaded.signer.kid, switched.signer.kid);
    }

    #[test]
    fn a_cut_off_switch_heals_at_the_next_load() {
        let dir = tempfile::tempdir().unwrap();
        let now = OffsetDateTime::now_utc();
        keys::load_or_create(dir.path(), now).unwrap();
        let staged = stage_ca(dir.path(), now).unwrap();
        // `key retire` killed after moving the certificate, before the key.
        let retired = retired_dir(dir.path()).unwrap();
        fs::rename(dir.path().join(CA_CERT), retired.join("ca-cut.crt")).unwrap();
        fs::rename(dir.path().join(NEXT_CA_CERT), dir.path().join(CA_CERT)).unwrap();

        let healed = keys::load_or_create(dir.path(), now).unwrap();
        assert!(
            !dir.path().join(NEXT_CA_KEY).exists(),
            "the staged key became ca.key"
        );
        assert!(staged.ca_pem.contains(healed.ca_pem.trim()));
        let ca_pem = fs::read_to_string(dir.path().join(CA_CERT)).unwrap();
        let ca_der = keys::pem_to_der(&dir.path().join(CA_CERT), &ca_pem).unwrap();
        assert_eq!(
            STANDARD.decode(&healed.signer.x5c[1]).unwrap(),
            ca_der,
            "signed under it"
        );
    }
}
