//! Copying everything from one store into an empty one (SQLite → PostgreSQL when one machine is
//! no longer enough), through the [`Store`] trait only. Ids are kept: delivery ids are what
//! receivers de-duplicate on, change ids what explain follows. Claims, leases and lanes are
//! not copied: they belong to the processes of the old store.

use graphhooks_core::catalog::ObjectTypeUpdate;

use crate::{Store, StoreError};

/// Changes per page.
const CHANGE_PAGE: usize = 5000;
/// Deliveries per page (bodies can be up to 3 MB each).
const DELIVERY_PAGE: usize = 200;

/// Why a copy stopped.
#[derive(Debug, thiserror::Error)]
pub enum CopyError {
    /// The target already holds apps or changes.
    #[error("the target database is not empty ({0}); copy into a new database")]
    NotEmpty(&'static str),
    /// A store call failed.
    #[error("{stage}: {source}")]
    Store {
        /// What was being copied.
        stage: &'static str,
        /// The failure.
        #[source]
        source: StoreError,
    },
}

fn at(stage: &'static str) -> impl Fn(StoreError) -> CopyError {
    move |source| CopyError::Store { stage, source }
}

/// What was copied.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CopyReport {
    /// Object types.
    pub object_types: usize,
    /// Apps, with their roles, grants and subscriptions.
    pub apps: usize,
    /// Roles.
    pub roles: usize,
    /// Grants.
    pub grants: usize,
    /// Subscriptions.
    pub subscriptions: usize,
    /// Changes.
    pub changes: usize,
    /// Deliveries, with their attempts.
    pub deliveries: usize,
}

/// Copies `from` into `to`, which must hold no apps and no changes. `progress` hears about each
/// stage as it finishes.
pub async fn copy_store(
    from: &dyn Store,
    to: &dyn Store,
    mut progress: impl FnMut(&str, usize),
) -> Result<CopyReport, CopyError> {
    if !to
        .apps()
        .await
        .map_err(at("reading the target"))?
        .is_empty()
    {
        return Err(CopyError::NotEmpty("it has apps"));
    }
    if !to
        .export_changes(0, 1)
        .await
        .map_err(at("reading the target"))?
        .is_empty()
    {
        return Err(CopyError::NotEmpty("it has changes"));
    }
    let mut report = CopyReport::default();
    // All of them: the admin token's hash, object tokens, the dashboard's session key.
    for (key, value) in from.settings().await.map_err(at("settings"))? {
        to.set_setting_once(&key, &value)
            .await
            .map_err(at("settings"))?;
    }
    for object_type in from.object_types().await.map_err(at("object types"))? {
        let update = ObjectTypeUpdate {
            grant: object_type.grant,
            fields: object_type.fields.into_values().collect(),
        };
        to.put_object_type(&object_type.name, update)
            .await
            .map_err(at("object types"))?;
        report.object_types += 1;
    }
    progress("object types", report.object_types);
    for app in from.apps().await.map_err(at("apps"))? {
        let id = app.id.clone();
        to.create_app(app).await.map_err(at("apps"))?;
        for (user, role) in from.roles(&id).await.map_err(at("roles"))? {
            to.put_role(&id, &user, role).await.map_err(at("roles"))?;
            report.roles += 1;
        }
        for grant in from.grants(&id).await.map_err(at("grants"))? {
            // A grant made by an install keeps the fields the object subscribed the app to.
            let fields = from
                .installs(&grant.object_id)
                .await
                .map_err(at("grants"))?
                .into_iter()
                .find(|i| i.app_id == grant.app_id && i.object_type == grant.object_type)
                .map(|i| i.subscribed_fields)
                .unwrap_or_default();
            if fields.is_empty() {
                to.put_grant(grant).await.map_err(at("grants"))?;
            } else {
                to.install_app(grant, fields).await.map_err(at("grants"))?;
            }
            report.grants += 1;
        }
        for subscription in from.subscriptions(&id).await.map_err(at("subscriptions"))? {
            to.put_subscription(subscription)
                .await
                .map_err(at("subscriptions"))?;
            report.subscriptions += 1;
        }
        report.apps += 1;
    }
    progress("apps", report.apps);
    let mut after = 0;
    loop {
        let page = from
            .export_changes(after, CHANGE_PAGE)
            .await
            .map_err(at("changes"))?;
        let Some(last) = page.last().map(|r| r.change.id) else {
            break;
        };
        report.changes += page.len();
        to.import_changes(page).await.map_err(at("changes"))?;
        after = last;
    }
    progress("changes", report.changes);
    let mut after = 0;
    loop {
        let page = from
            .export_deliveries(after, DELIVERY_PAGE)
            .await
            .map_err(at("deliveries"))?;
        let Some(last) = page.last().map(|r| r.delivery.id) else {
            break;
        };
        report.deliveries += page.len();
        to.import_deliveries(page).await.map_err(at("deliveries"))?;
        after = last;
    }
    progress("deliveries", report.deliveries);
    Ok(report)
}
