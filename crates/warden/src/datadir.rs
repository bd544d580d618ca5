//! The data dir: where the config, master key and SQLite database live.

use std::io::Write as _;
use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context as _};
use warden_core::clock::{SharedClock, SystemClock};
use warden_core::config::{Config, CONFIG_FILE};
use warden_core::keys::MasterKey;
use warden_store::Store;

/// The master key's file name inside the data dir.
pub const MASTER_KEY_FILE: &str = "master.key";
/// The environment variable that supplies the master key instead of the file.
pub const MASTER_KEY_ENV: &str = "WARDEN_MASTER_KEY";

/// An opened data dir: config, master key and store.
pub struct Opened {
    /// The validated config.
    pub config: Config,
    /// The master key.
    pub master: MasterKey,
    /// The store.
    pub store: Store,
    /// The clock.
    pub clock: SharedClock,
}

/// Reads and validates the config of `dir`, with `WARDEN_*` overrides.
pub fn load_config(dir: &Path) -> anyhow::Result<Config> {
    let path = dir.join(CONFIG_FILE);
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => bail!(
            "no Warden config at {} (create one with `warden init --public-url URL --data-dir {}`)",
            path.display(),
            dir.display()
        ),
        Err(e) => return Err(anyhow!(e).context(format!("cannot read {}", path.display()))),
    };
    Config::load(&text, std::env::vars(), dir).map_err(|e| anyhow!("{e}"))
}

/// Loads the master key from `WARDEN_MASTER_KEY`, or from the data dir's key file, which
/// must not be readable by group or others.
pub fn load_master_key(dir: &Path) -> anyhow::Result<MasterKey> {
    if let Ok(text) = std::env::var(MASTER_KEY_ENV) {
        return MasterKey::parse(&text).map_err(|e| anyhow!("{MASTER_KEY_ENV}: {e}"));
    }
    let path = dir.join(MASTER_KEY_FILE);
    let meta = std::fs::metadata(&path).with_context(|| {
        format!(
            "no master key: set {MASTER_KEY_ENV} or create the data dir with `warden init` ({} missing)",
            path.display()
        )
    })?;
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        bail!(
            "{} is accessible by group or others (mode {mode:o}); run `chmod 600 {}`",
            path.display(),
            path.display()
        );
    }
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("cannot read {}", path.display()))?;
    MasterKey::parse(&text).map_err(|e| anyhow!("{}: {e}", path.display()))
}

/// Writes a new file with mode 0600, refusing to overwrite.
pub fn write_private(path: &Path, contents: &[u8]) -> anyhow::Result<()> {
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("cannot create {}", path.display()))?;
    f.write_all(contents)?;
    f.sync_all()?;
    Ok(())
}

/// Opens the store named by `config`.
pub async fn open_store(config: &Config) -> anyhow::Result<Store> {
    let options = warden_store::StoreOptions {
        acquire_timeout: std::time::Duration::from_secs(
            config.database.connect_timeout.unsigned_abs(),
        ),
        max_connections: config.database.max_connections,
    };
    Store::open_with(config.database.url.expose(), &options)
        .await
        .map_err(|e| anyhow!("cannot open the database: {e}"))
}

/// Opens config, master key and store of `dir`.
pub async fn open(dir: &Path) -> anyhow::Result<Opened> {
    let config = load_config(dir)?;
    let master = load_master_key(dir)?;
    let store = open_store(&config).await?;
    Ok(Opened {
        config,
        master,
        store,
        clock: std::sync::Arc::new(SystemClock),
    })
}

/// Whether `dir` exists and holds anything.
pub fn is_non_empty(dir: &Path) -> bool {
    std::fs::read_dir(dir).is_ok_and(|mut d| d.next().is_some())
}

/// A sibling temporary path for building `dir` before it appears under its name.
pub fn staging_path(dir: &Path) -> anyhow::Result<PathBuf> {
    let name = dir
        .file_name()
        .ok_or_else(|| anyhow!("{} is not a usable directory name", dir.display()))?;
    let suffix = warden_core::secret::random_id().map_err(|e| anyhow!("{e}"))?;
    let mut staged = name.to_os_string();
    staged.push(format!(".init-{}", &suffix[..8]));
    Ok(dir.with_file_name(staged))
}
