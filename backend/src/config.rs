//! One typed configuration, read once from flags and `THOR_*` environment variables, with
//! defaults that run on a laptop: SQLite under `./data/`, listening on 127.0.0.1:8080.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

#[derive(clap::Args, Clone, Debug)]
pub struct Config {
    /// Address to listen on.
    #[arg(long, env = "THOR_ADDR", default_value = "127.0.0.1:8080")]
    pub addr: SocketAddr,

    /// Folder for the SQLite database and the photo store; created on first start.
    #[arg(long, env = "THOR_DATA_DIR", default_value = "./data")]
    pub data_dir: PathBuf,

    /// Database URL. Unset: SQLite at `<data-dir>/thor.db`. `postgres://…` switches to PostgreSQL.
    #[arg(long, env = "DATABASE_URL")]
    pub database_url: Option<String>,

    /// Lifetime of a device token, in hours. Phones work offline for hours, so the default is
    /// 30 days; a lost phone is revoked, not waited out.
    #[arg(long, env = "THOR_TOKEN_TTL_HOURS", default_value_t = 720)]
    pub token_ttl_hours: u32,

    /// Login attempts allowed per account per minute.
    #[arg(long, env = "THOR_LOGIN_PER_ACCOUNT_PER_MINUTE", default_value_t = 10)]
    pub login_per_account_per_minute: u32,

    /// Login attempts allowed per client address per minute (an office behind one NAT address
    /// logs in a whole shift at once, so this is higher than the per-account limit).
    #[arg(long, env = "THOR_LOGIN_PER_ADDRESS_PER_MINUTE", default_value_t = 60)]
    pub login_per_address_per_minute: u32,

    /// Largest JSON body accepted, in bytes (photos have their own upload route and limit).
    #[arg(long, env = "THOR_MAX_BODY_BYTES", default_value_t = 1024 * 1024)]
    pub max_body_bytes: usize,

    /// Time limit for one request, in seconds.
    #[arg(long, env = "THOR_REQUEST_TIMEOUT_S", default_value_t = 30)]
    pub request_timeout_s: u64,

    /// Connections in the read pool (SQLite) or the whole pool (PostgreSQL).
    #[arg(long, env = "THOR_DB_POOL", default_value_t = 8)]
    pub db_pool: u32,

    /// Days of a team's records a device keeps (older ones leave its scope as deletions).
    #[arg(long, env = "THOR_SYNC_WINDOW_DAYS", default_value_t = 14)]
    pub sync_window_days: u32,

    /// Days deletions (tombstones) are kept for devices that were offline; an older cursor gets
    /// 410 and the device resyncs in full.
    #[arg(long, env = "THOR_TOMBSTONE_DAYS", default_value_t = 180)]
    pub tombstone_days: u32,

    /// Largest photo accepted, in bytes (published at `GET /api/v1/photos/limits`).
    #[arg(long, env = "THOR_PHOTO_MAX_BYTES", default_value_t = 25 * 1024 * 1024)]
    pub photo_max_bytes: u64,

    /// Largest photo accepted, in pixels (width × height); larger headers are refused before
    /// any pixel is decoded (decompression bombs).
    #[arg(long, env = "THOR_PHOTO_MAX_PIXELS", default_value_t = 100_000_000)]
    pub photo_max_pixels: u64,

    /// Hours an unfinished upload is kept after its last byte.
    #[arg(long, env = "THOR_UPLOAD_EXPIRY_HOURS", default_value_t = 24)]
    pub upload_expiry_hours: u32,

    /// Derivative jobs run at once, at most (see also `derive_memory_mib`).
    #[arg(long, env = "THOR_DERIVE_CONCURRENCY", default_value_t = 2)]
    pub derive_concurrency: usize,

    /// Memory all derivative jobs together may use, in MiB. Each job reserves its peak as
    /// estimated from the image's header before it decodes, and waits while the budget is taken.
    #[arg(long, env = "THOR_DERIVE_MEMORY_MIB", default_value_t = 180)]
    pub derive_memory_mib: u32,

