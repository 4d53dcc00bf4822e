//! Test harness: start the real thor server on a random port against a fresh database (a
//! SQLite file in a temporary folder, or a fresh PostgreSQL database when `THOR_TEST_POSTGRES`
//! names a server) and drive it over HTTP with reqwest, as a phone would.

pub mod replay;

use std::net::SocketAddr;

use sea_orm::{ConnectionTrait, Database};
use serde_json::{Value, json};
use thor::app::{self, AppState};
use thor::config::Config;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// Which database a test runs on.
#[derive(Debug, Clone)]
pub enum Backend {
    Sqlite,
    /// The server URL from `THOR_TEST_POSTGRES`; each test gets its own database on it.
    Postgres(String),
}

/// The PostgreSQL backend when `THOR_TEST_POSTGRES` is set. When it is not, the calling test
/// is recorded as skipped ([`skipped`]); under CI (`CI=true`) a missing PostgreSQL is a
/// failure, not a skip.
pub fn postgres() -> Option<Backend> {
    match std::env::var("THOR_TEST_POSTGRES") {
        Ok(url) if !url.is_empty() => Some(Backend::Postgres(url)),
        _ => {
            if std::env::var("CI").is_ok_and(|v| v == "true") {
                panic!(
                    "CI=true but THOR_TEST_POSTGRES is not set: the PostgreSQL half of the suite would not run"
                );
            }
            skipped(
                "need PostgreSQL: set THOR_TEST_POSTGRES=postgres://postgres@127.0.0.1:5432/postgres",
            );
            None
        }
    }
}

/// Tests that returned early for want of a service, by reason. libtest has no skip of its own
/// decided at run time: such a test counts as passed, and what it prints is captured and
/// dropped. So the harness keeps the list and prints it when the test binary exits, after
/// libtest's `test result:` line, on standard error (which nothing captures at that point).
static SKIPPED: std::sync::Mutex<
    std::collections::BTreeMap<&'static str, std::collections::BTreeSet<String>>,
> = std::sync::Mutex::new(std::collections::BTreeMap::new());
static REPORT_AT_EXIT: std::sync::Once = std::sync::Once::new();

/// Records that the running test did not run (`why`: what it needs, and how to provide it),
/// once per test however often it is called, and makes sure the summary is printed at exit.
pub fn skipped(why: &'static str) {
    // libtest runs each test on a thread named after the test.
    let test = std::thread::current()
        .name()
        .unwrap_or("(unnamed test thread)")
        .to_string();
    SKIPPED
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .entry(why)
        .or_default()
        .insert(test);
    REPORT_AT_EXIT.call_once(|| {
        // SAFETY: registers a plain `extern "C" fn` without arguments, as atexit expects.
        unsafe {
            libc::atexit(report_skipped);
        }
    });
}

/// The exit handler: writes straight to file descriptor 2, since Rust's standard streams and
/// thread-locals may already be torn down when `exit` runs it.
extern "C" fn report_skipped() {
    let skipped = SKIPPED.lock().unwrap_or_else(|e| e.into_inner());
    let total: usize = skipped.values().map(|t| t.len()).sum();
    if total == 0 {
        return;
    }
    let mut out = format!(
        "\n*** SKIPPED: {total} test(s) of this binary did not run (libtest counts them as passed above):\n"
    );
    for (why, tests) in skipped.iter() {
        out.push_str(&format!("***   {:>3} {why}\n", tests.len()));
        if tests.len() <= 3 {
            for t in tests {
                out.push_str(&format!("***         {t}\n"));
            }
        }
    }
    out.push('\n');
    let mut bytes = out.as_bytes();
    while !bytes.is_empty() {
        // SAFETY: writes from a live buffer of `bytes.len()` bytes.
        let n = unsafe { libc::write(2, bytes.as_ptr().cast(), bytes.len()) };
        if n <= 0 {
            break;
        }
        bytes = &bytes[n as usize..];
    }
}

/// Runs an async test body once on SQLite and once on PostgreSQL (when configured):
/// `both!(name);` next to `async fn name(backend: Backend)`.
#[macro_export]
macro_rules! both {
    ($($name:ident),+ $(,)?) => {
        $(
            mod $name {
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn sqlite() {
                    super::$name($crate::Backend::Sqlite).await
                }
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn postgres() {
                    if let Some(b) = $crate::postgres() {
                        super::$name(b).await
                    }
                }
            }
        )+
    };
}

/// A fresh PostgreSQL database, dropped when the guard goes.
struct PgDatabase {
    admin_url: String,
    name: String,
}

