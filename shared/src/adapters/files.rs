//! The blob store on local files: one file per key under a root folder, written to a temporary
//! name, synced, then renamed into place (so a crash never leaves a half-written object).

use std::path::{Path, PathBuf};

use async_trait::async_trait;

use crate::ports::{BlobError, BlobStore, check_blob_key};

#[derive(Clone)]
pub struct FileBlobs {
    root: PathBuf,
}

fn unavailable(e: impl std::fmt::Display) -> BlobError {
    BlobError::Unavailable(e.to_string())
}

impl FileBlobs {
    pub fn new(root: &Path) -> Self {
        Self { root: root.to_path_buf() }
    }

    fn list_sync(root: &Path, prefix: &str) -> Result<Vec<String>, BlobError> {
        let mut out = Vec::new();
        let mut stack = vec![root.to_path_buf()];
        while let Some(dir) = stack.pop() {
            let rd = match std::fs::read_dir(&dir) {
                Ok(rd) => rd,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(unavailable(e)),
            };
            for entry in rd {
                let p = entry.map_err(unavailable)?.path();
                if p.is_dir() {
                    stack.push(p);
                } else if let Ok(rel) = p.strip_prefix(root) {
                    let key = rel.to_string_lossy().replace('\\', "/");
                    if key.starts_with(prefix) && !key.ends_with(".tmp") {
                        out.push(key);
                    }
                }
            }
        }
        out.sort();
        Ok(out)
    }
}

#[async_trait]
impl BlobStore for FileBlobs {
    async fn put_new(&self, key: &str, bytes: Vec<u8>) -> Result<(), BlobError> {
        check_blob_key(key)?;
        let path = self.root.join(key);
        let key = key.to_string();
        tokio::task::spawn_blocking(move || {
            use std::io::Write;
            if path.exists() {
                return Err(BlobError::Exists(key));
            }
            let dir = path.parent().ok_or_else(|| BlobError::BadKey(key.clone()))?;
            std::fs::create_dir_all(dir).map_err(unavailable)?;
            let tmp = path.with_extension("tmp");
            let mut f = std::fs::File::create(&tmp).map_err(unavailable)?;
            f.write_all(&bytes).map_err(unavailable)?;
            f.sync_all().map_err(unavailable)?;
            std::fs::rename(&tmp, &path).map_err(unavailable)?;
            // Make the rename itself durable.
            std::fs::File::open(dir).and_then(|d| d.sync_all()).map_err(unavailable)?;
            Ok(())
        })
        .await
        .map_err(unavailable)?
    }

    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, BlobError> {
        check_blob_key(key)?;
        match tokio::fs::read(self.root.join(key)).await {
            Ok(b) => Ok(Some(b)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(unavailable(e)),
        }
    }

    async fn list(&self, prefix: &str) -> Result<Vec<String>, BlobError> {
        let root = self.root.clone();
        let prefix = prefix.to_string();
        tokio::task::spawn_blocking(move || Self::list_sync(&root, &prefix)).await.map_err(unavailable)?
    }
}
