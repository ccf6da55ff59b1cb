-- Call counts of the simulated payment gateway (services/payments/simulated_gateway.h), kept only
-- for the test tokens whose outcome depends on how many calls came before: tok_transient_<N>
-- counts every call under an idempotency key ('calls'), tok_void_fails_<N> its Void calls
-- ('voids'). Here rather than in the server's memory so that "the first N calls per idempotency
-- key fail" holds across restarts and across every process on this database.
CREATE TABLE payments.simulator_counters (
  idempotency_key     text        NOT NULL,
  counter             text        NOT NULL CHECK (counter IN ('calls', 'voids')),
  calls               bigint      NOT NULL CHECK (calls > 0),
  updated_at          timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (idempotency_key, counter)
);
