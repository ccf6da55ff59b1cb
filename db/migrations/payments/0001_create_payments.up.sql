-- Payments and the idempotency record of every request that created or changed them.
CREATE TABLE payments.payments (
  id                  uuid        PRIMARY KEY,
  order_id            text        NOT NULL,
  request_id          text        NOT NULL,
  request_fingerprint bigint      NOT NULL,
  payment_token       text        NOT NULL,
  currency            char(3)     NOT NULL,
  amount_minor        bigint      NOT NULL CHECK (amount_minor > 0),
  captured_minor      bigint      NOT NULL DEFAULT 0 CHECK (captured_minor >= 0),
  refunded_minor      bigint      NOT NULL DEFAULT 0 CHECK (refunded_minor >= 0),
  status              text        NOT NULL CHECK (status IN
                      ('pending', 'authorized', 'declined', 'captured', 'voided',
                       'partially_refunded', 'refunded')),
  decline_reason      text        NOT NULL DEFAULT '',
  gateway_reference   text        NOT NULL DEFAULT '',
  version             bigint      NOT NULL DEFAULT 1,
  created_at          timestamptz NOT NULL DEFAULT now(),
  updated_at          timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT payments_request_id_key UNIQUE (request_id),
  CONSTRAINT payments_captured_le_amount CHECK (captured_minor <= amount_minor),
  CONSTRAINT payments_refunded_le_captured CHECK (refunded_minor <= captured_minor)
);

CREATE INDEX payments_created_idx ON payments.payments (created_at DESC, id DESC);
CREATE INDEX payments_order_created_idx ON payments.payments (order_id, created_at DESC, id DESC);

-- One row per request_id of every kind: the authorization that created a payment (kind
-- 'authorize', written in the same statement as the payment) and each capture / void / refund
-- (written in the same transaction as the change it made). The primary key is what makes a
-- request_id unique across every kind of payment request, even under concurrent use: a replayed
-- request_id finds its row and changes nothing, a reused one collides here.
CREATE TABLE payments.operations (
  request_id          text        PRIMARY KEY,
  payment_id          uuid        NOT NULL REFERENCES payments.payments (id),
  kind                text        NOT NULL
                      CHECK (kind IN ('authorize', 'capture', 'void', 'refund')),
  amount_minor        bigint      NOT NULL DEFAULT 0 CHECK (amount_minor >= 0),
  request_fingerprint bigint      NOT NULL,
  reason              text        NOT NULL DEFAULT '',
  created_at          timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX operations_payment_idx ON payments.operations (payment_id);
