//! `opfs-media-server`: serves the protocol, or mints a token for a user.

use std::net::SocketAddr;
use std::time::Duration;

use clap::{Parser, Subcommand};
use std::sync::Arc;

use opfs_media_server::resumable::{rules::Limits, Resumable};
use opfs_media_server::{auth::AuthMode, db::Db, router, serve, storage, AppState};

#[derive(Parser)]
#[command(version, about = "Reference server for the opfs-media sync protocol")]
struct Cli {
    #[command(subcommand)]
    cmd: Option<Cmd>,
    #[command(flatten)]
    cfg: Config,
}

#[derive(clap::Args, Clone)]
struct Config {
    /// Address to listen on.
    #[arg(long, env = "OPFS_MEDIA_BIND", default_value = "127.0.0.1:8787")]
    bind: SocketAddr,
    /// Metadata database: `sqlite://<file>?mode=rwc` (default) or `postgres://...`.
    #[arg(long, env = "OPFS_MEDIA_DATABASE_URL", default_value = "sqlite://data/opfs-media.db?mode=rwc")]
    database_url: String,
    /// Byte storage: `file://<dir>` (default, relative to the working directory) or `s3://<bucket>[/prefix]`.
    #[arg(long, env = "OPFS_MEDIA_STORAGE_URL", default_value = "file://data/objects")]
    storage_url: String,
    /// `dev-insecure` (any `Bearer dev:<user>` is trusted: demo only) or `hmac` (needs --secret).
    #[arg(long, env = "OPFS_MEDIA_AUTH", default_value = "dev-insecure")]
    auth: String,
    /// HMAC secret for `--auth hmac`.
    #[arg(long, env = "OPFS_MEDIA_SECRET", hide_env_values = true)]
    secret: Option<String>,
    /// Largest upload in bytes.
    #[arg(long, env = "OPFS_MEDIA_MAX_UPLOAD_BYTES", default_value_t = 2 * 1024 * 1024 * 1024)]
    max_upload_bytes: u64,
    /// Requests per second per user (bursts of twice that); 0 turns the limit off.
    #[arg(long, env = "OPFS_MEDIA_RATE_LIMIT", default_value_t = 0)]
    rate_limit: u32,
    /// Orphaned objects (crashed uploads) younger than this are left alone by the sweep.
    #[arg(long, env = "OPFS_MEDIA_SWEEP_GRACE_SECS", default_value_t = 3600)]
    sweep_grace_secs: u64,
    /// Path the API is mounted under: endpoints are `<prefix>/media/...` (e.g. `/v2/media-sync`
    /// when the app's own router owns `/api`). Clients given a bare origin use `/api`.
    #[arg(long, env = "OPFS_MEDIA_API_PREFIX", default_value = opfs_media_server::DEFAULT_API_PREFIX)]
    api_prefix: String,
    /// Seconds to wait for the next chunk of a request body before giving up (408); a stalled
    /// upload's staging data is removed then.
    #[arg(long, env = "OPFS_MEDIA_BODY_IDLE_TIMEOUT_SECS", default_value_t = 30)]
    body_idle_timeout_secs: u64,
    /// Seconds a client has to send a request's headers, counted from when the server waits
    /// for them (also on an idle keep-alive connection); slow-header clients are cut off.
    #[arg(long, env = "OPFS_MEDIA_HEADER_READ_TIMEOUT_SECS", default_value_t = 10)]
    header_read_timeout_secs: u64,
    /// Seconds an open connection may sit with no request in flight and no traffic.
    #[arg(long, env = "OPFS_MEDIA_KEEP_ALIVE_TIMEOUT_SECS", default_value_t = 60)]
    keep_alive_timeout_secs: u64,
    /// Most open connections; at the cap the one idle longest is closed to make room. Keep it
    /// below the process's file-descriptor limit (`ulimit -n`) minus ~30.
    #[arg(long, env = "OPFS_MEDIA_MAX_CONNECTIONS", default_value_t = 1024)]
    max_connections: usize,
    /// Turns the resumable-upload extension off: capabilities omit it and its endpoints 404.
    #[arg(long, env = "OPFS_MEDIA_NO_RESUMABLE_UPLOADS")]
    no_resumable_uploads: bool,
    /// Files of at least this many bytes should use an upload session (advertised as
    /// `resumableUploads.minBytes`; smaller files use one POST).
    #[arg(long, env = "OPFS_MEDIA_RESUMABLE_MIN_BYTES", default_value_t = 8 * 1024 * 1024)]
    resumable_min_bytes: u64,
    /// Smallest chunk but the last (a multiple of 64; at least 5 MiB with S3, whose parts it becomes).
    #[arg(long, env = "OPFS_MEDIA_CHUNK_MIN_BYTES", default_value_t = 5 * 1024 * 1024)]
    chunk_min_bytes: u64,
    /// Largest chunk. An S3 append holds one chunk in memory.
    #[arg(long, env = "OPFS_MEDIA_CHUNK_MAX_BYTES", default_value_t = 64 * 1024 * 1024)]
    chunk_max_bytes: u64,
    /// An upload session expires this many seconds after its creation or last append.
    #[arg(long, env = "OPFS_MEDIA_UPLOAD_SESSION_LIFETIME_SECS", default_value_t = 86_400)]
    upload_session_lifetime_secs: u64,
    /// Open upload sessions per user (429 TOO_MANY_UPLOADS beyond).
    #[arg(long, env = "OPFS_MEDIA_MAX_UPLOAD_SESSIONS", default_value_t = 32)]
    max_upload_sessions: u32,
    /// Seconds an append's lease lasts unrenewed: after a crashed instance, its session is
    /// locked (409 UPLOAD_LOCKED) at most this long.
    #[arg(long, env = "OPFS_MEDIA_UPLOAD_LEASE_SECS", default_value_t = 30)]
    upload_lease_secs: u64,
    /// Secret of the admin API the app's backend manages space membership with (at least 16
    /// characters). Set, it turns spaces on (`<prefix>/spaces/<id>/media/...`); unset, they are off.
    #[arg(long, env = "OPFS_MEDIA_ADMIN_SECRET", hide_env_values = true)]
    admin_secret: Option<String>,
    /// Browser origins allowed by CORS (comma-separated), e.g. the demo page's.
    #[arg(long, env = "OPFS_MEDIA_CORS_ORIGINS", value_delimiter = ',')]
    cors_origins: Vec<String>,
}