    /// The most memory one photo's derivatives may take, in MiB (estimated from the header;
    /// published at `GET /api/v1/photos/limits`). Baseline JPEG and non-interlaced PNG are
    /// decoded at reduced size within it up to the pixel limit; a progressive JPEG, a WebP or
    /// an interlaced PNG whose whole frame would not fit is refused. At most `derive_memory_mib`.
    #[arg(long, env = "THOR_PHOTO_DECODE_MAX_MIB", default_value_t = 90)]
    pub photo_decode_max_mib: u32,

    /// S3 bucket for photos. Unset: photos live on disk under `<data-dir>/photos`.
    /// Credentials come from the usual `AWS_*` variables.
    #[arg(long, env = "THOR_S3_BUCKET")]
    pub s3_bucket: Option<String>,

    /// S3 endpoint for S3-compatible storage (MinIO, Ceph, a municipality's own).
    #[arg(long, env = "THOR_S3_ENDPOINT")]
    pub s3_endpoint: Option<String>,

    #[arg(long, env = "THOR_S3_REGION", default_value = "eu-west-1")]
    pub s3_region: String,

    /// Start of the early, late and night shifts (Europe/Amsterdam), for the briefing.
    #[arg(long, env = "THOR_SHIFTS", default_value = "07:00,15:00,23:00")]
    pub shifts: String,

    /// Log as JSON lines (for a log shipper) instead of human-readable text.
    #[arg(long, env = "THOR_LOG_JSON", default_value_t = false)]
    pub log_json: bool,

    /// The address people open thor at, e.g. `https://thor.velsen.nl` when a TLS proxy stands
    /// in front of it. When it starts with `https://` the lead page's session cookie is always
    /// `Secure`; the page's forms are accepted from this origin (and from the `Host` a request
    /// was sent to). Unset: the cookie is `Secure` only on requests that arrived over https
    /// according to `X-Forwarded-Proto` / `Forwarded` (see `web::cookie_secure`).
    #[arg(long, env = "THOR_PUBLIC_URL")]
    pub public_url: Option<String>,

    /// Four-eyes review: a teamleider may not approve or reject a report they created or are
    /// named on (`officer_ids`); another teamleider reviews it. On by default; `false` for a
    /// team with a single lead who also works the street.
    #[arg(long, env = "THOR_FOUR_EYES", default_value_t = true, action = clap::ArgAction::Set)]
    pub four_eyes: bool,
}

impl Config {
    /// A configuration for tests and embedding: everything default, the given data folder.
    pub fn for_data_dir(data_dir: PathBuf) -> Self {
        Config {
            addr: "127.0.0.1:0".parse().expect("literal address"),
            data_dir,
            database_url: None,
            token_ttl_hours: 720,
            login_per_account_per_minute: 10,
            login_per_address_per_minute: 60,
            max_body_bytes: 1024 * 1024,
            request_timeout_s: 30,
            db_pool: 8,
            sync_window_days: 14,
            tombstone_days: 180,
            photo_max_bytes: 25 * 1024 * 1024,
            photo_max_pixels: 100_000_000,
            upload_expiry_hours: 24,
            derive_concurrency: 2,
            derive_memory_mib: 180,
            photo_decode_max_mib: 90,
            s3_bucket: None,
            s3_endpoint: None,
            s3_region: "eu-west-1".to_string(),
            shifts: "07:00,15:00,23:00".to_string(),
            log_json: false,
            public_url: None,
            four_eyes: true,
        }
    }

    /// The database URL in force: the explicit one, or the SQLite file in the data folder.
    pub fn effective_database_url(&self) -> String {
        match &self.database_url {
            Some(url) => url.clone(),
            None => format!(
                "sqlite://{}?mode=rwc",
                self.data_dir.join("thor.db").display()
            ),
        }
    }

