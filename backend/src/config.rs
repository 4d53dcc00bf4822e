//! One typed configuration, read once from flags and `THOR_*` environment variables, with
//! defaults that run on a laptop: SQLite under `./data/`, listening on 127.0.0.1:8080.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// The defaults, written once: the flags show them in `--help` and [`Config::new`] (the tests,
/// the benches, the commands that take only some of the flags) starts from them.
pub mod defaults {
    use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};

    pub const ADDR: SocketAddr = SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 8080));
    pub const DATA_DIR: &str = "./data";
    pub const TOKEN_TTL_HOURS: u32 = 720;
    pub const LOGIN_PER_ACCOUNT_PER_MINUTE: u32 = 10;
    pub const LOGIN_PER_ADDRESS_PER_MINUTE: u32 = 60;
    pub const MAX_BODY_BYTES: usize = 1024 * 1024;
    pub const REQUEST_TIMEOUT_S: u64 = 30;
    pub const DB_POOL: u32 = 8;
    pub const SYNC_WINDOW_DAYS: u32 = 14;
    pub const TOMBSTONE_DAYS: u32 = 180;
    pub const PHOTO_MAX_BYTES: u64 = 25 * 1024 * 1024;
    pub const PHOTO_MAX_PIXELS: u64 = 100_000_000;
    pub const UPLOAD_EXPIRY_HOURS: u32 = 24;
    pub const DERIVE_CONCURRENCY: usize = 2;
    pub const DERIVE_MEMORY_MIB: u32 = 180;
    pub const PHOTO_DECODE_MAX_MIB: u32 = 90;
    pub const S3_REGION: &str = "eu-west-1";
    pub const SHIFTS: &str = "07:00,15:00,23:00";
    pub const FOUR_EYES: bool = true;
    /// RDW open data (the vehicle behind a kenteken).
    pub const RDW_URL: &str = "https://opendata.rdw.nl";
    /// PDOK's Locatieserver (the address of a position, from the BAG).
    pub const PDOK_URL: &str = "https://api.pdok.nl";
    /// The retention terms (see `retention::Terms`): the Wpg's own, and thor's choice for AVG data.
    pub const RETENTION: &str =
        "wpg=365/1825/3650,violation.avg=730,patrol_round=365,track_segment=90,briefing_note=365";
}

/// The configuration in force. `thor serve` fills every field from its flags ([`ServeArgs`]);
/// the other commands take only the flags they need and keep the defaults for the rest.
#[derive(Clone, Debug)]
pub struct Config {
    /// Address to listen on.
    pub addr: SocketAddr,
    /// Folder for the SQLite database and the photo store; created on first start.
    pub data_dir: PathBuf,
    /// Database URL. Unset: SQLite at `<data-dir>/thor.db`. `postgres://…` switches to PostgreSQL.
    pub database_url: Option<String>,
    /// Lifetime of a device token, in hours.
    pub token_ttl_hours: u32,
    /// Login attempts allowed per account per minute.
    pub login_per_account_per_minute: u32,
    /// Login attempts allowed per client address per minute.
    pub login_per_address_per_minute: u32,
    /// Largest JSON body accepted, in bytes.
    pub max_body_bytes: usize,
    /// Time limit for one request, in seconds.
    pub request_timeout_s: u64,
    /// Connections in the read pool (SQLite) or the whole pool (PostgreSQL).
    pub db_pool: u32,
    /// Days of a team's records a device keeps.
    pub sync_window_days: u32,
    /// Days deletions (tombstones) are kept for devices that were offline.
    pub tombstone_days: u32,
    /// Largest photo accepted, in bytes.
    pub photo_max_bytes: u64,
    /// Largest photo accepted, in pixels (width × height).
    pub photo_max_pixels: u64,
    /// Hours an unfinished upload is kept after its last byte.
    pub upload_expiry_hours: u32,
    /// Derivative jobs run at once, at most.
    pub derive_concurrency: usize,
    /// Memory all derivative jobs together may use, in MiB.
    pub derive_memory_mib: u32,
    /// The most memory one photo's derivatives may take, in MiB.
    pub photo_decode_max_mib: u32,
    /// S3 bucket for photos. Unset: photos live on disk under `<data-dir>/photos`.
    pub s3_bucket: Option<String>,
    /// S3 endpoint for S3-compatible storage.
    pub s3_endpoint: Option<String>,
    pub s3_region: String,
    /// Start of the early, late and night shifts (Europe/Amsterdam), for the briefing.
    pub shifts: String,
    /// Log as JSON lines instead of human-readable text.
    pub log_json: bool,
    /// The address people open thor at (see [`ServeArgs::public_url`]).
    pub public_url: Option<String>,
    /// Four-eyes review (see [`ServeArgs::four_eyes`]).
    pub four_eyes: bool,
    /// Retention terms per kind of record (see [`RetentionArgs`]).
    pub retention: String,
    /// Base URL of RDW open data; `None`: kentekens are not checked.
    pub rdw_url: Option<String>,
    /// Base URL of PDOK; `None`: addresses are not looked up.
    pub pdok_url: Option<String>,
}

