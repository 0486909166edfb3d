//! The command line, as clap parses it.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};
use vscard_issuance::SecretString;

use crate::card_selector::CardSelector;

/// A virtual PIV smartcard for pcscd and every PC/SC client.
#[derive(Debug, Parser)]
#[command(name = "vscard", version)]
pub struct Cli {
    /// The state directory: the test PKIs and the demo card (default:
    /// $VSCARD_HOME, else $XDG_DATA_HOME/vscard, else
    /// ~/.local/share/vscard).
    #[arg(long, value_name = "DIR", global = true)]
    pub state_dir: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Put cards into pcscd's virtual readers (vsmartcard vpcd) until
    /// SIGINT or SIGTERM.
    Serve(ServeArgs),
    /// Insert, remove or show the cards of a running `vscard serve`.
    Ctl(CtlArgs),
    /// The computer's end of the link: put paired cards that connect over
    /// the encrypted link (`vscard serve --link`) into pcscd's vpcd
    /// readers; `relay pair` pairs a new card, `list` and `forget` manage
    /// paired cards.
    Relay(RelayArgs),
    /// Issue a card image: keys and certificates from the environment's
    /// test PKI (flags override the profile, or the demo profile).
    Issue(Box<IssueArgs>),
    /// Answer the holder's approval request of a hosted card, as the
    /// phone app would: approve (or --refuse) the oldest open request.
    Approve(ApproveArgs),
    /// The card host: serve the cards of a PostgreSQL database over the
    /// link (any number of hosts on one database, one host per card at a
    /// time); `import`, `issue`, `list`, `revoke` and `enrol` administer
    /// it.
    Host(Box<HostArgs>),
    /// Show a card image: holder, roles, certificates, PIN tries (never a
    /// secret).
    Inspect(InspectArgs),
    /// Write one certificate of a card image (PEM, or DER with --der) to
    /// a file or standard output.
    ExportCert(ExportCertArgs),
    /// Write the Root, Sub and attestation CA certificates of an
    /// environment's test PKI and a CRL (root.pem, sub.pem,
    /// attestation-ca.pem, crl.pem) for relying parties.
    ExportCa(ExportCaArgs),
    /// Renew a card's certificates for two more years from now, keeping
    /// its PIN state.
    Renew(RenewArgs),
    /// Create or import an environment's test PKI (the same CA on every
    /// machine).
    #[command(subcommand)]
    Pki(PkiCommand),
    /// Configure pcscd for N vpcd readers (as root): reader.conf entries
    /// and copies of the vpcd driver, 2 readers each; `--undo` removes
    /// what it wrote. pcscd must be restarted to load them.
    PcscdSetup(PcscdSetupArgs),
    /// Write the manual pages (vscard.1, vscard-serve.1, ...) into a
    /// folder (for packagers; hidden from --help).
    #[command(hide = true)]
    Man(ManArgs),
    /// Revoke a card's certificates in its environment's index (and make
    /// a new CRL).
    Revoke(crate::revocation_commands::RevokeArgs),
    /// Make the environment's CRL again (new number and dates).
    Crl(crate::revocation_commands::CrlArgs),
    /// Answer OCSP requests (RFC 6960) for the environment's certificates
    /// until stopped.
    Ocsp(crate::revocation_commands::OcspArgs),
}

