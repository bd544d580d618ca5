//! User accounts: local ones (for the built-in login page) and federated ones, each
//! linked to the identity (issuer and subject) it signs in with.

use std::fmt;

use async_trait::async_trait;
use sqlx::any::AnyRow;
use sqlx::{Any, Transaction};

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

/// A federated identity linked to a user: the IdP's `(issuer, subject)` is unique.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IdentityLink {
    /// The IdP it was first seen through.
    pub idp_name: String,
    /// The issuer identifier (for a tenant template, the tenant's own issuer).
    pub issuer: String,
    /// The `sub` the issuer gave.
    pub subject: String,
    /// The linked user.
    pub user_id: String,
    /// UNIX seconds.
    pub created_at: i64,
    /// UNIX seconds of the last sign-in with it.
    pub last_seen_at: i64,
}

/// Storage for users.
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
    /// Deletes the user (and its identity links); false if it did not exist.
    async fn delete(&self, id: &str) -> Result<bool, StoreError>;
    /// The user linked to this federated identity.
    async fn find_by_identity(
        &self,
        issuer: &str,
        subject: &str,
    ) -> Result<Option<UserRecord>, StoreError>;
    /// Inserts a federated user (its `password_hash` empty) and its identity link in one
    /// transaction: `Conflict("user id")`, `Conflict("username")` or
    /// `Conflict("identity link")` leave neither behind. The link's `user_id` must be the
    /// user's id.
    async fn create_federated(
        &self,
        user: &UserRecord,
        link: &IdentityLink,
    ) -> Result<(), StoreError>;
    /// Records a sign-in with a linked identity; `NotFound` if it is not linked.
    async fn touch_identity(&self, issuer: &str, subject: &str, now: i64)
        -> Result<(), StoreError>;
    /// The ids of the users linked through this IdP, ordered.
    async fn users_of_idp(&self, idp_name: &str) -> Result<Vec<String>, StoreError>;
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

    async fn insert_user(
        &self,
        tx: &mut Transaction<'_, Any>,
        user: &UserRecord,
    ) -> Result<(), StoreError> {
        let sql = format!("INSERT INTO users ({USER_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)");
        sqlx::query(&self.q(&sql))
            .bind(&user.id)
            .bind(&user.username)
            .bind(&user.password_hash)
            .bind(to_json(&user.groups, "groups")?)
            .bind(bool_int(user.disabled))
            .bind(user.created_at)
            .bind(user.updated_at)
            .execute(&mut **tx)
            .await
            .map_err(conflict(USER_CONFLICTS, "user id"))?;
        Ok(())
    }
}

#[async_trait]
impl UserStore for Store {
    async fn create(&self, user: &UserRecord) -> Result<(), StoreError> {
        let mut tx = self.db()?.begin().await?;
        self.insert_user(&mut tx, user).await?;
        tx.commit().await?;
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
        // Identity links go with the user through ON DELETE CASCADE.
        let done = sqlx::query(&self.q("DELETE FROM users WHERE id = ?"))
            .bind(id)
            .execute(self.db()?)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    async fn find_by_identity(
        &self,
        issuer: &str,
        subject: &str,
    ) -> Result<Option<UserRecord>, StoreError> {
        let sql = format!(
            "SELECT {USER_COLUMNS} FROM users WHERE id = \
             (SELECT user_id FROM user_identities WHERE issuer = ? AND subject = ?)"
        );
        let row = sqlx::query(&self.q(&sql))
            .bind(issuer)
            .bind(subject)
            .fetch_optional(self.db()?)
            .await?;
        row.as_ref().map(UserRecord::from_row).transpose()
    }

    async fn create_federated(
        &self,
        user: &UserRecord,
        link: &IdentityLink,
    ) -> Result<(), StoreError> {
        if link.user_id != user.id {
            return Err(StoreError::Backend(
                "an identity link must name the user created with it".into(),
            ));
        }
        let mut tx = self.db()?.begin().await?;
        self.insert_user(&mut tx, user).await?;
        sqlx::query(&self.q("INSERT INTO user_identities \
             (idp_name, issuer, subject, user_id, created_at, last_seen_at) \
             VALUES (?, ?, ?, ?, ?, ?)"))
        .bind(&link.idp_name)
        .bind(&link.issuer)
        .bind(&link.subject)
        .bind(&link.user_id)
        .bind(link.created_at)
        .bind(link.last_seen_at)
        .execute(&mut *tx)
        .await
        .map_err(conflict(&[], "identity link"))?;
        tx.commit().await?;
        Ok(())
    }

    async fn touch_identity(
        &self,
        issuer: &str,
        subject: &str,
        now: i64,
    ) -> Result<(), StoreError> {
        let done = sqlx::query(
            &self.q("UPDATE user_identities SET last_seen_at = ? WHERE issuer = ? AND subject = ?"),
        )
        .bind(now)
        .bind(issuer)
        .bind(subject)
        .execute(self.db()?)
        .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    async fn users_of_idp(&self, idp_name: &str) -> Result<Vec<String>, StoreError> {
        let rows =
            sqlx::query(&self.q(
                "SELECT DISTINCT user_id FROM user_identities WHERE idp_name = ? ORDER BY user_id",
            ))
            .bind(idp_name)
            .fetch_all(self.db()?)
            .await?;
        rows.iter().map(|r| col(r, "user_id")).collect()
    }
}
