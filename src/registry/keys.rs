//! The certificate authority registries trust and the key that signs tokens.
//!
//! Registries load `ca.crt` once (their `rootcertbundle`). Tokens are signed
//! by a separate ES256 key whose certificate, issued by that CA, travels in the
//! JWT's `x5c` header, so the signing key can change without touching any
//! registry. Files live in the data directory; private keys are mode 0600.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, PKCS_ECDSA_P256_SHA256, PublicKeyData,
};
use sha2::{Digest, Sha256};
use time::{Duration, OffsetDateTime};

/// How long the CA certificate is valid: registries trust it until then.
pub const CA_VALIDITY: Duration = Duration::days(10 * 365);
/// How long one signing certificate is valid.
pub const SIGNING_VALIDITY: Duration = Duration::days(365);
/// A signing certificate this close to its end is renewed at start-up.
pub const SIGNING_RENEW_BEFORE: Duration = Duration::days(30);
/// Certificates start this far in the past to absorb clock skew.
const BACKDATE: Duration = Duration::hours(1);

pub(super) const CA_CERT: &str = "ca.crt";
pub(super) const CA_KEY: &str = "ca.key";
pub(super) const SIGNING_CERT: &str = "signing.crt";
pub(super) const SIGNING_KEY: &str = "signing.key";
const LOCK: &str = "keys.lock";
/// The certificates registries trust: the current CA, and a staged next one.
pub(super) const BUNDLE: &str = "bundle.crt";
/// A CA staged to replace the current one (see `rotation`).
pub(super) const NEXT_CA_CERT: &str = "ca-next.crt";
pub(super) const NEXT_CA_KEY: &str = "ca-next.key";

