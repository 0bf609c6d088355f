//! Upload-session rows (migrations/0003): the state any instance needs to continue a session,
//! and the append lease that keeps two appends to one session from overlapping, across
//! instances. Same SQL for SQLite and PostgreSQL, like `crate::db`.

use sqlx::Row;

use crate::db::Db;

/// One open (or expired, not yet swept) session.
#[derive(Clone, Debug, PartialEq)]
pub struct SessionRow {
    pub user_id: String,
    pub id: String,
    pub name: String,
    pub mime_type: String,
    pub size: i64,
    pub tags: Vec<String>,
    pub created_at: i64,
    /// Bytes stored and confirmed.
    pub offset: i64,
    /// `Sha256State` checkpoint of the first `offset` bytes.
    pub hash_state: String,
    /// The asset's object key once complete.
    pub path: String,
    /// S3 multipart upload id, or the local staging file (relative to the storage root).
    pub handle: String,
    /// ETags of the committed parts, in part order (S3; empty for local files).
    pub parts: Vec<String>,
    pub lease_token: Option<String>,
    pub lease_until: Option<i64>,
    pub expires_at: i64,
    /// The member who opened it, in a space (`None` in a personal library): only they see it.
    pub created_by: Option<String>,
}

impl SessionRow {
    /// Open at `now`: unexpired, or held by a running append (a session never expires under
    /// an append; the append's end extends it).
    pub fn open_at(&self, now: i64) -> bool {
        self.expires_at > now || self.lease_until.is_some_and(|l| l > now)
    }
}

const COLS: &str = "user_id, id, name, mime_type, size, tags, created_at, upload_offset, hash_state, path, handle, parts, lease_token, lease_until, expires_at, created_by";

fn row(r: &sqlx::any::AnyRow) -> Result<SessionRow, sqlx::Error> {
    let tags: String = r.try_get("tags")?;
    let parts: String = r.try_get("parts")?;
    Ok(SessionRow {
        user_id: r.try_get("user_id")?,
        id: r.try_get("id")?,
        name: r.try_get("name")?,
        mime_type: r.try_get("mime_type")?,
        size: r.try_get("size")?,
        tags: serde_json::from_str(&tags).unwrap_or_default(),
        created_at: r.try_get("created_at")?,
        offset: r.try_get("upload_offset")?,
        hash_state: r.try_get("hash_state")?,
        path: r.try_get("path")?,
        handle: r.try_get("handle")?,
        parts: serde_json::from_str(&parts).map_err(|e| sqlx::Error::Decode(Box::new(e)))?,
        lease_token: r.try_get("lease_token")?,
        lease_until: r.try_get("lease_until")?,
        expires_at: r.try_get("expires_at")?,
        created_by: r.try_get("created_by")?,
    })
}

fn json<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_string(v).unwrap_or_else(|_| "[]".into())
}

impl Db {
    /// The session of (user, id), expired or not.
    pub async fn session(&self, user: &str, id: &str) -> Result<Option<SessionRow>, sqlx::Error> {
        let q = format!("SELECT {COLS} FROM upload_sessions WHERE user_id = $1 AND id = $2");
        sqlx::query(&q).bind(user).bind(id).fetch_optional(self.pool()).await?.as_ref().map(row).transpose()
    }

    /// The open session of (user, id) at `now` ([`SessionRow::open_at`]).
    pub async fn open_session(&self, user: &str, id: &str, now: i64) -> Result<Option<SessionRow>, sqlx::Error> {
        Ok(self.session(user, id).await?.filter(|s| s.open_at(now)))
    }

    /// How many open sessions `user` has, and when the first of them expires.
    pub async fn open_sessions(&self, user: &str, now: i64) -> Result<(i64, Option<i64>), sqlx::Error> {
        let r = sqlx::query(
            "SELECT COUNT(*) AS n, MIN(expires_at) AS first FROM upload_sessions WHERE user_id = $1 \
             AND (expires_at > $2 OR lease_until > $3)",
        )
        .bind(user)
        .bind(now)
        .bind(now)
        .fetch_one(self.pool())
        .await?;
        Ok((r.try_get("n")?, r.try_get("first")?))
    }

