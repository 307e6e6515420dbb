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

/// Writes a file readable only by its owner.
fn write_private(path: &Path, bytes: &[u8]) -> Result<()> {
    use std::io::Write;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts.open(path).map_err(|e| io(e, path))?;
    f.write_all(bytes).map_err(|e| io(e, path))?;
    f.sync_all().map_err(|e| io(e, path))
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
    if repo.org(crate::domain::model::ROOT_ORG_ID).await?.is_some() {
        return Ok(false);
    }
    crate::seed::seed(repo, settings, blobs).await?;
    Ok(true)
}

/// `open`, then the demo data into an empty store (when `seed`), with a first start's signing key
/// generated meanwhile on another thread: the RSA-2048 key and the seed (an argon2 hash, the
/// records, one commit) each take tens of milliseconds, and a first start is ready after the
/// longer of the two rather than after both. Returns the server and whether it seeded.
pub async fn open_and_seed(data_dir: &Path, settings: Settings, seed: bool) -> Result<(LocalServer, bool)> {
    let (table, blobs) = open_stores(data_dir)?;
    let key_path = data_dir.join(KEY_FILE);
    let keygen =
        (!key_path.exists()).then(|| tokio::task::spawn_blocking(|| SigningKey::generate().and_then(|k| k.to_pkcs8())));
    let seeded = seed && seed_if_empty(&Repo::new(Arc::new(table.clone())), &settings, &*blobs).await?;
    if let Some(k) = keygen {
        let der = k.await.map_err(|e| Error::Internal(format!("key generation: {e}")))??;
        write_private(&key_path, &der)?;
    }
    Ok((on_stores(data_dir, settings, table, blobs)?, seeded))
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
    let der = load_or_create(&data_dir.join(KEY_FILE), || SigningKey::generate()?.to_pkcs8())?;
    let key = SigningKey::from_pkcs8(&der)?;
    let secret = load_or_create(&data_dir.join(SECRET_FILE), || Ok(random_bytes::<32>().to_vec()))?;
    let issuer = Arc::new(Issuer::new(
        key,
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
