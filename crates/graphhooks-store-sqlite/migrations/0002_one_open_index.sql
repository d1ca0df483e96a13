-- One index for unclaimed open work instead of two. `deliveries_open` (queue metrics, pause
-- and resume) was written on every insert and every recorded outcome; the lane index now holds
-- paused work too and carries state and created_time, so it answers those queries as well
-- (claimed_by, always NULL here, is in the key so that those queries read the index alone).
-- Claimed rows are found through `deliveries_claimed`. SQLite only uses a partial index for a
-- query whose WHERE repeats the index's terms, so every query meant for this index says
-- `state IN ('pending', 'paused') AND claimed_by IS NULL` as written here.
DROP INDEX deliveries_open;
DROP INDEX deliveries_lane_due;
CREATE INDEX deliveries_lane_due ON deliveries(app_id, object_type, due_ms, id, state, created_time, claimed_by)
    WHERE state IN ('pending', 'paused') AND claimed_by IS NULL;
