//! Opening an installation: connect, check the master secret against the stored
//! key-check value *before* touching anything, then migrate (and on a first start,
//! record the installation salt and key check).

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow, bail};
use ward_core::audit::actions;
use ward_core::{Actor, AuditEvent, EventId, RequestContext, Timestamp};
use ward_crypto::{InstallationSalt, KeyCheckValue, MasterSecret, OsRandom, SecureRandom};
use ward_server::{Clock, Keys, SystemClock};
use ward_store::{Conflict, ConnectSettings, InstallationRecord, Store, StoreError};

use crate::config::Settings;

pub struct Installation {
    pub store: Store,
    pub master: MasterSecret,
    pub salt: InstallationSalt,
    /// The master version the configured secret wraps tenant keys under.
    pub master_version: u32,
    /// While a master-secret rotation is in progress: the secret being replaced
    /// and its version.
    pub previous: Option<(MasterSecret, u32)>,
}

impl Installation {
    pub fn keys(&self) -> Keys {
        Keys::derive(
            &self.master,
            &self.salt,
            self.master_version,
            self.previous.as_ref().map(|(m, v)| (m, *v)),
        )
    }
}

pub fn new_event_id() -> Result<EventId> {
    let b: [u8; 16] = OsRandom
        .bytes()
        .map_err(|_| anyhow!("the OS random number generator failed"))?;
    Ok(EventId::from_random(b))
}

pub fn cli_context() -> Result<RequestContext> {
    let b: [u8; 16] = OsRandom
        .bytes()
        .map_err(|_| anyhow!("the OS random number generator failed"))?;
    Ok(RequestContext::cli(
        b.iter().map(|x| format!("{x:02x}")).collect(),
    ))
}

/// Connects, verifies the master secret, migrates. Nothing is written before the
/// secret is known to be right.
pub async fn open(settings: &Settings) -> Result<Installation> {
    let store = connect(settings).await?;
    let existing = store
        .installation()
        .await
        .map_err(|e| anyhow!("cannot read the database: {e}"))?;
    let key_file = settings.data_dir.join("master.key");
    let configured = configured_secret(settings, &key_file)?;
    let mut previous = None;
    let (master, salt, master_version) = match existing {
        Some(record) => {
            let master = configured.ok_or_else(|| {
                anyhow!(
                    "no master secret: set WARD_MASTER_SECRET or master_secret_file (this installation was \
                     initialised with a master secret, and {} does not exist)",
                    key_file.display()
                )
            })?;
            let previous_secret = configured_previous(settings)?;
            let (salt, version) = match (verify(&master, &record), previous_secret) {
                (Ok(salt), _) => (salt, record.master_version),
                // A master-secret rotation in progress: the configured secret is the
                // new one, the previous one still matches the installation.
                (Err(_), Some(prev)) => {
                    let salt = verify(&prev, &record).map_err(|_| {
                        anyhow!("neither master_secret nor previous_master_secret matches this installation; refusing to start, nothing was changed")
                    })?;
                    previous = Some((prev, record.master_version));
                    (salt, record.master_version + 1)
                }
                (Err(e), None) => return Err(e),
            };
            store
                .migrate()
                .await
                .map_err(|e| anyhow!("migration failed: {e}"))?;
            (master, salt, version)
        }
        None => {
            let master = match configured {
                Some(m) => m,
                None => generate_key_file(&key_file)?,
            };
            store
                .migrate()
                .await
                .map_err(|e| anyhow!("migration failed: {e}"))?;
            let salt =
                InstallationSalt::generate(&OsRandom).map_err(|_| anyhow!("randomness failed"))?;
            let record = InstallationRecord {
                salt: salt.as_bytes().to_vec(),
                key_check: master.key_check(&salt).as_bytes().to_vec(),
                master_version: 1,
            };
            let event = AuditEvent::new(
                new_event_id()?,
                SystemClock.now(),
                None,
                Actor::system("ward"),
                cli_context()?,
                actions::INSTALLATION_INITIALIZED,
            );
            match store.initialize_installation(&record, &event).await {
                Ok(()) => (master, salt, 1),
                // Another instance initialised it first: check against theirs.
                Err(StoreError::Conflict(Conflict::AlreadyInitialized)) => {
                    let theirs = store
                        .installation()
                        .await?
                        .ok_or_else(|| anyhow!("installation row vanished"))?;
                    let salt = verify(&master, &theirs)?;
                    (master, salt, theirs.master_version)
                }
                Err(e) => return Err(anyhow!("cannot initialise the installation: {e}")),
            }
        }
    };
    Ok(Installation {
        store,
        master,
        salt,
        master_version,
        previous,
    })
}

