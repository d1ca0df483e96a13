//! Validating submitted changes against the catalog and turning them into the stored form
//! (values escaped the Meta way once, here). A batch is all or nothing: the first invalid item
//! is reported with its index and nothing of the batch is stored.

use graphhooks_core::CoreError;
use graphhooks_core::model::{NewChange, validate_object_id};
use graphhooks_core::wire::to_meta_json;
use serde::Deserialize;
use serde_json::Value;

use crate::catalog::{CatalogMap, object_type};

/// Most changes one call may submit.
pub const MAX_CHANGES_PER_CALL: usize = 10_000;
/// Most bytes one serialised value may have, so that any change fits in one notification.
pub const MAX_VALUE_BYTES: usize = graphhooks_core::MAX_BODY_BYTES - 64 * 1024;

/// One change as submitted.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChangeIn {
    /// Object type.
    pub object: String,
    /// Object id.
    pub id: String,
    /// Field.
    pub field: String,
    /// New value (required, may be `null`).
    pub value: Value,
    /// Who caused it.
    #[serde(default)]
    pub actor: Option<String>,
    /// Event time, unix seconds (default: now).
    #[serde(default)]
    pub time: Option<i64>,
}

/// The body of `POST /admin/changes`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChangesIn {
    /// The changes, in order.
    pub changes: Vec<ChangeIn>,
}

/// What validating a change computes: its value in the stored (Meta-escaped) form, and its time.
#[derive(Debug)]
pub struct Checked {
    value: String,
    time: i64,
}

/// Validates every change; the error carries the index of the first bad one. It borrows the
/// changes (the catalog check may run it twice); [`into_new_changes`] then moves them into
/// their stored form without copying their strings.
pub fn validate(
    catalog: &CatalogMap,
    changes: &[ChangeIn],
    now_s: i64,
) -> Result<Vec<Checked>, (usize, CoreError)> {
    changes
        .iter()
        .enumerate()
        .map(|(index, change)| validate_one(catalog, change, now_s).map_err(|error| (index, error)))
        .collect()
}

/// The stored form of changes that passed [`validate`] (`checked` holds one entry per change,
/// in order).
pub fn into_new_changes(changes: Vec<ChangeIn>, checked: Vec<Checked>) -> Vec<NewChange> {
    changes
        .into_iter()
        .zip(checked)
        .map(|(change, Checked { value, time })| NewChange {
            object_type: change.object,
            object_id: change.id,
            field: change.field,
            value,
            actor: change.actor,
            time,
        })
        .collect()
}

fn validate_one(catalog: &CatalogMap, change: &ChangeIn, now_s: i64) -> Result<Checked, CoreError> {
    let object_type = object_type(catalog, &change.object)?;
    object_type.field(&change.field)?;
    validate_object_id("object id", &change.id)?;
    if let Some(actor) = &change.actor {
        validate_object_id("actor", actor)?;
    }
    let time = match change.time {
        Some(time) if time < 0 => {
            return Err(CoreError::invalid(
                "time must be unix seconds, not negative",
            ));
        }
        Some(time) => time,
        None => now_s,
    };
    let value = to_meta_json(&change.value)
        .map_err(|error| CoreError::invalid(format!("value cannot be serialised: {error}")))?;
    if value.len() > MAX_VALUE_BYTES {
        return Err(CoreError::invalid(format!(
            "value is {} bytes once serialised; the most one change may carry is {MAX_VALUE_BYTES}",
            value.len()
        )));
    }
    Ok(Checked { value, time })
}

#[cfg(test)]
mod tests {
    use super::*;
    use graphhooks_core::catalog::builtin;
    use serde_json::json;

    fn catalog() -> CatalogMap {
        builtin().into_iter().map(|t| (t.name.clone(), t)).collect()
    }

    fn change(object: &str, field: &str) -> ChangeIn {
        ChangeIn {
            object: object.into(),
            id: "1".into(),
            field: field.into(),
            value: json!({"text": "café/"}),
            actor: None,
            time: None,
        }
    }

    #[test]
    fn the_first_bad_item_is_named() {
        let changes = vec![
            change("user", "email"),
            change("user", "nope"),
            change("nope", "x"),
        ];
        let (index, error) = validate(&catalog(), &changes, 5).unwrap_err();
        assert_eq!(index, 1);
        assert!(matches!(error, CoreError::UnknownField { .. }));
    }

    #[test]
    fn values_are_stored_escaped_and_time_defaults_to_now() {
        let changes = vec![change("user", "email"), change("user", "name")];
        let checked = validate(&catalog(), &changes, 5).unwrap();
        let stored = into_new_changes(changes, checked);
        assert_eq!(stored.len(), 2);
        assert_eq!(stored[0].value, r#"{"text":"caf\u00e9\/"}"#);
        assert_eq!(stored[0].time, 5);
        assert_eq!(
            (stored[1].object_type.as_str(), stored[1].object_id.as_str()),
            ("user", "1")
        );
        assert_eq!(stored[1].field, "name");
    }

    #[test]
    fn bad_ids_and_times_are_refused() {
        let mut bad = change("user", "email");
        bad.id = String::new();
        assert!(validate(&catalog(), &[bad], 5).is_err());
        let mut bad = change("user", "email");
        bad.time = Some(-1);
        assert!(validate(&catalog(), &[bad], 5).is_err());
    }
}
