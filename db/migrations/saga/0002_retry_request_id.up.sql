-- The request id of the operator's last RetryWorkflow, so that a retry repeated because its answer
-- was lost (the workflow has moved on since) is recognized and answered as the first was, rather
-- than refused as "not needs_attention". NULL until a workflow is retried.
ALTER TABLE saga.workflows ADD COLUMN retry_request_id text;
