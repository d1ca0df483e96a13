//! The eligibility rules of SPEC §1: a change goes to an app iff (1) the app subscribes to the
//! type and the field, (2) it holds a grant for the object with the field's permission (unless
//! the type needs no grant), and (3) the app is live or the change's actor has a role on it.
//! [`check`] is the cheap form the fan-out runs per (change, app); [`explain`] words the outcome
//! for people.

use serde::Serialize;

use crate::catalog::{GrantMode, ObjectType};
use crate::model::AppMode;

/// The rule that stopped a change, in the order they are checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Rule {
    /// The app has no subscription to the object type.
    Subscription,
    /// The app subscribes to the type but not to the field.
    Field,
    /// The app has no grant for the object.
    Grant,
    /// The grant lacks the permission the field needs.
    Permission,
    /// The app is in development mode and the actor has no role on it.
    Mode,
}

impl Rule {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Rule::Subscription => "subscription",
            Rule::Field => "field",
            Rule::Grant => "grant",
            Rule::Permission => "permission",
            Rule::Mode => "mode",
        }
    }
}

/// What is known about one app when judging one change.
#[derive(Debug, Clone, Copy)]
pub struct AppFacts<'a> {
    /// The app's mode.
    pub mode: AppMode,
    /// Whether the app subscribes to the change's object type at all.
    pub subscribed_to_type: bool,
    /// Whether that subscription includes the change's field.
    pub subscribed_to_field: bool,
    /// The permissions of the app's grant for the object, or `None` without a grant.
    pub grant: Option<&'a [String]>,
    /// Whether the change's actor has a role on the app.
    pub actor_has_role: bool,
}

/// What is known about the change.
#[derive(Debug, Clone, Copy)]
pub struct ChangeFacts<'a> {
    /// The change's object type, from the catalog.
    pub object_type: &'a ObjectType,
    /// The object id.
    pub object_id: &'a str,
    /// The field that changed.
    pub field: &'a str,
    /// Who caused it.
    pub actor: Option<&'a str>,
}

/// Applies the rules in order; `Err` names the first that stopped the change.
pub fn check(change: &ChangeFacts<'_>, app: &AppFacts<'_>) -> Result<(), Rule> {
    if !app.subscribed_to_type {
        return Err(Rule::Subscription);
    }
    if !app.subscribed_to_field {
        return Err(Rule::Field);
    }
    if change.object_type.grant == GrantMode::Object {
        let Some(granted) = app.grant else {
            return Err(Rule::Grant);
        };
        if let Some(needed) = change
            .object_type
            .fields
            .get(change.field)
            .and_then(|f| f.permission.as_deref())
            && !granted.iter().any(|p| p == needed)
        {
            return Err(Rule::Permission);
        }
    }
    if app.mode == AppMode::Development && !app.actor_has_role {
        return Err(Rule::Mode);
    }
    Ok(())
}

/// The outcome of [`check`] worded for the explain API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Explanation {
    /// Whether the change goes to the app.
    pub eligible: bool,
    /// The rule that stopped it, or `None` when it passed every rule.
    pub rule: Option<Rule>,
    /// One sentence saying why.
    pub detail: String,
}

