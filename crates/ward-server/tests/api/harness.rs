//! `spawn_app`: the real app on 127.0.0.1:0 over a fresh database, a controllable
//! clock, and helpers to make companies, users and signed-in clients.

use std::io::Write;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use reqwest::{Method, RequestBuilder, Response, StatusCode};
use serde_json::{Value, json};
use ward_core::audit::actions;
use ward_core::tenant::Tenant;
use ward_core::user::User;
use ward_core::{
    Actor, AuditEvent, Email, EventId, RequestContext, Role, TenantId, Timestamp, UserId,
};
use ward_crypto::{
    InstallationSalt, MasterSecret, OsRandom, PasswordHashParams, PasswordHashing, SecureRandom,
};
use ward_server::{AppState, Clock, Keys, ServerSettings};
use ward_store::testing::TestDatabase;
use ward_store::{AuditFilter, Backend, ConnectSettings, Store};

pub const PASSWORD: &str = "correct horse battery staple";

/// A clock tests move by hand.
pub struct TestClock(AtomicI64);

impl TestClock {
    pub fn advance_secs(&self, secs: i64) {
        self.0.fetch_add(secs * 1000, Ordering::SeqCst);
    }
}

impl Clock for TestClock {
    fn now(&self) -> Timestamp {
        Timestamp::from_millis(self.0.load(Ordering::SeqCst))
    }
}

/// Logs from every app in this test process, for the "no secret logged" test.
pub fn captured_logs() -> &'static Mutex<Vec<u8>> {
    static LOGS: OnceLock<Mutex<Vec<u8>>> = OnceLock::new();
    LOGS.get_or_init(|| Mutex::new(Vec::new()))
}

struct LogWriter;
impl Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if let Ok(mut l) = captured_logs().lock() {
            l.extend_from_slice(buf);
        }
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn init_logs() {
    static INIT: OnceLock<()> = OnceLock::new();
    INIT.get_or_init(|| {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new(
                "debug,hyper=info,h2=info",
            ))
            .with_writer(|| LogWriter)
            .json()
            .try_init();
    });
}

pub struct TestApp {
    pub addr: SocketAddr,
    pub state: AppState,
    pub store: Store,
    pub clock: Arc<TestClock>,
    pub http: reqwest::Client,
    pub master: MasterSecret,
    pub salt: InstallationSalt,
    _db: TestDatabase,
    _server: tokio::task::JoinHandle<()>,
}

/// Settings for tests: limits high enough for the suite, weak hashing.
pub fn test_settings() -> ServerSettings {
    let mut s = ServerSettings::default();
    s.rate_limit.requests_per_second = 10_000;
    s.rate_limit.burst = 10_000;
    s.rate_limit.login_per_minute = 10_000;
    // Tests drive key maintenance themselves (`key_maintenance::run_pass`); the
    // background loop only makes its start-up pass.
    s.key_maintenance.idle_interval = std::time::Duration::from_secs(3600);
    // The suite's stand-ins (identity providers, sink receivers) listen on
    // loopback; egress tests clear this to see the default refusal.
    s.egress = loopback_allowed();
    s
}

/// An egress policy that lets Ward reach listeners on this machine.
pub fn loopback_allowed() -> ward_core::egress::EgressPolicy {
    ward_core::egress::EgressPolicy::with_allow_list(&["127.0.0.0/8", "::1/128"])
        .expect("loopback allow-list")
}

pub async fn spawn_app(backend: Backend) -> TestApp {
    spawn_app_with(backend, |_| {}).await
}

pub async fn spawn_app_with(backend: Backend, tweak: impl FnOnce(&mut ServerSettings)) -> TestApp {
    let db = TestDatabase::new(backend).await;
    let store = Store::connect(&db.url, ConnectSettings::default())
        .await
        .expect("connect");
    store.migrate().await.expect("migrate");
    let master = MasterSecret::generate(&OsRandom).expect("secret");
    let salt = InstallationSalt::generate(&OsRandom).expect("salt");
    spawn_on(db, store, master, salt, tweak).await
}