    /// Refuses settings that contradict each other.
    pub fn validate(&self) -> anyhow::Result<()> {
        // A device keeps a window of records; a deletion inside that window must outlive it, or a
        // phone offline for less than the window would keep a deleted record, and a first pull
        // could be paged past a purge.
        if self.tombstone_days < self.sync_window_days {
            anyhow::bail!(
                "THOR_TOMBSTONE_DAYS ({}) must be at least THOR_SYNC_WINDOW_DAYS ({}): deletions \
                 must be kept as long as phones keep the records they delete",
                self.tombstone_days,
                self.sync_window_days
            );
        }
        if let Some(url) = &self.public_url
            && self.public_origin().is_none()
        {
            anyhow::bail!(
                "THOR_PUBLIC_URL ({url:?}) must be an http:// or https:// address with a host, \
                 e.g. https://thor.velsen.nl"
            );
        }
        Ok(())
    }

    /// The scheme and authority (`https`, `thor.velsen.nl`) of `public_url`, lower case.
    pub fn public_origin(&self) -> Option<(String, String)> {
        let uri: axum::http::Uri = self.public_url.as_deref()?.trim().parse().ok()?;
        let scheme = uri.scheme_str()?.to_ascii_lowercase();
        if scheme != "http" && scheme != "https" {
            return None;
        }
        Some((scheme, uri.authority()?.as_str().to_ascii_lowercase()))
    }

    /// Whether thor is served over https by its configuration (`public_url`).
    pub fn served_over_https(&self) -> bool {
        self.public_origin().is_some_and(|(s, _)| s == "https")
    }

    pub fn token_ttl(&self) -> chrono::Duration {
        chrono::Duration::hours(i64::from(self.token_ttl_hours))
    }

    pub fn request_timeout(&self) -> Duration {
        Duration::from_secs(self.request_timeout_s)
    }
}

/// The URL with any password replaced, for logs.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => {
            let creds = &url[s + 3..at];
            match creds.find(':') {
                Some(c) => format!("{}{}:***{}", &url[..s + 3], &creds[..c], &url[at..]),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_never_reach_the_log() {
        assert_eq!(
            redact_url("postgres://thor:geheim@db:5432/thor"),
            "postgres://thor:***@db:5432/thor"
        );
        assert_eq!(
            redact_url("postgres://postgres@127.0.0.1/x"),
            "postgres://postgres@127.0.0.1/x"
        );
    }

    #[test]
    fn a_tombstone_horizon_shorter_than_the_sync_window_is_refused() {
        let mut c = Config::for_data_dir(PathBuf::from("/tmp/x"));
        assert!(c.validate().is_ok());
        c.tombstone_days = 7;
        let e = c.validate().expect_err("7 < 14").to_string();
        assert!(e.contains("THOR_TOMBSTONE_DAYS"), "{e}");
        c.sync_window_days = 7;
        assert!(c.validate().is_ok());
    }

    #[test]
    fn a_public_url_must_be_http_or_https() {
        let mut c = Config::for_data_dir(PathBuf::from("/tmp/x"));
        assert!(!c.served_over_https());
        for bad in ["thor.velsen.nl", "ftp://thor.velsen.nl", "https://", ""] {
            c.public_url = Some(bad.into());
            assert!(c.validate().is_err(), "{bad:?}");
        }
        c.public_url = Some("https://THOR.velsen.nl/".into());
        assert!(c.validate().is_ok());
        assert!(c.served_over_https());
        assert_eq!(
            c.public_origin(),
            Some(("https".into(), "thor.velsen.nl".into()))
        );
        c.public_url = Some("http://127.0.0.1:8080".into());
        assert!(c.validate().is_ok());
        assert!(!c.served_over_https());
    }

    #[test]
    fn sqlite_lives_in_the_data_dir() {
        let c = Config::for_data_dir(PathBuf::from("/tmp/x"));
        assert_eq!(
            c.effective_database_url(),
            "sqlite:///tmp/x/thor.db?mode=rwc"
        );
    }
}
