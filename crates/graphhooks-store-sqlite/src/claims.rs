//! Claims, kept in memory rather than in the delivery rows.
//!
//! One process uses a database file at a time (it holds the file lock), and every start
//! releases the claims the last process left, so a claim never outlives the process that made
//! it. Writing it into the row bought nothing but two rewrites of every delivery (set at the
//! claim, cleared with the outcome) and two index updates each, which were a third of the
//! writer's time when deliveries went out one by one. Claimed rows therefore stay in the
//! queue index (`deliveries_lane_due`); queries over unclaimed work skip the ids held here.
//!
//! Stepping over a lane's claimed rows on every claim would cost as much as rewriting them did,
//! so each lane has a *cursor*: the queue position (due time, id) of the last row a claim took.
//! Claims take rows in queue order, so the rows before the cursor are claimed or gone, and the
//! next claim starts there. Whatever puts an unclaimed row before the cursor resets it: a
//! released claim, a retry, a redelivery, a resume, a deleted subscription's backlog, and a new
//! row stored with an earlier due time than the cursor's (its writer read the clock before a
//! claim that ran ahead of it in the writer's queue, or a clock went back). As a last resort, a
//! search from the cursor that finds less than it wants searches the whole lane again
//! ([`crate::deliveries::lane_front`]).
//!
//! The registry is changed inside writer jobs, so the next job of the same group sees it. A
//! job that adds claims logs their ids ([`Added`]) so that they can be taken back if its group
//! does not commit; outcomes leave it only once their group has committed.

use std::sync::{Arc, Mutex, MutexGuard};

use graphhooks_store::SubscriptionKey;
use rustc_hash::{FxHashMap, FxHashSet};

/// Who holds one claim. The lane's key is shared by its claims: a claim is made for every
/// delivery sent, and copying the key's two strings for each showed in profiles.
struct Claim {
    node: Arc<str>,
    key: Arc<SubscriptionKey>,
}

/// The claims held in one lane, and the key they share.
struct LaneClaims {
    key: Arc<SubscriptionKey>,
    ids: FxHashSet<i64>,
}

/// Every claim held, by delivery id and by lane, and the lanes' cursors.
#[derive(Default)]
pub(crate) struct Claims {
    by_id: FxHashMap<i64, Claim>,
    by_lane: FxHashMap<SubscriptionKey, LaneClaims>,
    cursors: FxHashMap<SubscriptionKey, (i64, i64)>,
    /// At least the latest due time of any cursor: a row stored due later is after them all.
    cursor_due_max: i64,
}

/// The registry, shared by the writer's jobs, the readers and the store's methods.
#[derive(Clone, Default)]
pub(crate) struct SharedClaims(Arc<Mutex<Claims>>);

impl SharedClaims {
    /// The registry; a panic while it was held leaves it consistent (each method changes it
    /// in one go), so a poisoned lock is taken over.
    pub(crate) fn lock(&self) -> MutexGuard<'_, Claims> {
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Takes back the claims a job added, after its group failed to commit.
    pub(crate) fn undo(&self, added: &Added) {
        let ids = std::mem::take(&mut *added.0.lock().unwrap_or_else(|p| p.into_inner()));
        let mut claims = self.lock();
        for id in ids {
            claims.remove(id);
        }
    }
}

/// The ids a job claimed, for [`SharedClaims::undo`].
#[derive(Clone, Default)]
pub(crate) struct Added(Arc<Mutex<Vec<i64>>>);

impl Added {
    pub(crate) fn push(&self, id: i64) {
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .push(id);
    }
}

impl Claims {
    /// Claims `id` for `node`; false if it is claimed already.
    pub(crate) fn insert(&mut self, id: i64, node: &Arc<str>, key: &SubscriptionKey) -> bool {
        if self.by_id.contains_key(&id) {
            return false;
        }
        self.put(id, node, key);
        true
    }

    /// Claims a row just stored. A claim held under the same id belongs to a row deleted
    /// meanwhile (SQLite reuses the highest ids): it is forgotten, and its outcome, recorded
    /// under its own lane, settles nothing here.
    pub(crate) fn insert_new(&mut self, id: i64, node: &Arc<str>, key: &SubscriptionKey) {
        self.forget(id);
        self.put(id, node, key);
    }

