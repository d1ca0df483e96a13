-- A delivery's first attempt is kept in its own row; later attempts stay in `attempts`. Most
-- deliveries succeed at the first attempt, and recording it inserted an `attempts` row (a heap
-- tuple, a primary-key entry and a foreign-key check that locks the delivery) besides the
-- delivery's update, which rewrites the row anyway. SQLite has done the same since its
-- migration 0003.
-- attempt1_time_ms NULL: no first attempt in this row (none made yet, or made before this
-- migration, in which case `attempts` holds it). Adding nullable columns does not rewrite the
-- table.
ALTER TABLE deliveries ADD COLUMN attempt1_time_ms bigint;
ALTER TABLE deliveries ADD COLUMN attempt1_status integer;
ALTER TABLE deliveries ADD COLUMN attempt1_error text;
ALTER TABLE deliveries ADD COLUMN attempt1_latency_ms integer;
ALTER TABLE deliveries ADD COLUMN attempt1_response text;