#[derive(Debug, Args)]
pub struct ManArgs {
    /// An existing folder to write the pages into.
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Card images to serve, one reader slot each; none: the default
    /// demo card (cards/demo.json in the state directory, issued on first
    /// use).
    #[arg(value_name = "CARD.json")]
    pub cards: Vec<PathBuf>,
    /// The card image is encrypted (AES-256-GCM) under the key in FILE:
    /// 64 hexadecimal digits, mode 0600 (see "Encrypted card images").
    #[arg(long, value_name = "FILE")]
    pub encrypt_key_file: Option<PathBuf>,
    /// Connect to vpcd at HOST:PORT: card i to the i-th vpcd reader of
    /// pcscd's reader configuration from PORT on (see --reader-conf-dir),
    /// or to PORT + i when PORT is not configured there (default:
    /// 127.0.0.1 and the configured readers, or 35963).
    #[arg(long, value_name = "HOST:PORT", conflicts_with = "listen")]
    pub vpcd: Option<String>,
    /// pcscd's reader configuration, read for the vpcd readers' ports and
    /// names (`vscard pcscd-setup` writes it).
    #[arg(
        long,
        value_name = "DIR",
        default_value = vscard_vpcd::reader_conf::READER_CONF_DIR
    )]
    pub reader_conf_dir: PathBuf,
    /// Who may be the reader at --vpcd: `pcscd` (only root's pcscd on this
    /// machine, checked through /proc at each connection; vpcd itself has
    /// no authentication) or `any` (no check: vpcd on another machine or in
    /// another namespace).
    #[arg(
        long,
        value_name = "PEER",
        value_enum,
        default_value_t = VpcdPeer::Pcscd,
        conflicts_with = "listen"
    )]
    pub vpcd_peer: VpcdPeer,
    /// Reverse mode: wait for vpcd to connect to ADDR:PORT, or to PORT on
    /// 127.0.0.1 only (card i on PORT + i).
    #[arg(long, value_name = "ADDR:PORT")]
    pub listen: Option<String>,
    /// Print one line per APDU (command name and status word; never PINs
    /// or keys).
    #[arg(long)]
    pub trace: bool,
    /// For cards whose keys are in a PKCS#11 token: read the token's user
    /// PIN from the first line of FILE (default: VSCARD_PKCS11_PIN).
    #[arg(long, value_name = "FILE")]
    pub pkcs11_pin_file: Option<PathBuf>,
    /// A PKCS#11 module the served cards may use (repeatable). Only these
    /// are loaded: a card whose image names another module is served with
    /// its key operations answering 6F00. The token comes from the image.
    #[arg(long = "pkcs11-module", value_name = "PATH")]
    pub pkcs11_modules: Vec<PathBuf>,
    /// Serve a control socket at PATH (`vscard ctl PATH ...`).
    #[arg(long, value_name = "PATH")]
    pub control: Option<PathBuf>,
    /// Exit with code 1 when a card has not reached vpcd within SECONDS
    /// (default: keep retrying; pcscd may start later).
    #[arg(long, value_name = "SECONDS", value_parser = seconds)]
    pub vpcd_timeout: Option<std::time::Duration>,
    /// Write PATH once every card is in a reader pcscd reports present
    /// (for scripts without the control socket); removed when serve exits.
    #[arg(long, value_name = "PATH")]
    pub ready_file: Option<PathBuf>,
    /// Touch a card MS milliseconds after an operation starts waiting for
    /// a touch (default: only `vscard ctl PATH touch` touches; without a
    /// touch the operation times out after 15 s).
    #[arg(long, value_name = "MS", value_parser = milliseconds)]
    pub auto_touch: Option<std::time::Duration>,
    /// How long an operation waits for a touch before it answers as a
    /// YubiKey does when nobody touches it (`6982`); default 15 s, a
    /// YubiKey's. Shorter makes a "not touched" test quick.
    #[arg(long, value_name = "SECONDS", value_parser = seconds)]
    pub touch_timeout: Option<std::time::Duration>,
    /// Serve the card over the encrypted link to a `vscard relay` instead
    /// of to a local vpcd: a pairing URI (`vscard-pair://...` from `vscard
    /// relay pair`; first time only) or a paired relay's name or
    /// HOST:PORT. A URI here is visible to other local users (ps): prefer
    /// --link-file.
    #[arg(
        long,
        value_name = "TARGET",
        conflicts_with_all = ["link_file", "vpcd", "listen", "control", "ready_file", "trace", "vpcd_timeout", "touch_timeout"]
    )]
    pub link: Option<String>,
    /// As --link, the target read from the first line of FILE (`-`:
    /// standard input): the way to give a pairing URI.
    #[arg(
        long,
        value_name = "FILE",
        conflicts_with_all = ["vpcd", "listen", "control", "ready_file", "trace", "vpcd_timeout", "touch_timeout"]
    )]
    pub link_file: Option<PathBuf>,
}