#[derive(Subcommand)]
enum Cmd {
    /// Prints a token for USER valid for TTL seconds (with the configured auth mode).
    MintToken {
        user: String,
        #[arg(long, default_value_t = 3600)]
        ttl: u64,
    },
}

fn auth_mode(cfg: &Config) -> Result<AuthMode, String> {
    match (cfg.auth.as_str(), &cfg.secret) {
        ("dev-insecure", _) => Ok(AuthMode::DevInsecure),
        ("hmac", Some(s)) if s.len() >= 16 => Ok(AuthMode::Hmac(s.as_bytes().to_vec())),
        ("hmac", _) => Err("--auth hmac needs --secret (OPFS_MEDIA_SECRET) of at least 16 characters".into()),
        (other, _) => Err(format!("unknown --auth {other:?}: use dev-insecure or hmac")),
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
        .init();
    let cli = Cli::parse();
    let auth = auth_mode(&cli.cfg)?;
    if cli.cfg.admin_secret.as_ref().is_some_and(|s| s.len() < 16) {
        return Err("--admin-secret (OPFS_MEDIA_ADMIN_SECRET) must be at least 16 characters".into());
    }
    let api_prefix = opfs_media_server::api_prefix(&cli.cfg.api_prefix)?;
    if let Some(Cmd::MintToken { user, ttl }) = cli.cmd {
        if !opfs_media_server::auth::valid_user(&user) {
            return Err("user ids are 1-64 of A-Z a-z 0-9 _ -".into());
        }
        let exp = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)?
            .as_secs()
            .checked_add(ttl)
            .ok_or("--ttl is too large: the expiry must fit in 64 bits of Unix seconds")?;
        println!("{}", auth.mint(&user, exp));
        return Ok(());
    }
    if matches!(auth, AuthMode::DevInsecure) {
        tracing::warn!("auth mode dev-insecure: any `Bearer dev:<user>` is trusted. Use --auth hmac outside a demo.");
    }
    if let Some(dir) = cli
        .cfg
        .database_url
        .strip_prefix("sqlite://")
        .and_then(|p| std::path::Path::new(p.split('?').next().unwrap_or("")).parent().map(|d| d.to_owned()))
    {
        std::fs::create_dir_all(dir)?;
    }
    let db = Db::connect(&cli.cfg.database_url).await?;
    let storage::Storage { store, staging, local } = storage::open_storage(&cli.cfg.storage_url)?;
    let local_root = storage::local_root(&cli.cfg.storage_url);
    let resumable = match cli.cfg.no_resumable_uploads {
        true => None,
        false => Some(Arc::new(Resumable::new(
            Limits {
                min_bytes: cli.cfg.resumable_min_bytes,
                chunk_min: cli.cfg.chunk_min_bytes,
                chunk_max: cli.cfg.chunk_max_bytes,
            },
            Duration::from_secs(cli.cfg.upload_session_lifetime_secs),
            cli.cfg.max_upload_sessions,
            Duration::from_secs(cli.cfg.upload_lease_secs),
            staging,
            cli.cfg.max_upload_bytes,
        )?)),
    };
    let mut state = AppState::new(db.clone(), store.clone(), auth, cli.cfg.max_upload_bytes)
        .await?
        .with_rate_limit((cli.cfg.rate_limit > 0).then_some(cli.cfg.rate_limit));
    state.api_prefix = api_prefix.clone();
    state.body_idle_timeout = Duration::from_secs(cli.cfg.body_idle_timeout_secs.max(1));
    state.resumable = resumable.clone();
    state.local_root = local;
    state.admin_secret = cli.cfg.admin_secret.as_deref().map(|s| Arc::from(s.as_bytes()));
    // Expired upload sessions: swept as often as sessions can expire (at most a minute apart).
    if let Some(r) = resumable {
        let (db, grace) = (db.clone(), Duration::from_secs(cli.cfg.sweep_grace_secs));
        let every = r.lifetime.clamp(Duration::from_secs(1), Duration::from_secs(60));
        tokio::spawn(async move {
            loop {
                match opfs_media_server::resumable::sweep(&db, &r, grace).await {
                    Ok(n) if n > 0 => tracing::info!(removed = n, "swept expired upload sessions"),
                    Ok(_) => {}
                    Err(e) => tracing::warn!(error = %e, "upload session sweep failed"),
                }
                tokio::time::sleep(every).await;
            }
        });
    }
    // Leftovers of crashed uploads: swept at start, then hourly. The grace period keeps
    // uploads that are in flight on another instance safe.
    let grace = Duration::from_secs(cli.cfg.sweep_grace_secs);
    tokio::spawn(async move {
        loop {
            match storage::sweep_orphans(store.as_ref(), &db, local_root.as_deref(), grace).await {
                Ok(n) if n > 0 => tracing::info!(removed = n, "swept orphaned objects"),
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "orphan sweep failed"),
            }
            tokio::time::sleep(Duration::from_secs(3600)).await;
        }
    });
    let app = router(state, &cli.cfg.cors_origins);
    let listener = tokio::net::TcpListener::bind(cli.cfg.bind).await?;
    tracing::info!(addr = %listener.local_addr()?, "opfs-media-server listening");
    println!("listening on http://{} (API root {api_prefix})", listener.local_addr()?);
    let limits = serve::Limits {
        header_read_timeout: Duration::from_secs(cli.cfg.header_read_timeout_secs.max(1)),
        keep_alive_timeout: Duration::from_secs(cli.cfg.keep_alive_timeout_secs.max(1)),
        max_connections: cli.cfg.max_connections.max(1),
    };
    serve::serve(listener, app, limits, async {
        let _ = tokio::signal::ctrl_c().await;
    })
    .await?;
    Ok(())
}
