-- The master patient index (phix.mpi): source records, blocking keys, residents (golden records),
-- link history, review queue, deferred-linking queue and match models. See docs/mpi.md.

-- One row per source Patient (an institution's record) known to the index, with its link.
CREATE TABLE mpi_record (
    patient_id text PRIMARY KEY,
    rid        bigint      NOT NULL UNIQUE,        -- resources.rid of the source Patient
    golden_id  text,                                -- its resident (golden Patient id); NULL until linked
    grade      text,                                -- certain | probable | possible | none | manual
    manual     boolean     NOT NULL DEFAULT false,  -- set by a steward: the engine never changes it
    score      double precision,
    rule       text,                                -- deterministic rule that linked it, if any
    name_key   text,                                -- canonical name reading (name-frequency weights)
    org        text,                                -- institution code (from the MRN system)
    features   jsonb       NOT NULL,                -- phix.mpi.features.Features.to_json()
    flags      text[]      NOT NULL DEFAULT '{}',   -- malformed data kept and flagged
    linked_at  timestamptz,
    updated_at timestamptz NOT NULL
);
CREATE INDEX mpi_record_golden ON mpi_record (golden_id);
CREATE INDEX mpi_record_name ON mpi_record (name_key);

-- Blocking keys (signed 64-bit hashes of "id:...", "ph:...", "np:...|year" ...), see phix.mpi.blocking.
CREATE TABLE mpi_block (
    key bigint NOT NULL,
    rid bigint NOT NULL
);
CREATE INDEX mpi_block_key ON mpi_block (key, rid);
CREATE INDEX mpi_block_rid ON mpi_block (rid);

-- Every identifier of every source record, canonicalised (cross-reference and card resolution).
CREATE TABLE mpi_identifier (
    rid    bigint  NOT NULL,
    system text    NOT NULL,
    value  text    NOT NULL,   -- canonical: resident IDs upgraded to 18 characters, cards folded
    kind   text    NOT NULL,   -- resident-id | citizen-card | virtual-card | mrn | visit-card | other
    raw    text    NOT NULL,   -- as sent
    valid  boolean NOT NULL
);
CREATE INDEX mpi_identifier_value ON mpi_identifier (value, system);
CREATE INDEX mpi_identifier_rid ON mpi_identifier (rid);

-- Residents: one golden Patient each.
CREATE TABLE mpi_golden (
    golden_id    text PRIMARY KEY,
    status       text        NOT NULL DEFAULT 'active',  -- active | merged | retired
    merged_into  text,
    created_at   timestamptz NOT NULL,
    updated_at   timestamptz NOT NULL,
    survivorship jsonb                                    -- element -> {source, reason}
);
CREATE INDEX mpi_golden_merged ON mpi_golden (merged_into) WHERE merged_into IS NOT NULL;

-- "Not the same person": pairs of source records a steward has kept apart (a < b).
CREATE TABLE mpi_distinct (
    a      text        NOT NULL,
    b      text        NOT NULL,
    actor  text        NOT NULL,
    reason text,
    at     timestamptz NOT NULL,
    PRIMARY KEY (a, b),
    CHECK (a < b)
);
CREATE INDEX mpi_distinct_b ON mpi_distinct (b);

-- Link history and event stream: every link change with who, when, why and the score.
CREATE TABLE mpi_event (
    seq                bigserial PRIMARY KEY,
    at                 timestamptz NOT NULL,
    actor              text        NOT NULL,
    action             text        NOT NULL,
    patient_id         text,
    golden_id          text,
    previous_golden_id text,
    grade              text,
    score              double precision,
    manual             boolean     NOT NULL DEFAULT false,
    reason             text,
    detail             jsonb
);
CREATE INDEX mpi_event_patient ON mpi_event (patient_id, seq);
CREATE INDEX mpi_event_golden ON mpi_event (golden_id, seq);
CREATE INDEX mpi_event_previous ON mpi_event (previous_golden_id, seq) WHERE previous_golden_id IS NOT NULL;

-- Review queue: records (or residents) a steward should look at, with the scored candidates.
CREATE TABLE mpi_review (
    id          bigserial PRIMARY KEY,
    kind        text        NOT NULL,                 -- possible-match | possible-duplicate
    status      text        NOT NULL DEFAULT 'open',  -- open | resolved | obsolete
    patient_id  text        NOT NULL,
    golden_id   text,
    best_score  double precision,
    candidates  jsonb       NOT NULL,
    created_at  timestamptz NOT NULL,
    resolved_at timestamptz,
    resolved_by text,
    decision    text,
    reason      text
);
CREATE UNIQUE INDEX mpi_review_open ON mpi_review (patient_id, kind) WHERE status = 'open';
CREATE INDEX mpi_review_status ON mpi_review (status, id);

-- Writes whose linking was deferred (lock contention, async mode); drained by the linker worker.
CREATE TABLE mpi_pending (
    patient_id text PRIMARY KEY,
    queued_at  timestamptz NOT NULL DEFAULT now(),
    attempts   integer     NOT NULL DEFAULT 0,
    not_before timestamptz NOT NULL DEFAULT now(),
    last_error text
);
CREATE INDEX mpi_pending_due ON mpi_pending (not_before);

-- Local record numbers issued by card resolution when the institution does not send one.
CREATE SEQUENCE mpi_mrn_seq;

-- Match models re-estimated from the data (phix mpi estimate); the newest wins.
CREATE TABLE mpi_model (
    version    serial PRIMARY KEY,
    created_at timestamptz NOT NULL DEFAULT now(),
    note       text,
    params     jsonb NOT NULL
);
