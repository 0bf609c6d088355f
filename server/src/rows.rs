//! The assets table's rows, and the statements every write path runs inside its own
//! transaction (the inserts in `db.rs`, the group commit in `groupcommit.rs`): kept here so
//! those modules depend on it, not on one another.

use serde::Serialize;
use sqlx::Row;

/// A stored asset row (live or tombstone).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct AssetRow {
    pub user_id: String,
    pub id: String,
    pub name: String,
    pub mime_type: String,
    pub size: i64,
    pub sha256: String,
    pub path: String,
    pub tags: Vec<String>,
    pub created_at: i64,
    pub updated_at: i64,
    pub version: i64,
    pub seq: i64,
    pub deleted_at: Option<i64>,
    pub thumb_path: Option<String>,
    /// Set (ms epoch) once a thumbnail could not be made, so the decode is never retried.
    pub thumb_failed: Option<i64>,
    /// The member who made this version (spaces only; `None` in a personal library).
    pub updated_by: Option<String>,
}

/// Result of trying to insert a new asset.
pub enum Insert {
    /// Created.
    Created(AssetRow),
    /// The id already exists (live or deleted); the caller decides 200/409.
    Exists(AssetRow),
    /// The upload session to finish is gone (cancelled, or its lease taken over): nothing
    /// was written.
    SessionGone,
}

pub(crate) const COLS: &str = "user_id, id, name, mime_type, size, sha256, path, tags, created_at, updated_at, version, seq, deleted_at, thumb_path, thumb_failed, updated_by";

pub(crate) fn row(r: &sqlx::any::AnyRow) -> Result<AssetRow, sqlx::Error> {
    let tags: String = r.try_get("tags")?;
    Ok(AssetRow {
        user_id: r.try_get("user_id")?,
        id: r.try_get("id")?,
        name: r.try_get("name")?,
        mime_type: r.try_get("mime_type")?,
        size: r.try_get("size")?,
        sha256: r.try_get("sha256")?,
        path: r.try_get("path")?,
        tags: serde_json::from_str(&tags).unwrap_or_default(),
        created_at: r.try_get("created_at")?,
        updated_at: r.try_get("updated_at")?,
        version: r.try_get("version")?,
        seq: r.try_get("seq")?,
        deleted_at: r.try_get("deleted_at")?,
        thumb_path: r.try_get("thumb_path")?,
        thumb_failed: r.try_get("thumb_failed")?,
        updated_by: r.try_get("updated_by")?,
    })
}

/// One asset of `user` inside `tx` (tombstones included).
pub(crate) async fn get_in(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    user: &str,
    id: &str,
) -> Result<Option<AssetRow>, sqlx::Error> {
    let q = format!("SELECT {COLS} FROM assets WHERE user_id = $1 AND id = $2");
    sqlx::query(&q).bind(user).bind(id).fetch_optional(&mut **tx).await?.as_ref().map(row).transpose()
}

/// The next number of `user`'s change sequence, inside `tx`.
pub(crate) async fn next_seq(tx: &mut sqlx::Transaction<'_, sqlx::Any>, user: &str) -> Result<i64, sqlx::Error> {
    // The row lock on user_seq also serialises a user's writers, so seq order is commit order.
    let r = sqlx::query(
        "INSERT INTO user_seq (user_id, seq) VALUES ($1, 1) \
         ON CONFLICT (user_id) DO UPDATE SET seq = user_seq.seq + 1 RETURNING seq",
    )
    .bind(user)
    .fetch_one(&mut **tx)
    .await?;
    r.try_get("seq")
}

/// The insert of `Db::insert_finishing` inside `tx`: the existing row, or the new one
/// with the user's next sequence number (a unique violation is the caller's to answer).
pub(crate) async fn insert_in(tx: &mut sqlx::Transaction<'_, sqlx::Any>, a: &AssetRow) -> Result<Insert, sqlx::Error> {
    if let Some(existing) = get_in(tx, &a.user_id, &a.id).await? {
        return Ok(Insert::Exists(existing));
    }
    let seq = next_seq(tx, &a.user_id).await?;
    let q = format!(
        "INSERT INTO assets ({COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, NULL, NULL, NULL, $13)"
    );
    sqlx::query(&q)
        .bind(&a.user_id)
        .bind(&a.id)
        .bind(&a.name)
        .bind(&a.mime_type)
        .bind(a.size)
        .bind(&a.sha256)
        .bind(&a.path)
        .bind(serde_json::to_string(&a.tags).unwrap_or_else(|_| "[]".into()))
        .bind(a.created_at)
        .bind(a.updated_at)
        .bind(1i64)
        .bind(seq)
        .bind(&a.updated_by)
        .execute(&mut **tx)
        .await?;
    Ok(Insert::Created(AssetRow {
        version: 1,
        seq,
        deleted_at: None,
        thumb_path: None,
        thumb_failed: None,
        ..a.clone()
    }))
}
