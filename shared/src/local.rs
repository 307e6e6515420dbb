//! Local mode: one process on the embedded store, with the built-in issuer whose RS256 key and
//! cookie secret are created on first run and kept in the data folder.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::adapters::embedded::EmbeddedTable;
use crate::auth::crypto::random_bytes;
use crate::auth::issuer::{Issuer, IssuerSettings};
use crate::auth::jwt::SigningKey;
use crate::config::Settings;
use crate::error::{Error, Result};
use crate::http::AppState;
use crate::repo::Repo;

pub const STORE_FILE: &str = "jhe.redb";
pub const KEY_FILE: &str = "oidc-signing-key.p8";
pub const SECRET_FILE: &str = "cookie-secret";
/// Folder of the archived uploads.
pub const BLOB_DIR: &str = "blobs";
/// `aud` of access tokens issued here.
pub const AUDIENCE: &str = "jhe-api";

fn io(e: std::io::Error, what: &Path) -> Error {
    Error::Internal(format!("{}: {e}", what.display()))
}

/// Writes a file readable only by its owner, whole or not at all: the bytes go to a temporary file
/// that is synced, then linked under the final name (which must not exist yet), so a process killed
/// during the write never leaves a truncated key or secret behind.
fn write_private(path: &Path, bytes: &[u8]) -> Result<()> {
    use std::io::Write;
    let tmp = path.with_extension("tmp");
    // A temporary file left by a killed process goes: a fresh one gets the owner-only mode.
    match std::fs::remove_file(&tmp) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(io(e, &tmp)),
        _ => {}
    }
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    {
        let mut f = opts.open(&tmp).map_err(|e| io(e, &tmp))?;
        f.write_all(bytes).map_err(|e| io(e, &tmp))?;
        f.sync_all().map_err(|e| io(e, &tmp))?;
    }
    let linked = std::fs::hard_link(&tmp, path);
    let _ = std::fs::remove_file(&tmp);
    linked.map_err(|e| io(e, path))?;
    if let Some(dir) = path.parent() {
        // Make the new name itself durable.
        std::fs::File::open(dir).and_then(|d| d.sync_all()).map_err(|e| io(e, dir))?;
    }
    Ok(())
}

fn load_or_create(path: &Path, create: impl FnOnce() -> Result<Vec<u8>>) -> Result<Vec<u8>> {
    match std::fs::read(path) {
        Ok(b) => Ok(b),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let b = create()?;
            write_private(path, &b)?;
            Ok(b)
        }
        Err(e) => Err(io(e, path)),
    }
}

pub struct LocalServer {
    pub state: AppState,
    /// The embedded engine, when the store is local.
    pub table: Option<EmbeddedTable>,
    pub data_dir: PathBuf,
}

/// Opens (or creates) the data folder and builds the application state on the embedded store.
pub fn open(data_dir: &Path, settings: Settings) -> Result<LocalServer> {
    let (table, blobs) = open_stores(data_dir)?;
    on_stores(data_dir, settings, table, blobs)
}

/// The data folder's embedded store and blob folder (created if need be).
fn open_stores(data_dir: &Path) -> Result<(EmbeddedTable, Arc<crate::adapters::files::FileBlobs>)> {
    std::fs::create_dir_all(data_dir).map_err(|e| io(e, data_dir))?;
    let table = EmbeddedTable::open(&data_dir.join(STORE_FILE))
        .map_err(|e| Error::Internal(format!("opening the store: {e}")))?;
    Ok((table, Arc::new(crate::adapters::files::FileBlobs::new(&data_dir.join(BLOB_DIR)))))
}

/// `open_with` on the data folder's own stores.
fn on_stores(
    data_dir: &Path,
    settings: Settings,
    table: EmbeddedTable,
    blobs: Arc<crate::adapters::files::FileBlobs>,
) -> Result<LocalServer> {
    let mut server = open_with(data_dir, settings, Arc::new(table.clone()), blobs)?;
    server.table = Some(table);
    Ok(server)
}

