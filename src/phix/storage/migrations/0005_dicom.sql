-- DICOM gateway (phix.dicom): the index over the on-disk instance store, studies, routing queue.

-- One row per stored SOP instance. The file lives under the store root at `path`; `attributes`
-- is the DICOM JSON model (PS3.18 F.2) of its header, bulk data left out.
CREATE TABLE dicom_instances (
    sop_instance_uid     text        PRIMARY KEY,
    sop_class_uid        text        NOT NULL,
    study_instance_uid   text        NOT NULL,
    series_instance_uid  text        NOT NULL,
    transfer_syntax_uid  text        NOT NULL,
    instance_number      integer,
    series_number        integer,
    modality             text,
    body_part            text,
    series_description   text,
    series_date          text,
    series_time          text,
    path                 text        NOT NULL,
    size                 bigint      NOT NULL,
    sending_ae           text,
    institution          text,
    received_at          timestamptz NOT NULL,
    attributes           jsonb       NOT NULL
);
CREATE INDEX dicom_instances_study ON dicom_instances (study_instance_uid, series_instance_uid, instance_number);
CREATE INDEX dicom_instances_series ON dicom_instances (series_instance_uid);

-- One row per study: patient and study modules (from the latest instance), aggregates, lifecycle.
CREATE TABLE dicom_studies (
    study_instance_uid       text        PRIMARY KEY,
    patient_id               text,
    patient_name             text,       -- decoded PN, groups joined by '=' (Wang^XiaoDong=王^小東)
    patient_birth_date       text,
    patient_sex              text,
    study_date               text,
    study_time               text,
    accession_number         text,
    study_id                 text,
    study_description        text,
    referring_physician_name text,
    institution              text,       -- sending institution code (from the calling AE title)
    sending_ae               text,
    modalities               text[]      NOT NULL DEFAULT '{}',
    body_parts               text[]      NOT NULL DEFAULT '{}',
    number_of_series         integer     NOT NULL DEFAULT 0,
    number_of_instances      integer     NOT NULL DEFAULT 0,
    priority                 text        NOT NULL DEFAULT 'routine',  -- FHIR request-priority
    state                    text        NOT NULL DEFAULT 'receiving', -- receiving | complete
    first_received_at        timestamptz NOT NULL,
    last_received_at         timestamptz NOT NULL,
    completed_at             timestamptz,
    imaging_study_id         text,       -- ImagingStudy/<id> written for this study
    subject                  text,       -- Patient/<id>
    attributes               jsonb       NOT NULL DEFAULT '{}'
);
CREATE INDEX dicom_studies_patient ON dicom_studies (patient_id);
CREATE INDEX dicom_studies_date ON dicom_studies (study_date);
CREATE INDEX dicom_studies_receiving ON dicom_studies (last_received_at) WHERE state = 'receiving';

-- The routing queue: one job per (study, destination). Workers claim due jobs with
-- FOR UPDATE SKIP LOCKED and hold a session advisory lock while delivering (see phix.dicom.queue).
CREATE TABLE dicom_routes (
    id                 bigserial   PRIMARY KEY,
    study_instance_uid text        NOT NULL,
    destination        text        NOT NULL,
    rule               text        NOT NULL,
    deidentify         boolean     NOT NULL DEFAULT false,
    priority           smallint    NOT NULL DEFAULT 3,   -- 0 stat, 1 asap, 2 urgent, 3 routine
    status             text        NOT NULL DEFAULT 'pending', -- pending | delivering | delivered | failed
    recheck            boolean     NOT NULL DEFAULT false, -- new instances arrived while delivering
    attempts           integer     NOT NULL DEFAULT 0,
    next_attempt_at    timestamptz NOT NULL DEFAULT now(),
    last_error         text,
    instances_sent     integer     NOT NULL DEFAULT 0,
    claimed_by         text,
    created_at         timestamptz NOT NULL DEFAULT now(),
    updated_at         timestamptz NOT NULL DEFAULT now(),
    delivered_at       timestamptz,
    CONSTRAINT dicom_routes_study_destination UNIQUE (study_instance_uid, destination)
);
CREATE INDEX dicom_routes_due ON dicom_routes (priority, next_attempt_at) WHERE status = 'pending';

-- What each destination already has: delivery is idempotent per (destination, SOP instance).
CREATE TABLE dicom_deliveries (
    destination      text        NOT NULL,
    sop_instance_uid text        NOT NULL,
    route_id         bigint      NOT NULL,
    delivered_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (destination, sop_instance_uid)
);
