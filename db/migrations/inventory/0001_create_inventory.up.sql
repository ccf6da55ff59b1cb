-- Products with stock levels, and reservations held for orders. The CHECK constraints are what
-- makes overselling impossible: reserved never exceeds on_hand.
CREATE TABLE inventory.products (
  sku              text        PRIMARY KEY CHECK (length(sku) BETWEEN 1 AND 64),
  name             text        NOT NULL,
  currency         char(3)     NOT NULL,
  unit_price_minor bigint      NOT NULL CHECK (unit_price_minor >= 0),
  on_hand          bigint      NOT NULL CHECK (on_hand >= 0),
  reserved         bigint      NOT NULL DEFAULT 0 CHECK (reserved >= 0),
  version          bigint      NOT NULL DEFAULT 1,
  created_at       timestamptz NOT NULL DEFAULT now(),
  updated_at       timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT products_reserved_le_on_hand CHECK (reserved <= on_hand)
);

-- One reservation per order.
CREATE TABLE inventory.reservations (
  order_id            text        PRIMARY KEY,
  status              text        NOT NULL CHECK (status IN ('held', 'released', 'committed')),
  request_id          text        NOT NULL,
  request_fingerprint bigint      NOT NULL,
  version             bigint      NOT NULL DEFAULT 1,
  created_at          timestamptz NOT NULL DEFAULT now(),
  updated_at          timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE inventory.reservation_items (
  order_id text    NOT NULL REFERENCES inventory.reservations (order_id) ON DELETE CASCADE,
  line_no  integer NOT NULL,
  sku      text    NOT NULL REFERENCES inventory.products (sku),
  quantity integer NOT NULL CHECK (quantity BETWEEN 1 AND 10000),
  PRIMARY KEY (order_id, line_no)
);

CREATE INDEX reservation_items_sku_idx ON inventory.reservation_items (sku);