/// Why keys could not be loaded or created.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {problem}")]
    Invalid { path: PathBuf, problem: String },
    #[error("creating a certificate: {0}")]
    Generate(#[from] rcgen::Error),
    #[error("loading the signing key: {0}")]
    Jwt(#[from] jsonwebtoken::errors::Error),
}

/// The loaded key material: what the server signs with and what it publishes.
pub struct Keys {
    /// PEM of the CA certificates registries must trust (the current CA and a
    /// staged next one): the registry's `rootcertbundle`.
    pub ca_pem: String,
    /// The file holding `ca_pem`.
    pub ca_path: PathBuf,
    pub signer: Signer,
    /// When the signing certificate stops being valid.
    pub signing_not_after: OffsetDateTime,
}

/// An ES256 signing key with its libtrust `kid` and `x5c` chain.
pub struct Signer {
    pub key: jsonwebtoken::EncodingKey,
    pub kid: String,
    /// Base64 DER: the signing certificate, then the CA certificate.
    pub x5c: Vec<String>,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Signer")
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

/// Loads the keys from `dir`, creating whatever is missing. Safe to call from
/// several processes at once: creation happens under a file lock.
pub fn load_or_create(dir: &Path, now: OffsetDateTime) -> Result<Keys, KeyError> {
    let _lock = lock(dir)?;
    load_locked(dir, now)
}

/// Takes the key directory's lock; released when the file is dropped.
pub(super) fn lock(dir: &Path) -> Result<File, KeyError> {
    let lock_path = dir.join(LOCK);
    let lock = File::create(&lock_path).map_err(io(&lock_path))?;
    lock.lock().map_err(io(&lock_path))?;
    Ok(lock)
}

/// [`load_or_create`] for a caller that holds the lock.
pub(super) fn load_locked(dir: &Path, now: OffsetDateTime) -> Result<Keys, KeyError> {
    let issuer = load_or_create_ca(dir, now)?;
    let ca_path = dir.join(CA_CERT);
    let current_pem = read(&ca_path)?;
    let ca_der = pem_to_der(&ca_path, &current_pem)?;
    let ca_pem = write_bundle(dir, &current_pem)?;
    let ca_path = dir.join(BUNDLE);

    let signing_key = load_or_create_key(&dir.join(SIGNING_KEY))?;
    let cert_path = dir.join(SIGNING_CERT);
    let mut signing_der = match fs::read_to_string(&cert_path) {
        Ok(pem) => Some(pem_to_der(&cert_path, &pem)?),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(io(&cert_path)(e)),
    };
    let mut not_after = match &signing_der {
        Some(der) => cert_not_after(&cert_path, der)?,
        None => now,
    };
    let fits = match &signing_der {
        Some(der) => signing_cert_fits(&cert_path, der, &signing_key, &ca_der)?,
        None => false,
    };
    // A missing, ending or mismatched certificate (a rotation cut off half
    // way) is replaced by one for this key from the current CA.
    if !fits || not_after - now < SIGNING_RENEW_BEFORE {
        let cert = signing_params(now)?.signed_by(&signing_key, &issuer)?;
        write_atomic(&cert_path, cert.pem().as_bytes(), 0o644)?;
        not_after = now + SIGNING_VALIDITY;
        signing_der = Some(cert.der().to_vec());
    }
    let signing_der = signing_der.unwrap_or_default();

    let signer = Signer {
        key: jsonwebtoken::EncodingKey::from_ec_der(&signing_key.serialize_der()),
        kid: libtrust_kid(&signing_key.subject_public_key_info()),
        x5c: vec![STANDARD.encode(&signing_der), STANDARD.encode(&ca_der)],
    };
    Ok(Keys {
        ca_pem,
        ca_path,
        signer,
        signing_not_after: not_after,
    })
}

/// Writes the bundle registries trust: the current CA, then the staged next
/// one if there is one. Returns its PEM.
fn write_bundle(dir: &Path, current_pem: &str) -> Result<String, KeyError> {
    let mut bundle = current_pem.trim_end().to_owned();
    bundle.push('\n');
    match fs::read_to_string(dir.join(NEXT_CA_CERT)) {
        Ok(next) => {
            bundle.push_str(next.trim_end());
            bundle.push('\n');
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(io(&dir.join(NEXT_CA_CERT))(e)),
    }
    let path = dir.join(BUNDLE);
    if fs::read_to_string(&path).ok().as_deref() != Some(bundle.as_str()) {
        write_atomic(&path, bundle.as_bytes(), 0o644)?;
    }
    Ok(bundle)
}

/// The libtrust key id: SHA-256 of the DER SubjectPublicKeyInfo, first 240
/// bits, base32 without padding, in twelve `:`-joined groups of four.
pub fn libtrust_kid(spki_der: &[u8]) -> String {
    let digest = Sha256::digest(spki_der);
    let encoded = data_encoding::BASE32_NOPAD.encode(&digest[..30]);
    let groups: Vec<&str> = (0..12).map(|i| &encoded[i * 4..i * 4 + 4]).collect();
    groups.join(":")
}

pub(super) fn load_or_create_ca(
    dir: &Path,
    now: OffsetDateTime,
) -> Result<Issuer<'static, KeyPair>, KeyError> {
    let key_path = dir.join(CA_KEY);
    let cert_path = dir.join(CA_CERT);
    let mut key = load_or_create_key(&key_path)?;
    match fs::read_to_string(&cert_path) {
        Ok(pem) => {
            let der = pem_to_der(&cert_path, &pem)?;
            if !key_matches(&cert_path, &der, &key)? {
                key = finish_interrupted_switch(dir, &cert_path, &der)?;
            }
            Issuer::from_ca_cert_pem(&pem, key).map_err(|e| KeyError::Invalid {
                path: cert_path.clone(),
                problem: e.to_string(),
            })
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let params = ca_params(now)?;
            let cert = params.self_signed(&key)?;
            write_atomic(&cert_path, cert.pem().as_bytes(), 0o644)?;
            Ok(Issuer::new(params, key))
        }
        Err(e) => Err(io(&cert_path)(e)),
    }
}

/// Whether the certificate in `der` is for `key`.
fn key_matches(path: &Path, der: &[u8], key: &KeyPair) -> Result<bool, KeyError> {
    let (_, cert) = x509_parser::parse_x509_certificate(der).map_err(|e| KeyError::Invalid {
        path: path.to_owned(),
        problem: e.to_string(),
    })?;
    Ok(cert.public_key().subject_public_key.data.as_ref() == key.public_key_raw())
}

/// `ca.crt` does not belong to `ca.key`: a CA switch (`key retire`) was cut
/// off after moving the staged certificate but before its key. Finish it if
/// the staged key is the certificate's; refuse to go on otherwise.
fn finish_interrupted_switch(
    dir: &Path,
    cert_path: &Path,
    der: &[u8],
) -> Result<KeyPair, KeyError> {
    let staged = dir.join(NEXT_CA_KEY);
    if staged.exists() {
        let key = load_or_create_key(&staged)?;
        if key_matches(cert_path, der, &key)? {
            fs::rename(&staged, dir.join(CA_KEY)).map_err(io(&staged))?;
            tracing::warn!("finished a CA switch that was interrupted");
            return Ok(key);
        }
    }
    Err(KeyError::Invalid {
        path: cert_path.to_owned(),
        problem: "the CA certificate does not match ca.key; restore both from a backup".into(),
    })
}

/// Whether the signing certificate in `der` is for `key` and was issued by
/// the CA in `ca_der`.
fn signing_cert_fits(
    path: &Path,
    der: &[u8],
    key: &KeyPair,
    ca_der: &[u8],
) -> Result<bool, KeyError> {
    let invalid = |e: String| KeyError::Invalid {
        path: path.to_owned(),
        problem: e,
    };
    let (_, cert) = x509_parser::parse_x509_certificate(der).map_err(|e| invalid(e.to_string()))?;
    let (_, ca) =
        x509_parser::parse_x509_certificate(ca_der).map_err(|e| invalid(e.to_string()))?;
    let same_key = cert.public_key().subject_public_key.data.as_ref() == key.public_key_raw();
    Ok(same_key && cert.verify_signature(Some(ca.public_key())).is_ok())
}

pub(super) fn ca_params(now: OffsetDateTime) -> Result<CertificateParams, rcgen::Error> {
    let mut params = CertificateParams::new(Vec::<String>::new())?;
    params.distinguished_name = DistinguishedName::new();
    params
        .distinguished_name
        .push(DnType::CommonName, "Portcullis token CA");
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    params.not_before = now - BACKDATE;
    params.not_after = now + CA_VALIDITY;
    params.serial_number = Some(random_serial());
    Ok(params)
}

pub(super) fn signing_params(now: OffsetDateTime) -> Result<CertificateParams, rcgen::Error> {
    let mut params = CertificateParams::new(Vec::<String>::new())?;
    params.distinguished_name = DistinguishedName::new();
    params
        .distinguished_name
        .push(DnType::CommonName, "Portcullis token signer");
    params.is_ca = IsCa::ExplicitNoCa;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::Any];
    params.not_before = now - BACKDATE;
    params.not_after = now + SIGNING_VALIDITY;
    params.serial_number = Some(random_serial());
    Ok(params)
}

fn random_serial() -> rcgen::SerialNumber {
    let mut bytes: [u8; 16] = rand::random();
    bytes[0] &= 0x7f; // keep the serial positive
    rcgen::SerialNumber::from_slice(&bytes)
}

pub(super) fn load_or_create_key(path: &Path) -> Result<KeyPair, KeyError> {
    match fs::read_to_string(path) {
        Ok(pem) => KeyPair::from_pem(&pem).map_err(|e| KeyError::Invalid {
            path: path.to_owned(),
            problem: e.to_string(),
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)?;
            write_atomic(path, key.serialize_pem().as_bytes(), 0o600)?;
            Ok(key)
        }
        Err(e) => Err(io(path)(e)),
    }
}

pub(super) fn cert_not_after(path: &Path, der: &[u8]) -> Result<OffsetDateTime, KeyError> {
    let (_, cert) = x509_parser::parse_x509_certificate(der).map_err(|e| KeyError::Invalid {
        path: path.to_owned(),
        problem: e.to_string(),
    })?;
    Ok(cert.validity().not_after.to_datetime())
}

pub(super) fn pem_to_der(path: &Path, pem: &str) -> Result<Vec<u8>, KeyError> {
    let (_, parsed) =
        x509_parser::pem::parse_x509_pem(pem.as_bytes()).map_err(|e| KeyError::Invalid {
            path: path.to_owned(),
            problem: e.to_string(),
        })?;
    Ok(parsed.contents)
}

pub(super) fn read(path: &Path) -> Result<String, KeyError> {
    fs::read_to_string(path).map_err(io(path))
}

/// Writes a file through a temporary name and a rename, so a crash never
/// leaves half a key behind; `mode` applies from the first byte.
pub fn write_atomic(path: &Path, contents: &[u8], mode: u32) -> Result<(), KeyError> {
    let tmp = path.with_extension("tmp");
    let result = (|| {
        let mut file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(mode)
            .open(&tmp)?;
        file.set_permissions(fs::Permissions::from_mode(mode))?;
        file.write_all(contents)?;
        file.sync_all()?;
        fs::rename(&tmp, path)?;
        if let Some(parent) = path.parent() {
            File::open(parent)?.sync_all()?;
        }
        Ok(())
    })();
    result.map_err(io(path))
}

pub(super) fn io(path: &Path) -> impl Fn(std::io::Error) -> KeyError + '_ {
    move |source| KeyError::Io {
        path: path.to_owned(),
        source,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;

    /// The example key of the distribution spec's jwt.md and the `kid` it shows.
    #[test]
    fn kid_matches_the_spec_example() {
        let x = URL_SAFE_NO_PAD
            .decode("m7zUpx3b-zmVE5cymSs64POG9QcyEpJaYCD82-549_Q")
            .unwrap();
        let y = URL_SAFE_NO_PAD
            .decode("dU3biz8sZ_8GPB-odm8Wxz3lNDr1xcAQQPQaOcr1fmc")
            .unwrap();
        // SubjectPublicKeyInfo header for an uncompressed P-256 point.
        let mut spki = data_encoding::HEXLOWER
            .decode(b"3059301306072a8648ce3d020106082a8648ce3d030107034200")
            .unwrap();
        spki.push(0x04);
        spki.extend_from_slice(&x);
        spki.extend_from_slice(&y);
        assert_eq!(
            libtrust_kid(&spki),
            "PYYO:TEWU:V7JH:26JV:AQTZ:LJC3:SXVJ:XGHA:34F2:2LAQ:ZRMK:Z7Q6"
        );
    }

    #[test]
    fn creates_once_then_reuses() {
        let dir = tempfile::tempdir().unwrap();
        let now = OffsetDateTime::now_utc();
        let first = load_or_create(dir.path(), now).unwrap();
        let second = load_or_create(dir.path(), now).unwrap();
        assert_eq!(first.ca_pem, second.ca_pem);
        assert_eq!(first.signer.kid, second.signer.kid);
        assert_eq!(first.signer.x5c, second.signer.x5c);
        for key in [CA_KEY, SIGNING_KEY] {
            let mode = fs::metadata(dir.path().join(key))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600, "{key}");
        }
    }

    #[test]
    fn signing_cert_chains_to_the_ca_and_renews_near_expiry() {
        let dir = tempfile::tempdir().unwrap();
        let now = OffsetDateTime::now_utc();
        let keys = load_or_create(dir.path(), now).unwrap();
        let leaf = STANDARD.decode(&keys.signer.x5c[0]).unwrap();
        let ca = STANDARD.decode(&keys.signer.x5c[1]).unwrap();
        let (_, leaf) = x509_parser::parse_x509_certificate(&leaf).unwrap();
        let (_, ca) = x509_parser::parse_x509_certificate(&ca).unwrap();
        assert_eq!(leaf.issuer(), ca.subject());
        leaf.verify_signature(Some(ca.public_key())).unwrap();
        assert!(ca.is_ca());

        let later = now + SIGNING_VALIDITY - Duration::days(1);
        let renewed = load_or_create(dir.path(), later).unwrap();
        assert_eq!(
            renewed.signer.kid, keys.signer.kid,
            "same key, new certificate"
        );
        assert_ne!(renewed.signer.x5c[0], keys.signer.x5c[0]);
        assert!(renewed.signing_not_after > keys.signing_not_after);
    }
}
