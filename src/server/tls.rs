//! HTTPS with rustls, from a PEM certificate chain and key.

use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// A TLS server configuration offering HTTP/2 and HTTP/1.1.
pub fn server_config(cert: &Path, key: &Path) -> anyhow::Result<Arc<rustls::ServerConfig>> {
    let chain = CertificateDer::pem_file_iter(cert)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .with_context(|| format!("reading the certificate chain {}", cert.display()))?;
    let key = PrivateKeyDer::from_pem_file(key)
        .with_context(|| format!("reading the private key {}", key.display()))?;
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .context("the certificate and key do not form a usable pair")?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// A client configuration that trusts exactly the end-entity certificate in
/// `cert` (for `portcullis healthcheck`, which talks to its own server on
/// loopback, where the certificate's names need not match).
pub fn pinned_client_config(cert: &Path) -> anyhow::Result<Arc<rustls::ClientConfig>> {
    let leaf = CertificateDer::pem_file_iter(cert)
        .and_then(|mut certs| certs.next().transpose())
        .with_context(|| format!("reading {}", cert.display()))?
        .with_context(|| format!("no certificate in {}", cert.display()))?;
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let verifier = Arc::new(Pinned {
        leaf: leaf.into_owned(),
        provider: Arc::clone(&provider),
    });
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// Accepts the one certificate it was given, byte for byte, and checks the
/// handshake signatures against it.
#[derive(Debug)]
struct Pinned {
    leaf: CertificateDer<'static>,
    provider: Arc<rustls::crypto::CryptoProvider>,
}

impl rustls::client::danger::ServerCertVerifier for Pinned {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &rustls::pki_types::ServerName<'_>,
        _ocsp: &[u8],
        _now: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        if end_entity.as_ref() == self.leaf.as_ref() {
            Ok(rustls::client::danger::ServerCertVerified::assertion())
        } else {
            Err(rustls::Error::General(
                "not the configured certificate".into(),
            ))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        let algorithms = &self.provider.signature_verification_algorithms;
        rustls::crypto::verify_tls12_signature(message, cert, dss, algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        let algorithms = &self.provider.signature_verification_algorithms;
        rustls::crypto::verify_tls13_signature(message, cert, dss, algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    fn self_signed(dir: &Path, name: &str) -> (std::path::PathBuf, std::path::PathBuf) {
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec![name.to_owned()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        let (cert_path, key_path) = (
            dir.join(format!("{name}.crt")),
            dir.join(format!("{name}.key")),
        );
        std::fs::write(&cert_path, cert.pem()).unwrap();
        std::fs::write(&key_path, key.serialize_pem()).unwrap();
        (cert_path, key_path)
    }

    async fn handshake(
        server: &Path,
        server_key: &Path,
        pinned: &Path,
    ) -> std::io::Result<Vec<u8>> {
        let acceptor = tokio_rustls::TlsAcceptor::from(server_config(server, server_key).unwrap());
        let connector = tokio_rustls::TlsConnector::from(pinned_client_config(pinned).unwrap());
        let (client_io, server_io) = tokio::io::duplex(16 * 1024);
        let serve = tokio::spawn(async move {
            let mut stream = acceptor.accept(server_io).await?;
            stream.write_all(b"hello").await?;
            stream.shutdown().await
        });
        let name = rustls::pki_types::ServerName::try_from("anything").unwrap();
        let mut stream = connector.connect(name, client_io).await?;
        let mut got = Vec::new();
        stream.read_to_end(&mut got).await?;
        serve.await.unwrap()?;
        Ok(got)
    }

    #[tokio::test]
    async fn serves_tls_and_the_health_check_pins_the_certificate() {
        let dir = tempfile::tempdir().unwrap();
        let (cert, key) = self_signed(dir.path(), "portcullis");
        assert_eq!(handshake(&cert, &key, &cert).await.unwrap(), b"hello");

        let (other, _) = self_signed(dir.path(), "impostor");
        assert!(
            handshake(&cert, &key, &other).await.is_err(),
            "another certificate is refused"
        );
        assert!(server_config(&cert, &dir.path().join("missing.key")).is_err());
    }
}
