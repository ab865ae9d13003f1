//! Builds a tiny container image offline, as an OCI image layout directory, and reads manifest
//! digests back out of layouts that skopeo wrote.
//!
//! The image has one gzipped tar layer holding one small file, a config whose `diff_ids` name the
//! uncompressed layer, and an OCI manifest; nothing is fetched from anywhere.

use std::path::{Path, PathBuf};

use data_encoding::HEXLOWER;
use flate2::Compression;
use flate2::write::GzEncoder;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

const MANIFEST_TYPE: &str = "application/vnd.oci.image.manifest.v1+json";
const CONFIG_TYPE: &str = "application/vnd.oci.image.config.v1+json";
const LAYER_TYPE: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
const REF_NAME: &str = "org.opencontainers.image.ref.name";

/// An image written as an OCI layout.
pub struct OciImage {
    /// The layout directory (holds `oci-layout`, `index.json`, `blobs/`).
    pub dir: PathBuf,
    pub tag: String,
    /// `sha256:…` of the manifest; a registry that stores the image unchanged reports the same.
    pub manifest_digest: String,
}

impl OciImage {
    /// Writes an image to `dir` whose single file `/hello.txt` holds `payload`.
    pub fn build(dir: &Path, tag: &str, payload: &str) -> OciImage {
        std::fs::create_dir_all(dir.join("blobs/sha256")).expect("create the blobs directory");
        write(
            &dir.join("oci-layout"),
            br#"{"imageLayoutVersion":"1.0.0"}"#,
        );

        let layer_tar = tar_one_file("hello.txt", payload.as_bytes());
        let diff_id = sha256_digest(&layer_tar);
        let layer = write_blob(dir, &gzip(&layer_tar));
        let config = write_blob(dir, &to_json(&image_config(&diff_id)));
        let manifest_bytes = to_json(&json!({
            "schemaVersion": 2,
            "mediaType": MANIFEST_TYPE,
            "config": descriptor(CONFIG_TYPE, &config),
            "layers": [descriptor(LAYER_TYPE, &layer)],
        }));
        let manifest = write_blob(dir, &manifest_bytes);

        let mut entry = descriptor(MANIFEST_TYPE, &manifest);
        entry["annotations"] = json!({ REF_NAME: tag });
        let index = json!({ "schemaVersion": 2, "manifests": [entry] });
        write(&dir.join("index.json"), &to_json(&index));

        OciImage {
            dir: dir.to_owned(),
            tag: tag.to_owned(),
            manifest_digest: manifest.digest,
        }
    }

    /// The skopeo reference to this image, `oci:DIR:TAG`.
    pub fn reference(&self) -> String {
        oci_reference(&self.dir, &self.tag)
    }
}

/// The skopeo reference `oci:DIR:TAG`.
pub fn oci_reference(dir: &Path, tag: &str) -> String {
    format!("oci:{}:{tag}", dir.display())
}

/// The digest of the manifest tagged `tag` in the layout at `dir` (for example one that
/// `skopeo copy … oci:DIR:TAG` wrote).
pub fn manifest_digest_in_layout(dir: &Path, tag: &str) -> String {
    let index_path = dir.join("index.json");
    let index: Value = serde_json::from_slice(&read(&index_path)).expect("parse index.json");
    let manifests = index["manifests"].as_array().cloned().unwrap_or_default();
    manifests
        .iter()
        .find(|entry| entry["annotations"][REF_NAME] == tag)
        .and_then(|entry| entry["digest"].as_str())
        .unwrap_or_else(|| panic!("no manifest tagged {tag:?} in {}", index_path.display()))
        .to_owned()
}

/// `sha256:` and the lowercase hex SHA-256 of `bytes`, as registries name content.
pub fn sha256_digest(bytes: &[u8]) -> String {
    format!("sha256:{}", HEXLOWER.encode(&Sha256::digest(bytes)))
}

/// A blob as stored: its digest and size.
struct Blob {
    digest: String,
    size: usize,
}

fn write_blob(dir: &Path, bytes: &[u8]) -> Blob {
    let digest = sha256_digest(bytes);
    let hex = digest.trim_start_matches("sha256:");
    write(&dir.join("blobs/sha256").join(hex), bytes);
    Blob {
        digest,
        size: bytes.len(),
    }
}

fn descriptor(media_type: &str, blob: &Blob) -> Value {
    json!({ "mediaType": media_type, "digest": blob.digest, "size": blob.size })
}

fn image_config(diff_id: &str) -> Value {
    json!({
        "architecture": "amd64",
        "os": "linux",
        "config": { "Cmd": ["/hello.txt"] },
        "rootfs": { "type": "layers", "diff_ids": [diff_id] },
    })
}

/// A tar archive with one regular file; fixed owner and time keep the bytes reproducible.
fn tar_one_file(name: &str, contents: &[u8]) -> Vec<u8> {
    let mut header = tar::Header::new_ustar();
    header.set_size(contents.len() as u64);
    header.set_mode(0o644);
    header.set_uid(0);
    header.set_gid(0);
    header.set_mtime(0);
    header.set_entry_type(tar::EntryType::Regular);

    let mut archive = tar::Builder::new(Vec::new());
    archive
        .append_data(&mut header, name, contents)
        .expect("append to an in-memory tar");
    archive.into_inner().expect("finish the in-memory tar")
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    use std::io::Write;

    let mut encoder = GzEncoder::new(Vec::new(), Compression::default());
    encoder.write_all(bytes).expect("gzip in memory");
    encoder.finish().expect("finish gzip in memory")
}

fn to_json(value: &Value) -> Vec<u8> {
    serde_json::to_vec(value).expect("serialize JSON")
}

fn write(path: &Path, bytes: &[u8]) {
    std::fs::write(path, bytes)
        .unwrap_or_else(|err| panic!("cannot write {}: {err}", path.display()));
}

fn read(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|err| panic!("cannot read {}: {err}", path.display()))
}