fn verify(master: &MasterSecret, record: &InstallationRecord) -> Result<InstallationSalt> {
    let salt = InstallationSalt::from_bytes(&record.salt)
        .map_err(|_| anyhow!("the stored installation salt is corrupt"))?;
    let stored = KeyCheckValue::from_bytes(&record.key_check)
        .ok_or_else(|| anyhow!("the stored key check is corrupt"))?;
    if !master.key_check(&salt).matches(&stored) {
        bail!(
            "the master secret does not match this installation (key check failed); refusing to start, nothing was changed"
        );
    }
    Ok(salt)
}

/// Connects to the configured database (creating the SQLite data directory).
pub async fn connect(settings: &Settings) -> Result<Store> {
    let url = settings.database_url();
    if url.starts_with("sqlite:") {
        std::fs::create_dir_all(&settings.data_dir).with_context(|| {
            format!(
                "cannot create data directory {}",
                settings.data_dir.display()
            )
        })?;
    }
    Store::connect(
        &url,
        ConnectSettings {
            max_connections: settings.database_max_connections,
            ..Default::default()
        },
    )
    .await
    .map_err(|e| anyhow!("cannot open the database: {e}"))
}

/// Reads a file holding a base64 master secret.
pub fn read_secret_file(path: &Path) -> Result<MasterSecret> {
    let text = zeroize::Zeroizing::new(
        std::fs::read_to_string(path)
            .with_context(|| format!("cannot read master secret file {}", path.display()))?,
    );
    MasterSecret::from_base64(&text).map_err(|_| {
        anyhow!(
            "master secret file {}: must hold base64 of at least 32 bytes",
            path.display()
        )
    })
}

fn configured_previous(settings: &Settings) -> Result<Option<MasterSecret>> {
    if let Some(s) = &settings.previous_master_secret {
        return Ok(Some(MasterSecret::from_base64(s.expose()).map_err(
            |_| anyhow!("previous_master_secret: must be base64 of at least 32 bytes"),
        )?));
    }
    settings
        .previous_master_secret_file
        .as_deref()
        .map(read_secret_file)
        .transpose()
}

pub fn configured_secret(settings: &Settings, key_file: &Path) -> Result<Option<MasterSecret>> {
    if let Some(s) = &settings.master_secret {
        return Ok(Some(MasterSecret::from_base64(s.expose()).map_err(
            |_| anyhow!("master_secret: must be base64 of at least 32 bytes"),
        )?));
    }
    let path: Option<PathBuf> = settings
        .master_secret_file
        .clone()
        .or_else(|| key_file.is_file().then(|| key_file.to_path_buf()));
    let Some(path) = path else { return Ok(None) };
    let text = zeroize::Zeroizing::new(
        std::fs::read_to_string(&path)
            .with_context(|| format!("cannot read master secret file {}", path.display()))?,
    );
    Ok(Some(MasterSecret::from_base64(&text).map_err(|_| {
        anyhow!(
            "master secret file {}: must hold base64 of at least 32 bytes",
            path.display()
        )
    })?))
}

fn generate_key_file(path: &Path) -> Result<MasterSecret> {
    let master = MasterSecret::generate(&OsRandom).map_err(|_| anyhow!("randomness failed"))?;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts
        .open(path)
        .with_context(|| format!("cannot create {}", path.display()))?;
    f.write_all(master.to_base64().as_bytes())?;
    f.write_all(b"\n")?;
    f.sync_all()?;
    tracing::warn!(
        path = %path.display(),
        "generated a new master secret and stored it next to the data; in production, supply it from a \
         secrets backend (WARD_MASTER_SECRET or master_secret_file) and keep it away from database backups"
    );
    Ok(master)
}

/// Milliseconds now, for CLI-made changes.
pub fn now() -> Timestamp {
    SystemClock.now()
}
