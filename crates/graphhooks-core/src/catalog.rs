//! Object types and their fields: the catalog apps subscribe against. Meta's types come
//! predeclared from `catalog/meta.json` (field names, the permission each needs, a realistic
//! sample value); operators declare more, or extend these, through the operator API.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::CoreError;

/// Whether an app needs a grant for an object before it hears about it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum GrantMode {
    /// The app needs a grant for (type, object id), and the field's permission if it names one.
    Object,
    /// No grant is needed (changes about the app itself, like Meta's `application`).
    None,
}

impl GrantMode {
    /// The wire name (`object` or `none`).
    pub fn as_str(self) -> &'static str {
        match self {
            GrantMode::Object => "object",
            GrantMode::None => "none",
        }
    }

    /// Parses the wire name.
    pub fn parse(text: &str) -> Result<Self, CoreError> {
        match text {
            "object" => Ok(GrantMode::Object),
            "none" => Ok(GrantMode::None),
            other => Err(CoreError::invalid(format!(
                "grant must be \"object\" or \"none\", not {other:?}"
            ))),
        }
    }
}

/// One field of an object type.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FieldDef {
    /// The field name as it appears in `changes[].field`.
    pub name: String,
    /// The permission a grant must hold for the app to receive this field, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub permission: Option<String>,
    /// The value test notifications carry for this field.
    #[serde(default)]
    pub sample: Value,
}

/// A kind of object in the operator's graph.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ObjectType {
    /// The type name (`user`, `page`, ...), used as `object` on the wire.
    pub name: String,
    /// Whether apps need a grant per object.
    pub grant: GrantMode,
    /// Fields by name.
    pub fields: BTreeMap<String, FieldDef>,
}

impl ObjectType {
    /// The field of that name, or [`CoreError::UnknownField`].
    pub fn field(&self, name: &str) -> Result<&FieldDef, CoreError> {
        self.fields
            .get(name)
            .ok_or_else(|| CoreError::UnknownField {
                object_type: self.name.clone(),
                field: name.to_owned(),
            })
    }

    /// Whether entries of this type repeat the object id as `uid` (Meta does for users and
    /// permissions).
    pub fn entries_have_uid(&self) -> bool {
        entries_have_uid(&self.name)
    }

    /// Adds or replaces the named fields; fields not named are kept. The grant mode is replaced.
    pub fn merge(&mut self, update: ObjectTypeUpdate) {
        self.grant = update.grant;
        for field in update.fields {
            self.fields.insert(field.name.clone(), field);
        }
    }
}

/// Whether entries of the named type carry `uid` (equal to `id`).
pub fn entries_have_uid(object_type: &str) -> bool {
    matches!(object_type, "user" | "permissions")
}

/// The body of `PUT /admin/object-types/{type}`, validated.
#[derive(Debug, Clone, PartialEq)]
pub struct ObjectTypeUpdate {
    /// The grant mode to set.
    pub grant: GrantMode,
    /// The fields to add or update.
    pub fields: Vec<FieldDef>,
}

/// Checks a type, field or permission name: 1 to 64 of `a-z`, `0-9`, `_`, starting with a letter
/// or underscore. Meta's names all fit this; it keeps names safe in URLs, SQL and logs.
pub fn validate_name(kind: &str, name: &str) -> Result<(), CoreError> {
    let valid = !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        && !name.as_bytes()[0].is_ascii_digit();
    if valid {
        Ok(())
    } else {
        Err(CoreError::invalid(format!(
            "invalid {kind} name {name:?}: use 1 to 64 characters of a-z, 0-9 and _, not starting with a digit"
        )))
    }
}

/// Checks an object type declaration before it is stored.
pub fn validate_update(type_name: &str, update: &ObjectTypeUpdate) -> Result<(), CoreError> {
    validate_name("object type", type_name)?;
    let mut seen = std::collections::HashSet::new();
    for field in &update.fields {
        validate_name("field", &field.name)?;
        if let Some(permission) = &field.permission {
            validate_name("permission", permission)?;
        }
        if !seen.insert(field.name.as_str()) {
            return Err(CoreError::invalid(format!(
                "field {:?} is listed twice",
                field.name
            )));
        }
    }
    Ok(())
}

#[derive(Deserialize)]
struct CatalogFile {
    types: Vec<CatalogFileType>,
}

#[derive(Deserialize)]
struct CatalogFileType {
    name: String,
    grant: GrantMode,
    fields: Vec<FieldDef>,
}

/// Meta's object types, fields, permissions and sample values, as shipped in the binary.
pub fn builtin() -> Vec<ObjectType> {
    // The file is part of the source tree and checked by `builtin_catalog_is_valid`, so a parse
    // failure here is a build defect, not an input error.
    #[expect(
        clippy::expect_used,
        reason = "the embedded catalog is tested at build time"
    )]
    let file: CatalogFile = serde_json::from_str(include_str!("catalog/meta.json"))
        .expect("the embedded catalog/meta.json is valid");
    file.types
        .into_iter()
        .map(|t| ObjectType {
            name: t.name,
            grant: t.grant,
            fields: t.fields.into_iter().map(|f| (f.name.clone(), f)).collect(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_catalog_is_valid() {
        let types = builtin();
        let names: Vec<&str> = types.iter().map(|t| t.name.as_str()).collect();
        for expected in [
            "user",
            "page",
            "permissions",
            "application",
            "instagram",
            "whatsapp_business_account",
        ] {
            assert!(
                names.contains(&expected),
                "{expected} missing from {names:?}"
            );
        }
        for object_type in &types {
            let update = ObjectTypeUpdate {
                grant: object_type.grant,
                fields: object_type.fields.values().cloned().collect(),
            };
            validate_update(&object_type.name, &update).unwrap();
            for field in object_type.fields.values() {
                assert!(
                    !field.sample.is_null(),
                    "{}.{} has no sample",
                    object_type.name,
                    field.name
                );
            }
        }
        let application = types.iter().find(|t| t.name == "application").unwrap();
        assert_eq!(application.grant, GrantMode::None);
        let user = types.iter().find(|t| t.name == "user").unwrap();
        assert_eq!(
            user.field("email").unwrap().permission.as_deref(),
            Some("email")
        );
    }

    #[test]
    fn names_are_checked() {
        assert!(validate_name("field", "message_reactions").is_ok());
        assert!(validate_name("field", "").is_err());
        assert!(validate_name("field", "Email").is_err());
        assert!(validate_name("field", "1st").is_err());
        assert!(validate_name("field", "a-b").is_err());
        assert!(validate_name("field", &"a".repeat(65)).is_err());
    }

    #[test]
    fn merging_keeps_fields_not_named() {
        let mut page = builtin().into_iter().find(|t| t.name == "page").unwrap();
        let before = page.fields.len();
        page.merge(ObjectTypeUpdate {
            grant: GrantMode::Object,
            fields: vec![FieldDef {
                name: "custom_thing".into(),
                permission: None,
                sample: Value::from("x"),
            }],
        });
        assert_eq!(page.fields.len(), before + 1);
        assert!(page.field("feed").is_ok());
    }

    #[test]
    fn duplicate_fields_are_refused() {
        let field = FieldDef {
            name: "a".into(),
            permission: None,
            sample: Value::Null,
        };
        let update = ObjectTypeUpdate {
            grant: GrantMode::Object,
            fields: vec![field.clone(), field],
        };
        assert!(validate_update("thing", &update).is_err());
    }
}
