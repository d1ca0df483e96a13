//! Apps, their roles and their grants.

use graphhooks_core::model::{App, AppMode, Grant, Role, Secret};
use graphhooks_store::{Install, StoreError};
use sqlx::{PgExecutor, PgPool, Row};

use crate::error::{SqlResultExt, corrupt};
use crate::rows::{self, APP_COLUMNS};

async fn require_app<'e>(executor: impl PgExecutor<'e>, id: &str) -> Result<(), StoreError> {
    let exists: Option<i32> = sqlx::query_scalar("SELECT 1 FROM apps WHERE id = $1")
        .bind(id)
        .fetch_optional(executor)
        .await
        .store()?;
    exists.map(|_| ()).ok_or(StoreError::NotFound("app"))
}

pub(crate) async fn create(pool: &PgPool, app: &App) -> Result<(), StoreError> {
    let (previous, previous_until) = match &app.previous_secret {
        Some((secret, until)) => (Some(secret.expose()), Some(*until)),
        None => (None, None),
    };
    let inserted = sqlx::query(
        "INSERT INTO apps (id, name, mode, secret, previous_secret, previous_secret_until, created_time)
         VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (id) DO NOTHING",
    )
    .bind(&app.id)
    .bind(&app.name)
    .bind(app.mode.as_str())
    .bind(app.secret.expose())
    .bind(previous)
    .bind(previous_until)
    .bind(app.created_time)
    .execute(pool)
    .await
    .store()?;
    if inserted.rows_affected() == 0 {
        return Err(StoreError::Conflict(format!(
            "an app with id {} exists",
            app.id
        )));
    }
    Ok(())
}

pub(crate) async fn get<'e>(
    executor: impl PgExecutor<'e>,
    id: &str,
) -> Result<Option<App>, StoreError> {
    let row = sqlx::query(&format!("SELECT {APP_COLUMNS} FROM apps WHERE id = $1"))
        .bind(id)
        .fetch_optional(executor)
        .await
        .store()?;
    row.as_ref().map(rows::app).transpose()
}

pub(crate) async fn all<'e>(executor: impl PgExecutor<'e>) -> Result<Vec<App>, StoreError> {
    let rows = sqlx::query(&format!("SELECT {APP_COLUMNS} FROM apps ORDER BY id"))
        .fetch_all(executor)
        .await
        .store()?;
    rows.iter().map(rows::app).collect()
}

pub(crate) async fn update(
    pool: &PgPool,
    id: &str,
    name: Option<String>,
    mode: Option<AppMode>,
) -> Result<App, StoreError> {
    let row = sqlx::query(&format!(
        "UPDATE apps SET name = coalesce($2, name), mode = coalesce($3, mode) WHERE id = $1 RETURNING {APP_COLUMNS}"
    ))
    .bind(id)
    .bind(name)
    .bind(mode.map(AppMode::as_str))
    .fetch_optional(pool)
    .await
    .store()?;
    row.as_ref()
        .map(rows::app)
        .transpose()?
        .ok_or(StoreError::NotFound("app"))
}

pub(crate) async fn delete(pool: &PgPool, id: &str) -> Result<(), StoreError> {
    let deleted = sqlx::query("DELETE FROM apps WHERE id = $1")
        .bind(id)
        .execute(pool)
        .await
        .store()?;
    if deleted.rows_affected() == 0 {
        return Err(StoreError::NotFound("app"));
    }
    Ok(())
}

pub(crate) async fn rotate_secret(
    pool: &PgPool,
    id: &str,
    secret: &Secret,
    previous_until_ms: i64,
) -> Result<(), StoreError> {
    let changed = sqlx::query(
        "UPDATE apps SET previous_secret = secret, previous_secret_until = $3, secret = $2 WHERE id = $1",
    )
    .bind(id)
    .bind(secret.expose())
    .bind(previous_until_ms)
    .execute(pool)
    .await
    .store()?;
    if changed.rows_affected() == 0 {
        return Err(StoreError::NotFound("app"));
    }
    Ok(())
}

pub(crate) async fn put_role(
    pool: &PgPool,
    app_id: &str,
    user_id: &str,
    role: Role,
) -> Result<(), StoreError> {
    require_app(pool, app_id).await?;
    sqlx::query(
        "INSERT INTO roles (app_id, user_id, role) VALUES ($1, $2, $3)
         ON CONFLICT (app_id, user_id) DO UPDATE SET role = excluded.role",
    )
    .bind(app_id)
    .bind(user_id)
    .bind(role.as_str())
    .execute(pool)
    .await
    .map_err(|error| match &error {
        // The app was deleted between the check and the insert.
        sqlx::Error::Database(db) if db.code().as_deref() == Some("23503") => {
            StoreError::NotFound("app")
        }
        _ => crate::error::map_error(error),
    })?;
    Ok(())
}

pub(crate) async fn delete_role(
    pool: &PgPool,
    app_id: &str,
    user_id: &str,
) -> Result<(), StoreError> {
    require_app(pool, app_id).await?;
    let deleted = sqlx::query("DELETE FROM roles WHERE app_id = $1 AND user_id = $2")
        .bind(app_id)
        .bind(user_id)
        .execute(pool)
        .await
        .store()?;
    if deleted.rows_affected() == 0 {
        return Err(StoreError::NotFound("role"));
    }
    Ok(())
}