/// Applies the rules and words the outcome.
pub fn explain(change: &ChangeFacts<'_>, app: &AppFacts<'_>) -> Explanation {
    let type_name = &change.object_type.name;
    let field = change.field;
    let object_id = change.object_id;
    match check(change, app) {
        Ok(()) => Explanation {
            eligible: true,
            rule: None,
            detail: format!(
                "The app subscribes to {type_name}.{field}{}{}.",
                match change.object_type.grant {
                    GrantMode::Object => format!(", holds a grant for {type_name} {object_id}"),
                    GrantMode::None => String::new(),
                },
                match app.mode {
                    AppMode::Live => " and is live".to_owned(),
                    AppMode::Development => format!(
                        " and the actor {} has a role on it",
                        change.actor.unwrap_or_default()
                    ),
                }
            ),
        },
        Err(rule) => Explanation {
            eligible: false,
            rule: Some(rule),
            detail: match rule {
                Rule::Subscription => {
                    format!("The app has no subscription to the object type {type_name}.")
                }
                Rule::Field => format!(
                    "The app subscribes to {type_name} but not to the field {field}."
                ),
                Rule::Grant => format!(
                    "The app has no grant for {type_name} {object_id}: the object's owner has not installed or authorised it."
                ),
                Rule::Permission => format!(
                    "The app's grant for {type_name} {object_id} lacks the permission {} that the field {field} needs.",
                    change
                        .object_type
                        .fields
                        .get(field)
                        .and_then(|f| f.permission.as_deref())
                        .unwrap_or_default()
                ),
                Rule::Mode => match change.actor {
                    Some(actor) => format!(
                        "The app is in development mode and the actor {actor} has no role on it."
                    ),
                    None => "The app is in development mode and the change has no actor; development apps only receive changes caused by people with a role on the app.".to_owned(),
                },
            },
        },
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::catalog::FieldDef;

    fn user_type() -> ObjectType {
        let mut fields = BTreeMap::new();
        for (name, permission) in [("email", Some("email")), ("name", None)] {
            fields.insert(
                name.to_owned(),
                FieldDef {
                    name: name.to_owned(),
                    permission: permission.map(str::to_owned),
                    sample: serde_json::Value::Null,
                },
            );
        }
        ObjectType {
            name: "user".into(),
            grant: GrantMode::Object,
            fields,
        }
    }

    fn live_app(grant: Option<&[String]>) -> AppFacts<'_> {
        AppFacts {
            mode: AppMode::Live,
            subscribed_to_type: true,
            subscribed_to_field: true,
            grant,
            actor_has_role: false,
        }
    }

    #[test]
    fn rules_apply_in_order() {
        let user = user_type();
        let change = ChangeFacts {
            object_type: &user,
            object_id: "1",
            field: "email",
            actor: Some("9"),
        };
        let email = vec!["email".to_owned()];
        let none: Vec<String> = vec![];
        assert_eq!(check(&change, &live_app(Some(&email))), Ok(()));
        assert_eq!(check(&change, &live_app(None)), Err(Rule::Grant));
        assert_eq!(
            check(&change, &live_app(Some(&none))),
            Err(Rule::Permission)
        );
        let mut app = live_app(Some(&email));
        app.subscribed_to_field = false;
        assert_eq!(check(&change, &app), Err(Rule::Field));
        app.subscribed_to_type = false;
        assert_eq!(check(&change, &app), Err(Rule::Subscription));
    }

    #[test]
    fn fields_without_a_permission_need_only_the_grant() {
        let user = user_type();
        let change = ChangeFacts {
            object_type: &user,
            object_id: "1",
            field: "name",
            actor: None,
        };
        let none: Vec<String> = vec![];
        assert_eq!(check(&change, &live_app(Some(&none))), Ok(()));
    }

    #[test]
    fn development_apps_get_only_their_people() {
        let user = user_type();
        let change = ChangeFacts {
            object_type: &user,
            object_id: "1",
            field: "name",
            actor: Some("7"),
        };
        let none: Vec<String> = vec![];
        let mut app = live_app(Some(&none));
        app.mode = AppMode::Development;
        assert_eq!(check(&change, &app), Err(Rule::Mode));
        app.actor_has_role = true;
        assert_eq!(check(&change, &app), Ok(()));
    }

    #[test]
    fn grant_none_types_skip_the_grant() {
        let mut application = user_type();
        application.grant = GrantMode::None;
        let change = ChangeFacts {
            object_type: &application,
            object_id: "1",
            field: "email",
            actor: None,
        };
        assert_eq!(check(&change, &live_app(None)), Ok(()));
    }

    #[test]
    fn explanations_name_the_rule_and_the_object() {
        let user = user_type();
        let change = ChangeFacts {
            object_type: &user,
            object_id: "42",
            field: "email",
            actor: None,
        };
        let none: Vec<String> = vec![];
        let explained = explain(&change, &live_app(Some(&none)));
        assert!(!explained.eligible);
        assert_eq!(explained.rule, Some(Rule::Permission));
        assert!(explained.detail.contains("email"), "{}", explained.detail);
        assert!(explained.detail.contains("42"), "{}", explained.detail);
    }
}
