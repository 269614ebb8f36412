-- The versioned resource store.
-- resources: one row per logical resource, holding its current version (a tombstone when deleted).
-- resource_versions: every version ever written, in commit order (seq) for system history.
CREATE SEQUENCE resource_rid_seq;

CREATE TABLE resources (
    rid          bigint PRIMARY KEY DEFAULT nextval('resource_rid_seq'),
    res_type     text        NOT NULL,
    res_id       text        NOT NULL,
    version      integer     NOT NULL,
    last_updated timestamptz NOT NULL,
    deleted      boolean     NOT NULL DEFAULT false,
    body         bytea,
    CONSTRAINT resources_type_id UNIQUE (res_type, res_id)
);
CREATE INDEX resources_type_updated ON resources (res_type, last_updated);

CREATE TABLE resource_versions (
    seq          bigserial   PRIMARY KEY,
    rid          bigint      NOT NULL,
    res_type     text        NOT NULL,
    res_id       text        NOT NULL,
    version      integer     NOT NULL,
    last_updated timestamptz NOT NULL,
    method       text        NOT NULL,   -- POST | PUT | PATCH | DELETE
    deleted      boolean     NOT NULL DEFAULT false,
    body         bytea,
    CONSTRAINT resource_versions_rid_version UNIQUE (rid, version)
);
CREATE INDEX resource_versions_type_seq ON resource_versions (res_type, seq);
CREATE INDEX resource_versions_updated ON resource_versions (last_updated);
CREATE INDEX resource_versions_type_id ON resource_versions (res_type, res_id, version);