/// The flags of every command that opens the database: where the data is, and how to log.
#[derive(clap::Args, Clone, Debug)]
pub struct DataArgs {
    /// Folder for the SQLite database and the photo store; created on first start.
    #[arg(long, env = "THOR_DATA_DIR", default_value = defaults::DATA_DIR)]
    pub data_dir: PathBuf,

    /// Database URL. Unset: SQLite at `<data-dir>/thor.db`. `postgres://…` switches to PostgreSQL.
    #[arg(long, env = "DATABASE_URL")]
    pub database_url: Option<String>,

    /// Log as JSON lines (for a log shipper) instead of human-readable text. Logs go to
    /// standard error; standard output carries only the command's own output.
    #[arg(long, env = "THOR_LOG_JSON", default_value_t = false)]
    pub log_json: bool,
}

impl DataArgs {
    /// The defaults with these flags applied.
    pub fn config(self) -> Config {
        Config {
            database_url: self.database_url,
            log_json: self.log_json,
            ..Config::new(self.data_dir)
        }
    }
}

/// The flags of `thor serve`.
#[derive(clap::Args, Clone, Debug)]
pub struct ServeArgs {
    #[command(flatten)]
    pub data: DataArgs,

    /// Address to listen on.
    #[arg(long, env = "THOR_ADDR", default_value_t = defaults::ADDR)]
    pub addr: SocketAddr,

    /// Lifetime of a device token, in hours. Phones work offline for hours, so the default is
    /// 30 days; a lost phone is revoked, not waited out.
    #[arg(long, env = "THOR_TOKEN_TTL_HOURS", default_value_t = defaults::TOKEN_TTL_HOURS)]
    pub token_ttl_hours: u32,

    /// Login attempts allowed per account per minute.
    #[arg(long, env = "THOR_LOGIN_PER_ACCOUNT_PER_MINUTE", default_value_t = defaults::LOGIN_PER_ACCOUNT_PER_MINUTE)]
    pub login_per_account_per_minute: u32,

    /// Login attempts allowed per client address per minute (an office behind one NAT address
    /// logs in a whole shift at once, so this is higher than the per-account limit).
    #[arg(long, env = "THOR_LOGIN_PER_ADDRESS_PER_MINUTE", default_value_t = defaults::LOGIN_PER_ADDRESS_PER_MINUTE)]
    pub login_per_address_per_minute: u32,

    /// Largest JSON body accepted, in bytes (photos have their own upload route and limit).
    #[arg(long, env = "THOR_MAX_BODY_BYTES", default_value_t = defaults::MAX_BODY_BYTES)]
    pub max_body_bytes: usize,

    /// Time limit for one request, in seconds.
    #[arg(long, env = "THOR_REQUEST_TIMEOUT_S", default_value_t = defaults::REQUEST_TIMEOUT_S)]
    pub request_timeout_s: u64,

    /// Connections in the read pool (SQLite) or the whole pool (PostgreSQL).
    #[arg(long, env = "THOR_DB_POOL", default_value_t = defaults::DB_POOL)]
    pub db_pool: u32,

    #[command(flatten)]
    pub horizons: HorizonArgs,

    /// Largest photo accepted, in bytes (published at `GET /api/v1/photos/limits`).
    #[arg(long, env = "THOR_PHOTO_MAX_BYTES", default_value_t = defaults::PHOTO_MAX_BYTES)]
    pub photo_max_bytes: u64,

    /// Largest photo accepted, in pixels (width × height); larger headers are refused before
    /// any pixel is decoded (decompression bombs).
    #[arg(long, env = "THOR_PHOTO_MAX_PIXELS", default_value_t = defaults::PHOTO_MAX_PIXELS)]
    pub photo_max_pixels: u64,

    /// Hours an unfinished upload is kept after its last byte.
    #[arg(long, env = "THOR_UPLOAD_EXPIRY_HOURS", default_value_t = defaults::UPLOAD_EXPIRY_HOURS)]
    pub upload_expiry_hours: u32,

    /// Derivative jobs run at once, at most (see also --derive-memory-mib).
    #[arg(long, env = "THOR_DERIVE_CONCURRENCY", default_value_t = defaults::DERIVE_CONCURRENCY)]
    pub derive_concurrency: usize,

