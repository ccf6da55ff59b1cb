-- Products with stock levels, and reservations held for orders. The CHECK constraints are what
-- makes overselling impossible: reserved never exceeds on_hand, and neither goes negative.
-- SKUs use the "C" collation so that keyset pages (ORDER BY sku) are in byte order everywhere.
CREATE TABLE inventory.products (
  sku                      text COLLATE "C" PRIMARY KEY CHECK (length(sku) BETWEEN 1 AND 64),
  name                     text        NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
  currency                 char(3)     NOT NULL,
  unit_price_minor         bigint      NOT NULL CHECK (unit_price_minor >= 0),
  on_hand                  bigint      NOT NULL CHECK (on_hand >= 0),
  reserved                 bigint      NOT NULL DEFAULT 0 CHECK (reserved >= 0),
  version                  bigint      NOT NULL DEFAULT 1 CHECK (version >= 1),
  -- The UpsertProduct request that last wrote name/price/on_hand (informational: replays are
  -- recognized by inventory.product_upserts, which remembers every request, not just the last).
  last_request_id          text        NOT NULL DEFAULT '',
  last_request_fingerprint bigint      NOT NULL DEFAULT 0,
  created_at               timestamptz NOT NULL DEFAULT now(),
  updated_at               timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT products_reserved_le_on_hand CHECK (reserved <= on_hand)
);

-- One row per UpsertProduct request that wrote, inserted in the same transaction as the write
-- and before it (the primary key serializes concurrent uses of one request_id; the SKU is checked
-- at commit, when a new product exists too). A repeated request_id finds its row and writes
-- nothing, however many upserts came since, and names one request for one SKU.
CREATE TABLE inventory.product_upserts (
  request_id          text        PRIMARY KEY,
  sku                 text COLLATE "C" NOT NULL
                      REFERENCES inventory.products (sku) DEFERRABLE INITIALLY DEFERRED,
  request_fingerprint bigint      NOT NULL,
  created_at          timestamptz NOT NULL DEFAULT now()
);

-- One reservation per order; a request_id reserves for one order only.
CREATE TABLE inventory.reservations (
  order_id            text        PRIMARY KEY CHECK (length(order_id) BETWEEN 1 AND 64),
  status              text        NOT NULL
                      CHECK (status IN ('held', 'released', 'committed', 'returned')),
  request_id          text        NOT NULL,
  request_fingerprint bigint      NOT NULL,
  version             bigint      NOT NULL DEFAULT 1 CHECK (version >= 1),
  created_at          timestamptz NOT NULL DEFAULT now(),
  updated_at          timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT reservations_request_id_key UNIQUE (request_id)
);

CREATE TABLE inventory.reservation_items (
  order_id text    NOT NULL REFERENCES inventory.reservations (order_id) ON DELETE CASCADE,
  line_no  integer NOT NULL CHECK (line_no >= 1),
  sku      text COLLATE "C" NOT NULL REFERENCES inventory.products (sku),
  quantity integer NOT NULL CHECK (quantity BETWEEN 1 AND 10000),
  PRIMARY KEY (order_id, line_no),
  CONSTRAINT reservation_items_order_sku_key UNIQUE (order_id, sku)
);

CREATE INDEX reservation_items_sku_idx ON inventory.reservation_items (sku);
