// gRPC adapter for order_platform.saga.v1.WorkflowService, the operator's view of the saga
// engine's workflows: validates requests, calls db::PgWorkflowStore (which does the work and
// enforces the state rules) and maps records to protos and statuses with ToGrpcStatus.
#pragma once

#include <functional>
#include <memory>

#include "absl/time/time.h"
#include "db/pg_workflow_store.h"
#include "order_platform/saga/v1/workflow.grpc.pb.h"
#include "saga/task_runner.h"
#include "saga/waiters.h"
#include "saga/workflow.h"

namespace order_platform::saga {

// WaitWorkflow is served with gRPC's callback API (a long poll holds no thread while it waits);
// the other methods are synchronous.
class WorkflowServiceHandler final
    : public v1::WorkflowService::WithCallbackMethod_WaitWorkflow<v1::WorkflowService::Service> {
 public:
  // `store` must outlive the handler. `poke`, when set, is called after every successful cancel,
  // signal or retry so the engine acts at once rather than at its next poll (typically
  // [&engine] { engine.Poke(); }); it is called from gRPC threads concurrently, so it must be
  // thread-safe and cheap. `waiters`, when set (and outliving the handler), is what the local
  // engine announces settled workflows to (EngineOptions::on_settled); without it WaitWorkflow
  // only re-reads the database. `running_here`, when set with `waiters`, tells whether the local
  // engine is running (or has queued) a workflow (typically Engine::IsRunning): WaitWorkflow then
  // skips its first read, since that engine will announce the end.
  explicit WorkflowServiceHandler(db::PgWorkflowStore* store, std::function<void()> poke = nullptr,
                                  WorkflowWaiters* waiters = nullptr,
                                  std::function<bool(const std::string&)> running_here = nullptr)
      : store_(*store),
        poke_(std::move(poke)),
        waiters_(waiters),
        running_here_(std::move(running_here)) {}
  // Stops the wait calls' runner first. The server that serves this handler must be shut down
  // before (as for every gRPC service).
  ~WorkflowServiceHandler() override;

  // One workflow with its step history.
  grpc::Status GetWorkflow(grpc::ServerContext* context, const v1::GetWorkflowRequest* request,
                           v1::Workflow* response) override;
  // A long poll: the workflow once it settles, woken by the local engine's announcement or
  // finding it settled on a re-read (200 ms, doubling to 1 s: another process may run it), or as
  // it is when the timeout or the call's deadline comes first; CANCELLED at once when the caller
  // cancels. While it waits it holds no thread and no database connection: its reads and timers
  // run on a few threads of this handler's.
  grpc::ServerUnaryReactor* WaitWorkflow(grpc::CallbackServerContext* context,
                                         const v1::WaitWorkflowRequest* request,
                                         v1::Workflow* response) override;
  // Newest first, without step histories (GetWorkflow has them).
  grpc::Status ListWorkflows(grpc::ServerContext* context, const v1::ListWorkflowsRequest* request,
                             v1::ListWorkflowsResponse* response) override;
  // The operator actions return the workflow as it is after the action, with its step history.
  // Cancel is idempotent by state (a repeated cancel of a workflow not yet stopped succeeds
  // again; its request_id is validated and logged). A retry records its request_id on the
  // workflow: repeating the last retry's (its answer lost) returns the workflow as it is now,
  // where any other retry of a workflow not in NEEDS_ATTENTION is FAILED_PRECONDITION. On
  // SignalWorkflow, request_id is the signal's dedupe key: a second signal with the same
  // (workflow_id, request_id) is dropped.
  grpc::Status CancelWorkflow(grpc::ServerContext* context,
                              const v1::CancelWorkflowRequest* request,
                              v1::Workflow* response) override;
  grpc::Status SignalWorkflow(grpc::ServerContext* context,
                              const v1::SignalWorkflowRequest* request,
                              v1::Workflow* response) override;
  grpc::Status RetryWorkflow(grpc::ServerContext* context, const v1::RetryWorkflowRequest* request,
                             v1::Workflow* response) override;

 private:
  class WaitCall;
  // Threads of wait_runner_: they only read the database (one short statement each) and answer;
  // a few more than needed, so that reads held up (a full pool) do not hold up every wait.
  static constexpr int kWaitThreads = 8;

  // Pokes the engine, then renders the workflow re-read with its steps; falls back to `acted`
  // (the record the action returned, without steps) if the re-read fails.
  void AfterAction(const WorkflowRecord& acted, v1::Workflow* response);

  db::PgWorkflowStore& store_;
  const std::function<void()> poke_;
  WorkflowWaiters* const waiters_;
  const std::function<bool(const std::string&)> running_here_;
  // The wait calls' reads and timers. Declared last: stopped (and destroyed) first.
  TaskRunner wait_runner_{kWaitThreads};
};

// Proto rendering of a workflow record and its steps (when loaded). `now` gives the duration of a
// workflow that has not finished. A pending cancel shows in status_reason until the engine acts
// on it. Step status WAITING (a timer or signal wait) is rendered as RUNNING.
void WorkflowToProto(const WorkflowRecord& workflow, absl::Time now, v1::Workflow* proto);

}  // namespace order_platform::saga
