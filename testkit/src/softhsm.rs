//! A throwaway SoftHSM2 token for the key-custody tests: a `softhsm2.conf`
//! and a token directory in a temporary folder, the token initialised by
//! `softhsm2-util`, and the module's path.
//!
//! The test token's PINs are fixed ([`SoftHsm::USER_PIN`],
//! [`SoftHsm::SO_PIN`]) and given to `softhsm2-util` on its command line:
//! the tool reads them nowhere else, and this token holds only test keys
//! and is deleted with its folder. Product code never does this (the
//! custody reads the PIN from a file or the environment).

use std::path::{Path, PathBuf};
use std::process::Command;

/// Where Debian's `softhsm2` package puts the module.
pub const MODULE_PATHS: [&str; 2] = [
    "/usr/lib/softhsm/libsofthsm2.so",
    "/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so",
];

/// A SoftHSM2 configuration with one initialised token, removed on drop.
#[derive(Debug)]
pub struct SoftHsm {
    dir: tempfile::TempDir,
    module: PathBuf,
    label: String,
}

/// Why a token could not be made.
#[derive(Debug, thiserror::Error)]
pub enum SoftHsmError {
    /// The module is not installed (`.ci/install-deps` installs softhsm2).
    #[error("libsofthsm2.so not found (install softhsm2: .ci/install-deps)")]
    NoModule,
    /// A file could not be written.
    #[error("softhsm setup: {0}")]
    Io(#[from] std::io::Error),
    /// `softhsm2-util` failed.
    #[error("softhsm2-util --init-token failed: {0}")]
    Init(String),
}

impl SoftHsm {
    /// The test token's user PIN.
    pub const USER_PIN: &'static str = "246810";
    /// The test token's security officer PIN.
    pub const SO_PIN: &'static str = "13579135";

    /// The installed module, if any.
    pub fn module_path() -> Option<PathBuf> {
        MODULE_PATHS
            .iter()
            .map(PathBuf::from)
            .find(|path| path.exists())
    }

    /// A new configuration with one token labelled `label`. Set
    /// [`SoftHsm::conf`] as `SOFTHSM2_CONF` in the processes that open
    /// the module (or in this process, before it opens the module).
    pub fn new(label: &str) -> Result<SoftHsm, SoftHsmError> {
        let module = SoftHsm::module_path().ok_or(SoftHsmError::NoModule)?;
        let dir = tempfile::tempdir()?;
        let tokens = dir.path().join("tokens");
        std::fs::create_dir(&tokens)?;
        let conf = dir.path().join("softhsm2.conf");
        std::fs::write(
            &conf,
            format!(
                "directories.tokendir = {}\nobjectstore.backend = file\nlog.level = ERROR\n",
                tokens.display()
            ),
        )?;
        let hsm = SoftHsm {
            dir,
            module,
            label: label.to_owned(),
        };
        hsm.init_token(label)?;
        Ok(hsm)
    }

    /// Initialises one more token labelled `label` in the same folder.
    pub fn init_token(&self, label: &str) -> Result<(), SoftHsmError> {
        // Test PINs on argv: a throwaway token (see the module docs).
        let output = Command::new("softhsm2-util")
            .env("SOFTHSM2_CONF", self.conf())
            .args(["--init-token", "--free", "--label", label])
            .args(["--so-pin", SoftHsm::SO_PIN, "--pin", SoftHsm::USER_PIN])
            .output()?;
        if !output.status.success() {
            return Err(SoftHsmError::Init(
                String::from_utf8_lossy(&output.stderr).into_owned(),
            ));
        }
        Ok(())
    }

    /// The configuration file (`SOFTHSM2_CONF`).
    pub fn conf(&self) -> PathBuf {
        self.dir.path().join("softhsm2.conf")
    }

    /// The token directory.
    pub fn token_dir(&self) -> PathBuf {
        self.dir.path().join("tokens")
    }

    /// The module's path.
    pub fn module(&self) -> &Path {
        &self.module
    }

    /// The first token's label.
    pub fn label(&self) -> &str {
        &self.label
    }

    /// Writes the user PIN to a 0600 file in the folder and returns it
    /// (what `--pkcs11-pin-file` reads).
    pub fn pin_file(&self) -> Result<PathBuf, SoftHsmError> {
        use std::io::Write as _;
        use std::os::unix::fs::OpenOptionsExt as _;
        let path = self.dir.path().join("token.pin");
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&path)?;
        writeln!(file, "{}", SoftHsm::USER_PIN)?;
        Ok(path)
    }

    /// `pkcs11-tool --module MODULE --login -O` on the token: the objects
    /// and their attributes as text (the PIN through `--pin`, a test token).
    pub fn list_objects(&self) -> Result<String, SoftHsmError> {
        let output = Command::new("pkcs11-tool")
            .env("SOFTHSM2_CONF", self.conf())
            .arg("--module")
            .arg(&self.module)
            .args([
                "--token-label",
                &self.label,
                "--login",
                "--pin",
                SoftHsm::USER_PIN,
                "-O",
            ])
            .output()?;
        if !output.status.success() {
            return Err(SoftHsmError::Init(
                String::from_utf8_lossy(&output.stderr).into_owned(),
            ));
        }
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    }
}