    fn put(&mut self, id: i64, node: &Arc<str>, key: &SubscriptionKey) {
        // Looked up by reference first: the key is copied only for a lane's first claim.
        let shared = match self.by_lane.get_mut(key) {
            Some(lane) => {
                lane.ids.insert(id);
                lane.key.clone()
            }
            None => {
                let shared = Arc::new(key.clone());
                let lane = LaneClaims {
                    key: shared.clone(),
                    ids: FxHashSet::from_iter([id]),
                };
                self.by_lane.insert(key.clone(), lane);
                shared
            }
        };
        let claim = Claim {
            node: node.clone(),
            key: shared,
        };
        self.by_id.insert(id, claim);
    }

    /// Releases `id`, unsent: it is unclaimed work again, before its lane's cursor. False if
    /// it was not claimed.
    pub(crate) fn remove(&mut self, id: i64) -> bool {
        match self.forget(id) {
            Some(key) => {
                self.cursors.remove(&*key);
                true
            }
            None => false,
        }
    }

    /// Ends the claim of `id` in lane `key` once its outcome is recorded (a claim of another
    /// lane under that id is another row's). A retry is due again later, and possibly before its
    /// lane's cursor.
    pub(crate) fn settle(&mut self, id: i64, key: &SubscriptionKey, retry: bool) {
        if self.by_id.get(&id).is_some_and(|claim| *claim.key == *key) {
            self.forget(id);
            if retry {
                self.cursors.remove(key);
            }
        }
    }

    fn forget(&mut self, id: i64) -> Option<Arc<SubscriptionKey>> {
        let claim = self.by_id.remove(&id)?;
        if let Some(lane) = self.by_lane.get_mut(&*claim.key) {
            lane.ids.remove(&id);
            if lane.ids.is_empty() {
                self.by_lane.remove(&*claim.key);
            }
        }
        Some(claim.key)
    }

    /// Whether any delivery of the lane is claimed.
    pub(crate) fn holds_in(&self, key: &SubscriptionKey) -> bool {
        self.by_lane.contains_key(key)
    }

    /// Where the next claim in a lane starts.
    pub(crate) fn cursor(&self, key: &SubscriptionKey) -> Option<(i64, i64)> {
        self.cursors.get(key).copied()
    }

    /// Records the position of the last row a claim took in a lane.
    pub(crate) fn advance(&mut self, key: &SubscriptionKey, position: (i64, i64)) {
        self.cursor_due_max = self.cursor_due_max.max(position.0);
        match self.cursors.get_mut(key) {
            Some(cursor) => *cursor = position,
            None => {
                self.cursors.insert(key.clone(), position);
            }
        }
    }

    /// Notes a pending row stored at `position` in the lane (`app_id`, `object_type`): one
    /// before the lane's cursor resets it.
    pub(crate) fn stored(&mut self, app_id: &str, object_type: &str, position: (i64, i64)) {
        if position.0 > self.cursor_due_max || self.cursors.is_empty() {
            return;
        }
        let key = SubscriptionKey {
            app_id: app_id.to_owned(),
            object_type: object_type.to_owned(),
        };
        if self
            .cursors
            .get(&key)
            .is_some_and(|cursor| position < *cursor)
        {
            self.cursors.remove(&key);
        }
    }

    /// Makes the next claim in a lane search it from the start.
    pub(crate) fn reset(&mut self, key: &SubscriptionKey) {
        self.cursors.remove(key);
    }

    pub(crate) fn contains(&self, id: i64) -> bool {
        self.by_id.contains_key(&id)
    }

    /// The claimed ids of a lane as a JSON array, for `id NOT IN (SELECT value FROM json_each(?))`.
    pub(crate) fn lane_json(&self, key: &SubscriptionKey) -> String {
        let mut json = String::from("[");
        let ids = self.by_lane.get(key).map(|lane| &lane.ids);
        for (index, id) in ids.into_iter().flatten().enumerate() {
            if index > 0 {
                json.push(',');
            }
            json.push_str(&id.to_string());
        }
        json.push(']');
        json
    }