#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct RelayArgs {
    #[command(subcommand)]
    pub command: Option<RelayCommand>,
    /// Where cards' links connect: ADDR:PORT, or PORT on 127.0.0.1 only
    /// (default 127.0.0.1:35950; give an address to be reachable from
    /// the phone).
    #[arg(long, value_name = "ADDR:PORT")]
    pub listen: Option<String>,
    /// vpcd at HOST:PORT: the i-th connected card goes to the reader on
    /// PORT + i (default 127.0.0.1:35963).
    #[arg(long, value_name = "HOST:PORT")]
    pub vpcd: Option<String>,
    /// Who may be the reader at --vpcd: `pcscd` (only root's pcscd) or
    /// `any` (no check), as for `vscard serve`.
    #[arg(long, value_name = "PEER", value_enum, default_value_t = VpcdPeer::Pcscd)]
    pub vpcd_peer: VpcdPeer,
    /// A hosted card instead of cards that connect: dial these card hosts
    /// (`vscard host`), in turn, moving to the next when one fails.
    #[arg(
        long,
        value_name = "HOST:PORT[,HOST:PORT...]",
        value_delimiter = ',',
        conflicts_with = "listen",
        requires_all = ["card", "device_key"]
    )]
    pub host: Vec<String>,
    /// The hosted card's ID (with --host).
    #[arg(long, value_name = "ID", requires = "host")]
    pub card: Option<String>,
    /// The device key `vscard host enrol` made (with --host).
    #[arg(long, value_name = "DEVICE.key", requires = "host")]
    pub device_key: Option<PathBuf>,
}

/// `vscard host`.
#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct HostArgs {
    #[command(subcommand)]
    pub command: Option<HostCommand>,
    #[command(flatten)]
    pub database: DatabaseArgs,
    /// Where relays connect: ADDR:PORT, or PORT on 127.0.0.1 only
    /// (default 127.0.0.1:35951).
    #[arg(long, value_name = "ADDR:PORT")]
    pub listen: Option<String>,
    /// How long a card's lease lasts unrenewed: a host that dies frees
    /// its cards after this (seconds, or 500ms, 2m).
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = duration)]
    pub lease: std::time::Duration,
    /// How long the holder has to approve a session of a card that
    /// requires it, before the session is refused.
    #[arg(long, value_name = "DURATION", default_value = "60s", value_parser = duration)]
    pub approval_timeout: std::time::Duration,
    #[command(flatten)]
    pub seal: HostSealArgs,
}

/// How a host command keeps card images and the hosts' link key at rest.
#[derive(Debug, Args)]
pub struct HostSealArgs {
    /// Card images and the hosts' link key are encrypted (AES-256-GCM) in
    /// the database under the key in FILE: 64 hexadecimal digits, mode
    /// 0600 (see "Encrypted card images"); every host and host command of
    /// the database then needs the same option. Required, unless
    /// --insecure-plaintext.
    #[arg(long, value_name = "FILE")]
    pub encrypt_key_file: Option<PathBuf>,
    /// Keep card images (PINs, private keys) and the hosts' link key in
    /// the database in the clear, readable to anyone who reads the
    /// database or its backups. For tests only.
    #[arg(long, conflicts_with = "encrypt_key_file")]
    pub insecure_plaintext: bool,
}

/// `vscard approve`.
#[derive(Debug, Args)]
pub struct ApproveArgs {
    /// The device key `vscard host enrol` made.
    #[arg(long, value_name = "DEVICE.key")]
    pub device: PathBuf,
    /// A card host to reach (any host of the database): HOST:PORT.
    #[arg(long, value_name = "HOST:PORT")]
    pub host: String,
    /// Refuse instead of approving.
    #[arg(long)]
    pub refuse: bool,
    /// How long to wait for a request (seconds, or 500ms, 2m).
    #[arg(long, value_name = "DURATION", default_value = "60s", value_parser = duration)]
    pub wait: std::time::Duration,
}

/// Where the card database is.
#[derive(Debug, Args)]
pub struct DatabaseArgs {
    /// The PostgreSQL URL (postgresql://USER[:PASSWORD]@HOST/DB, or
    /// key=value pairs); shown with its password redacted. A password on
    /// the command line is visible to other local users: prefer
    /// --database-file.
    #[arg(long, value_name = "URL", value_parser = secret, conflicts_with = "database_file")]
    pub database: Option<SecretString>,
    /// Read the database URL from the first line of FILE.
    #[arg(long, value_name = "FILE")]
    pub database_file: Option<PathBuf>,
    /// Allow a TCP database host without TLS (card images, PINs and the
    /// hosts' key then cross the network readable). Without it a TCP host
    /// needs sslmode=require in the URL; Unix sockets need neither.
    #[arg(long)]
    pub database_insecure: bool,
}

