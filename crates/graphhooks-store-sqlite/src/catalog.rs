//! Settings and the object-type catalog.

use std::collections::BTreeMap;

use graphhooks_core::catalog::{FieldDef, GrantMode, ObjectType, ObjectTypeUpdate};
use graphhooks_store::StoreError;
use rusqlite::{Connection, OptionalExtension, params};

use crate::error::SqlResultExt;
use crate::rows::corrupt;

pub(crate) fn setting(c: &Connection, key: &str) -> Result<Option<String>, StoreError> {
    c.query_row("SELECT value FROM settings WHERE key = ?1", [key], |r| {
        r.get(0)
    })
    .optional()
    .store()
}

pub(crate) fn settings(c: &Connection) -> Result<Vec<(String, String)>, StoreError> {
    let mut statement = c
        .prepare("SELECT key, value FROM settings ORDER BY key")
        .store()?;
    let rows = statement
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .store()?;
    rows.collect::<Result<_, _>>().store()
}

pub(crate) fn set_setting_once(c: &Connection, key: &str, value: &str) -> Result<bool, StoreError> {
    let inserted = c
        .execute(
            "INSERT INTO settings (key, value) VALUES (?1, ?2) ON CONFLICT (key) DO NOTHING",
            params![key, value],
        )
        .store()?;
    Ok(inserted == 1)
}

pub(crate) fn put_setting(c: &Connection, key: &str, value: &str) -> Result<(), StoreError> {
    c.execute(
        "INSERT INTO settings (key, value) VALUES (?1, ?2) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        params![key, value],
    )
    .store()?;
    Ok(())
}

pub(crate) fn delete_setting(c: &Connection, key: &str) -> Result<bool, StoreError> {
    Ok(c.execute("DELETE FROM settings WHERE key = ?1", [key])
        .store()?
        > 0)
}

pub(crate) fn seed(c: &Connection, types: &[ObjectType]) -> Result<(), StoreError> {
    let mut insert_type = c
        .prepare_cached(
            "INSERT INTO object_types (name, grant_mode) VALUES (?1, ?2) ON CONFLICT DO NOTHING",
        )
        .store()?;
    let mut insert_field = c
        .prepare_cached(
            "INSERT INTO fields (object_type, name, permission, sample) VALUES (?1, ?2, ?3, ?4) ON CONFLICT DO NOTHING",
        )
        .store()?;
    for object_type in types {
        insert_type
            .execute(params![object_type.name, object_type.grant.as_str()])
            .store()?;
        for field in object_type.fields.values() {
            insert_field
                .execute(params![
                    object_type.name,
                    field.name,
                    field.permission,
                    field.sample.to_string()
                ])
                .store()?;
        }
    }
    Ok(())
}

/// The catalog; without samples when `with_samples` is false (fan-out does not need them).
pub(crate) fn all(c: &Connection, with_samples: bool) -> Result<Vec<ObjectType>, StoreError> {
    load(c, None, with_samples)
}

/// Some types of the catalog (all when `names` is `None`).
pub(crate) fn load(
    c: &Connection,
    names: Option<&[String]>,
    with_samples: bool,
) -> Result<Vec<ObjectType>, StoreError> {
    let filter = names.map(|n| serde_json::to_string(n).unwrap_or_else(|_| "[]".into()));
    let mut types: BTreeMap<String, ObjectType> = BTreeMap::new();
    {
        let mut statement = c
            .prepare_cached(
                "SELECT name, grant_mode FROM object_types
                 WHERE ?1 IS NULL OR name IN (SELECT value FROM json_each(?1))",
            )
            .store()?;
        let mut rows = statement.query([&filter]).store()?;
        while let Some(row) = rows.next().store()? {
            let name: String = row.get(0).store()?;
            let grant: String = row.get(1).store()?;
            let grant = GrantMode::parse(&grant).map_err(|e| corrupt("grant mode", e))?;
            types.insert(
                name.clone(),
                ObjectType {
                    name,
                    grant,
                    fields: BTreeMap::new(),
                },
            );
        }
    }
    let mut statement = c
        .prepare_cached(
            "SELECT object_type, name, permission, CASE WHEN ?2 THEN sample ELSE 'null' END FROM fields
             WHERE ?1 IS NULL OR object_type IN (SELECT value FROM json_each(?1))",
        )
        .store()?;
    let mut rows = statement.query(params![filter, with_samples]).store()?;
    while let Some(row) = rows.next().store()? {
        let object_type: String = row.get(0).store()?;
        let name: String = row.get(1).store()?;
        let sample: String = row.get(3).store()?;
        if let Some(t) = types.get_mut(&object_type) {
            t.fields.insert(
                name.clone(),
                FieldDef {
                    name,
                    permission: row.get(2).store()?,
                    sample: serde_json::from_str(&sample)
                        .map_err(|e| corrupt("field sample", e))?,
                },
            );
        }
    }
    Ok(types.into_values().collect())
}

pub(crate) fn put(
    c: &Connection,
    name: &str,
    update: ObjectTypeUpdate,
) -> Result<ObjectType, StoreError> {
    c.execute(
        "INSERT INTO object_types (name, grant_mode) VALUES (?1, ?2)
         ON CONFLICT (name) DO UPDATE SET grant_mode = excluded.grant_mode",
        params![name, update.grant.as_str()],
    )
    .store()?;
    let mut upsert = c
        .prepare_cached(
            "INSERT INTO fields (object_type, name, permission, sample) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (object_type, name) DO UPDATE SET permission = excluded.permission, sample = excluded.sample",
        )
        .store()?;
    for field in &update.fields {
        upsert
            .execute(params![
                name,
                field.name,
                field.permission,
                field.sample.to_string()
            ])
            .store()?;
    }
    load(c, Some(&[name.to_owned()]), true)?
        .into_iter()
        .next()
        .ok_or(StoreError::NotFound("object type"))
}
