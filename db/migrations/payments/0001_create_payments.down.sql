DROP TABLE IF EXISTS payments.operations;
DROP TABLE IF EXISTS payments.payments;
