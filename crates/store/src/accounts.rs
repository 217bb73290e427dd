//! People who log in, their sessions and API tokens. Only hashes of secrets
//! are stored; hashing passwords (argon2) is the server's job.

use crate::{Result, Store};
use sqlx::any::AnyRow;
use sqlx::Row;

/// A person who may log in.
#[derive(Debug, Clone, PartialEq)]
pub struct User {
    /// Row id.
    pub id: i64,
    /// E-mail, lower case.
    pub email: String,
    /// Name shown.
    pub name: String,
    /// `admin`, `manager` or `agent`.
    pub role: String,
    /// argon2 PHC string, if a password is set.
    pub password_hash: Option<String>,
    /// Interface language (`en`, `pt-BR`).
    pub language: String,
}

impl User {
    fn from_row(r: &AnyRow) -> Result<User> {
        Ok(User {
            id: r.try_get("id")?,
            email: r.try_get("email")?,
            name: r.try_get("name")?,
            role: r.try_get("role")?,
            password_hash: r.try_get("password_hash")?,
            language: r.try_get("language")?,
        })
    }
}

const USER_COLUMNS: &str =
    "users.id, users.email, users.name, users.role, users.password_hash, users.language";

impl Store {
    /// Creates a user or updates the one with that e-mail; a `None` password
    /// keeps the current one. Returns the user's id.
    pub async fn upsert_user(
        &self,
        email: &str,
        name: &str,
        role: &str,
        password_hash: Option<&str>,
        now: i64,
    ) -> Result<i64> {
        let row = sqlx::query(
            "INSERT INTO users (email, name, role, password_hash, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $5) \
             ON CONFLICT (email) DO UPDATE SET name = excluded.name, role = excluded.role, \
             password_hash = COALESCE(excluded.password_hash, users.password_hash), updated_at = excluded.updated_at \
             RETURNING id",
        )
        .bind(email.to_lowercase())
        .bind(name)
        .bind(role)
        .bind(password_hash)
        .bind(now)
        .fetch_one(&self.writer)
        .await?;
        Ok(row.try_get("id")?)
    }

    /// The user with this e-mail (any case).
    pub async fn user_by_email(&self, email: &str) -> Result<Option<User>> {
        let row = sqlx::query(&format!(
            "SELECT {USER_COLUMNS} FROM users WHERE email = $1"
        ))
        .bind(email.to_lowercase())
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(User::from_row).transpose()
    }

    /// Sets a user's interface language.
    pub async fn set_user_language(&self, user: i64, language: &str, now: i64) -> Result<()> {
        sqlx::query("UPDATE users SET language = $1, updated_at = $2 WHERE id = $3")
            .bind(language)
            .bind(now)
            .bind(user)
            .execute(&self.writer)
            .await?;
        Ok(())
    }

    /// Records an API token (its hash) for a user.
    pub async fn create_token(
        &self,
        user: i64,
        token_hash: &str,
        name: &str,
        now: i64,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO api_tokens (token_hash, user_id, name, created_at) VALUES ($1, $2, $3, $4)",
        )
        .bind(token_hash)
        .bind(user)
        .bind(name)
        .bind(now)
        .execute(&self.writer)
        .await?;
        Ok(())
    }

    /// The user an API token (its hash) acts for.
    pub async fn user_by_token(&self, token_hash: &str, now: i64) -> Result<Option<User>> {
        let row = sqlx::query(&format!(
            "SELECT {USER_COLUMNS} FROM api_tokens JOIN users ON users.id = api_tokens.user_id \
             WHERE api_tokens.token_hash = $1"
        ))
        .bind(token_hash)
        .fetch_optional(&self.pool)
        .await?;
        if row.is_some() {
            sqlx::query("UPDATE api_tokens SET last_used_at = $1 WHERE token_hash = $2")
                .bind(now)
                .bind(token_hash)
                .execute(&self.writer)
                .await?;
        }
        row.as_ref().map(User::from_row).transpose()
    }

    /// Opens a session (its token's hash) with its CSRF token.
    pub async fn create_session(
        &self,
        token_hash: &str,
        user: i64,
        csrf: &str,
        expires_at: i64,
        now: i64,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO sessions (token_hash, user_id, csrf, expires_at, created_at) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(token_hash)
        .bind(user)
        .bind(csrf)
        .bind(expires_at)
        .bind(now)
        .execute(&self.writer)
        .await?;
        Ok(())
    }

    /// The user and CSRF token of a live session.
    pub async fn session(&self, token_hash: &str, now: i64) -> Result<Option<(User, String)>> {
        let row = sqlx::query(&format!(
            "SELECT {USER_COLUMNS}, sessions.csrf FROM sessions JOIN users ON users.id = sessions.user_id \
             WHERE sessions.token_hash = $1 AND sessions.expires_at > $2"
        ))
        .bind(token_hash)
        .bind(now)
        .fetch_optional(&self.pool)
        .await?;
        match row {
            Some(r) => Ok(Some((User::from_row(&r)?, r.try_get("csrf")?))),
            None => Ok(None),
        }
    }

    /// Ends a session.
    pub async fn delete_session(&self, token_hash: &str) -> Result<()> {
        sqlx::query("DELETE FROM sessions WHERE token_hash = $1")
            .bind(token_hash)
            .execute(&self.writer)
            .await?;
        Ok(())
    }
}