impl Drop for PgDatabase {
    fn drop(&mut self) {
        let admin = self.admin_url.clone();
        let name = self.name.clone();
        // Drop runs outside async context; use a private runtime on a thread of its own.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .ok()?;
            rt.block_on(async {
                let db = Database::connect(&admin).await.ok()?;
                db.execute_unprepared(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
                    .await
                    .ok()?;
                db.close().await.ok()
            })
        })
        .join();
    }
}

fn with_database(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let after_scheme = base.find("://").map(|i| i + 3).unwrap_or(0);
    let host_end = base[after_scheme..]
        .find('/')
        .map(|i| i + after_scheme)
        .unwrap_or(base.len());
    let mut out = format!("{}/{}", &base[..host_end], name);
    if let Some(q) = query {
        out.push('?');
        out.push_str(q);
    }
    out
}

type Served = (
    AppState,
    SocketAddr,
    oneshot::Sender<()>,
    JoinHandle<anyhow::Result<()>>,
);

/// Opens the server state of `config` and serves it on a random port until the sender fires.
async fn serve_config(config: Config) -> Served {
    let state = AppState::open(config).await.expect("open the server state");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("local addr");
    let (tx, rx) = oneshot::channel::<()>();
    let server = tokio::spawn(app::serve(state.clone(), listener, async move {
        let _ = rx.await;
    }));
    (state, addr, tx, server)
}

/// The password of the users [`TestApp::user`] makes.
pub const USER_PASSWORD: &str = "lange wachtzin voor test";

pub struct TestApp {
    pub addr: SocketAddr,
    pub base: String,
    pub client: reqwest::Client,
    /// The server's state: its database, for checking what was (not) written.
    pub state: AppState,
    pub backend: Backend,
    shutdown: Option<oneshot::Sender<()>>,
    server: Option<JoinHandle<anyhow::Result<()>>>,
    _dir: tempfile::TempDir,
    _pg: Option<PgDatabase>,
}

impl TestApp {
    pub async fn spawn(backend: Backend) -> TestApp {
        Self::spawn_with(backend, |_| {}).await
    }

    /// Starts a server; `tweak` adjusts the configuration first.
    pub async fn spawn_with(backend: Backend, tweak: impl FnOnce(&mut Config)) -> TestApp {
        let dir = tempfile::tempdir().expect("temporary folder");
        let mut config = Config::for_data_dir(dir.path().join("data"));
        let pg = match &backend {
            Backend::Sqlite => None,
            Backend::Postgres(admin) => {
                let name = format!("thor_test_{}", uuid::Uuid::new_v4().simple());
                let db = Database::connect(admin)
                    .await
                    .expect("connect to THOR_TEST_POSTGRES");
                db.execute_unprepared(&format!("CREATE DATABASE \"{name}\""))
                    .await
                    .expect("create test database");
                db.close().await.ok();
                config.database_url = Some(with_database(admin, &name));
                Some(PgDatabase {
                    admin_url: admin.clone(),
                    name,
                })
            }
        };
        tweak(&mut config);
        TestApp::on(config, backend, dir, pg).await
    }

    /// Stops this server (as `stop` does) and starts a new one on the same configuration: the
    /// same database and data folder, a new port. What a restart after a crash finds.
    pub async fn restart(mut self) -> TestApp {
        self.begin_shutdown();
        self.wait_server().await;
        let config = (*self.state.config).clone();
        let pg = self._pg.take();
        TestApp::on(config, self.backend.clone(), self._dir, pg).await
    }

    /// A second server instance on this one's database, with a data folder of its own (its own
    /// pools, batchers and upload staging), as behind a load balancer. Stop it before this one.
    pub async fn another_instance(&self) -> TestApp {
        let dir = tempfile::tempdir().expect("temporary folder");
        let config = Config {
            data_dir: dir.path().join("data"),
            ..(*self.state.config).clone()
        };
        TestApp::on(config, self.backend.clone(), dir, None).await
    }