/// `vscard host import | issue | list | revoke | enrol`.
#[derive(Debug, Subcommand)]
pub enum HostCommand {
    /// Put a card image (made by `vscard issue`) into the database.
    Import(HostImportArgs),
    /// Issue a card straight into the database (the flags of `vscard
    /// issue`, without --out).
    Issue(Box<HostIssueArgs>),
    /// Show the database's cards.
    List(HostListArgs),
    /// Revoke a card (`--id`: never served again; a host serving it
    /// stops), or one enrolled device (`--device`: the card stays; a
    /// session the card is in now ends, and only the devices still
    /// enrolled get it back).
    Revoke(HostRevokeArgs),
    /// Enrol a device (the holder's computer or phone) for a card: write
    /// its key file (mode 0600) for `vscard relay --host ... --device-key`.
    Enrol(HostEnrolArgs),
}

/// Who must approve a session.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum RequireApproval {
    /// Each session, before it opens.
    Session,
    /// Each session, and each signature in it: each GENERAL
    /// AUTHENTICATE with the digital signature key (9C), asked once per
    /// command (a chained one on its first part); a refusal answers 6982.
    Signature,
}

#[derive(Debug, Args)]
pub struct HostImportArgs {
    /// The card image.
    #[arg(value_name = "CARD.json")]
    pub card: PathBuf,
    /// The card's ID in the database.
    #[arg(long, value_name = "ID")]
    pub id: String,
    /// Require the holder's approval on the enrolled device.
    #[arg(long, value_name = "WHEN", value_enum)]
    pub require_approval: Option<RequireApproval>,
    #[command(flatten)]
    pub database: DatabaseArgs,
    // With --encrypt-key-file, CARD.json may be in the clear or encrypted
    // under the same key.
    #[command(flatten)]
    pub seal: HostSealArgs,
}

#[derive(Debug, Args)]
pub struct HostIssueArgs {
    /// The card's ID in the database.
    #[arg(long, value_name = "ID")]
    pub id: String,
    /// Require the holder's approval on the enrolled device.
    #[arg(long, value_name = "WHEN", value_enum)]
    pub require_approval: Option<RequireApproval>,
    #[command(flatten)]
    pub database: DatabaseArgs,
    /// Keep the card image (PINs, private keys) in the database in the
    /// clear, readable to anyone who reads the database or its backups.
    /// For tests only; without it --encrypt-key-file is required.
    #[arg(long, conflicts_with = "encrypt_key_file")]
    pub insecure_plaintext: bool,
    #[command(flatten)]
    pub issue: IssueArgs,
}

#[derive(Debug, Args)]
pub struct HostListArgs {
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub database: DatabaseArgs,
}

#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("revoked").required(true).args(["id", "device"])))]
pub struct HostRevokeArgs {
    /// The card to revoke.
    #[arg(long, value_name = "ID")]
    pub id: Option<String>,
    /// The device to revoke: its fingerprint as `host enrol` printed it
    /// (16 to 64 hex digits), or its key file.
    #[arg(long, value_name = "KEY")]
    pub device: Option<String>,
    #[command(flatten)]
    pub database: DatabaseArgs,
}

#[derive(Debug, Args)]
pub struct HostEnrolArgs {
    /// The card's ID.
    #[arg(long, value_name = "ID")]
    pub id: String,
    /// Where to write the device key (mode 0600, written atomically).
    #[arg(long, value_name = "DEVICE.key")]
    pub out: PathBuf,
    /// What the key may do: `relay` opens sessions (`vscard relay
    /// --host`), `approver` decides approvals (`vscard approve`); never
    /// both.
    #[arg(long, value_name = "ROLE", value_enum, default_value_t = EnrolRole::Relay)]
    pub role: EnrolRole,
    #[command(flatten)]
    pub database: DatabaseArgs,
    // The hosts' link key is made here if no host made it yet.
    #[command(flatten)]
    pub seal: HostSealArgs,
}