async fn spawn_on(
    db: TestDatabase,
    store: Store,
    master: MasterSecret,
    salt: InstallationSalt,
    tweak: impl FnOnce(&mut ServerSettings),
) -> TestApp {
    init_logs();
    ward_server::install_crypto_provider();
    let mut settings = test_settings();
    tweak(&mut settings);
    let keys = Keys::derive(&master, &salt, 1, None);
    let hashing = PasswordHashing::new(PasswordHashParams::danger_insecure_for_tests(), &OsRandom)
        .expect("hashing");
    let clock = Arc::new(TestClock(AtomicI64::new(1_800_000_000_000)));
    let state = AppState::new(
        store.clone(),
        settings,
        keys,
        hashing,
        clock.clone(),
        Arc::new(OsRandom),
    );
    let app_state = state.clone();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let server = tokio::spawn(async move {
        // Surfaced, not dropped: a serve error fails loudly with its cause.
        if let Err(e) = ward_server::serve(state, listener, std::future::pending()).await {
            panic!("ward_server::serve failed: {e}");
        }
    });
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    TestApp {
        addr,
        state: app_state,
        store,
        clock,
        http,
        master,
        salt,
        _db: db,
        _server: server,
    }
}

/// A caller: anonymous, a session cookie, or a bearer token.
#[derive(Clone, Debug)]
pub enum Auth {
    None,
    Cookie(String),
    Bearer(String),
}

pub struct Member {
    pub id: String,
    pub auth: Auth,
}

pub fn random16() -> [u8; 16] {
    OsRandom.bytes().expect("random")
}

fn event(tenant: Option<&TenantId>, action: &'static str) -> AuditEvent {
    AuditEvent::new(
        EventId::from_random(random16()),
        Timestamp::from_millis(1),
        tenant.cloned(),
        Actor::system("test"),
        RequestContext::cli("test".into()),
        action,
    )
}