pub(crate) async fn roles(pool: &PgPool, app_id: &str) -> Result<Vec<(String, Role)>, StoreError> {
    let rows = sqlx::query("SELECT user_id, role FROM roles WHERE app_id = $1 ORDER BY user_id")
        .bind(app_id)
        .fetch_all(pool)
        .await
        .store()?;
    rows.iter()
        .map(|row| {
            let role: String = row.try_get(1).store()?;
            Ok((
                row.try_get(0).store()?,
                Role::parse(&role).map_err(|e| corrupt("role", e))?,
            ))
        })
        .collect()
}

pub(crate) async fn put_grant(pool: &PgPool, grant: &Grant) -> Result<(), StoreError> {
    require_app(pool, &grant.app_id).await?;
    sqlx::query(
        "INSERT INTO grants (object_type, object_id, app_id, permissions) VALUES ($1, $2, $3, $4)
         ON CONFLICT (object_type, object_id, app_id) DO UPDATE SET permissions = excluded.permissions",
    )
    .bind(&grant.object_type)
    .bind(&grant.object_id)
    .bind(&grant.app_id)
    .bind(&grant.permissions)
    .execute(pool)
    .await
    .map_err(|error| match &error {
        sqlx::Error::Database(db) if db.code().as_deref() == Some("23503") => StoreError::NotFound("app"),
        _ => crate::error::map_error(error),
    })?;
    Ok(())
}

pub(crate) async fn delete_grant(
    pool: &PgPool,
    app_id: &str,
    object_type: &str,
    object_id: &str,
) -> Result<(), StoreError> {
    require_app(pool, app_id).await?;
    let deleted =
        sqlx::query("DELETE FROM grants WHERE object_type = $1 AND object_id = $2 AND app_id = $3")
            .bind(object_type)
            .bind(object_id)
            .bind(app_id)
            .execute(pool)
            .await
            .store()?;
    if deleted.rows_affected() == 0 {
        return Err(StoreError::NotFound("grant"));
    }
    Ok(())
}

pub(crate) async fn grants(pool: &PgPool, app_id: &str) -> Result<Vec<Grant>, StoreError> {
    let rows = sqlx::query(
        "SELECT object_type, object_id, permissions FROM grants WHERE app_id = $1 ORDER BY object_type, object_id",
    )
    .bind(app_id)
    .fetch_all(pool)
    .await
    .store()?;
    rows.iter()
        .map(|row| {
            Ok(Grant {
                app_id: app_id.to_owned(),
                object_type: row.try_get(0).store()?,
                object_id: row.try_get(1).store()?,
                permissions: row.try_get(2).store()?,
            })
        })
        .collect()
}

pub(crate) async fn install(
    pool: &PgPool,
    grant: &Grant,
    subscribed_fields: &[String],
) -> Result<(), StoreError> {
    require_app(pool, &grant.app_id).await?;
    sqlx::query(
        "INSERT INTO grants (object_type, object_id, app_id, permissions, subscribed_fields) VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (object_type, object_id, app_id) DO UPDATE SET
           permissions = ARRAY(SELECT DISTINCT p FROM unnest(grants.permissions || excluded.permissions) p ORDER BY p),
           subscribed_fields = excluded.subscribed_fields",
    )
    .bind(&grant.object_type)
    .bind(&grant.object_id)
    .bind(&grant.app_id)
    .bind(&grant.permissions)
    .bind(subscribed_fields)
    .execute(pool)
    .await
    .map_err(|error| match &error {
        sqlx::Error::Database(db) if db.code().as_deref() == Some("23503") => StoreError::NotFound("app"),
        _ => crate::error::map_error(error),
    })?;
    Ok(())
}

pub(crate) async fn installs(pool: &PgPool, object_id: &str) -> Result<Vec<Install>, StoreError> {
    let rows = sqlx::query(
        "SELECT g.app_id, a.name, g.object_type, coalesce(g.subscribed_fields, '{}') FROM grants g
         JOIN apps a ON a.id = g.app_id WHERE g.object_id = $1 ORDER BY g.app_id, g.object_type",
    )
    .bind(object_id)
    .fetch_all(pool)
    .await
    .store()?;
    rows.iter()
        .map(|row| {
            Ok(Install {
                app_id: row.try_get(0).store()?,
                app_name: row.try_get(1).store()?,
                object_type: row.try_get(2).store()?,
                subscribed_fields: row.try_get(3).store()?,
            })
        })
        .collect()
}

pub(crate) async fn uninstall(
    pool: &PgPool,
    app_id: &str,
    object_type: Option<&str>,
    object_id: &str,
) -> Result<u64, StoreError> {
    Ok(sqlx::query(
        "DELETE FROM grants WHERE app_id = $1 AND object_id = $2
           AND ($3::text IS NULL OR object_type = $3)",
    )
    .bind(app_id)
    .bind(object_id)
    .bind(object_type)
    .execute(pool)
    .await
    .store()?
    .rows_affected())
}