    /// Memory all derivative jobs together may use, in MiB. Each job reserves its peak as
    /// estimated from the image's header before it decodes, and waits while the budget is taken.
    #[arg(long, env = "THOR_DERIVE_MEMORY_MIB", default_value_t = defaults::DERIVE_MEMORY_MIB)]
    pub derive_memory_mib: u32,

    /// The most memory one photo's derivatives may take, in MiB (estimated from the header;
    /// published at `GET /api/v1/photos/limits`). Baseline JPEG and non-interlaced PNG are
    /// decoded at reduced size within it up to the pixel limit; a progressive JPEG, a WebP or
    /// an interlaced PNG whose whole frame would not fit is refused. At most --derive-memory-mib.
    #[arg(long, env = "THOR_PHOTO_DECODE_MAX_MIB", default_value_t = defaults::PHOTO_DECODE_MAX_MIB)]
    pub photo_decode_max_mib: u32,

    #[command(flatten)]
    pub store: StoreArgs,

    #[command(flatten)]
    pub shifts: ShiftArgs,

    #[command(flatten)]
    pub retention: RetentionArgs,

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
    #[arg(long, env = "THOR_FOUR_EYES", default_value_t = defaults::FOUR_EYES, action = clap::ArgAction::Set)]
    pub four_eyes: bool,

    /// RDW open data, for the vehicle behind a kenteken at the spot; empty: not checked.
    #[arg(long, env = "THOR_RDW_URL", default_value = defaults::RDW_URL)]
    pub rdw_url: String,

    /// PDOK (the Locatieserver), for the address of a report's position on its documents;
    /// empty: not looked up (the wijk and buurt stand in).
    #[arg(long, env = "THOR_PDOK_URL", default_value = defaults::PDOK_URL)]
    pub pdok_url: String,
}

impl ServeArgs {
    pub fn config(self) -> Config {
        let mut c = self.data.config();
        c.addr = self.addr;
        c.token_ttl_hours = self.token_ttl_hours;
        c.login_per_account_per_minute = self.login_per_account_per_minute;
        c.login_per_address_per_minute = self.login_per_address_per_minute;
        c.max_body_bytes = self.max_body_bytes;
        c.request_timeout_s = self.request_timeout_s;
        c.db_pool = self.db_pool;
        self.horizons.apply(&mut c);
        c.photo_max_bytes = self.photo_max_bytes;
        c.photo_max_pixels = self.photo_max_pixels;
        c.upload_expiry_hours = self.upload_expiry_hours;
        c.derive_concurrency = self.derive_concurrency;
        c.derive_memory_mib = self.derive_memory_mib;
        c.photo_decode_max_mib = self.photo_decode_max_mib;
        self.store.apply(&mut c);
        self.shifts.apply(&mut c);
        c.retention = self.retention.retention;
        c.public_url = self.public_url;
        c.four_eyes = self.four_eyes;
        c.rdw_url = Some(self.rdw_url).filter(|u| !u.trim().is_empty());
        c.pdok_url = Some(self.pdok_url).filter(|u| !u.trim().is_empty());
        c
    }
}

/// How long phones keep records and the server keeps deletions (`serve` and `purge`).
#[derive(clap::Args, Clone, Debug)]
pub struct HorizonArgs {
    /// Days of a team's records a device keeps (older ones leave its scope as deletions).
    #[arg(long, env = "THOR_SYNC_WINDOW_DAYS", default_value_t = defaults::SYNC_WINDOW_DAYS)]
    pub sync_window_days: u32,

    /// Days deletions (tombstones) are kept for devices that were offline; an older cursor gets
    /// 410 and the device resyncs in full. At least --sync-window-days.
    #[arg(long, env = "THOR_TOMBSTONE_DAYS", default_value_t = defaults::TOMBSTONE_DAYS)]
    pub tombstone_days: u32,
}

impl HorizonArgs {
    pub fn apply(self, c: &mut Config) {
        c.sync_window_days = self.sync_window_days;
        c.tombstone_days = self.tombstone_days;
    }
}

/// The shift hours (`serve` and `briefing`).
#[derive(clap::Args, Clone, Debug)]
pub struct ShiftArgs {
    /// Start of the early, late and night shifts (Europe/Amsterdam, HH:MM,HH:MM,HH:MM), for the
    /// briefing.
    #[arg(long, env = "THOR_SHIFTS", default_value = defaults::SHIFTS)]
    pub shifts: String,
}

