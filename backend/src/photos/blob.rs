//! The evidence store: originals and derivatives behind one `object_store` interface, a local
//! folder by default and S3-compatible storage for several instances. Content-addressed by
//! SHA-256, so the same photo sent twice is stored once and an original can never be replaced
//! by other bytes under its name.
//!
//! Uploads in progress are staged as plain files (tus appends to them). With the local store the
//! staging folder lies inside the store's root and a finished original is moved into place by a
//! rename (no copy); with S3 it is streamed up as a multipart upload.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use bytes::Bytes;
use futures_util::StreamExt;
use object_store::local::LocalFileSystem;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload, WriteMultipart};
use tokio::io::AsyncReadExt;
use uuid::Uuid;

use crate::config::Config;

/// Which derivative.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Derivative {
    Thumbnail,
    Preview,
}

impl Derivative {
    pub fn as_str(self) -> &'static str {
        match self {
            Derivative::Thumbnail => "thumb",
            Derivative::Preview => "preview",
        }
    }
}

#[derive(Clone)]
pub struct BlobStore {
    store: Arc<dyn ObjectStore>,
    /// Staged uploads live at `<root>/staging` when the store is this local folder.
    local_root: Option<PathBuf>,
    staging: PathBuf,
    /// A name for logs and /readyz: `local:<path>` or `s3:<bucket>`.
    pub describe: String,
}

impl BlobStore {
    /// The store the configuration asks for: S3 when a bucket is set, else `<data-dir>/photos`.
    pub fn from_config(config: &Config) -> anyhow::Result<BlobStore> {
        match &config.s3_bucket {
            Some(bucket) => BlobStore::s3(
                bucket,
                config.s3_endpoint.as_deref(),
                &config.s3_region,
                &config.data_dir.join("upload-staging"),
            ),
            None => BlobStore::local(&config.data_dir.join("photos")),
        }
    }

    pub fn local(root: &Path) -> anyhow::Result<BlobStore> {
        let staging = root.join("staging");
        std::fs::create_dir_all(&staging)
            .with_context(|| format!("creating the photo folder {}", staging.display()))?;
        let store = LocalFileSystem::new_with_prefix(root)
            .with_context(|| format!("opening the photo folder {}", root.display()))?;
        Ok(BlobStore {
            store: Arc::new(store),
            local_root: Some(root.to_path_buf()),
            staging,
            describe: format!("local:{}", root.display()),
        })
    }

    pub fn s3(
        bucket: &str,
        endpoint: Option<&str>,
        region: &str,
        staging: &Path,
    ) -> anyhow::Result<BlobStore> {
        std::fs::create_dir_all(staging)
            .with_context(|| format!("creating the upload staging folder {}", staging.display()))?;
        let mut b = object_store::aws::AmazonS3Builder::from_env()
            .with_bucket_name(bucket)
            .with_region(region);
        if let Some(e) = endpoint {
            b = b
                .with_endpoint(e)
                .with_allow_http(e.starts_with("http://"))
                .with_virtual_hosted_style_request(false);
        }
        let store = b.build().context("configuring the S3 photo store")?;
        Ok(BlobStore {
            store: Arc::new(store),
            local_root: None,
            staging: staging.to_path_buf(),
            describe: format!("s3:{bucket}"),
        })
    }

    /// The staging file of an upload in progress.
    pub fn staging_path(&self, photo: Uuid) -> PathBuf {
        self.staging.join(photo.to_string())
    }

    /// The folder of the staging files (each named by its photo's id).
    pub fn staging_dir(&self) -> &Path {
        &self.staging
    }

    pub fn original_key(sha256: &str) -> ObjectPath {
        let prefix = sha256.get(..2).unwrap_or("xx");
        ObjectPath::from(format!("originals/{prefix}/{sha256}"))
    }

    pub fn derivative_key(sha256: &str, d: Derivative) -> ObjectPath {
        let prefix = sha256.get(..2).unwrap_or("xx");
        ObjectPath::from(format!("derivatives/{prefix}/{sha256}-{}.jpg", d.as_str()))
    }

    pub async fn exists(&self, key: &ObjectPath) -> anyhow::Result<bool> {
        match self.store.head(key).await {
            Ok(_) => Ok(true),
            Err(object_store::Error::NotFound { .. }) => Ok(false),
            Err(e) => Err(e).context("asking the photo store"),
        }
    }

    /// Moves a verified staging file into the store as the original with this hash. The file
    /// is gone afterwards (moved, or uploaded and removed).
    pub async fn commit_original(&self, staged: &Path, sha256: &str) -> anyhow::Result<()> {
        let key = Self::original_key(sha256);
        if let Some(root) = &self.local_root {
            let rel = staged
                .strip_prefix(root)
                .context("the staging file lies outside the photo folder")?;
            let from = ObjectPath::from_filesystem_path(rel)
                .or_else(|_| ObjectPath::parse(rel.to_string_lossy()))
                .context("naming the staging file")?;
            self.store
                .rename(&from, &key)
                .await
                .context("moving the original into the photo store")?;
            return Ok(());
        }
        let mut file = tokio::fs::File::open(staged)
            .await
            .with_context(|| format!("opening {}", staged.display()))?;
        let upload = self
            .store
            .put_multipart(&key)
            .await
            .context("starting the upload to the photo store")?;
        let mut w = WriteMultipart::new_with_chunk_size(upload, 8 * 1024 * 1024);
        let mut buf = vec![0u8; 1024 * 1024];
        loop {
            let n = file.read(&mut buf).await?;
            if n == 0 {
                break;
            }
            w.wait_for_capacity(2).await?;
            w.write(&buf[..n]);
        }
        w.finish()
            .await
            .context("finishing the upload to the photo store")?;
        tokio::fs::remove_file(staged).await.ok();
        Ok(())
    }

    pub async fn put(&self, key: &ObjectPath, bytes: Vec<u8>) -> anyhow::Result<()> {
        self.store
            .put(key, PutPayload::from(bytes))
            .await
            .context("writing to the photo store")?;
        Ok(())
    }

    /// Reads a whole object (originals up to the size limit, derivatives).
    pub async fn read(&self, key: &ObjectPath) -> anyhow::Result<Bytes> {
        let r = self
            .store
            .get(key)
            .await
            .context("reading the photo store")?;
        Ok(r.bytes().await?)
    }

    /// Reads the first `n` bytes of an object (EXIF lives at the start of a file).
    pub async fn read_head(&self, key: &ObjectPath, n: u64) -> anyhow::Result<Bytes> {
        let size = self.store.head(key).await?.size;
        Ok(self.store.get_range(key, 0..size.min(n)).await?)
    }

    /// Streams an object, for responses.
    pub async fn stream(
        &self,
        key: &ObjectPath,
    ) -> anyhow::Result<(
        u64,
        impl futures_util::Stream<Item = std::io::Result<Bytes>> + use<>,
    )> {
        let r = self
            .store
            .get(key)
            .await
            .context("reading the photo store")?;
        let size = r.meta.size;
        Ok((
            size,
            r.into_stream().map(|c| c.map_err(std::io::Error::other)),
        ))
    }

    /// Deletes an object; a missing one is fine.
    pub async fn delete(&self, key: &ObjectPath) -> anyhow::Result<()> {
        match self.store.delete(key).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(e).context("deleting from the photo store"),
        }
    }
}
