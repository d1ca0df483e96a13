-- A delivery's first attempt is kept in its own row; later attempts stay in `attempts`. Most
-- deliveries succeed at the first attempt, and recording it was an `attempts` insert besides
-- the delivery's update: about 4% of the server's instructions per change, unbatched. The
-- outcome's update rewrites the row anyway, so the first attempt rides along with it.
-- attempt1_time_ms NULL: no first attempt in this row (none made yet, or made before this
-- migration, in which case `attempts` holds it). Adding columns does not rewrite the table.
ALTER TABLE deliveries ADD COLUMN attempt1_time_ms INTEGER;
ALTER TABLE deliveries ADD COLUMN attempt1_status INTEGER;
ALTER TABLE deliveries ADD COLUMN attempt1_error TEXT;
ALTER TABLE deliveries ADD COLUMN attempt1_latency_ms INTEGER;
ALTER TABLE deliveries ADD COLUMN attempt1_response TEXT;