/// Where the photos are (`serve` and `retention run`).
#[derive(clap::Args, Clone, Debug)]
pub struct StoreArgs {
    /// S3 bucket for photos. Unset: photos live on disk under `<data-dir>/photos`.
    /// Credentials come from the usual `AWS_*` variables.
    #[arg(long, env = "THOR_S3_BUCKET")]
    pub s3_bucket: Option<String>,

    /// S3 endpoint for S3-compatible storage (MinIO, Ceph, a municipality's own).
    #[arg(long, env = "THOR_S3_ENDPOINT")]
    pub s3_endpoint: Option<String>,

    /// S3 region of the bucket.
    #[arg(long, env = "THOR_S3_REGION", default_value = defaults::S3_REGION)]
    pub s3_region: String,
}

impl StoreArgs {
    pub fn apply(self, c: &mut Config) {
        c.s3_bucket = self.s3_bucket;
        c.s3_endpoint = self.s3_endpoint;
        c.s3_region = self.s3_region;
    }
}

/// The retention terms (`serve` and `retention run`).
#[derive(clap::Args, Clone, Debug)]
pub struct RetentionArgs {
    /// Retention terms in days, per kind of record: `key=restricted/removed/destroyed` for
    /// police data (Wpg art. 8 and 14: 365/1825/3650), `key=destroyed` for the rest. Keys:
    /// `wpg` (every Wpg kind), violation.wpg, violation.avg, incident, youth_observation,
    /// youth_group, youth_person, briefing_doc, patrol_round, track_segment, briefing_note.
    /// Keys not given keep their default; see the README's retention table.
    #[arg(long, env = "THOR_RETENTION", default_value = defaults::RETENTION)]
    pub retention: String,
}

impl ShiftArgs {
    pub fn apply(self, c: &mut Config) {
        c.shifts = self.shifts;
    }
}

impl Config {
    /// Every setting at its default ([`defaults`]), the given data folder.
    pub fn new(data_dir: PathBuf) -> Self {
        Config {
            addr: defaults::ADDR,
            data_dir,
            database_url: None,
            token_ttl_hours: defaults::TOKEN_TTL_HOURS,
            login_per_account_per_minute: defaults::LOGIN_PER_ACCOUNT_PER_MINUTE,
            login_per_address_per_minute: defaults::LOGIN_PER_ADDRESS_PER_MINUTE,
            max_body_bytes: defaults::MAX_BODY_BYTES,
            request_timeout_s: defaults::REQUEST_TIMEOUT_S,
            db_pool: defaults::DB_POOL,
            sync_window_days: defaults::SYNC_WINDOW_DAYS,
            tombstone_days: defaults::TOMBSTONE_DAYS,
            photo_max_bytes: defaults::PHOTO_MAX_BYTES,
            photo_max_pixels: defaults::PHOTO_MAX_PIXELS,
            upload_expiry_hours: defaults::UPLOAD_EXPIRY_HOURS,
            derive_concurrency: defaults::DERIVE_CONCURRENCY,
            derive_memory_mib: defaults::DERIVE_MEMORY_MIB,
            photo_decode_max_mib: defaults::PHOTO_DECODE_MAX_MIB,
            s3_bucket: None,
            s3_endpoint: None,
            s3_region: defaults::S3_REGION.to_string(),
            shifts: defaults::SHIFTS.to_string(),
            log_json: false,
            public_url: None,
            four_eyes: defaults::FOUR_EYES,
            retention: defaults::RETENTION.to_string(),
            rdw_url: Some(defaults::RDW_URL.to_string()),
            pdok_url: Some(defaults::PDOK_URL.to_string()),
        }
    }

    /// A configuration for tests and embedding: everything default, the given data folder, a
    /// port the system picks, and no lookups outside (a test points them at its replay server).
    pub fn for_data_dir(data_dir: PathBuf) -> Self {
        Config {
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            rdw_url: None,
            pdok_url: None,
            ..Config::new(data_dir)
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

/// The URL with any password replaced, for logs; a URL that does not parse is not logged at all
/// (it could hold a password in a place no parser finds).
pub fn redact_url(raw: &str) -> String {
    match url::Url::parse(raw) {
        Ok(mut u) if u.password().is_some() => match u.set_password(Some("***")) {
            Ok(()) => u.to_string(),
            Err(()) => "(database URL withheld)".to_string(),
        },
        Ok(_) => raw.to_string(),
        Err(_) => "(database URL withheld: it does not parse)".to_string(),
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
        assert_eq!(
            redact_url("postgres://thor:p%40ss:w@db/thor?sslmode=require"),
            "postgres://thor:***@db/thor?sslmode=require"
        );
        assert!(!redact_url("postgres://thor:ge heim@db/thor").contains("heim"));
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