    /// Inserts a new session; `false` if (user, id) has one already (a concurrent create won).
    pub async fn insert_session(&self, s: &SessionRow) -> Result<bool, sqlx::Error> {
        let q = format!(
            "INSERT INTO upload_sessions ({COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, NULL, NULL, $13, $14)"
        );
        let r = sqlx::query(&q)
            .bind(&s.user_id)
            .bind(&s.id)
            .bind(&s.name)
            .bind(&s.mime_type)
            .bind(s.size)
            .bind(json(&s.tags))
            .bind(s.created_at)
            .bind(s.offset)
            .bind(&s.hash_state)
            .bind(&s.path)
            .bind(&s.handle)
            .bind(json(&s.parts))
            .bind(s.expires_at)
            .bind(&s.created_by)
            .execute(self.pool())
            .await;
        match r {
            Ok(_) => Ok(true),
            Err(sqlx::Error::Database(e)) if e.is_unique_violation() => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Takes the append lease of an open session at `offset` until `until`, unless another
    /// append holds an unexpired one. `false`: not taken (moved on, leased, gone or expired).
    pub async fn take_lease(
        &self,
        user: &str,
        id: &str,
        offset: i64,
        token: &str,
        until: i64,
        now: i64,
    ) -> Result<bool, sqlx::Error> {
        let r = sqlx::query(
            "UPDATE upload_sessions SET lease_token = $1, lease_until = $2 \
             WHERE user_id = $3 AND id = $4 AND upload_offset = $5 AND expires_at > $6 \
             AND (lease_until IS NULL OR lease_until <= $7)",
        )
        .bind(token)
        .bind(until)
        .bind(user)
        .bind(id)
        .bind(offset)
        .bind(now)
        .bind(now)
        .execute(self.pool())
        .await?;
        Ok(r.rows_affected() == 1)
    }

    /// Extends a held lease; `false` if it is no longer ours.
    pub async fn renew_lease(&self, user: &str, id: &str, token: &str, until: i64) -> Result<bool, sqlx::Error> {
        let r = sqlx::query(
            "UPDATE upload_sessions SET lease_until = $1 WHERE user_id = $2 AND id = $3 AND lease_token = $4",
        )
        .bind(until)
        .bind(user)
        .bind(id)
        .bind(token)
        .execute(self.pool())
        .await?;
        Ok(r.rows_affected() == 1)
    }

    /// Gives a lease back without appending.
    pub async fn release_lease(&self, user: &str, id: &str, token: &str) -> Result<(), sqlx::Error> {
        sqlx::query(
            "UPDATE upload_sessions SET lease_token = NULL, lease_until = NULL \
             WHERE user_id = $1 AND id = $2 AND lease_token = $3",
        )
        .bind(user)
        .bind(id)
        .bind(token)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// Records an appended chunk under the lease `token` and releases it; `false` if the
    /// lease is no longer ours (the session was cancelled or taken over).
    #[allow(clippy::too_many_arguments)]
    pub async fn advance(
        &self,
        user: &str,
        id: &str,
        token: &str,
        offset: i64,
        hash_state: &str,
        parts: &[String],
        expires_at: i64,
    ) -> Result<bool, sqlx::Error> {
        let r = sqlx::query(
            "UPDATE upload_sessions SET upload_offset = $1, hash_state = $2, parts = $3, expires_at = $4, \
             lease_token = NULL, lease_until = NULL WHERE user_id = $5 AND id = $6 AND lease_token = $7",
        )
        .bind(offset)
        .bind(hash_state)
        .bind(json(&parts))
        .bind(expires_at)
        .bind(user)
        .bind(id)
        .bind(token)
        .execute(self.pool())
        .await?;
        Ok(r.rows_affected() == 1)
    }

    /// Deletes the session of (user, id) if it is `expected` (same handle: not a newer
    /// session made meanwhile); with `lease`, only while that lease holds. `true` if deleted.
    pub async fn delete_session(&self, expected: &SessionRow, lease: Option<&str>) -> Result<bool, sqlx::Error> {
        let r = sqlx::query(
            "DELETE FROM upload_sessions WHERE user_id = $1 AND id = $2 AND handle = $3 \
             AND ($4 = '' OR lease_token = $5)",
        )
        .bind(&expected.user_id)
        .bind(&expected.id)
        .bind(&expected.handle)
        .bind(lease.unwrap_or(""))
        .bind(lease.unwrap_or(""))
        .execute(self.pool())
        .await?;
        Ok(r.rows_affected() == 1)
    }

    /// Sessions expired at `now` that no append holds, oldest first, at most `limit`.
    pub async fn expired_sessions(&self, now: i64, limit: i64) -> Result<Vec<SessionRow>, sqlx::Error> {
        let q = format!(
            "SELECT {COLS} FROM upload_sessions WHERE expires_at <= $1 AND (lease_until IS NULL OR lease_until <= $2) \
             ORDER BY expires_at LIMIT $3"
        );
        sqlx::query(&q).bind(now).bind(now).bind(limit).fetch_all(self.pool()).await?.iter().map(row).collect()
    }

    /// Whether a session row names `handle` (a local staging file) as its storage.
    pub async fn handle_in_use(&self, handle: &str) -> Result<bool, sqlx::Error> {
        let r = sqlx::query("SELECT COUNT(*) AS n FROM upload_sessions WHERE handle = $1")
            .bind(handle)
            .fetch_one(self.pool())
            .await?;
        Ok(r.try_get::<i64, _>("n")? > 0)
    }
}
