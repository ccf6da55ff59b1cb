ALTER TABLE saga.workflows DROP COLUMN IF EXISTS retry_request_id;
