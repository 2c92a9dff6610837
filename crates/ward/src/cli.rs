//! Command-line definitions.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "ward",
    version,
    about = "Ward: a self-hosted control plane for security operations"
)]
pub struct Cli {
    /// Configuration file (TOML). Default: ./ward.toml if it exists.
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Database URL: sqlite://PATH or postgres://USER@HOST/DB. Default: SQLite in the data directory.
    #[arg(long, global = true, value_name = "URL")]
    pub database_url: Option<String>,
    /// Data directory. Default: ./ward-data
    #[arg(long, global = true, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Log format: text or json.
    #[arg(long, global = true, value_name = "FORMAT")]
    pub log_format: Option<String>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the server.
    Serve {
        /// Address to listen on. Default: 127.0.0.1:8080
        #[arg(long, value_name = "ADDR")]
        listen: Option<String>,
    },
    /// Apply pending database migrations and exit.
    Migrate,
    /// Configuration.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Companies (tenants). Instance operator only.
    #[command(subcommand)]
    Tenant(TenantCommand),
    /// Users. Instance operator only.
    #[command(subcommand)]
    User(UserCommand),
    /// Per-company encryption keys.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Encrypted backups.
    #[command(subcommand)]
    Backup(BackupCommand),
    /// The tamper-evident audit log: checkpoints, verification, exports.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Detection rules as code, offline (no server, database or configuration).
    #[command(subcommand)]
    Rules(RulesCommand),
}

#[derive(Debug, Subcommand)]
pub enum RulesCommand {
    /// Validate Sigma rule files and directories; exit 1 naming each invalid file.
    Validate {
        #[arg(required = true, value_name = "PATH")]
        paths: Vec<std::path::PathBuf>,
        /// Print errors only, not lint warnings.
        #[arg(long)]
        quiet: bool,
    },
    /// Run the tests stored beside rules (`RULE.tests.yml`); exit 1 on a failure.
    Test {
        #[arg(required = true, value_name = "PATH")]
        paths: Vec<std::path::PathBuf>,
    },
    /// Evaluate one rule against events (JSON, JSON Lines, or a stream of JSON
    /// values; `-` reads stdin); prints `match` or `no match` per event.
    Eval {
        #[arg(value_name = "RULE")]
        rule: std::path::PathBuf,
        #[arg(required = true, value_name = "EVENTS")]
        events: Vec<std::path::PathBuf>,
    },
    /// Pack a directory of rules (with their tests files) into a zip for
    /// `POST /api/v1/rules/import`.
    Pack {
        #[arg(value_name = "DIR")]
        dir: std::path::PathBuf,
        /// Where to write the zip.
        #[arg(long, value_name = "FILE")]
        out: std::path::PathBuf,
    },
}

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Print the checkpoint verifier key (give it to auditors).
    PublicKey,
    /// Integrate pending events and sign a checkpoint now; print it.
    Checkpoint,
    /// Verify the whole log in the database, or (with --export) an exported file
    /// offline. Exit 1 naming the first bad index.
    Verify {
        /// An export made with `--format proofs`, verified without the database.
        #[arg(long, value_name = "FILE", requires = "public_key")]
        export: Option<PathBuf>,
        /// The verifier key (or a file holding it) from `ward audit public-key`.
        #[arg(long, value_name = "KEY")]
        public_key: Option<String>,
        /// A previous checkpoint key (before a master-secret rotation) whose
        /// checkpoints you vouch for; repeatable. Without it they fail as bad
        /// signatures.
        #[arg(long, value_name = "KEY")]
        trusted_key: Vec<String>,
    },
    /// Export events: jsonl, ocsf, cef, csv, or proofs (verifiable offline).
    Export {
        #[arg(long, default_value = "jsonl")]
        format: String,
        /// Output file.
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
        /// Company slug or id: only its events (in full; others' as hashes with proofs).
        #[arg(long)]
        tenant: Option<String>,
        /// First leaf index (proofs only).
        #[arg(long)]
        from: Option<u64>,
        /// Leaf index after the last (proofs only; default the tree size).
        #[arg(long)]
        to: Option<u64>,
        /// RFC 3339: events at or after.
        #[arg(long)]
        since: Option<String>,
        /// RFC 3339: events before.
        #[arg(long)]
        until: Option<String>,
        /// Actor id.
        #[arg(long)]
        actor: Option<String>,
        /// Action name.
        #[arg(long)]
        action: Option<String>,
    },
    /// Forwarding sinks (syslog, Splunk HEC, webhook).
    #[command(subcommand)]
    Sink(SinkCommand),
}

