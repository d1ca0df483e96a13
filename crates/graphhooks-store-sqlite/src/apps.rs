//! Apps, their roles and their grants.

use graphhooks_core::model::{App, AppMode, Grant, Role, Secret};
use graphhooks_store::{Install, StoreError};
use rusqlite::{Connection, OptionalExtension, params};

use crate::error::SqlResultExt;
use crate::rows::{self, APP_COLUMNS, corrupt, from_sql_error};

fn require_app(c: &Connection, id: &str) -> Result<(), StoreError> {
    let exists: Option<i64> = c
        .query_row("SELECT 1 FROM apps WHERE id = ?1", [id], |r| r.get(0))
        .optional()
        .store()?;
    exists.map(|_| ()).ok_or(StoreError::NotFound("app"))
}

pub(crate) fn create(c: &Connection, app: &App) -> Result<(), StoreError> {
    let (previous, previous_until) = match &app.previous_secret {
        Some((secret, until)) => (Some(secret.expose()), Some(*until)),
        None => (None, None),
    };
    let inserted = c
        .execute(
            "INSERT INTO apps (id, name, mode, secret, previous_secret, previous_secret_until, created_time)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
             ON CONFLICT (id) DO NOTHING",
            params![
                app.id,
                app.name,
                app.mode.as_str(),
                app.secret.expose(),
                previous,
                previous_until,
                app.created_time
            ],
        )
        .store()?;
    if inserted == 0 {
        return Err(StoreError::Conflict(format!(
            "an app with id {} exists",
            app.id
        )));
    }
    Ok(())
}

pub(crate) fn get(c: &Connection, id: &str) -> Result<Option<App>, StoreError> {
    c.query_row(
        &format!("SELECT {APP_COLUMNS} FROM apps WHERE id = ?1"),
        [id],
        rows::app,
    )
    .optional()
    .map_err(from_sql_error)
}

pub(crate) fn all(c: &Connection) -> Result<Vec<App>, StoreError> {
    let mut statement = c
        .prepare_cached(&format!("SELECT {APP_COLUMNS} FROM apps ORDER BY id"))
        .store()?;
    statement
        .query_map([], rows::app)
        .store()?
        .collect::<Result<_, _>>()
        .map_err(from_sql_error)
}

pub(crate) fn update(
    c: &Connection,
    id: &str,
    name: Option<String>,
    mode: Option<AppMode>,
) -> Result<App, StoreError> {
    let changed = c
        .execute(
            "UPDATE apps SET name = coalesce(?2, name), mode = coalesce(?3, mode) WHERE id = ?1",
            params![id, name, mode.map(AppMode::as_str)],
        )
        .store()?;
    if changed == 0 {
        return Err(StoreError::NotFound("app"));
    }
    get(c, id)?.ok_or(StoreError::NotFound("app"))
}

pub(crate) fn delete(c: &Connection, id: &str) -> Result<(), StoreError> {
    // Attempts go with their deliveries through the foreign keys' ON DELETE CASCADE.
    let deleted = c.execute("DELETE FROM apps WHERE id = ?1", [id]).store()?;
    if deleted == 0 {
        return Err(StoreError::NotFound("app"));
    }
    Ok(())
}

pub(crate) fn rotate_secret(
    c: &Connection,
    id: &str,
    secret: &Secret,
    previous_until_ms: i64,
) -> Result<(), StoreError> {
    let changed = c
        .execute(
            "UPDATE apps SET previous_secret = secret, previous_secret_until = ?3, secret = ?2 WHERE id = ?1",
            params![id, secret.expose(), previous_until_ms],
        )
        .store()?;
    if changed == 0 {
        return Err(StoreError::NotFound("app"));
    }
    Ok(())
}

pub(crate) fn put_role(
    c: &Connection,
    app_id: &str,
    user_id: &str,
    role: Role,
) -> Result<(), StoreError> {
    require_app(c, app_id)?;
    c.execute(
        "INSERT INTO roles (app_id, user_id, role) VALUES (?1, ?2, ?3)
         ON CONFLICT (app_id, user_id) DO UPDATE SET role = excluded.role",
        params![app_id, user_id, role.as_str()],
    )
    .store()?;
    Ok(())
}

pub(crate) fn delete_role(c: &Connection, app_id: &str, user_id: &str) -> Result<(), StoreError> {
    require_app(c, app_id)?;
    let deleted = c
        .execute(
            "DELETE FROM roles WHERE app_id = ?1 AND user_id = ?2",
            params![app_id, user_id],
        )
        .store()?;
    if deleted == 0 {
        return Err(StoreError::NotFound("role"));
    }
    Ok(())
}

pub(crate) fn roles(c: &Connection, app_id: &str) -> Result<Vec<(String, Role)>, StoreError> {
    let mut statement = c
        .prepare_cached("SELECT user_id, role FROM roles WHERE app_id = ?1 ORDER BY user_id")
        .store()?;
    let mut rows = statement.query([app_id]).store()?;
    let mut roles = Vec::new();
    while let Some(row) = rows.next().store()? {
        let role: String = row.get(1).store()?;
        roles.push((
            row.get(0).store()?,
            Role::parse(&role).map_err(|e| corrupt("role", e))?,
        ));
    }
    Ok(roles)
}

