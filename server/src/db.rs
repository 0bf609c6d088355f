//! Asset metadata in SQL through one code path for SQLite and PostgreSQL (sqlx `Any`).
//! Every write bumps the user's change sequence in the same transaction.

use sqlx::any::AnyPoolOptions;
use sqlx::{AnyPool, Row};

use crate::rows::{self, row, COLS};
pub use crate::rows::{AssetRow, Insert};

/// The metadata database.
#[derive(Clone)]
pub struct Db {
    pool: AnyPool,
    /// New assets' group commit (SQLite only: [`crate::groupcommit`]).
    group: Option<crate::groupcommit::Group>,
}

impl Db {
    /// The pool, for the other tables' queries (upload sessions).
    pub(crate) fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// Connects (creating a SQLite file if needed) and runs the migrations for the engine.
    pub async fn connect(url: &str) -> Result<Self, sqlx::Error> {
        sqlx::any::install_default_drivers();
        let sqlite = url.starts_with("sqlite:");
        let pool = AnyPoolOptions::new()
            // SQLite serialises writers anyway; one connection avoids SQLITE_BUSY under load.
            .max_connections(if sqlite { 1 } else { 16 })
            .connect(url)
            .await?;
        if sqlite {
            sqlx::query("PRAGMA journal_mode = WAL").execute(&pool).await?;
        }
        // One migration set for both engines: the schema sticks to SQL they share
        // (TEXT, BIGINT, ON CONFLICT ... RETURNING). Split the folder if that stops holding.
        sqlx::migrate!("./migrations").run(&pool).await?;
        let group = sqlite.then(|| crate::groupcommit::Group::start(pool.clone()));
        Ok(Self { pool, group })
    }

    /// One asset of `user` (tombstones included).
    pub async fn get(&self, user: &str, id: &str) -> Result<Option<AssetRow>, sqlx::Error> {
        let q = format!("SELECT {COLS} FROM assets WHERE user_id = $1 AND id = $2");
        sqlx::query(&q).bind(user).bind(id).fetch_optional(&self.pool).await?.as_ref().map(row).transpose()
    }

    /// Inserts a new asset unless the id exists for this user.
    pub async fn insert(&self, a: &AssetRow) -> Result<Insert, sqlx::Error> {
        self.insert_finishing(a, None).await
    }

    /// Inserts a new asset unless the id exists for this user; with `lease`, the upload
    /// session `(a.user_id, a.id)` held under that lease ends in the same transaction (the
    /// asset appears and the session disappears at once, whichever answer is given).
    pub async fn insert_finishing(&self, a: &AssetRow, lease: Option<&str>) -> Result<Insert, sqlx::Error> {
        if let (Some(group), None) = (&self.group, lease) {
            return group.insert(a.clone()).await;
        }
        let mut tx = self.pool.begin().await?;
        if let Some(token) = lease {
            let gone = sqlx::query("DELETE FROM upload_sessions WHERE user_id = $1 AND id = $2 AND lease_token = $3")
                .bind(&a.user_id)
                .bind(&a.id)
                .bind(token)
                .execute(&mut *tx)
                .await?;
            if gone.rows_affected() != 1 {
                return Ok(Insert::SessionGone);
            }
        }
        match rows::insert_in(&mut tx, a).await {
            Ok(Insert::Exists(existing)) => {
                if lease.is_some() {
                    tx.commit().await?;
                }
                Ok(Insert::Exists(existing))
            }
            Ok(created) => {
                tx.commit().await?;
                Ok(created)
            }
            // A concurrent upload of the same id won the race: report what it stored.
            Err(sqlx::Error::Database(e)) if e.is_unique_violation() => {
                drop(tx);
                if let Some(token) = lease {
                    // The rollback restored the session row: end it on its own.
                    sqlx::query("DELETE FROM upload_sessions WHERE user_id = $1 AND id = $2 AND lease_token = $3")
                        .bind(&a.user_id)
                        .bind(&a.id)
                        .bind(token)
                        .execute(&self.pool)
                        .await?;
                }
                let existing = self.get(&a.user_id, &a.id).await?.ok_or(sqlx::Error::RowNotFound)?;
                Ok(Insert::Exists(existing))
            }
            Err(e) => Err(e),
        }
    }

    /// Updates name/tags if `version` matches, made `by` a space's member; returns the new
    /// row, or `Err(current)` on a stale version. `None` if the asset is missing or deleted.
    #[allow(clippy::too_many_arguments)]
    pub async fn update_meta(
        &self,
        user: &str,
        id: &str,
        version: i64,
        name: &str,
        tags: &[String],
        now: i64,
        by: Option<&str>,
    ) -> Result<Option<Result<AssetRow, AssetRow>>, sqlx::Error> {
        let mut tx = self.pool.begin().await?;
        // The sequence first: its row lock makes this library's writers take turns, so the
        // read below is the latest commit (two members' edits of one version: the second
        // sees the first's result and gets 412 with it). An early return rolls it back.
        let seq = rows::next_seq(&mut tx, user).await?;
        let Some(cur) = rows::get_in(&mut tx, user, id).await? else { return Ok(None) };
        if cur.deleted_at.is_some() {
            return Ok(None);
        }
        if cur.version != version {
            return Ok(Some(Err(cur)));
        }
        let tags_json = serde_json::to_string(tags).unwrap_or_else(|_| "[]".into());
        let done = sqlx::query(
            "UPDATE assets SET name = $1, tags = $2, updated_at = $3, version = version + 1, seq = $4, \
             updated_by = $5 WHERE user_id = $6 AND id = $7 AND version = $8",
        )
        .bind(name)
        .bind(&tags_json)
        .bind(now)
        .bind(seq)
        .bind(by)
        .bind(user)
        .bind(id)
        .bind(version)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() != 1 {
            return Ok(Some(Err(cur)));
        }
        tx.commit().await?;
        Ok(Some(Ok(AssetRow {
            name: name.into(),
            tags: tags.to_vec(),
            updated_at: now,
            version: version + 1,
            seq,
            updated_by: by.map(str::to_owned),
            ..cur
        })))
    }

