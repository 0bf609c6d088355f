//! Space membership in SQL (migrations/0004), read on every space request so a change made
//! through any instance holds at once on all of them. Same SQL for SQLite and PostgreSQL.

use sqlx::Row;

use crate::db::Db;

/// One member of a space.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Member {
    pub user_id: String,
    /// When they were added (ms since the Unix epoch).
    pub added_at: i64,
}

impl Db {
    /// Whether `user` is a member of `space`.
    pub async fn is_member(&self, space: &str, user: &str) -> Result<bool, sqlx::Error> {
        let r = sqlx::query("SELECT COUNT(*) AS n FROM space_members WHERE space_id = $1 AND user_id = $2")
            .bind(space)
            .bind(user)
            .fetch_one(self.pool())
            .await?;
        Ok(r.try_get::<i64, _>("n")? > 0)
    }

    /// Adds `user` to `space`; `false` if they were a member already (nothing changes).
    pub async fn add_member(&self, space: &str, user: &str, now: i64) -> Result<bool, sqlx::Error> {
        let r = sqlx::query(
            "INSERT INTO space_members (space_id, user_id, added_at) VALUES ($1, $2, $3) \
             ON CONFLICT (space_id, user_id) DO NOTHING",
        )
        .bind(space)
        .bind(user)
        .bind(now)
        .execute(self.pool())
        .await?;
        Ok(r.rows_affected() == 1)
    }

    /// Removes `user` from `space`; `false` if they were not a member.
    pub async fn remove_member(&self, space: &str, user: &str) -> Result<bool, sqlx::Error> {
        let r = sqlx::query("DELETE FROM space_members WHERE space_id = $1 AND user_id = $2")
            .bind(space)
            .bind(user)
            .execute(self.pool())
            .await?;
        Ok(r.rows_affected() == 1)
    }

    /// The members of `space`, by user id.
    pub async fn members(&self, space: &str) -> Result<Vec<Member>, sqlx::Error> {
        let rows = sqlx::query("SELECT user_id, added_at FROM space_members WHERE space_id = $1 ORDER BY user_id")
            .bind(space)
            .fetch_all(self.pool())
            .await?;
        rows.iter().map(|r| Ok(Member { user_id: r.try_get("user_id")?, added_at: r.try_get("added_at")? })).collect()
    }
}

#[cfg(test)]
mod tests {
    #[tokio::test]
    async fn add_remove_list_each_idempotent_and_per_space() {
        let dir = std::env::temp_dir().join(format!("opfs-media-members-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let db = crate::db::Db::connect(&format!("sqlite://{}?mode=rwc", dir.join("m.db").display())).await.unwrap();
        assert!(!db.is_member("b1", "alice").await.unwrap());
        assert!(db.add_member("b1", "alice", 5).await.unwrap());
        assert!(!db.add_member("b1", "alice", 6).await.unwrap(), "a second add changes nothing");
        assert!(db.add_member("b1", "bob", 7).await.unwrap());
        assert!(db.is_member("b1", "alice").await.unwrap());
        assert!(!db.is_member("b2", "alice").await.unwrap(), "membership is per space");
        let m = db.members("b1").await.unwrap();
        assert_eq!(m.iter().map(|m| (m.user_id.as_str(), m.added_at)).collect::<Vec<_>>(), [("alice", 5), ("bob", 7)]);
        assert!(db.remove_member("b1", "alice").await.unwrap());
        assert!(!db.remove_member("b1", "alice").await.unwrap());
        assert!(!db.is_member("b1", "alice").await.unwrap());
        assert!(db.members("b2").await.unwrap().is_empty());
        let _ = std::fs::remove_dir_all(dir);
    }
}
