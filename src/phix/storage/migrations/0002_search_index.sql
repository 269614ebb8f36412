-- Typed search-index tables (HAPI-style), written by phix.search.indexer.
--
-- Every row belongs to one current resource (rid) and one search parameter of its type:
-- ph = signed 64-bit blake2b of (resource type, parameter code), see phix.search.registry.
-- Derived sub-indexes use the same tables with their own ph: "<code>:of-type" (identifier types,
-- token table), "<code>:identifier" (Reference.identifier, token table) and "<code>#<n>"
-- (component n of a composite parameter; rows of one composite root share grp).
-- grp is NULL for every other row (a NULL costs one bit).
--
-- No foreign key to resources: index rows are replaced by index_resource / clear_resource, rids are
-- never reused, and a FK check per row would cost ingest throughput. Queries always join resources.
-- :missing is answered by NOT EXISTS on (rid, ph). Text columns that are searched with LIKE
-- 'prefix%' use the "C" collation so a plain btree serves the prefix scan.

CREATE TABLE search_string (
    rid   bigint   NOT NULL,
    ph    bigint   NOT NULL,
    grp   smallint,
    norm  text COLLATE "C" NOT NULL,   -- normalised (case/accent-folded, or normaliser output)
    exact text     NOT NULL            -- the original text, for :exact
);
CREATE INDEX search_string_rid ON search_string (rid, ph);
CREATE INDEX search_string_value ON search_string (ph, norm, rid);

CREATE TABLE search_token (
    rid    bigint   NOT NULL,
    ph     bigint   NOT NULL,
    grp    smallint,
    system text,
    code   text,
    text   text COLLATE "C"            -- normalised display / text, for :text
);
CREATE INDEX search_token_rid ON search_token (rid, ph);
CREATE INDEX search_token_value ON search_token (ph, code, system, rid);
CREATE INDEX search_token_text ON search_token (ph, text, rid) WHERE text IS NOT NULL;

CREATE TABLE search_date (
    rid  bigint      NOT NULL,
    ph   bigint      NOT NULL,
    grp  smallint,
    low  timestamptz NOT NULL,        -- inclusive
    high timestamptz NOT NULL         -- exclusive
);
CREATE INDEX search_date_rid ON search_date (rid, ph);
CREATE INDEX search_date_low ON search_date (ph, low, high, rid);
CREATE INDEX search_date_high ON search_date (ph, high, rid);

CREATE TABLE search_number (
    rid  bigint  NOT NULL,
    ph   bigint  NOT NULL,
    grp  smallint,
    low  numeric NOT NULL,            -- inclusive
    high numeric NOT NULL             -- inclusive
);
CREATE INDEX search_number_rid ON search_number (rid, ph);
CREATE INDEX search_number_value ON search_number (ph, low, high, rid);

CREATE TABLE search_quantity (
    rid        bigint  NOT NULL,
    ph         bigint  NOT NULL,
    grp        smallint,
    system     text,
    code       text,                  -- Quantity.code, else Quantity.unit
    low        numeric NOT NULL,
    high       numeric NOT NULL,
    canon_code text,                  -- UCUM canonical unit (phix.search.ucum), when known
    canon_low  numeric,
    canon_high numeric
);
CREATE INDEX search_quantity_rid ON search_quantity (rid, ph);
CREATE INDEX search_quantity_value ON search_quantity (ph, code, low, rid);
CREATE INDEX search_quantity_canon ON search_quantity (ph, canon_code, canon_low, rid)
    WHERE canon_code IS NOT NULL;

CREATE TABLE search_reference (
    rid         bigint NOT NULL,
    ph          bigint NOT NULL,
    grp         smallint,
    target_type text,
    target_id   text,
    target_url  text                  -- NULL: local; else the service base, or the whole URL
);
CREATE INDEX search_reference_rid ON search_reference (rid, ph);
CREATE INDEX search_reference_target ON search_reference (ph, target_id, target_type, rid);
CREATE INDEX search_reference_url ON search_reference (ph, target_url, rid) WHERE target_id IS NULL;

CREATE TABLE search_uri (
    rid bigint NOT NULL,
    ph  bigint NOT NULL,
    grp smallint,
    uri text COLLATE "C" NOT NULL
);
CREATE INDEX search_uri_rid ON search_uri (rid, ph);
CREATE INDEX search_uri_value ON search_uri (ph, uri, rid);

-- Multi-column statistics: the value columns are strongly correlated with ph (a code belongs to one
-- parameter), and the planner's choice between "walk resources in rid order and probe" and "read
-- the index then sort" depends on estimating them together.
CREATE STATISTICS search_token_stats (mcv, dependencies, ndistinct) ON ph, code, system FROM search_token;
CREATE STATISTICS search_string_stats (mcv, dependencies) ON ph, norm FROM search_string;
CREATE STATISTICS search_reference_stats (mcv, dependencies, ndistinct) ON ph, target_type, target_id
    FROM search_reference;
CREATE STATISTICS search_quantity_stats (mcv, dependencies) ON ph, code, canon_code FROM search_quantity;
CREATE STATISTICS search_date_stats (dependencies) ON ph, low, high FROM search_date;
CREATE STATISTICS search_uri_stats (mcv, dependencies) ON ph, uri FROM search_uri;

-- Type-level searches walk current resources of one type in rid order (the default result order)
-- or probe them by rid; the included columns are all a search predicate reads from resources, so
-- both are index-only (the page's bodies are fetched afterwards, for its rows alone).
CREATE INDEX resources_type_rid ON resources (res_type, rid) INCLUDE (res_id, last_updated) WHERE NOT deleted;
