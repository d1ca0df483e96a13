//! Settings and the object-type catalog.

use std::collections::BTreeMap;

use graphhooks_core::catalog::{FieldDef, GrantMode, ObjectType, ObjectTypeUpdate};
use graphhooks_store::StoreError;
use sqlx::{PgConnection, PgPool, Row};

use crate::error::{SqlResultExt, corrupt};

pub(crate) async fn setting(pool: &PgPool, key: &str) -> Result<Option<String>, StoreError> {
    sqlx::query_scalar("SELECT value FROM settings WHERE key = $1")
        .bind(key)
        .fetch_optional(pool)
        .await
        .store()
}

pub(crate) async fn settings(pool: &PgPool) -> Result<Vec<(String, String)>, StoreError> {
    sqlx::query_as("SELECT key, value FROM settings ORDER BY key")
        .fetch_all(pool)
        .await
        .store()
}

pub(crate) async fn set_setting_once(
    pool: &PgPool,
    key: &str,
    value: &str,
) -> Result<bool, StoreError> {
    let result = sqlx::query(
        "INSERT INTO settings (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING",
    )
    .bind(key)
    .bind(value)
    .execute(pool)
    .await
    .store()?;
    Ok(result.rows_affected() == 1)
}

pub(crate) async fn put_setting(pool: &PgPool, key: &str, value: &str) -> Result<(), StoreError> {
    sqlx::query("INSERT INTO settings (key, value) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET value = excluded.value")
        .bind(key)
        .bind(value)
        .execute(pool)
        .await
        .store()?;
    Ok(())
}

pub(crate) async fn delete_setting(pool: &PgPool, key: &str) -> Result<bool, StoreError> {
    Ok(sqlx::query("DELETE FROM settings WHERE key = $1")
        .bind(key)
        .execute(pool)
        .await
        .store()?
        .rows_affected()
        > 0)
}

pub(crate) async fn seed(pool: &PgPool, types: &[ObjectType]) -> Result<(), StoreError> {
    let mut transaction = pool.begin().await.store()?;
    let names: Vec<&str> = types.iter().map(|t| t.name.as_str()).collect();
    let grants: Vec<&str> = types.iter().map(|t| t.grant.as_str()).collect();
    sqlx::query(
        "INSERT INTO object_types (name, grant_mode) SELECT * FROM unnest($1::text[], $2::text[])
         ON CONFLICT DO NOTHING",
    )
    .bind(&names)
    .bind(&grants)
    .execute(&mut *transaction)
    .await
    .store()?;
    let (mut field_types, mut field_names, mut permissions, mut samples) =
        (vec![], vec![], vec![], vec![]);
    for object_type in types {
        for field in object_type.fields.values() {
            field_types.push(object_type.name.as_str());
            field_names.push(field.name.as_str());
            permissions.push(field.permission.as_deref());
            samples.push(field.sample.to_string());
        }
    }
    sqlx::query(
        "INSERT INTO fields (object_type, name, permission, sample)
         SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[])
         ON CONFLICT DO NOTHING",
    )
    .bind(&field_types)
    .bind(&field_names)
    .bind(&permissions)
    .bind(&samples)
    .execute(&mut *transaction)
    .await
    .store()?;
    transaction.commit().await.store()
}

/// Some types of the catalog (all when `names` is `None`), without samples unless asked.
pub(crate) async fn load(
    connection: &mut PgConnection,
    names: Option<&[String]>,
    with_samples: bool,
) -> Result<Vec<ObjectType>, StoreError> {
    let mut types: BTreeMap<String, ObjectType> = BTreeMap::new();
    let rows = sqlx::query(
        "SELECT name, grant_mode FROM object_types WHERE $1::text[] IS NULL OR name = ANY($1)",
    )
    .bind(names)
    .fetch_all(&mut *connection)
    .await
    .store()?;
    for row in rows {
        let name: String = row.try_get(0).store()?;
        let grant: String = row.try_get(1).store()?;
        types.insert(
            name.clone(),
            ObjectType {
                name,
                grant: GrantMode::parse(&grant).map_err(|e| corrupt("grant mode", e))?,
                fields: BTreeMap::new(),
            },
        );
    }
    let rows = sqlx::query(
        "SELECT object_type, name, permission, CASE WHEN $2 THEN sample ELSE 'null' END FROM fields
         WHERE $1::text[] IS NULL OR object_type = ANY($1)",
    )
    .bind(names)
    .bind(with_samples)
    .fetch_all(&mut *connection)
    .await
    .store()?;
    for row in rows {
        let object_type: String = row.try_get(0).store()?;
        let name: String = row.try_get(1).store()?;
        let sample: String = row.try_get(3).store()?;
        if let Some(t) = types.get_mut(&object_type) {
            t.fields.insert(
                name.clone(),
                FieldDef {
                    name,
                    permission: row.try_get(2).store()?,
                    sample: serde_json::from_str(&sample)
                        .map_err(|e| corrupt("field sample", e))?,
                },
            );
        }
    }
    Ok(types.into_values().collect())
}

pub(crate) async fn put(
    pool: &PgPool,
    name: &str,
    update: ObjectTypeUpdate,
) -> Result<ObjectType, StoreError> {
    let mut transaction = pool.begin().await.store()?;
    sqlx::query(
        "INSERT INTO object_types (name, grant_mode) VALUES ($1, $2)
         ON CONFLICT (name) DO UPDATE SET grant_mode = excluded.grant_mode",
    )
    .bind(name)
    .bind(update.grant.as_str())
    .execute(&mut *transaction)
    .await
    .store()?;
    let names: Vec<&str> = update.fields.iter().map(|f| f.name.as_str()).collect();
    let permissions: Vec<Option<&str>> = update
        .fields
        .iter()
        .map(|f| f.permission.as_deref())
        .collect();
    let samples: Vec<String> = update.fields.iter().map(|f| f.sample.to_string()).collect();
    sqlx::query(
        "INSERT INTO fields (object_type, name, permission, sample)
         SELECT $1, * FROM unnest($2::text[], $3::text[], $4::text[])
         ON CONFLICT (object_type, name) DO UPDATE SET permission = excluded.permission, sample = excluded.sample",
    )
    .bind(name)
    .bind(&names)
    .bind(&permissions)
    .bind(&samples)
    .execute(&mut *transaction)
    .await
    .store()?;
    let saved = load(&mut transaction, Some(&[name.to_owned()]), true)
        .await?
        .into_iter()
        .next()
        .ok_or(StoreError::NotFound("object type"))?;
    transaction.commit().await.store()?;
    Ok(saved)
}
