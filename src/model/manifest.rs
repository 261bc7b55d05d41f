//! The installed `manifest.json` (written by models/materialize.py) and checksum checks.
use std::collections::BTreeMap;
use std::fs::File;
use std::path::Path;

use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::error::{RecError, Result, SETUP_HINT};

#[derive(Debug, Default, Deserialize)]
pub struct Manifest {
    #[serde(default)]
    pub files: BTreeMap<String, FileEntry>,
    #[serde(default)]
    pub models: BTreeMap<String, ModelEntry>,
    #[serde(default)]
    pub onnxruntime: Option<RuntimeEntry>,
}

#[derive(Debug, Deserialize)]
pub struct FileEntry {
    pub sha256: String,
    #[serde(default)]
    pub size: Option<u64>,
}

#[derive(Debug, Default, Clone, Deserialize)]
pub struct ModelEntry {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub source: String,
    #[serde(default)]
    pub dim: Option<usize>,
}

#[derive(Debug, Deserialize)]
pub struct RuntimeEntry {
    pub path: Option<String>,
    pub sha256: String,
    pub version: Option<String>,
}

impl Manifest {
    /// Reads `<dir>/manifest.json`. A missing manifest is an empty one: files a user drops in
    /// without running the setup script are loaded unverified.
    pub fn load(dir: &str) -> Result<Manifest> {
        let path = Path::new(dir).join("manifest.json");
        match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| {
                RecError::external(
                    format!("model manifest {} is not valid JSON: {e}", path.display()),
                    SETUP_HINT,
                )
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Manifest::default()),
            Err(e) => Err(RecError::external(
                format!("cannot read model manifest {}: {e}", path.display()),
                "Check the file's permissions: the postgres server user must be able to read it.",
            )),
        }
    }
}

/// sha256 of a file, streamed.
pub fn sha256_file(path: &Path) -> std::io::Result<String> {
    let mut f = File::open(path)?;
    let mut h = Sha256::new();
    std::io::copy(&mut f, &mut h)?;
    Ok(hex::encode(h.finalize()))
}

/// Refuses `path` when `want` (from the manifest) is given and the file's size or sha256 differ.
/// Returns whether the file was verified.
pub fn verify(path: &Path, want: Option<&FileEntry>) -> Result<bool> {
    let Some(want) = want else { return Ok(false) };
    let hint = format!("Reinstall the model files: {SETUP_HINT}, or SET recommender.enable_checksums = off to load them anyway.");
    if let (Some(size), Ok(meta)) = (want.size, std::fs::metadata(path)) {
        if meta.len() != size {
            return Err(RecError::external(
                format!(
                    "model file {} has {} bytes, the manifest says {size}: it is truncated or replaced",
                    path.display(),
                    meta.len()
                ),
                hint,
            ));
        }
    }
    let marker = verified_marker(path, &want.sha256);
    if marker.as_ref().is_some_and(|m| m.exists()) {
        return Ok(true);
    }
    let got = sha256_file(path).map_err(|e| {
        RecError::missing(
            format!("cannot read model file {}: {e}", path.display()),
            SETUP_HINT,
        )
    })?;
    if !got.eq_ignore_ascii_case(&want.sha256) {
        return Err(RecError::external(
            format!(
                "model file {} fails its checksum: sha256 {got}, the manifest says {}",
                path.display(),
                want.sha256
            ),
            hint,
        ));
    }
    if let Some(m) = marker {
        // best effort: without the marker the next backend hashes the file again
        let _ = std::fs::create_dir_all(VERIFIED_DIR).and_then(|_| File::create(m));
    }
    Ok(true)
}

/// Where backends leave "this file, with this identity, had the manifest's sha256" markers, so
/// that only the first backend after a change hashes a 90 MB model (~60 ms of a first call).
/// Relative to the data directory (a backend's working directory); PostgreSQL deletes
/// `pgsql_tmp*` files there at every start, and base backups skip them.
const VERIFIED_DIR: &str = "base/pgsql_tmp";

/// The marker for `path` in its current identity (device, inode, size, mtime in ns) and the
/// expected sha256: any write to the file, or a replacement, gives another marker name.
fn verified_marker(path: &Path, sha256: &str) -> Option<std::path::PathBuf> {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::metadata(path).ok()?;
    let key = format!(
        "{}|{}|{}|{}|{}.{}|{}",
        path.display(),
        m.dev(),
        m.ino(),
        m.size(),
        m.mtime(),
        m.mtime_nsec(),
        sha256.to_ascii_lowercase()
    );
    let h = hex::encode(Sha256::digest(key.as_bytes()));
    Some(Path::new(VERIFIED_DIR).join(format!("pgsql_tmp.recommender-verified-{}", &h[..32])))
}
