//! The command line's arguments and subcommands (clap), as `caducee --help` shows them.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

#[derive(Parser, Debug)]
#[command(name = "caducee", version, about = "Caducée, an OpenID Connect provider for e-health professionals")]
pub struct Cli {
    /// Configuration file (default: ./caducee.toml if present). Every setting can also be
    /// given as a CADUCEE_* environment variable.
    #[arg(long, global = true, env = "CADUCEE_CONFIG")]
    pub config: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Start the provider.
    Serve,
    /// Create or upgrade the database schema, then exit.
    Migrate,
    /// Manage relying parties.
    #[command(subcommand)]
    Client(ClientCommand),
    /// Manage health professionals' accounts.
    #[command(subcommand)]
    User(UserCommand),
    /// Enrol TOTP apps (FreeOTP, Google Authenticator).
    #[command(subcommand)]
    Totp(TotpCommand),
    /// Manage OTP tokens («boîtiers OTP»): import their seeds (PSKC), assign them.
    #[command(subcommand)]
    Token(TokenCommand),
    /// Manage signing keys.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// See and end professionals' SSO sessions (needs the shared session store: redis_url).
    #[command(subcommand)]
    Session(SessionCommand),
    /// Block or unblock accounts, lift lockouts, remove authenticators, issue activation codes,
    /// grant or revoke the admin role (the console).
    #[command(subcommand)]
    Account(AccountCommand),
    /// Query and verify the audit log.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Copy the embedded SQLite database to a new file while the provider runs.
    ///
    /// A consistent snapshot (SQLite's `VACUUM INTO`). The master key is not in it: keep it
    /// apart. PostgreSQL: use pg_dump (docs/operations.md).
    Backup {
        /// The file to write; it must not exist yet. Created readable by its owner only.
        #[arg(long, value_name = "FILE")]
        to: PathBuf,
    },
    /// Ask the running node whether it is ready (container health checks).
    ///
    /// `GET /readyz` on this configuration's `listen` address (on loopback when it listens on
    /// every address): exit status 0 when it answers 200, 1 otherwise. For container images,
    /// which have no HTTP client at hand.
    Healthcheck {
        /// The path to ask (`/healthz` for liveness only).
        #[arg(long, default_value = "/readyz")]
        path: String,
    },
}

#[derive(Subcommand, Debug)]
pub enum SessionCommand {
    /// List a professional's live sessions.
    List {
        /// The professional's national identifier.
        #[arg(long)]
        user: String,
    },
    /// End one session: its relying parties are told, its tokens die.
    Revoke {
        /// The session's identifier (`sid`, as `session list` shows it).
        #[arg(long)]
        sid: String,
    },
    /// End every session of a professional (forced logout everywhere).
    RevokeAll {
        /// The professional's national identifier.
        #[arg(long)]
        user: String,
    },
}

#[derive(Subcommand, Debug)]
pub enum AccountCommand {
    /// Block an account: no more sign-in, every session ends now.
    Block {
        /// The professional's national identifier.
        #[arg(long)]
        user: String,
    },
    /// Unblock an account: sign-in is possible again.
    Unblock {
        /// The professional's national identifier.
        #[arg(long)]
        user: String,
    },
    /// Block push approvals to a professional's phone.
    BlockPushes {
        /// The professional's national identifier.
        #[arg(long)]
        user: String,
    },
    /// Lift a push block (set by «ce n'était pas moi», the wallet or an admin).
    UnblockPushes {
        /// The professional's national identifier.
        #[arg(long)]
        user: String,
    },
    /// Lift the lockout of an identifier after too many failures.
    ResetLockout {
        /// The professional's national identifier.
        #[arg(long)]
        user: String,
    },
    /// List a professional's authenticators.
    Authenticators {
        /// The professional's national identifier.
        #[arg(long)]
        user: String,
    },
    /// Issue an activation code (valid 72 h, usable once) for a professional who lost every
    /// second factor: with the password, it signs them in once, to enrol a new authenticator.
    ActivationCode {
        /// The professional's national identifier.
        #[arg(long)]
        user: String,
        /// Withdraw the pending code instead.
        #[arg(long)]
        revoke: bool,
    },
    /// Give a professional the admin role: they may sign in to the console (/admin).
    GrantAdmin {
        /// The professional's national identifier.
        #[arg(long)]
        user: String,
    },
    /// Take the admin role back: their console session closes at its next request.
    RevokeAdmin {
        /// The professional's national identifier.
        #[arg(long)]
        user: String,
    },
    /// List the professionals holding the admin role.
    Admins,
    /// Remove an authenticator (an app is deleted, a token goes back to the pool).
    RemoveAuthenticator {
        /// The professional's national identifier.
        #[arg(long)]
        user: String,
        /// The authenticator's id, as `account authenticators` shows it.
        #[arg(long)]
        id: String,
    },
}