/// `vscard host enrol --role`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum EnrolRole {
    /// Opens sessions of the card.
    Relay,
    /// Decides the card's approval requests.
    Approver,
}

/// `vscard relay pair | list | forget`.
#[derive(Debug, Subcommand)]
pub enum RelayCommand {
    /// Make a one-time pairing: print a `vscard-pair://` URI and its QR
    /// code (relay address, key fingerprint, one-time secret) for the
    /// card's first `serve --link`.
    Pair(RelayPairArgs),
    /// Show the paired cards.
    List,
    /// Forget a paired card: its live link is dropped (within a second)
    /// and its key refused from then on.
    Forget(RelayForgetArgs),
}

#[derive(Debug, Args)]
pub struct RelayPairArgs {
    /// How long the secret works: seconds, or with a unit (90s, 10m, 2h).
    #[arg(long, value_name = "DURATION", default_value = "10m", value_parser = duration)]
    pub expires: std::time::Duration,
    /// Also write the URI to FILE (mode 0600) for `serve --link-file`.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// The address cards reach the relay at (default: where the relay of
    /// this state directory last listened).
    #[arg(long, value_name = "HOST:PORT")]
    pub address: Option<String>,
}

#[derive(Debug, Args)]
pub struct RelayForgetArgs {
    /// The card's name (`vscard relay list`).
    pub name: String,
}

/// A duration: seconds, or a number with s, m or h.
pub fn duration(text: &str) -> Result<std::time::Duration, String> {
    let (number, unit) = match text.char_indices().last() {
        Some((at, 's')) => (&text[..at], 1),
        Some((at, 'm')) => (&text[..at], 60),
        Some((at, 'h')) => (&text[..at], 3600),
        _ => (text, 1),
    };
    number
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(unit))
        .filter(|&n| n > 0)
        .map(std::time::Duration::from_secs)
        .ok_or_else(|| format!("wants a duration such as 90s, 10m or 2h, got {text:?}"))
}

/// `--vpcd-peer`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum VpcdPeer {
    /// Only root's pcscd on this machine.
    Pcscd,
    /// Whatever listens (no check).
    Any,
}