impl TestApp {
    pub fn db_url(&self) -> String {
        self._db.url.clone()
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub fn req(&self, method: Method, path: &str, auth: &Auth) -> RequestBuilder {
        let b = self.http.request(method, self.url(path));
        match auth {
            Auth::None => b,
            Auth::Cookie(c) => b.header("cookie", c),
            Auth::Bearer(t) => b.header("authorization", format!("Bearer {t}")),
        }
    }

    pub async fn get(&self, path: &str, auth: &Auth) -> Response {
        self.req(Method::GET, path, auth)
            .send()
            .await
            .expect("send")
    }

    pub async fn send_json(
        &self,
        method: Method,
        path: &str,
        auth: &Auth,
        body: Value,
    ) -> Response {
        self.req(method, path, auth)
            .json(&body)
            .send()
            .await
            .expect("send")
    }

    pub async fn tenant(&self, slug: &str) -> TenantId {
        let t = Tenant {
            id: TenantId::from_random(random16()),
            name: slug.to_uppercase(),
            slug: slug.to_owned(),
            created_at: Timestamp::from_millis(1),
        };
        self.store
            .create_tenant(&t, &event(Some(&t.id), actions::TENANT_CREATED))
            .await
            .expect("tenant");
        t.id
    }

    /// Marks `domain` verified for `tenant`, as `ward tenant domain verify` does.
    pub async fn verify_domain(&self, tenant: &TenantId, domain: &str) {
        let claims = self.store.domain_claims(tenant).await.expect("claims");
        if claims
            .iter()
            .any(|c| c.domain == domain && c.verified_at.is_some())
        {
            return;
        }
        if !claims.iter().any(|c| c.domain == domain) {
            let claim = ward_store::DomainClaim {
                tenant_id: tenant.clone(),
                domain: domain.to_owned(),
                token: "test-token".to_owned(),
                verified_at: None,
                verified_by: None,
                created_at: Timestamp::from_millis(1),
            };
            self.store
                .add_domain_claim(&claim, &event(Some(tenant), actions::DOMAIN_ADDED))
                .await
                .expect("claim");
        }
        let done = self
            .store
            .verify_domain_claim(
                tenant,
                domain,
                Timestamp::from_millis(2),
                "operator",
                &event(Some(tenant), actions::DOMAIN_VERIFIED),
            )
            .await
            .expect("verify");
        assert!(done);
    }

    /// A user made directly in the store (as the CLI does), not yet signed in.
    pub async fn user(&self, tenant: &TenantId, email: &str, role: Role) -> String {
        let hashing =
            PasswordHashing::new(PasswordHashParams::danger_insecure_for_tests(), &OsRandom)
                .expect("h");
        let phc = hashing.hash(PASSWORD, &OsRandom).expect("hash");
        let u = User {
            id: UserId::from_random(random16()),
            tenant_id: tenant.clone(),
            email: Email::parse(email).expect("email"),
            display_name: email.to_owned(),
            role,
            disabled: false,
            created_at: Timestamp::from_millis(1),
            updated_at: Timestamp::from_millis(1),
        };
        self.store
            .create_user(
                &u,
                Some(phc.as_str()),
                &event(Some(tenant), actions::USER_CREATED),
            )
            .await
            .expect("user");
        u.id.to_string()
    }

    /// Signs in and returns the `Cookie:` header value.
    pub async fn login(&self, email: &str, password: &str) -> String {
        let r = self
            .send_json(
                Method::POST,
                "/api/v1/auth/login",
                &Auth::None,
                json!({"email": email, "password": password}),
            )
            .await;
        assert_eq!(r.status(), StatusCode::OK, "login {email}");
        let set = r
            .headers()
            .get("set-cookie")
            .expect("set-cookie")
            .to_str()
            .expect("ascii")
            .to_owned();
        set.split(';').next().expect("cookie pair").to_owned()
    }

    /// A user of `role` in `tenant`, signed in.
    pub async fn member(&self, tenant: &TenantId, email: &str, role: Role) -> Member {
        let id = self.user(tenant, email, role).await;
        let cookie = self.login(email, PASSWORD).await;
        Member {
            id,
            auth: Auth::Cookie(cookie),
        }
    }

    /// Creates an API token from a session and returns its secret.
    pub async fn token(&self, member: &Member, scope: Option<&str>) -> String {
        let mut body = json!({"name": "ci"});
        if let Some(s) = scope {
            body["scope"] = json!(s);
        }
        let r = self
            .send_json(Method::POST, "/api/v1/tokens", &member.auth, body)
            .await;
        assert_eq!(r.status(), StatusCode::CREATED);
        let v: Value = r.json().await.expect("json");
        v["secret"].as_str().expect("secret").to_owned()
    }

    pub async fn audit_actions(&self, tenant: &TenantId) -> Vec<(String, String)> {
        self.store
            .list_audit(&AuditFilter {
                tenant_id: Some(tenant.clone()),
                limit: 1000,
                ..Default::default()
            })
            .await
            .expect("audit")
            .into_iter()
            .map(|e| (e.action, e.outcome))
            .collect()
    }

    /// Every action in the trail, any company or none, newest first.
    pub async fn audit_actions_all(&self) -> Vec<String> {
        self.store
            .list_audit(&AuditFilter {
                limit: 100_000,
                ..Default::default()
            })
            .await
            .expect("audit")
            .into_iter()
            .map(|e| e.action)
            .collect()
    }

    pub async fn audit_count(&self) -> usize {
        self.store
            .list_audit(&AuditFilter {
                limit: 100_000,
                ..Default::default()
            })
            .await
            .expect("audit")
            .len()
    }
}

/// Waits until the sequencer has integrated every event so far.
pub async fn integrated(app: &TestApp) -> u64 {
    for _ in 0..100 {
        if app.store.audit_pending_count().await.expect("pending") == 0 {
            return app.store.audit_tree_size().await.expect("size");
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("the sequencer did not integrate within 5 s");
}

/// Reads a problem+json body and checks its status and code.
pub async fn expect_problem(r: Response, status: StatusCode, code: &str) -> Value {
    assert_eq!(r.status(), status, "status for expected {code}");
    let ct = r
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap_or_default().to_owned());
    assert_eq!(ct.as_deref(), Some("application/problem+json"));
    let v: Value = r.json().await.expect("problem json");
    assert_eq!(v["code"], code, "{v}");
    assert_eq!(v["status"], status.as_u16());
    v
}