    /// The ids of the claims `pick` picks, given each claim's id and holder.
    pub(crate) fn ids_where(&self, pick: impl Fn(i64, &str) -> bool) -> Vec<i64> {
        self.by_id
            .iter()
            .filter(|(id, claim)| pick(**id, &claim.node))
            .map(|(id, _)| *id)
            .collect()
    }

    /// Releases the claims `pick` picks; returns their ids.
    pub(crate) fn release_where(&mut self, pick: impl Fn(i64, &str) -> bool) -> Vec<i64> {
        let ids = self.ids_where(pick);
        for id in &ids {
            self.remove(*id);
        }
        ids
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(app: &str) -> SubscriptionKey {
        SubscriptionKey {
            app_id: app.into(),
            object_type: "user".into(),
        }
    }

    #[test]
    fn a_claim_is_held_once_and_indexed_by_lane() {
        let mut claims = Claims::default();
        let (a, b): (Arc<str>, Arc<str>) = ("a".into(), "b".into());
        assert!(claims.insert(1, &a, &key("1")));
        assert!(!claims.insert(1, &b, &key("1")), "held already");
        assert!(claims.insert(2, &b, &key("1")));
        assert!(claims.insert(3, &a, &key("2")));
        assert!(claims.contains(1));
        let json = claims.lane_json(&key("1"));
        assert!(json == "[1,2]" || json == "[2,1]", "{json}");
        assert_eq!(claims.lane_json(&key("3")), "[]");

        let mut released = claims.release_where(|_, node| node == "a");
        released.sort_unstable();
        assert_eq!(released, vec![1, 3]);
        assert!(
            !claims.by_lane.contains_key(&key("2")),
            "an emptied lane is forgotten"
        );
        assert!(claims.remove(2));
        assert!(!claims.remove(2));
        assert!(claims.by_lane.is_empty());
    }

    #[test]
    fn releases_and_retries_reset_the_cursor_outcomes_do_not() {
        let mut claims = Claims::default();
        let node: Arc<str> = "a".into();
        for id in 1..=4 {
            claims.insert(id, &node, &key("1"));
        }
        claims.advance(&key("1"), (10, 4));
        claims.settle(1, &key("1"), false);
        assert_eq!(
            claims.cursor(&key("1")),
            Some((10, 4)),
            "delivered: gone from the queue"
        );
        claims.settle(2, &key("2"), true);
        assert!(
            claims.contains(2),
            "another lane's outcome for this id settles nothing"
        );
        claims.settle(2, &key("1"), true);
        assert_eq!(
            claims.cursor(&key("1")),
            None,
            "a retry may be due before the cursor"
        );
        claims.advance(&key("1"), (10, 4));
        claims.remove(3);
        assert_eq!(
            claims.cursor(&key("1")),
            None,
            "released: unclaimed work again"
        );
        claims.advance(&key("1"), (10, 4));
        claims.reset(&key("1"));
        assert_eq!(claims.cursor(&key("1")), None);

        claims.advance(&key("1"), (10, 4));
        claims.stored("1", "user", (11, 2));
        claims.stored("1", "user", (10, 5));
        claims.stored("2", "user", (9, 9));
        assert_eq!(
            claims.cursor(&key("1")),
            Some((10, 4)),
            "stored after the cursor"
        );
        claims.stored("1", "user", (10, 3));
        assert_eq!(claims.cursor(&key("1")), None, "stored before the cursor");
    }

    #[test]
    fn a_reused_id_replaces_the_claim_of_the_deleted_row() {
        let mut claims = Claims::default();
        let node: Arc<str> = "a".into();
        claims.insert(7, &node, &key("1"));
        claims.insert_new(7, &node, &key("2"));
        claims.settle(7, &key("1"), false);
        assert!(claims.contains(7), "the deleted row's outcome");
        claims.settle(7, &key("2"), false);
        assert!(!claims.contains(7));
    }

    #[test]
    fn undo_takes_back_what_a_job_added() {
        let shared = SharedClaims::default();
        let added = Added::default();
        let node: Arc<str> = "a".into();
        for id in [5, 6] {
            shared.lock().insert(id, &node, &key("1"));
            added.push(id);
        }
        shared.lock().insert(7, &node, &key("1"));
        shared.undo(&added);
        let claims = shared.lock();
        assert!(!claims.contains(5) && !claims.contains(6) && claims.contains(7));
    }
}