#[derive(Debug, Args)]
pub struct CtlArgs {
    /// The control socket of a running `vscard serve --control PATH`.
    pub path: PathBuf,
    /// What to do.
    pub action: Action,
    /// `insert --card N OTHER.json`: swap card N for this image (the old
    /// image is written and released first).
    #[arg(value_name = "CARD.json", requires = "card")]
    pub image: Option<PathBuf>,
    /// Which card (default: all): its index, its image's file name or
    /// path (as served), or the 12-digit user ID on it.
    #[arg(long, value_name = "CARD", value_parser = CardSelector::parse)]
    pub card: Option<CardSelector>,
    /// How long to wait: for the control socket to appear (every action;
    /// `serve` may still be starting) and, with `wait`, for the cards.
    #[arg(long, value_name = "SECONDS", value_parser = seconds, default_value = "5")]
    pub timeout: std::time::Duration,
    /// `status`: print JSON (one array of cards) instead of text.
    #[arg(long)]
    pub json: bool,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum Action {
    /// Pull the card out of the reader.
    Remove,
    /// Put the card back; with CARD.json and --card N, swap card N for
    /// that image.
    Insert,
    /// Show each card's state.
    Status,
    /// Wait until every card (or --card N) is in a reader pcscd reports
    /// present; exit 1 naming the card that is not, at --timeout.
    Wait,
    /// Touch the card (every card, or --card N): completes the operation
    /// waiting for a touch (a key with a touch policy), or is kept for the
    /// next one that asks within 15 s.
    Touch,
}

#[derive(Debug, Args)]
pub struct IssueArgs {
    /// Encrypt the card image (AES-256-GCM) under the key in FILE: 64
    /// hexadecimal digits, mode 0600; every command that opens the card
    /// then needs the same option.
    #[arg(long, value_name = "FILE")]
    pub encrypt_key_file: Option<PathBuf>,
    /// Where to write the card image.
    // Required by `issue` itself (a bad-input error when missing), not by
    // clap: `host issue` takes these flags without it.
    #[arg(long, value_name = "CARD.json")]
    pub out: Option<PathBuf>,
    /// Print the demo profile (TOML, the default card's) to standard
    /// output instead of issuing: a starting point for --profile.
    #[arg(
        long,
        conflicts_with_all = [
            "out", "profile", "name", "uuid", "pin", "pin_file", "unlock_code",
            "unlock_code_file", "role", "environment", "seed", "seed_file",
            "not_before", "not_after", "force", "state",
        ]
    )]
    pub print_profile: bool,
    /// A card profile in TOML (JSON when the name ends in .json); default:
    /// the demo profile (Sample Specimen, 000123456789, PIN 123456, unlock
    /// code 654321).
    #[arg(long, value_name = "FILE")]
    pub profile: Option<PathBuf>,
    /// The holder's name.
    #[arg(long, value_name = "N")]
    pub name: Option<String>,
    /// The 12-digit unique user ID.
    #[arg(long, value_name = "12DIGITS")]
    pub uuid: Option<String>,
    /// The PIN (6 to 8 digits by default). Other local users can read a
    /// command line (/proc/PID/cmdline): prefer --pin-file.
    #[arg(long, value_name = "P", value_parser = secret, conflicts_with = "pin_file")]
    pub pin: Option<SecretString>,
    /// Read the PIN from the first line of FILE (`-`: standard input).
    #[arg(long, value_name = "FILE")]
    pub pin_file: Option<PathBuf>,
    /// The unlock code, the PIV PUK (6 to 8 digits). Visible to other local
    /// users on the command line: prefer --unlock-code-file.
    #[arg(long, value_name = "C", value_parser = secret, conflicts_with = "unlock_code_file")]
    pub unlock_code: Option<SecretString>,
    /// Read the unlock code from the first line of FILE (`-`: standard
    /// input).
    #[arg(long, value_name = "FILE")]
    pub unlock_code_file: Option<PathBuf>,
    /// A role profile, CODE:NAME:BUSINESS_FUNCTIONS:ODS, e.g.
    /// "R8000:Clinical Practitioner Access Role:B0264:RX1"; repeat for
    /// several (they replace the profile's roles).
    #[arg(long, value_name = "ROLE")]
    pub role: Vec<String>,
    /// The environment: sandbox, integration or a custom name.
    #[arg(long, value_name = "ENV")]
    pub environment: Option<String>,
    /// A seed that makes the keys (and serials) reproducible; whoever
    /// knows it can recreate the private keys. Visible to other local users
    /// on the command line: prefer --seed-file.
    #[arg(long, value_name = "S", value_parser = secret, conflicts_with = "seed_file")]
    pub seed: Option<SecretString>,
    /// Read the seed from the first line of FILE (`-`: standard input).
    #[arg(long, value_name = "FILE")]
    pub seed_file: Option<PathBuf>,
    /// Start of the certificates' validity, RFC 3339 (default: now).
    #[arg(long, value_name = "T")]
    pub not_before: Option<String>,
    /// End of the certificates' validity, RFC 3339 (default: the profile's
    /// validity, 2 years, after the start).
    #[arg(long, value_name = "T")]
    pub not_after: Option<String>,
    /// Replace an existing card image (a card being served is never
    /// replaced).
    #[arg(long)]
    pub force: bool,
    /// Issue the card in a known state; repeat for several:
    /// pin-blocked, puk-blocked, pin-tries=N, expired (certificates ended
    /// a day ago), not-yet-valid (they start in a day), expiring-soon
    /// (they end in 30 days, inside the renewal window),
    /// management-key-locked (a random management key nobody knows, so
    /// administrative commands answer 6982).
    #[arg(long, value_name = "STATE", value_parser = known_state)]
    pub state: Vec<vscard_issuance::cards::KnownState>,
    /// What card to be: yubikey-5.7 (the default: AES-192 default
    /// management key), yubikey-5.4 (3DES default management key, for
    /// yubico-piv-tool 2.2 and other older middleware) or piv (a plain PIV
    /// card: no Yubico extensions).
    #[arg(long, value_name = "MODEL", value_parser = card_model)]
    pub model: Option<vscard_applet::Model>,
    /// Where the card's private keys live: software (in the card image)
    /// or pkcs11 (generated in a PKCS#11 token, never leaving it: needs
    /// --pkcs11-module and --pkcs11-token, and the token PIN from
    /// --pkcs11-pin-file or VSCARD_PKCS11_PIN).
    #[arg(long, value_name = "CUSTODY", value_enum, default_value_t = CustodyKind::Software)]
    pub custody: CustodyKind,
    /// The PKCS#11 module (e.g. /usr/lib/softhsm/libsofthsm2.so).
    #[arg(long, value_name = "PATH")]
    pub pkcs11_module: Option<PathBuf>,
    /// The label of the token the keys go to.
    #[arg(long, value_name = "LABEL")]
    pub pkcs11_token: Option<String>,
    /// Read the token's user PIN from the first line of FILE (default: the
    /// environment variable VSCARD_PKCS11_PIN; never on the command line).
    #[arg(long, value_name = "FILE")]
    pub pkcs11_pin_file: Option<PathBuf>,
}

