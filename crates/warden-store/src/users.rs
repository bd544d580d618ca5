//! Local user accounts (for the built-in login page).

use std::fmt;

use async_trait::async_trait;
use sqlx::any::AnyRow;

use crate::error::conflict;
use crate::sql::{bool_int, col, col_bool, col_json, to_json};
use crate::{Redacted, Store, StoreError};

/// A local user.
#[derive(Clone, PartialEq, Eq)]
pub struct UserRecord {
    /// Stable identifier, used as the token subject.
    pub id: String,
    /// Login name; unique.
    pub username: String,
    /// argon2id PHC string.
    pub password_hash: String,
    /// Group names, for policy.
    pub groups: Vec<String>,
    /// A disabled user cannot log in.
    pub disabled: bool,
    /// UNIX seconds.
    pub created_at: i64,
    /// UNIX seconds.
    pub updated_at: i64,
}

/// Storage for local users.
#[async_trait]
pub trait UserStore: Send + Sync {
    /// Inserts a user; `Conflict("user id")` or `Conflict("username")`.
    async fn create(&self, user: &UserRecord) -> Result<(), StoreError>;
    /// The user with this id.
    async fn get(&self, id: &str) -> Result<Option<UserRecord>, StoreError>;
    /// The user with this login name.
    async fn get_by_username(&self, username: &str) -> Result<Option<UserRecord>, StoreError>;
    /// All users, ordered by username.
    async fn list(&self) -> Result<Vec<UserRecord>, StoreError>;
    /// Replaces every field except `id` and `created_at`; `NotFound` if absent,
    /// `Conflict("username")` if the new name is taken.
    async fn update(&self, user: &UserRecord) -> Result<(), StoreError>;
    /// Deletes the user; false if it did not exist.
    async fn delete(&self, id: &str) -> Result<bool, StoreError>;
}

const USER_COLUMNS: &str =
    "id, username, password_hash, groups_json, disabled, created_at, updated_at";

const USER_CONFLICTS: &[(&str, &str)] = &[("username", "username")];

// === impl UserRecord ===

impl UserRecord {
    fn from_row(row: &AnyRow) -> Result<Self, StoreError> {
        Ok(UserRecord {
            id: col(row, "id")?,
            username: col(row, "username")?,
            password_hash: col(row, "password_hash")?,
            groups: col_json(row, "groups_json")?,
            disabled: col_bool(row, "disabled")?,
            created_at: col(row, "created_at")?,
            updated_at: col(row, "updated_at")?,
        })
    }
}

impl fmt::Debug for UserRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UserRecord")
            .field("id", &self.id)
            .field("username", &self.username)
            .field("password_hash", &Redacted)
            .field("groups", &self.groups)
            .field("disabled", &self.disabled)
            .field("created_at", &self.created_at)
            .field("updated_at", &self.updated_at)
            .finish()
    }
}

// === impl Store ===

impl Store {
    async fn users_where(
        &self,
        filter: &str,
        arg: Option<&str>,
    ) -> Result<Vec<UserRecord>, StoreError> {
        let sql = format!("SELECT {USER_COLUMNS} FROM users {filter} ORDER BY username");
        let sql = self.q(&sql);
        let mut query = sqlx::query(&sql);
        if let Some(arg) = arg {
            query = query.bind(arg);
        }
        let rows = query.fetch_all(self.db()?).await?;
        rows.iter().map(UserRecord::from_row).collect()
    }
}

#[async_trait]
impl UserStore for Store {
    async fn create(&self, user: &UserRecord) -> Result<(), StoreError> {
        let sql = format!("INSERT INTO users ({USER_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)");
        sqlx::query(&self.q(&sql))
            .bind(&user.id)
            .bind(&user.username)
            .bind(&user.password_hash)
            .bind(to_json(&user.groups, "groups")?)
            .bind(bool_int(user.disabled))
            .bind(user.created_at)
            .bind(user.updated_at)
            .execute(self.db()?)
            .await
            .map_err(conflict(USER_CONFLICTS, "user id"))?;
        Ok(())
    }

    async fn get(&self, id: &str) -> Result<Option<UserRecord>, StoreError> {
        Ok(self.users_where("WHERE id = ?", Some(id)).await?.pop())
    }

    async fn get_by_username(&self, username: &str) -> Result<Option<UserRecord>, StoreError> {
        Ok(self
            .users_where("WHERE username = ?", Some(username))
            .await?
            .pop())
    }

    async fn list(&self) -> Result<Vec<UserRecord>, StoreError> {
        self.users_where("", None).await
    }

    async fn update(&self, user: &UserRecord) -> Result<(), StoreError> {
        let done = sqlx::query(&self.q(
            "UPDATE users SET username = ?, password_hash = ?, groups_json = ?, disabled = ?, \
             updated_at = ? WHERE id = ?",
        ))
        .bind(&user.username)
        .bind(&user.password_hash)
        .bind(to_json(&user.groups, "groups")?)
        .bind(bool_int(user.disabled))
        .bind(user.updated_at)
        .bind(&user.id)
        .execute(self.db()?)
        .await
        .map_err(conflict(USER_CONFLICTS, "user id"))?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    async fn delete(&self, id: &str) -> Result<bool, StoreError> {
        let done = sqlx::query(&self.q("DELETE FROM users WHERE id = ?"))
            .bind(id)
            .execute(self.db()?)
            .await?;
        Ok(done.rows_affected() > 0)
    }
}