    /// A server on `config`, keeping `dir` (and the PostgreSQL database `pg`) while it runs.
    async fn on(
        config: Config,
        backend: Backend,
        dir: tempfile::TempDir,
        pg: Option<PgDatabase>,
    ) -> TestApp {
        let (state, addr, shutdown, server) = serve_config(config).await;
        TestApp {
            addr,
            base: format!("http://{addr}"),
            client: reqwest::Client::builder().build().expect("client"),
            state,
            backend,
            shutdown: Some(shutdown),
            server: Some(server),
            _dir: dir,
            _pg: pg,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// Loads the demo day (today, 150 violations, the demo seed) through the write paths.
    pub async fn load_demo(&self) -> thor::demo::Scenario {
        let scenario =
            thor::demo::generate(&self.state.reference, thor::demo::today(), 150, 0x7400);
        thor::demo::load(&self.state, &scenario)
            .await
            .expect("load demo");
        scenario
    }

    /// Creates the demo accounts only (password `demo`).
    pub async fn demo_accounts(&self) {
        thor::demo::ensure_accounts(&self.state)
            .await
            .expect("demo accounts");
    }

    pub async fn login_response(
        &self,
        username: &str,
        password: &str,
        device: &str,
    ) -> reqwest::Response {
        self.client
            .post(self.url("/api/v1/auth/login"))
            .json(&json!({ "username": username, "password": password, "device_id": device }))
            .send()
            .await
            .expect("login request")
    }

    /// Logs in a demo account (password `demo`) and returns the bearer token; panics when
    /// login fails.
    pub async fn login(&self, username: &str, device: &str) -> String {
        self.login_with(username, "demo", device).await
    }

    /// Logs in with a password and returns the bearer token; panics when login fails.
    pub async fn login_with(&self, username: &str, password: &str, device: &str) -> String {
        let res = self.login_response(username, password, device).await;
        assert_eq!(res.status(), 200, "login of {username}");
        let body: Value = res.json().await.expect("login json");
        body["token"].as_str().expect("token").to_string()
    }

    /// Logs in on the web page's form as a browser would: a client that does not follow
    /// redirects, the session cookie (`name=value`) and where the login sent it.
    pub async fn page_login(
        &self,
        username: &str,
        password: &str,
    ) -> (reqwest::Client, String, String) {
        let browser = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("client");
        let form = serde_urlencoded::to_string([("username", username), ("password", password)])
            .expect("form");
        let res = browser
            .post(self.url("/login"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form)
            .send()
            .await
            .expect("login form");
        assert_eq!(res.status(), 303, "form login of {username}");
        let location = res.headers()["location"]
            .to_str()
            .expect("location")
            .to_string();
        let cookie = res.headers()["set-cookie"]
            .to_str()
            .expect("cookie")
            .split(';')
            .next()
            .expect("cookie value")
            .to_string();
        (browser, cookie, location)
    }

    /// A user of `team` (created when new) made by the demo beheerder through the API, logged in
    /// on a device of their own: their id and token. The password is [`USER_PASSWORD`].
    pub async fn user(
        &self,
        username: &str,
        role: &str,
        team: &str,
        wpg: bool,
    ) -> (String, String) {
        let admin = self.login("beheerder", "user-admin").await;
        let res = self
            .post(
                &admin,
                "/api/v1/users",
                &json!({ "username": username, "role": role, "team": team,
                         "password": USER_PASSWORD, "wpg_authorised": wpg }),
            )
            .send()
            .await
            .expect("create user");
        assert_eq!(res.status(), 201, "create {username}");
        let user: Value = res.json().await.expect("user json");
        let res = self
            .login_response(username, USER_PASSWORD, &format!("device-{username}"))
            .await;
        assert_eq!(res.status(), 200, "login of {username}");
        let token: Value = res.json().await.expect("login json");
        (
            user["id"].as_str().expect("user id").to_string(),
            token["token"].as_str().expect("token").to_string(),
        )
    }

    pub fn get(&self, token: &str, path: &str) -> reqwest::RequestBuilder {
        self.client.get(self.url(path)).bearer_auth(token)
    }

    /// GETs `path` and reads the answer as JSON; panics when there is no JSON answer.
    pub async fn get_json(&self, token: &str, path: &str) -> Value {
        let res = self.get(token, path).send().await.expect("GET");
        res.json()
            .await
            .unwrap_or_else(|e| panic!("GET {path}: no JSON: {e}"))
    }

    pub fn post(&self, token: &str, path: &str, body: &Value) -> reqwest::RequestBuilder {
        self.client
            .post(self.url(path))
            .bearer_auth(token)
            .json(body)
    }

    pub fn patch(&self, token: &str, path: &str, body: &Value) -> reqwest::RequestBuilder {
        self.client
            .patch(self.url(path))
            .bearer_auth(token)
            .json(body)
    }

    /// Counts rows of a table, to check that nothing was written.
    pub async fn count(&self, table: &str) -> i64 {
        self.scalar(&format!("SELECT COUNT(*) AS n FROM {table}"))
            .await
    }

    /// The integer column `n` of the first row `sql` answers.
    pub async fn scalar(&self, sql: &str) -> i64 {
        let row = self
            .state
            .db
            .read
            .query_one_raw(sea_orm::Statement::from_string(
                self.state.db.backend(),
                sql.to_string(),
            ))
            .await
            .expect("query")
            .unwrap_or_else(|| panic!("no row for {sql}"));
        row.try_get::<i64>("", "n").expect("n")
    }

    pub async fn last_seq(&self) -> i64 {
        thor::sync::last_seq(&self.state.db.read)
            .await
            .expect("last_seq")
    }

    /// Signals shutdown and waits for the server to finish in-flight requests.
    pub async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(h) = self.server.take() {
            h.await.expect("server task").expect("server result");
        }
    }

    /// Signals shutdown without waiting.
    pub fn begin_shutdown(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }

    /// Waits for the server to stop (after `begin_shutdown`), keeping its database and data
    /// folder: a `restart` may follow.
    pub async fn wait_server(&mut self) {
        if let Some(h) = self.server.take() {
            h.await.expect("server task").expect("server result");
        }
    }

    pub async fn wait_stopped(mut self) {
        if let Some(h) = self.server.take() {
            h.await.expect("server task").expect("server result");
        }
    }
}

/// A valid new report at a point well inside IJmuiden (Stadhuisbuurt), observed a minute ago.
pub fn report(id: uuid::Uuid) -> Value {
    let now = chrono::Utc::now() - chrono::Duration::minutes(1);
    json!({
        "id": id,
        "category": "parkeren",
        "feitcode": "R397a",
        "observed_at": now.to_rfc3339(),
        "location": { "lat": 52.4599, "lon": 4.6218, "accuracy_m": 6.5, "source": "gps", "fix_time": now.to_rfc3339() },
        "description": "Geparkeerd op de stoep",
        "outcome": "fine",
        "plate": "12-abc-3",
        "driver_present": false
    })
}

/// An AVG report: dumped waste removed, no plate (the same fields as [`report`] otherwise).
pub fn avg_report(id: uuid::Uuid, description: &str) -> Value {
    let mut r = report(id);
    r["category"] = json!("afval");
    r["feitcode"] = Value::Null;
    r["outcome"] = json!("removed");
    r["plate"] = Value::Null;
    r["driver_present"] = Value::Null;
    r["description"] = json!(description);
    r
}

/// Asserts a problem+json answer with this status whose `errors` (or detail) names `field`.
pub async fn assert_problem(res: reqwest::Response, status: u16, field: Option<&str>) -> Value {
    assert_eq!(res.status().as_u16(), status, "status");
    let ct = res
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    assert_eq!(ct, "application/problem+json", "content type");
    let body: Value = res.json().await.expect("problem json");
    assert_eq!(body["status"], status);
    assert!(
        body["type"]
            .as_str()
            .is_some_and(|t| t.starts_with("urn:thor:problem:"))
    );
    if let Some(f) = field {
        let named = body["errors"]
            .as_array()
            .is_some_and(|e| e.iter().any(|e| e["field"] == f));
        assert!(named, "problem names field {f}: {body}");
    }
    body
}

/// Sends raw bytes on a fresh connection and reads the response: status, head and body text.
/// For requests a well-behaved client cannot make (a declared 10 MB body that never comes).
pub async fn raw_request(addr: SocketAddr, request: &str) -> (u16, String, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await.expect("connect");
    s.write_all(request.as_bytes()).await.expect("write");
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    loop {
        let read =
            tokio::time::timeout(std::time::Duration::from_secs(5), s.read(&mut chunk)).await;
        match read {
            Ok(Ok(0)) | Ok(Err(_)) | Err(_) => break,
            Ok(Ok(n)) => buf.extend_from_slice(&chunk[..n]),
        }
        let text = String::from_utf8_lossy(&buf);
        if let Some(i) = text.find("\r\n\r\n") {
            let head = &text[..i];
            let len = head.lines().find_map(|l| {
                l.to_lowercase()
                    .strip_prefix("content-length:")
                    .map(|v| v.trim().parse::<usize>().unwrap_or(0))
            });
            if let Some(len) = len
                && buf.len() >= i + 4 + len
            {
                break;
            }
        }
    }
    let text = String::from_utf8_lossy(&buf).to_string();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, head.to_string(), body.to_string())
}

/// The live rows of `table` in a pull answer: `created` (records the device never had) and
/// `updated`, in that order.
pub fn pulled_rows(pull: &Value, table: &str) -> Vec<Value> {
    ["created", "updated"]
        .iter()
        .flat_map(|k| {
            pull["changes"][table][k]
                .as_array()
                .cloned()
                .unwrap_or_default()
        })
        .collect()
}