/// `--custody`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum CustodyKind {
    /// Keys in the card image.
    Software,
    /// Keys in a PKCS#11 token.
    Pkcs11,
}

/// A `--state` value.
fn card_model(text: &str) -> Result<vscard_applet::Model, String> {
    text.parse()
        .map_err(|error: vscard_applet::UnknownModel| error.to_string())
}

fn known_state(text: &str) -> Result<vscard_issuance::cards::KnownState, String> {
    vscard_issuance::cards::KnownState::parse(text).map_err(|error| error.to_string())
}

#[derive(Debug, Args)]
pub struct InspectArgs {
    /// The card image.
    #[arg(value_name = "CARD.json")]
    pub card: PathBuf,
    /// The card image is encrypted (AES-256-GCM) under the key in FILE:
    /// 64 hexadecimal digits, mode 0600 (see "Encrypted card images").
    #[arg(long, value_name = "FILE")]
    pub encrypt_key_file: Option<PathBuf>,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
    /// Flag certificates ending within DAYS (or ended) as due for renewal.
    #[arg(long, value_name = "DAYS", default_value_t = vscard_issuance::DEFAULT_RENEWAL_WINDOW_DAYS)]
    pub renewal_window: u32,
}

#[derive(Debug, Args)]
pub struct ExportCertArgs {
    /// The card image.
    #[arg(value_name = "CARD.json")]
    pub card: PathBuf,
    /// The card image is encrypted (AES-256-GCM) under the key in FILE:
    /// 64 hexadecimal digits, mode 0600 (see "Encrypted card images").
    #[arg(long, value_name = "FILE")]
    pub encrypt_key_file: Option<PathBuf>,
    /// The key slot whose certificate to write: 9a, 9c, 9d or 9e.
    #[arg(long, value_name = "SLOT")]
    pub slot: String,
    /// Write to FILE (replaced atomically, mode 0644: a certificate is
    /// public) instead of standard output.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// Write DER instead of PEM.
    #[arg(long)]
    pub der: bool,
}

#[derive(Debug, Args)]
pub struct ExportCaArgs {
    /// The environment (one that exists: issued into, or made with --create).
    #[arg(long, value_name = "ENV", default_value = "sandbox")]
    pub environment: String,
    /// The folder to write root.pem, sub.pem, crl.pem and
    /// attestation-ca.pem into.
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// Create the environment's PKI if it does not exist yet.
    #[arg(long)]
    pub create: bool,
}

#[derive(Debug, Args)]
pub struct RenewArgs {
    /// The card image.
    #[arg(value_name = "CARD.json")]
    pub card: PathBuf,
    /// The card image is encrypted (AES-256-GCM) under the key in FILE:
    /// 64 hexadecimal digits, mode 0600 (see "Encrypted card images").
    #[arg(long, value_name = "FILE")]
    pub encrypt_key_file: Option<PathBuf>,
    /// Generate new keys (same algorithms) as well.
    #[arg(long)]
    pub new_keys: bool,
    /// Re-sign even when the state directory's PKI is not the one that
    /// issued the card (moves the card to that CA).
    #[arg(long)]
    pub new_ca: bool,
    /// Revoke the replaced certificates as superseded (and make a new
    /// CRL); with --new-ca they are another CA's and are left alone.
    #[arg(long)]
    pub revoke_old: bool,
}