    /// Turns a live asset into a tombstone (deleted `by` a space's member). `Ok(None)` if
    /// missing; `Err(current)` if `if_version` is given and stale. Already-deleted assets
    /// return their tombstone.
    pub async fn delete(
        &self,
        user: &str,
        id: &str,
        if_version: Option<i64>,
        now: i64,
        by: Option<&str>,
    ) -> Result<Option<Result<AssetRow, AssetRow>>, sqlx::Error> {
        let mut tx = self.pool.begin().await?;
        // Sequence first, as in `update_meta`: `if_version` meets the latest commit.
        let seq = rows::next_seq(&mut tx, user).await?;
        let Some(cur) = rows::get_in(&mut tx, user, id).await? else { return Ok(None) };
        if cur.deleted_at.is_some() {
            return Ok(Some(Ok(cur)));
        }
        if if_version.is_some_and(|v| v != cur.version) {
            return Ok(Some(Err(cur)));
        }
        sqlx::query(
            "UPDATE assets SET deleted_at = $1, updated_at = $2, version = version + 1, seq = $3, \
             updated_by = $4 WHERE user_id = $5 AND id = $6",
        )
        .bind(now)
        .bind(now)
        .bind(seq)
        .bind(by)
        .bind(user)
        .bind(id)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(Some(Ok(AssetRow {
            deleted_at: Some(now),
            updated_at: now,
            version: cur.version + 1,
            seq,
            updated_by: by.map(str::to_owned),
            ..cur
        })))
    }

    /// Live assets of `user` with id > `after`, ordered by id, at most `limit`.
    pub async fn list(&self, user: &str, after: &str, limit: i64) -> Result<Vec<AssetRow>, sqlx::Error> {
        let q = format!(
            "SELECT {COLS} FROM assets WHERE user_id = $1 AND id > $2 AND deleted_at IS NULL ORDER BY id LIMIT $3"
        );
        sqlx::query(&q).bind(user).bind(after).bind(limit).fetch_all(&self.pool).await?.iter().map(row).collect()
    }

    /// Changes (live rows and tombstones) of `user` with seq > `after`, in seq order.
    pub async fn changes(&self, user: &str, after: i64, limit: i64) -> Result<Vec<AssetRow>, sqlx::Error> {
        let q = format!("SELECT {COLS} FROM assets WHERE user_id = $1 AND seq > $2 ORDER BY seq LIMIT $3");
        sqlx::query(&q).bind(user).bind(after).bind(limit).fetch_all(&self.pool).await?.iter().map(row).collect()
    }

    /// Records a generated thumbnail's path.
    pub async fn set_thumb(&self, user: &str, id: &str, path: &str) -> Result<(), sqlx::Error> {
        sqlx::query("UPDATE assets SET thumb_path = $1 WHERE user_id = $2 AND id = $3")
            .bind(path)
            .bind(user)
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Remembers that no thumbnail can be made of this asset.
    pub async fn set_thumb_failed(&self, user: &str, id: &str, at: i64) -> Result<(), sqlx::Error> {
        sqlx::query("UPDATE assets SET thumb_failed = $1 WHERE user_id = $2 AND id = $3")
            .bind(at)
            .bind(user)
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// This database's dataset id: made once, at the first start on an empty database, and
    /// kept; a new id tells clients the server's data was reset.
    pub async fn dataset_id(&self) -> Result<String, sqlx::Error> {
        sqlx::query("INSERT INTO dataset (k, id) VALUES (1, $1) ON CONFLICT (k) DO NOTHING")
            .bind(uuid::Uuid::new_v4().hyphenated().to_string())
            .execute(&self.pool)
            .await?;
        sqlx::query("SELECT id FROM dataset WHERE k = 1").fetch_one(&self.pool).await?.try_get("id")
    }

    /// Whether any row (live or tombstone) references `path` as bytes or thumbnail.
    pub async fn path_in_use(&self, path: &str) -> Result<bool, sqlx::Error> {
        let r =
            sqlx::query("SELECT COUNT(*) AS n FROM assets WHERE (path = $1 AND deleted_at IS NULL) OR thumb_path = $2")
                .bind(path)
                .bind(path)
                .fetch_one(&self.pool)
                .await?;
        Ok(r.try_get::<i64, _>("n")? > 0)
    }
}
