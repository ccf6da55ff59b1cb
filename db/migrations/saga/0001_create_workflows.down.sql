DROP TABLE IF EXISTS saga.signals;
DROP TABLE IF EXISTS saga.steps;
DROP TABLE IF EXISTS saga.workflows;