#[derive(Debug, Subcommand)]
pub enum SinkCommand {
    /// Add a sink; it receives the whole log from the first event (or, with
    /// --from-now, from the next one).
    Add {
        #[arg(long)]
        name: String,
        /// syslog-udp, syslog-tcp, syslog-tls, splunk-hec or webhook.
        #[arg(long)]
        kind: String,
        /// host:port (syslog sinks).
        #[arg(long)]
        address: Option<String>,
        /// https URL (splunk-hec, webhook); plain http only to this machine. Sealed
        /// at once; listings and audit events show only its scheme, host and port.
        /// No credentials or secret-looking query parameters in it.
        #[arg(long)]
        url: Option<String>,
        /// User name for HTTP Basic authentication at the receiver (with
        /// --basic-password-file); sealed.
        #[arg(long, requires = "basic_password_file")]
        basic_user: Option<String>,
        /// File holding the Basic authentication password; sealed.
        #[arg(long, value_name = "FILE", requires = "basic_user")]
        basic_password_file: Option<PathBuf>,
        /// PEM file of the receiver's CA (syslog-tls, https); default: system trust store.
        #[arg(long, value_name = "FILE")]
        ca_file: Option<PathBuf>,
        /// Name expected in the receiver's certificate; default: the host of --address.
        #[arg(long)]
        server_name: Option<String>,
        /// Events per delivery.
        #[arg(long, default_value_t = 100)]
        batch_size: u32,
        /// File holding the HEC token or webhook HMAC key.
        #[arg(long, value_name = "FILE", conflicts_with = "secret_stdin")]
        secret_file: Option<PathBuf>,
        /// Read the HEC token or webhook HMAC key from standard input.
        #[arg(long)]
        secret_stdin: bool,
        /// Start with the next event instead of the whole log.
        #[arg(long)]
        from_now: bool,
    },
    /// Sinks with their delivery cursor, lag and last error.
    List,
    /// Remove a sink (its cursor goes with it).
    Remove {
        #[arg(long)]
        name: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum BackupCommand {
    /// Write a consistent snapshot of the database into an encrypted archive.
    Create {
        #[arg(long, value_name = "FILE")]
        out: std::path::PathBuf,
    },
    /// Restore an archive into an empty database (the configured master secret
    /// must be the one the backup was made with).
    Restore {
        #[arg(value_name = "FILE")]
        file: std::path::PathBuf,
    },
}

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Create a new active key version for a company now; the previous version
    /// becomes decrypt-only until re-encryption has moved everything off it.
    Rotate {
        /// Company slug or id.
        #[arg(long)]
        tenant: String,
    },
    /// Key versions and re-encryption progress (every company, or one).
    Status {
        /// Company slug or id.
        #[arg(long)]
        tenant: Option<String>,
    },
    /// Re-wrap every company key under a new master secret (resumable: run it again
    /// after an interruption). The configured secret must be the current one.
    RotateMaster {
        /// File holding the new secret (base64 of at least 32 random bytes).
        #[arg(long, value_name = "FILE")]
        new_secret_file: std::path::PathBuf,
    },
    /// Prove that every wrapped key and every ciphertext decrypts under the
    /// configured master secret; report counts. Exit 1 on any failure.
    Verify,
    /// Run the re-encryption pass for a company now (what the server's background
    /// job does), then destroy versions nothing uses.
    Reencrypt {
        /// Company slug or id.
        #[arg(long)]
        tenant: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Validate the configuration and print the effective settings (secrets redacted).
    Check,
}

#[derive(Debug, Subcommand)]
pub enum TenantCommand {
    /// Create a company.
    Create {
        #[arg(long)]
        name: String,
        /// Short handle for --tenant; derived from the name if omitted.
        #[arg(long)]
        slug: Option<String>,
    },
    /// List companies.
    List,
    /// A company's email domains: at most one company holds a domain verified;
    /// SSO providers may only name verified domains, and addresses on a domain
    /// another company holds cannot be created.
    #[command(subcommand)]
    Domain(DomainCommand),
}

#[derive(Debug, Subcommand)]
pub enum DomainCommand {
    /// Claim a domain (unverified); prints the DNS TXT record that proves it.
    Add {
        /// Company slug or id.
        #[arg(long)]
        tenant: String,
        domain: String,
    },
    /// Verify a domain: as the instance operator (claims it first if needed),
    /// or with --dns by the TXT record `add` printed (through `dns.resolver`).
    Verify {
        #[arg(long)]
        tenant: String,
        domain: String,
        /// Require the DNS TXT record instead of the operator's word.
        #[arg(long)]
        dns: bool,
    },
    /// Remove a claim.
    Remove {
        #[arg(long)]
        tenant: String,
        domain: String,
    },
    /// List a company's claims.
    List {
        #[arg(long)]
        tenant: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Create a user; the password is read from standard input.
    Create(CreateUser),
    /// List a company's users.
    List {
        /// Company slug or id.
        #[arg(long)]
        tenant: String,
    },
    /// Set a new password (read from standard input); revokes the user's sessions.
    ResetPassword {
        #[arg(long)]
        email: String,
        #[arg(long, required = true)]
        password_stdin: bool,
    },
    /// Disable a user; revokes their sessions and API tokens.
    Disable {
        #[arg(long)]
        email: String,
    },
    /// Link an account to an identity provider's subject (`sub`), so the
    /// provider signs them in; for accounts whose owners cannot link themselves.
    /// Audited and shown to every Admin of the company.
    LinkSso {
        #[arg(long)]
        email: String,
        /// The provider's name or id in the user's company.
        #[arg(long)]
        provider: String,
        /// The provider's stable subject identifier for this person.
        #[arg(long)]
        subject: String,
    },
}

#[derive(Debug, Args)]
pub struct CreateUser {
    /// Company slug or id.
    #[arg(long)]
    pub tenant: String,
    #[arg(long)]
    pub email: String,
    /// admin, user or viewer.
    #[arg(long)]
    pub role: String,
    #[arg(long)]
    pub display_name: Option<String>,
    /// Read the password from standard input (required: passwords never go in arguments).
    #[arg(long, required = true)]
    pub password_stdin: bool,
}
