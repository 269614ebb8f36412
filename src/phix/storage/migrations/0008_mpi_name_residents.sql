-- Name frequency counts residents, not records (count(DISTINCT golden_id) per name reading):
-- the name index carries the resident so the count is an index-only scan.
DROP INDEX IF EXISTS mpi_record_name;
CREATE INDEX mpi_record_name ON mpi_record (name_key, golden_id);