#[derive(Subcommand, Debug)]
pub enum AuditCommand {
    /// Check the keyed hash chain: any edited or removed record is reported; with `--head`, also
    /// that the chain still reaches that record unchanged (nothing cut off or rewritten up to it).
    Verify {
        /// A head printed earlier by `audit head` (`ID:HASH`), kept outside the database.
        #[arg(long, value_name = "ID:HASH")]
        head: Option<String>,
    },
    /// Print the newest record's id and hash (`ID:HASH`), to keep outside the database and give
    /// to `audit verify --head` later.
    Head,
    /// List records, oldest first.
    List {
        /// A professional's national identifier.
        #[arg(long)]
        user: Option<String>,
        /// One event type (`signin`, `login_failed`, `logout`, `admin.session.revoke`, …).
        #[arg(long)]
        event: Option<String>,
        /// From this time (Unix seconds, inclusive).
        #[arg(long)]
        from: Option<i64>,
        /// Until this time (Unix seconds, inclusive).
        #[arg(long)]
        to: Option<i64>,
        /// The last id of the previous page.
        #[arg(long)]
        after_id: Option<i64>,
        /// At most 1000.
        #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..=1000))]
        limit: u32,
    },
    /// Back-channel logout deliveries and their outcome.
    Deliveries {
        /// One session's deliveries.
        #[arg(long)]
        sid: Option<String>,
        /// One relying party's deliveries.
        #[arg(long)]
        client_id: Option<String>,
        /// pending, delivered or failed.
        #[arg(long)]
        status: Option<String>,
    },
}

#[derive(Subcommand, Debug)]
pub enum TokenCommand {
    /// Import the token seeds of a PSKC file (RFC 6030) as unassigned tokens.
    Import {
        /// The vendor's PSKC file.
        file: PathBuf,
        /// File holding the container's pre-shared AES key, in hex (for `ds:KeyName` containers).
        #[arg(long, conflicts_with = "passphrase_stdin")]
        preshared_key_file: Option<PathBuf>,
        /// Read the container's passphrase (PBKDF2-derived key) from standard input.
        #[arg(long)]
        passphrase_stdin: bool,
    },
    /// Give a token to a professional (it signs them in from now on).
    Assign {
        /// The token's serial number.
        #[arg(long)]
        serial: String,
        /// The professional's national identifier.
        #[arg(long)]
        user: String,
    },
    /// Take a token back (lost or returned): it signs nobody in.
    Unassign {
        /// The token's serial number.
        #[arg(long)]
        serial: String,
    },
    /// List tokens: serial, kind, holder, state.
    List,
}

#[derive(Subcommand, Debug)]
pub enum ClientCommand {
    /// Register a relying party; prints its client_id and (once) its secret.
    Add(Box<ClientAdd>),
    /// List registered relying parties.
    List,
    /// Show one relying party's registration.
    Show {
        /// The client's identifier.
        #[arg(long)]
        client_id: String,
    },
    /// Remove a relying party.
    Remove {
        /// The client's identifier.
        #[arg(long)]
        client_id: String,
    },
    /// Issue a new secret (the old one stops working at once); prints it once.
    RotateSecret {
        /// The client's identifier.
        #[arg(long)]
        client_id: String,
    },
}