/// Loads the demo data if the store is empty (no root organization yet); `true` if it did.
async fn seed_if_empty(repo: &Repo, settings: &Settings, blobs: &dyn crate::ports::BlobStore) -> Result<bool> {
    if repo.org(crate::model::ROOT_ORG_ID).await?.is_some() {
        return Ok(false);
    }
    crate::seed::seed(repo, settings, blobs).await?;
    Ok(true)
}

/// `open`, then the demo data into an empty store (when `seed`). On a first start the signing
/// key is made in the background (`open_with`): the server answers once the seed is written, and
/// the first token request waits for the key if it is not ready yet. Returns the server and
/// whether it seeded.
pub async fn open_and_seed(data_dir: &Path, settings: Settings, seed: bool) -> Result<(LocalServer, bool)> {
    let (table, blobs) = open_stores(data_dir)?;
    let server = on_stores(data_dir, settings, table, blobs)?;
    let seeded = seed && server.seed_if_empty().await?;
    Ok((server, seeded))
}

/// The issuer on the data folder's signing key; when there is none yet (a first start), one whose
/// key is generated, written to the folder and handed over on a blocking thread (RSA-2048 takes
/// 100-250 ms here, as long as the rest of a first start).
fn local_issuer(key_path: &Path, settings: IssuerSettings, secret: &[u8]) -> Result<Issuer> {
    match std::fs::read(key_path) {
        Ok(der) => Issuer::new(SigningKey::from_pkcs8(&der)?, settings, secret),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let (issuer, ready) = Issuer::pending(settings, secret);
            let path = key_path.to_path_buf();
            tokio::task::spawn_blocking(move || {
                ready.set(SigningKey::generate().and_then(|k| {
                    write_private(&path, &k.to_pkcs8()?)?;
                    Ok(k)
                }))
            });
            Ok(issuer)
        }
        Err(e) => Err(io(e, key_path)),
    }
}

/// Builds the application state on given stores (e.g. DynamoDB and S3), with the built-in
/// issuer's key and cookie secret in the data folder.
pub fn open_with(
    data_dir: &Path,
    settings: Settings,
    table: Arc<dyn crate::ports::Table>,
    blobs: Arc<dyn crate::ports::BlobStore>,
) -> Result<LocalServer> {
    std::fs::create_dir_all(data_dir).map_err(|e| io(e, data_dir))?;
    let secret = load_or_create(&data_dir.join(SECRET_FILE), || Ok(random_bytes::<32>().to_vec()))?;
    let issuer = Arc::new(local_issuer(
        &data_dir.join(KEY_FILE),
        IssuerSettings {
            issuer: format!("{}/o", settings.site_url),
            audience: AUDIENCE.into(),
            access_ttl: settings.access_token_ttl,
            refresh_ttl: 30 * 24 * 3600,
            code_ttl: 60,
            id_token_ttl: 36_000,
        },
        &secret,
    )?);
    let repo = Repo::new(table);
    let audit = Arc::new(crate::repo::audit::TableAudit { repo: repo.clone() });
    let state = AppState { repo, identity: issuer.clone(), issuer, settings: Arc::new(settings), blobs, audit };
    Ok(LocalServer { state, table: None, data_dir: data_dir.to_path_buf() })
}

impl LocalServer {
    /// Loads the demo seed if the store is empty; `true` if it did.
    pub async fn seed_if_empty(&self) -> Result<bool> {
        seed_if_empty(&self.state.repo, &self.state.settings, &*self.state.blobs).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A private file appears whole under its name, with no temporary file left, readable by its
    /// owner only; an existing one is never replaced; a temporary file left by a killed process
    /// does not get in the way.
    #[test]
    fn private_files_are_written_whole_and_never_replaced() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("oidc-signing-key.p8");
        std::fs::write(path.with_extension("tmp"), b"half").expect("leftover");
        write_private(&path, b"secret").expect("write");
        assert_eq!(std::fs::read(&path).expect("read"), b"secret");
        assert!(!path.with_extension("tmp").exists(), "no temporary file left");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).expect("meta").permissions().mode() & 0o777;
            assert_eq!(mode, 0o600);
        }
        assert!(write_private(&path, b"other").is_err(), "an existing file is not replaced");
        assert_eq!(std::fs::read(&path).expect("read"), b"secret");
    }
}
