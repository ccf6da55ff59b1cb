-- Durable workflows: one row per workflow (its lease, status and wake-up time) and one row per
-- step, compensation, timer or signal wait it went through (its checkpoint).
CREATE TABLE saga.workflows (
  id               text        PRIMARY KEY CHECK (length(id) BETWEEN 1 AND 200),
  type             text        NOT NULL,
  business_key     text        NOT NULL DEFAULT '',
  input            bytea       NOT NULL,
  status           text        NOT NULL CHECK (status IN ('running', 'waiting', 'compensating',
                   'completed', 'compensated', 'cancelled', 'failed', 'needs_attention')),
  status_reason    text        NOT NULL DEFAULT '',
  result           bytea,
  -- Why compensation runs: 'failed' or 'cancelled'; empty while going forward.
  compensation_cause text      NOT NULL DEFAULT '',
  -- The reason compensation began; kept while an operator retries a compensation.
  failure_reason   text        NOT NULL DEFAULT '',
  cancel_requested boolean     NOT NULL DEFAULT false,
  cancel_reason    text        NOT NULL DEFAULT '',
  past_pivot       boolean     NOT NULL DEFAULT false,
  -- Runnable when status is running/waiting/compensating and next_run_at <= now() and the lease
  -- (owner, lease_epoch, lease_expires_at) is free or expired.
  next_run_at      timestamptz NOT NULL DEFAULT now(),
  owner            text,
  lease_epoch      bigint      NOT NULL DEFAULT 0,
  lease_expires_at timestamptz,
  deadline_at      timestamptz,
  created_at       timestamptz NOT NULL DEFAULT now(),
  updated_at       timestamptz NOT NULL DEFAULT now(),
  finished_at      timestamptz
);

-- The claim query: runnable workflows by due time.
CREATE INDEX workflows_runnable_idx ON saga.workflows (next_run_at)
  WHERE status IN ('running', 'waiting', 'compensating');
-- Visibility: by type/status and time, newest first; retention by finish time.
CREATE INDEX workflows_created_idx ON saga.workflows (created_at DESC, id DESC);
CREATE INDEX workflows_type_created_idx ON saga.workflows (type, created_at DESC, id DESC);
CREATE INDEX workflows_status_created_idx ON saga.workflows (status, created_at DESC, id DESC);
CREATE INDEX workflows_finished_idx ON saga.workflows (finished_at) WHERE finished_at IS NOT NULL;

CREATE TABLE saga.steps (
  workflow_id       text        NOT NULL REFERENCES saga.workflows (id) ON DELETE CASCADE,
  seq               integer     NOT NULL CHECK (seq >= 1),
  name              text        NOT NULL,
  kind              text        NOT NULL CHECK (kind IN ('forward', 'compensation', 'timer', 'signal')),
  status            text        NOT NULL CHECK (status IN ('running', 'succeeded', 'failed',
                    'retry_scheduled', 'waiting')),
  attempts          integer     NOT NULL DEFAULT 0,
  result            bytea,
  error_code        integer     NOT NULL DEFAULT 0,
  error_message     text        NOT NULL DEFAULT '',
  compensation      text        NOT NULL DEFAULT '',
  compensation_args bytea,
  pivot             boolean     NOT NULL DEFAULT false,
  compensates_seq   integer     NOT NULL DEFAULT 0,
  started_at        timestamptz NOT NULL DEFAULT now(),
  finished_at       timestamptz,
  next_attempt_at   timestamptz,
  PRIMARY KEY (workflow_id, seq)
);

-- Signals are kept until a wait consumes them, so a signal sent before the wait is not lost.
CREATE TABLE saga.signals (
  id           bigserial   PRIMARY KEY,
  workflow_id  text        NOT NULL REFERENCES saga.workflows (id) ON DELETE CASCADE,
  name         text        NOT NULL,
  payload      bytea       NOT NULL DEFAULT '',
  request_id   text        NOT NULL,
  consumed_seq integer,
  created_at   timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT signals_request_id_key UNIQUE (workflow_id, request_id)
);

CREATE INDEX signals_pending_idx ON saga.signals (workflow_id, name, id) WHERE consumed_seq IS NULL;