#[derive(Args, Debug)]
pub struct ClientAdd {
    /// Display name shown on the login page.
    #[arg(long)]
    pub name: String,
    /// Identifier to use (default: generated).
    #[arg(long)]
    pub client_id: Option<String>,
    /// Allowed redirect URI (repeat for several); matched exactly. Required unless the client
    /// only uses client credentials.
    #[arg(long = "redirect-uri")]
    pub redirect_uris: Vec<String>,
    /// Allowed post-logout redirect URI (repeat for several).
    #[arg(long = "post-logout-redirect-uri")]
    pub post_logout_redirect_uris: Vec<String>,
    /// client_secret_basic, client_secret_post, client_secret_jwt, private_key_jwt, tls_client_auth,
    /// self_signed_tls_client_auth or none (public client, PKCE required).
    #[arg(long, default_value = "client_secret_basic")]
    pub auth_method: String,
    /// JWK Set file with the client's public keys (private_key_jwt).
    #[arg(long)]
    pub jwks_file: Option<PathBuf>,
    /// ID token signature: RS256 (default) or ES256.
    #[arg(long, default_value = "RS256")]
    pub id_token_alg: String,
    /// Answer userinfo as a JWT signed with this algorithm (RS256 or ES256) instead of JSON.
    #[arg(long)]
    pub userinfo_alg: Option<String>,
    /// Do not issue refresh tokens to this client.
    #[arg(long)]
    pub no_refresh: bool,
    /// Grant types (repeat): authorization_code, refresh_token, client_credentials.
    /// Default: authorization_code and refresh_token.
    #[arg(long = "grant-type")]
    pub grant_types: Vec<String>,
    /// Scopes this client may obtain (repeat); default: every scope of the login flow. A service
    /// for the admin API gets `caducee:admin` with the client_credentials grant.
    #[arg(long = "scope")]
    pub scopes: Vec<String>,
    /// Let this client introspect tokens issued to other clients (a resource server).
    #[arg(long)]
    pub resource_server: bool,
    /// Where to POST logout tokens when a session it signed into ends (Back-Channel Logout 1.0).
    #[arg(long)]
    pub backchannel_logout_uri: Option<String>,
    /// The client needs `sid` in logout tokens (always sent; recorded for discovery).
    #[arg(long)]
    pub backchannel_logout_session_required: bool,
    /// A page that logs the client out when the provider's logout page loads it in an iframe
    /// (Front-Channel Logout 1.0); same scheme, host and port as a redirect URI.
    #[arg(long)]
    pub frontchannel_logout_uri: Option<String>,
    /// Add `iss` and `sid` to the front-channel logout URI.
    #[arg(long)]
    pub frontchannel_logout_session_required: bool,
    /// CIBA (decoupled login on the phone): `poll` or `ping`; adds the grant
    /// `urn:openid:params:grant-type:ciba`.
    #[arg(long)]
    pub ciba: Option<String>,
    /// CIBA ping mode: where the provider says that the professional answered.
    #[arg(long)]
    pub ciba_notification_endpoint: Option<String>,
    /// `tls_client_auth` (RFC 8705): the subject DN of the client's certificate (RFC 4514
    /// text, e.g. `CN=rp.example,O=Hôpital,C=FR`), or one of its subject alternative names
    /// below; exactly one.
    #[arg(long)]
    pub tls_subject_dn: Option<String>,
    #[arg(long)]
    pub tls_san_dns: Option<String>,
    #[arg(long)]
    pub tls_san_uri: Option<String>,
    #[arg(long)]
    pub tls_san_ip: Option<String>,
    #[arg(long)]
    pub tls_san_email: Option<String>,
    /// Bind the client's access tokens to the certificate it presents (RFC 8705 §3).
    #[arg(long)]
    pub bound_tokens: bool,
    /// What happens to a refresh token once used: `strict` (default: used once, a reuse
    /// revokes the grant and ends the session), `grace` (a second use within 30 s gets tokens
    /// too) or `none` (it stays until it expires, as Keycloak's default).
    #[arg(long)]
    pub refresh_rotation: Option<String>,
}

#[derive(Subcommand, Debug)]
pub enum UserCommand {
    /// Create a professional's account.
    Add(Box<UserAdd>),
    /// List accounts.
    List {
        #[arg(long, default_value_t = 0)]
        offset: u64,
        #[arg(long, default_value_t = 100)]
        limit: u64,
    },
    /// Set or replace a password (read from standard input).
    SetPassword {
        /// The professional's national identifier.
        #[arg(long)]
        national_id: String,
    },
    /// Import accounts from a JSON file (an array of professionals, PSC-shaped practices).
    Import { file: PathBuf },
}

#[derive(Args, Debug)]
pub struct UserAdd {
    /// National identifier (SubjectNameID), e.g. 899700000001; also the login identifier.
    #[arg(long)]
    pub national_id: String,
    /// Given name (first name).
    #[arg(long)]
    pub given_name: String,
    /// Family name.
    #[arg(long)]
    pub family_name: String,
    /// E-mail address: where OTP codes are mailed.
    #[arg(long)]
    pub email: Option<String>,
    /// M or MME.
    #[arg(long, default_value = "")]
    pub civility: String,
    /// Profession code (10 physician, 21 pharmacist, 40 dental surgeon, 50 midwife, 60 nurse...).
    #[arg(long)]
    pub profession: Option<String>,
    /// Professional category: C civil, M military, E student.
    #[arg(long, default_value = "C")]
    pub category: String,
    /// Specialty code (codeSavoirFaire), e.g. SM54.
    #[arg(long)]
    pub specialty: Option<String>,
    /// Place of practice (raisonSocialeSite).
    #[arg(long)]
    pub organization: Option<String>,
    /// Password on the command line (visible to other local users: prefer --password-stdin).
    #[arg(long, conflicts_with = "password_stdin")]
    pub password: Option<oidc_core::secret::SecretString>,
    /// Read the password from standard input (one line).
    #[arg(long)]
    pub password_stdin: bool,
}

#[derive(Subcommand, Debug)]
pub enum TotpCommand {
    /// Enrol a TOTP app for a professional; prints the otpauth:// URI to scan.
    Enroll {
        /// The professional's national identifier.
        #[arg(long)]
        user: String,
    },
}

#[derive(Subcommand, Debug)]
pub enum KeysCommand {
    /// Add new signing keys (RS256 and ES256) and sign with them; the previous ones stay
    /// published until every token they signed has expired.
    Rotate,
    /// List signing keys.
    List,
}