/// `vscard pki`.
#[derive(Debug, Subcommand)]
pub enum PkiCommand {
    /// Create the environment's PKI from a seed: the same Root and Sub CA,
    /// byte for byte, on every machine (idempotent; another seed is
    /// refused once the PKI exists).
    Init(PkiInitArgs),
    /// Take an existing CA certificate and key (e.g. a team's committed
    /// test CA) as the environment's Root CA; a Sub CA derived from it is
    /// made under it.
    Import(PkiImportArgs),
    /// Show or set the CRL and OCSP URLs the environment's certificates
    /// carry (default: the loopback `vscard ocsp`).
    Config(crate::revocation_commands::PkiConfigArgs),
}

#[derive(Debug, Args)]
pub struct PkiInitArgs {
    /// The environment.
    #[arg(long, value_name = "ENV", default_value = "sandbox")]
    pub environment: String,
    /// The seed; whoever knows it can recreate the CA keys. Visible to
    /// other local users on the command line: prefer --seed-file.
    #[arg(
        long,
        value_name = "S",
        value_parser = secret,
        conflicts_with = "seed_file",
        required_unless_present = "seed_file"
    )]
    pub seed: Option<SecretString>,
    /// Read the seed from the first line of FILE (`-`: standard input).
    #[arg(long, value_name = "FILE")]
    pub seed_file: Option<PathBuf>,
    /// Start of the CAs' validity, RFC 3339 (default: a fixed
    /// 2026-01-01T00:00:00Z, so that every runner makes the same bytes).
    #[arg(long, value_name = "T")]
    pub not_before: Option<String>,
}

#[derive(Debug, Args)]
pub struct PkiImportArgs {
    /// The environment.
    #[arg(long, value_name = "ENV", default_value = "sandbox")]
    pub environment: String,
    /// The CA certificate (PEM; self-signed, P-256, ECDSA-with-SHA256).
    #[arg(long, value_name = "CA.pem")]
    pub cert: PathBuf,
    /// The CA's private key (PKCS #8 PEM, unencrypted); stored mode 0600.
    #[arg(long, value_name = "KEY.pem")]
    pub key: PathBuf,
}

#[derive(Debug, Args)]
pub struct PcscdSetupArgs {
    /// How many vpcd readers pcscd should have (1 to 16): Debian's vpcd
    /// gives 2 per driver instance, so N readers take N/2 rounded up: the
    /// installed driver and copies of it.
    #[arg(
        long,
        value_name = "N",
        required_unless_present = "undo",
        conflicts_with = "undo",
        value_parser = clap::value_parser!(u16).range(1..=16)
    )]
    pub readers: Option<u16>,
    /// Remove the reader.conf entries and driver copies pcscd-setup wrote
    /// (and nothing else).
    #[arg(long)]
    pub undo: bool,
    /// pcscd's reader configuration folder.
    #[arg(
        long,
        value_name = "DIR",
        default_value = vscard_vpcd::reader_conf::READER_CONF_DIR
    )]
    pub reader_conf_dir: PathBuf,
    /// Where the copies of the driver go.
    #[arg(long, value_name = "DIR", default_value = crate::pcscd_setup::DRIVER_DIR)]
    pub driver_dir: PathBuf,
    /// The vpcd driver to copy (Debian package vsmartcard-vpcd).
    #[arg(long, value_name = "PATH", default_value = crate::pcscd_setup::VPCD_DRIVER)]
    pub driver: PathBuf,
}

/// A number of seconds (fractions allowed), finite and not negative.
pub fn seconds(text: &str) -> Result<std::time::Duration, String> {
    let value: f64 = text
        .parse()
        .map_err(|_| format!("wants a number of seconds, got {text:?}"))?;
    std::time::Duration::try_from_secs_f64(value)
        .map_err(|_| format!("wants a number of seconds, got {text:?}"))
}

/// A whole number of milliseconds (`--auto-touch`).
pub fn milliseconds(text: &str) -> Result<std::time::Duration, String> {
    text.parse::<u64>()
        .map(std::time::Duration::from_millis)
        .map_err(|_| format!("wants a whole number of milliseconds, got {text:?}"))
}

/// A secret flag's value, held in a zeroizing, redacting type from the
/// start (so `Debug` of the arguments never shows it).
fn secret(text: &str) -> Result<SecretString, std::convert::Infallible> {
    Ok(SecretString::new(text))
}
