-- The lane and by-change indexes lead with an integer lane key instead of the app id and the
-- object type (see src/lane_key.rs): seeks in a busy lane compared those two text fields on
-- every step. The indexes still carry app_id and object_type, last, so that the queries' own
-- conditions on them are answered from the index. graphhooks_lane_key() is registered by the
-- store on its connections; this migration fills the key of existing rows with it (a rewrite
-- of the table, once), and new rows get it from the store.
ALTER TABLE deliveries ADD COLUMN lane_key INTEGER;
UPDATE deliveries SET lane_key = graphhooks_lane_key(app_id, object_type);
DROP INDEX deliveries_lane_due;
CREATE INDEX deliveries_lane_due ON deliveries(lane_key, due_ms, id, state, created_time, claimed_by, app_id, object_type)
    WHERE state IN ('pending', 'paused') AND claimed_by IS NULL;
DROP INDEX deliveries_by_change;
CREATE INDEX deliveries_by_change ON deliveries(lane_key, first_change_id, app_id, object_type);
