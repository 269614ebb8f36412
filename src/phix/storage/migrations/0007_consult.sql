-- Teleconsultation workflow (phix.consult). The Task resources are the truth; these tables are
-- projections written in the same transaction by phix.consult.listeners, plus the notification
-- outbox. See docs/consult.md.

-- One row per teleconsultation Task: its state, owner, deadline and timeliness.
CREATE TABLE consult_tasks (
    task_id         text PRIMARY KEY,
    sr_id           text        NOT NULL,
    requester_org   text,                   -- Organization id of the requesting hospital
    owner_role      text,                   -- PractitionerRole id of the reader (NULL: unassigned)
    site_org        text,                   -- Organization id of the reader's site
    priority        text        NOT NULL,   -- routine | urgent | asap | stat
    status          text        NOT NULL,   -- Task.status
    business_status text,                   -- Task.businessStatus code (consult-status)
    requested_at    timestamptz NOT NULL,   -- ServiceRequest.authoredOn (or receipt)
    received_at     timestamptz NOT NULL,   -- receipt by the platform
    due_at          timestamptz,            -- current deadline (Task.restriction.period.end)
    first_due_at    timestamptz,            -- the deadline first set
    deadline_state  text        NOT NULL DEFAULT 'pending',  -- pending | overdue | done
    overdue_at      timestamptz,            -- first found overdue
    escalations     integer     NOT NULL DEFAULT 0,
    assigned_at     timestamptz,
    completed_at    timestamptz,
    report_id       text,
    updated_at      timestamptz NOT NULL,
    CONSTRAINT consult_tasks_sr UNIQUE (sr_id)
);
CREATE INDEX consult_tasks_due ON consult_tasks (due_at) WHERE deadline_state = 'pending';
CREATE INDEX consult_tasks_owner_open ON consult_tasks (owner_role)
    WHERE status IN ('requested', 'accepted', 'in-progress');
CREATE INDEX consult_tasks_unassigned ON consult_tasks (received_at)
    WHERE owner_role IS NULL AND status = 'requested';
CREATE INDEX consult_tasks_requested ON consult_tasks (requested_at);
CREATE INDEX consult_tasks_site ON consult_tasks (site_org, status);

-- Every assignment of a reader (first assignment, manual reassignment, escalation).
CREATE TABLE consult_assignments (
    seq       bigserial PRIMARY KEY,
    task_id   text        NOT NULL,
    role_id   text        NOT NULL,
    site_org  text,
    at        timestamptz NOT NULL,
    reason    text        NOT NULL          -- assign | reassign | escalate | reject
);
CREATE INDEX consult_assignments_role ON consult_assignments (role_id, at);
CREATE INDEX consult_assignments_task ON consult_assignments (task_id);

-- Every time a consult was found overdue, with the reader and site that held it.
CREATE TABLE consult_escalations (
    seq        bigserial PRIMARY KEY,
    task_id    text        NOT NULL,
    at         timestamptz NOT NULL,
    missed_due timestamptz NOT NULL,
    priority   text        NOT NULL,
    action     text        NOT NULL,        -- reassign | notify
    from_role  text,
    from_site  text,
    to_role    text,
    to_site    text
);
CREATE INDEX consult_escalations_task ON consult_escalations (task_id);
CREATE INDEX consult_escalations_at ON consult_escalations (at);

-- Durable notification outbox (webhooks and FHIR Subscription rest-hooks), claimed with
-- FOR UPDATE SKIP LOCKED and retried with exponential backoff.
CREATE TABLE consult_outbox (
    id              bigserial PRIMARY KEY,
    event           text        NOT NULL,   -- assigned | completed | ... | subscription
    task_id         text,
    channel         text        NOT NULL,   -- webhook | rest-hook
    target          text,                   -- Organization/x or Subscription/y
    method          text        NOT NULL DEFAULT 'POST',
    url             text        NOT NULL,
    headers         jsonb       NOT NULL DEFAULT '{}',
    body            bytea,
    state           text        NOT NULL DEFAULT 'pending',  -- pending | delivered | failed
    attempts        integer     NOT NULL DEFAULT 0,
    created_at      timestamptz NOT NULL,
    next_attempt_at timestamptz NOT NULL,
    delivered_at    timestamptz,
    last_status     integer,
    last_error      text
);
CREATE INDEX consult_outbox_due ON consult_outbox (next_attempt_at) WHERE state = 'pending';
CREATE INDEX consult_outbox_task ON consult_outbox (task_id);