pub(crate) fn put_grant(c: &Connection, grant: &Grant) -> Result<(), StoreError> {
    require_app(c, &grant.app_id)?;
    let permissions = serde_json::to_string(&grant.permissions).map_err(StoreError::other)?;
    c.execute(
        "INSERT INTO grants (object_type, object_id, app_id, permissions) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (object_type, object_id, app_id) DO UPDATE SET permissions = excluded.permissions",
        params![grant.object_type, grant.object_id, grant.app_id, permissions],
    )
    .store()?;
    Ok(())
}

pub(crate) fn delete_grant(
    c: &Connection,
    app_id: &str,
    object_type: &str,
    object_id: &str,
) -> Result<(), StoreError> {
    require_app(c, app_id)?;
    let deleted = c
        .execute(
            "DELETE FROM grants WHERE object_type = ?1 AND object_id = ?2 AND app_id = ?3",
            params![object_type, object_id, app_id],
        )
        .store()?;
    if deleted == 0 {
        return Err(StoreError::NotFound("grant"));
    }
    Ok(())
}

pub(crate) fn grants(c: &Connection, app_id: &str) -> Result<Vec<Grant>, StoreError> {
    let mut statement = c
        .prepare_cached(
            "SELECT object_type, object_id, permissions FROM grants WHERE app_id = ?1 ORDER BY object_type, object_id",
        )
        .store()?;
    let mut rows = statement.query([app_id]).store()?;
    let mut grants = Vec::new();
    while let Some(row) = rows.next().store()? {
        let permissions: String = row.get(2).store()?;
        grants.push(Grant {
            app_id: app_id.to_owned(),
            object_type: row.get(0).store()?,
            object_id: row.get(1).store()?,
            permissions: serde_json::from_str(&permissions)
                .map_err(|e| corrupt("grant permissions", e))?,
        });
    }
    Ok(grants)
}

pub(crate) fn install(
    c: &Connection,
    grant: &Grant,
    subscribed_fields: &[String],
) -> Result<(), StoreError> {
    require_app(c, &grant.app_id)?;
    let existing: Option<String> = c
        .query_row(
            "SELECT permissions FROM grants WHERE object_type = ?1 AND object_id = ?2 AND app_id = ?3",
            params![grant.object_type, grant.object_id, grant.app_id],
            |r| r.get(0),
        )
        .optional()
        .store()?;
    let mut permissions: Vec<String> = match existing {
        Some(text) => serde_json::from_str(&text).map_err(|e| corrupt("grant permissions", e))?,
        None => Vec::new(),
    };
    permissions.extend(grant.permissions.iter().cloned());
    permissions.sort();
    permissions.dedup();
    c.execute(
        "INSERT INTO grants (object_type, object_id, app_id, permissions, subscribed_fields) VALUES (?1, ?2, ?3, ?4, ?5)
         ON CONFLICT (object_type, object_id, app_id)
         DO UPDATE SET permissions = excluded.permissions, subscribed_fields = excluded.subscribed_fields",
        params![
            grant.object_type,
            grant.object_id,
            grant.app_id,
            serde_json::to_string(&permissions).map_err(StoreError::other)?,
            serde_json::to_string(subscribed_fields).map_err(StoreError::other)?,
        ],
    )
    .store()?;
    Ok(())
}

pub(crate) fn installs(c: &Connection, object_id: &str) -> Result<Vec<Install>, StoreError> {
    let mut statement = c
        .prepare_cached(
            "SELECT g.app_id, a.name, g.object_type, g.subscribed_fields FROM grants g JOIN apps a ON a.id = g.app_id
             WHERE g.object_id = ?1 ORDER BY g.app_id, g.object_type",
        )
        .store()?;
    let mut rows = statement.query([object_id]).store()?;
    let mut installs = Vec::new();
    while let Some(row) = rows.next().store()? {
        let fields: Option<String> = row.get(3).store()?;
        installs.push(Install {
            app_id: row.get(0).store()?,
            app_name: row.get(1).store()?,
            object_type: row.get(2).store()?,
            subscribed_fields: match fields {
                Some(text) => {
                    serde_json::from_str(&text).map_err(|e| corrupt("subscribed fields", e))?
                }
                None => Vec::new(),
            },
        });
    }
    Ok(installs)
}

pub(crate) fn uninstall(
    c: &Connection,
    app_id: &str,
    object_type: Option<&str>,
    object_id: &str,
) -> Result<u64, StoreError> {
    let deleted = c
        .execute(
            "DELETE FROM grants WHERE app_id = ?1 AND object_id = ?2
               AND (?3 IS NULL OR object_type = ?3)",
            params![app_id, object_id, object_type],
        )
        .store()?;
    Ok(deleted as u64)
}
