//! The server's copy of the object-type catalog, for validating changes and subscriptions
//! without a store read per request. It is reloaded after this node changes it and, because
//! other nodes may change it too, once more before an unknown type or field is refused.

use std::sync::{Arc, RwLock};

use graphhooks_core::CoreError;
use graphhooks_core::catalog::ObjectType;
use graphhooks_store::{Store, StoreError};

/// The catalog by type name (FxHash: every accepted change looks its type up; the names come
/// from the operator's catalog).
pub type CatalogMap = rustc_hash::FxHashMap<String, ObjectType>;

/// A cached catalog.
pub struct CatalogCache {
    current: RwLock<Arc<CatalogMap>>,
}

impl CatalogCache {
    /// Loads the catalog from the store.
    pub async fn load(store: &dyn Store) -> Result<CatalogCache, StoreError> {
        let cache = CatalogCache {
            current: RwLock::new(Arc::new(CatalogMap::default())),
        };
        cache.reload(store).await?;
        Ok(cache)
    }

    /// The current snapshot.
    pub fn snapshot(&self) -> Arc<CatalogMap> {
        match self.current.read() {
            Ok(guard) => guard.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Reloads from the store.
    pub async fn reload(&self, store: &dyn Store) -> Result<Arc<CatalogMap>, StoreError> {
        let types: CatalogMap = store
            .object_types()
            .await?
            .into_iter()
            .map(|t| (t.name.clone(), t))
            .collect();
        let types = Arc::new(types);
        match self.current.write() {
            Ok(mut guard) => *guard = types.clone(),
            Err(poisoned) => *poisoned.into_inner() = types.clone(),
        }
        Ok(types)
    }

    /// Runs `check` on the snapshot; if it fails on an unknown type or field, reloads once and
    /// runs it again.
    pub async fn check<T>(
        &self,
        store: &dyn Store,
        check: impl Fn(&CatalogMap) -> Result<T, (usize, CoreError)>,
    ) -> Result<Result<T, (usize, CoreError)>, StoreError> {
        match check(&self.snapshot()) {
            Err((_, CoreError::UnknownObjectType(_) | CoreError::UnknownField { .. })) => {
                let fresh = self.reload(store).await?;
                Ok(check(&fresh))
            }
            other => Ok(other),
        }
    }
}

/// The type of that name, or [`CoreError::UnknownObjectType`].
pub fn object_type<'a>(catalog: &'a CatalogMap, name: &str) -> Result<&'a ObjectType, CoreError> {
    catalog
        .get(name)
        .ok_or_else(|| CoreError::UnknownObjectType(name.to_owned()))
}
