// WorkflowService end to end in-process: the real handler over a real gRPC channel, a real saga
// engine running toy workflows, and PostgreSQL (a fresh `saga` schema per test).
#include <algorithm>
#include <atomic>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <google/protobuf/util/time_util.h>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "db/migrations.h"
#include "db/pg_workflow_store.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "order_platform/saga/v1/workflow.grpc.pb.h"
#include "saga/engine.h"
#include "saga/waiters.h"
#include "saga/workflow_handler.h"
#include "services/common/errors.h"
#include "tests/support/grpc_test_server.h"
#include "tests/support/test_postgres.h"

namespace order_platform::saga {
namespace {

using ::order_platform::testing::ContextWithDeadline;
using ::testing::HasSubstr;

RetryPolicy FastRetry(int attempts) {
  RetryPolicy policy;
  policy.initial_interval = absl::Milliseconds(20);
  policy.maximum_interval = absl::Milliseconds(100);
  policy.maximum_attempts = attempts;
  return policy;
}

absl::Time ToTime(const google::protobuf::Timestamp& t) {
  return absl::FromUnixSeconds(t.seconds()) + absl::Nanoseconds(t.nanos());
}

absl::Duration ToDuration(const google::protobuf::Duration& d) {
  return absl::Seconds(d.seconds()) + absl::Nanoseconds(d.nanos());
}

const v1::Step* FindStep(const v1::Workflow& workflow, const std::string& name) {
  for (const v1::Step& step : workflow.steps()) {
    if (step.name() == name) return &step;
  }
  return nullptr;
}

class WorkflowServiceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dsn_ = testing::CreateTestDatabase("workflow_service");
    absl::StatusOr<int64_t> migrated = db::Migrator(dsn_, *db::EmbeddedMigrations("saga")).Up();
    ASSERT_TRUE(migrated.ok()) << migrated.status();
    pool_ = std::make_unique<db::ConnectionPool>(db::PoolOptions{.dsn = dsn_, .size = 16});
    store_ = std::make_unique<db::PgWorkflowStore>(pool_.get());

    EngineOptions options;
    options.workers = 4;
    options.poll_interval = absl::Milliseconds(50);
    options.lease = absl::Seconds(5);
    options.heartbeat_interval = absl::Seconds(1);
    options.listen_dsn = dsn_;
    options.on_settled = [this](absl::string_view id) { waiters_.Notify(id); };
    engine_ = std::make_unique<Engine>(store_.get(), options);
    ASSERT_TRUE(engine_->Register(ToyDefinition()).ok());
    ASSERT_TRUE(engine_->Register(OtherDefinition()).ok());
    ASSERT_TRUE(engine_->Start().ok());

    handler_ = std::make_unique<WorkflowServiceHandler>(
        store_.get(), [this] { engine_->Poke(); }, &waiters_,
        [this](const std::string& id) { return engine_->IsRunning(id); });
    server_ =
        std::make_unique<testing::GrpcTestServer>(std::vector<grpc::Service*>{handler_.get()});
    stub_ = v1::WorkflowService::NewStub(server_->Channel());
  }

  void TearDown() override {
    if (!gate_.HasBeenNotified()) gate_.Notify();
    stub_.reset();
    server_.reset();
    if (engine_) engine_->Stop(absl::Seconds(5));
  }

  // "Toy": step "reserve" (compensation "unreserve"), then per input letter: 'w' waits for the
  // signal "approve" (once per 'w'), then step "charge" records the payloads it got. Other
  // letters: 'g' holds "reserve" until gate_ opens; 'f' makes "charge" fail for good; 'r' makes
  // it fail transiently with a one-hour backoff.
  WorkflowDefinition ToyDefinition() {
    WorkflowDefinition def;
    def.type = "Toy";
    def.run = [this](WorkflowContext& ctx,
                     const std::string& input) -> absl::StatusOr<std::string> {
      StepOptions reserve;
      reserve.name = "reserve";
      reserve.retry = FastRetry(3);
      reserve.compensation = "unreserve";
      reserve.compensation_args = ctx.workflow_id();
      const bool gated = input.find('g') != std::string::npos;
      OP_ASSIGN_OR_RETURN(std::string reserved,
                          ctx.Step(reserve, [&](const StepCall&) -> absl::StatusOr<std::string> {
                            if (gated) gate_.WaitForNotificationWithTimeout(absl::Seconds(20));
                            return std::string("reserved");
                          }));
      std::vector<std::string> payloads;
      for (char c : input) {
        if (c != 'w') continue;
        OP_ASSIGN_OR_RETURN(std::string payload, ctx.WaitForSignal("approve", absl::Hours(1)));
        payloads.push_back(payload);
      }
      StepOptions charge;
      charge.name = "charge";
      charge.retry = FastRetry(3);
      if (input.find('r') != std::string::npos) {
        charge.retry.initial_interval = absl::Hours(1);
        charge.retry.maximum_interval = absl::Hours(1);
      }
      const std::string charged = absl::StrJoin(payloads, "+");
      auto do_charge = [&](const StepCall& call) -> absl::StatusOr<std::string> {
        if (input.find('f') != std::string::npos) {
          return absl::FailedPreconditionError("card declined");
        }
        if (input.find('r') != std::string::npos) return absl::UnavailableError("gateway timeout");
        absl::MutexLock lock(&mu_);
        charged_[call.workflow_id] = charged;
        return charged;
      };
      OP_RETURN_IF_ERROR(ctx.Step(charge, do_charge).status());
      return reserved;
    };
    def.compensations["unreserve"] = [this](const CompensationCall& call) -> absl::Status {
      if (unreserve_broken_.load()) return absl::UnavailableError("warehouse offline");
      absl::MutexLock lock(&mu_);
      unreserved_[call.args]++;
      return absl::OkStatus();
    };
    def.compensation_retry = FastRetry(0);
    def.compensation_max_attempts = 3;
    return def;
  }

  // "Other": one step, completes at once.
  static WorkflowDefinition OtherDefinition() {
    WorkflowDefinition def;
    def.type = "Other";
    def.run = [](WorkflowContext& ctx, const std::string&) -> absl::StatusOr<std::string> {
      StepOptions noop;
      noop.name = "noop";
      return ctx.Step(noop, [](const StepCall&) -> absl::StatusOr<std::string> { return "ok"; });
    };
    return def;
  }

  void StartWorkflow(const std::string& id, const std::string& input,
                     const std::string& type = "Toy") {
    absl::StatusOr<bool> started = engine_->StartWorkflow({type, id, "key-" + id, input});
    ASSERT_TRUE(started.ok()) << started.status();
    ASSERT_TRUE(*started);
  }

  grpc::Status Get(const std::string& id, v1::Workflow* out) {
    v1::GetWorkflowRequest request;
    request.set_workflow_id(id);
    return stub_->GetWorkflow(ContextWithDeadline().get(), request, out);
  }
  // WaitWorkflow with `timeout` (none: the server's default) and a call deadline of
  // `deadline_seconds`; `*took` is how long the call took.
  grpc::Status Wait(const std::string& id, std::optional<absl::Duration> timeout, v1::Workflow* out,
                    absl::Duration* took = nullptr, int deadline_seconds = 10,
                    v1::WorkflowService::Stub* stub = nullptr) {
    v1::WaitWorkflowRequest request;
    request.set_workflow_id(id);
    if (timeout) {
      *request.mutable_timeout() = google::protobuf::util::TimeUtil::NanosecondsToDuration(
          absl::ToInt64Nanoseconds(*timeout));
    }
    const absl::Time start = absl::Now();
    grpc::Status status = (stub != nullptr ? stub : stub_.get())
                              ->WaitWorkflow(ContextWithDeadline(deadline_seconds).get(), request, out);
    if (took != nullptr) *took = absl::Now() - start;
    return status;
  }
  grpc::Status List(const v1::ListWorkflowsRequest& request, v1::ListWorkflowsResponse* out) {
    return stub_->ListWorkflows(ContextWithDeadline().get(), request, out);
  }
  grpc::Status Cancel(const std::string& id, const std::string& reason, v1::Workflow* out,
                      const std::string& request_id = "cancel-1") {
    v1::CancelWorkflowRequest request;
    request.set_request_id(request_id);
    request.set_workflow_id(id);
    request.set_reason(reason);
    return stub_->CancelWorkflow(ContextWithDeadline().get(), request, out);
  }
  grpc::Status Signal(const std::string& id, const std::string& payload, v1::Workflow* out,
                      const std::string& request_id = "signal-1",
                      const std::string& name = "approve") {
    v1::SignalWorkflowRequest request;
    request.set_request_id(request_id);
    request.set_workflow_id(id);
    request.set_signal_name(name);
    request.set_payload(payload);
    return stub_->SignalWorkflow(ContextWithDeadline().get(), request, out);
  }
  grpc::Status Retry(const std::string& id, v1::Workflow* out,
                     const std::string& request_id = "retry-1") {
    v1::RetryWorkflowRequest request;
    request.set_request_id(request_id);
    request.set_workflow_id(id);
    return stub_->RetryWorkflow(ContextWithDeadline().get(), request, out);
  }

  // Polls GetWorkflow until `done` holds; fails the test (and returns the last read) on timeout.
  v1::Workflow AwaitWorkflow(const std::string& id,
                             const std::function<bool(const v1::Workflow&)>& done,
                             const std::string& what, absl::Duration timeout = absl::Seconds(20)) {
    const absl::Time give_up = absl::Now() + timeout;
    v1::Workflow workflow;
    while (absl::Now() < give_up) {
      workflow.Clear();
      if (Get(id, &workflow).ok() && done(workflow)) return workflow;
      absl::SleepFor(absl::Milliseconds(20));
    }
    ADD_FAILURE() << "workflow " << id << " never became " << what << "; last seen "
                  << workflow.ShortDebugString();
    return workflow;
  }
  v1::Workflow AwaitStatus(const std::string& id, v1::WorkflowStatus status) {
    return AwaitWorkflow(
        id, [status](const v1::Workflow& w) { return w.status() == status; },
        v1::WorkflowStatus_Name(status));
  }
  // Parked on its signal wait.
  v1::Workflow AwaitWaitingForSignal(const std::string& id) {
    return AwaitWorkflow(
        id,
        [](const v1::Workflow& w) {
          return w.status() == v1::WORKFLOW_STATUS_WAITING && FindStep(w, "signal:approve");
        },
        "waiting for its signal");
  }

  // Lists every page of `request` (page by page, page_size as given) and returns the ids in order.
  std::vector<std::string> ListAll(v1::ListWorkflowsRequest request, int* pages = nullptr) {
    std::vector<std::string> ids;
    int count = 0;
    do {
      v1::ListWorkflowsResponse response;
      grpc::Status status = List(request, &response);
      EXPECT_TRUE(status.ok()) << status.error_message();
      if (!status.ok()) break;
      for (const v1::Workflow& w : response.workflows()) ids.push_back(w.workflow_id());
      request.set_page_token(response.next_page_token());
      ++count;
    } while (!request.page_token().empty() && count < 100);
    if (pages != nullptr) *pages = count;
    return ids;
  }

  std::string Charged(const std::string& id) {
    absl::MutexLock lock(&mu_);
    return charged_.count(id) ? charged_[id] : "<not charged>";
  }
  int Unreserved(const std::string& id) {
    absl::MutexLock lock(&mu_);
    return unreserved_[id];
  }

  // Expects `status` to be INVALID_ARGUMENT naming `field`.
  static void ExpectInvalidField(const grpc::Status& status, const std::string& field) {
    EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << status.error_message();
    EXPECT_EQ(status.error_message().rfind(field + ":", 0), 0u)
        << "message should start with the field: " << status.error_message();
  }

  // Declared before the engine, so they outlive its workers.
  absl::Mutex mu_;
  std::map<std::string, std::string> charged_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, int> unreserved_ ABSL_GUARDED_BY(mu_);
  std::atomic<bool> unreserve_broken_{false};
  absl::Notification gate_;

  WorkflowWaiters waiters_;

  std::string dsn_;
  std::unique_ptr<db::ConnectionPool> pool_;
  std::unique_ptr<db::PgWorkflowStore> store_;
  std::unique_ptr<Engine> engine_;
  std::unique_ptr<WorkflowServiceHandler> handler_;
  std::unique_ptr<testing::GrpcTestServer> server_;
  std::unique_ptr<v1::WorkflowService::Stub> stub_;
};

TEST_F(WorkflowServiceTest, GetWorkflowReturnsCompletedWorkflowWithStepHistory) {
  StartWorkflow("wf-get", "");
  const v1::Workflow w = AwaitStatus("wf-get", v1::WORKFLOW_STATUS_COMPLETED);
  EXPECT_EQ(w.workflow_id(), "wf-get");
  EXPECT_EQ(w.workflow_type(), "Toy");
  EXPECT_EQ(w.business_key(), "key-wf-get");
  EXPECT_EQ(w.status_reason(), "");
  ASSERT_EQ(w.steps_size(), 2);
  const std::vector<std::string> names = {"reserve", "charge"};
  for (int i = 0; i < 2; ++i) {
    const v1::Step& step = w.steps(i);
    EXPECT_EQ(step.sequence(), i + 1);
    EXPECT_EQ(step.name(), names[i]);
    EXPECT_EQ(step.kind(), v1::STEP_KIND_FORWARD);
    EXPECT_EQ(step.status(), v1::STEP_STATUS_SUCCEEDED);
    EXPECT_EQ(step.attempts(), 1);
    EXPECT_EQ(step.last_error(), "");
    EXPECT_TRUE(step.has_start_time());
    ASSERT_TRUE(step.has_end_time());
    EXPECT_GE(ToTime(step.end_time()), ToTime(step.start_time()));
    EXPECT_FALSE(step.has_next_attempt_time());
  }
  ASSERT_TRUE(w.has_start_time() && w.has_end_time() && w.has_update_time());
  EXPECT_EQ(ToDuration(w.duration()), ToTime(w.end_time()) - ToTime(w.start_time()));

  // A finished workflow's duration does not grow.
  absl::SleepFor(absl::Milliseconds(50));
  v1::Workflow again;
  ASSERT_TRUE(Get("wf-get", &again).ok());
  EXPECT_EQ(ToDuration(again.duration()), ToDuration(w.duration()));
}

TEST_F(WorkflowServiceTest, GetWorkflowShowsScheduledRetryWithLastError) {
  StartWorkflow("wf-retrying", "r");
  const v1::Workflow w = AwaitWorkflow(
      "wf-retrying",
      [](const v1::Workflow& w) {
        const v1::Step* charge = FindStep(w, "charge");
        return charge != nullptr && charge->status() == v1::STEP_STATUS_RETRY_SCHEDULED;
      },
      "retry-scheduled on charge");
  EXPECT_EQ(w.status(), v1::WORKFLOW_STATUS_WAITING);
  const v1::Step* charge = FindStep(w, "charge");
  ASSERT_NE(charge, nullptr);
  EXPECT_EQ(charge->attempts(), 1);
  EXPECT_EQ(charge->last_error(), "gateway timeout");
  EXPECT_FALSE(charge->has_end_time());
  ASSERT_TRUE(charge->has_next_attempt_time());
  EXPECT_GT(ToTime(charge->next_attempt_time()), absl::Now() + absl::Minutes(30));
  // Running: no end time, and the duration counts up to now.
  EXPECT_FALSE(w.has_end_time());
  EXPECT_GT(ToDuration(w.duration()), absl::ZeroDuration());
  EXPECT_LE(ToDuration(w.duration()), absl::Now() - ToTime(w.start_time()) + absl::Seconds(1));
}

TEST_F(WorkflowServiceTest, UnknownWorkflowIsNotFoundForEveryMethod) {
  v1::Workflow w;
  EXPECT_EQ(Get("wf-nope", &w).error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(Cancel("wf-nope", "why", &w).error_code(), grpc::StatusCode::NOT_FOUND);
  // The largest payload allowed passes validation.
  EXPECT_EQ(Signal("wf-nope", std::string(64 * 1024, 'x'), &w).error_code(),
            grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(Retry("wf-nope", &w).error_code(), grpc::StatusCode::NOT_FOUND);
}

TEST_F(WorkflowServiceTest, WaitWorkflowReturnsTheSettledWorkflowWithItsSteps) {
  StartWorkflow("wf-wait", "g");  // Held in "reserve" until the gate opens.
  std::thread opener([this] {
    absl::SleepFor(absl::Milliseconds(300));
    gate_.Notify();
  });
  v1::Workflow w;
  absl::Duration took;
  const grpc::Status status = Wait("wf-wait", absl::Seconds(20), &w, &took);
  opener.join();
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(w.status(), v1::WORKFLOW_STATUS_COMPLETED);
  ASSERT_EQ(w.steps_size(), 2);
  EXPECT_EQ(w.steps(0).name(), "reserve");
  EXPECT_EQ(w.steps(1).name(), "charge");
  EXPECT_TRUE(w.has_end_time());
  EXPECT_GE(took, absl::Milliseconds(250));  // It did wait for the end...
  EXPECT_LT(took, absl::Seconds(10));         // ...and not for the timeout.
  EXPECT_EQ(waiters_.waiting(), 0u);          // The call's waiter is gone.

  // Already settled: answered at once, the same workflow.
  v1::Workflow again;
  ASSERT_TRUE(Wait("wf-wait", absl::Seconds(20), &again, &took).ok());
  EXPECT_EQ(again.status(), v1::WORKFLOW_STATUS_COMPLETED);
  EXPECT_EQ(again.steps_size(), 2);
  EXPECT_LT(took, absl::Seconds(5));
}

TEST_F(WorkflowServiceTest, WaitWorkflowReturnsNeedsAttentionAsSettled) {
  unreserve_broken_ = true;
  StartWorkflow("wf-wait-attention", "f");  // "charge" fails; "unreserve" never succeeds.
  v1::Workflow w;
  ASSERT_TRUE(Wait("wf-wait-attention", absl::Seconds(20), &w).ok());
  EXPECT_EQ(w.status(), v1::WORKFLOW_STATUS_NEEDS_ATTENTION);
}

TEST_F(WorkflowServiceTest, WaitWorkflowAnswersWithTheRunningWorkflowWhenItsTimeoutPasses) {
  StartWorkflow("wf-wait-timeout", "r");  // "charge" retries in an hour.
  AwaitWorkflow(
      "wf-wait-timeout",
      [](const v1::Workflow& w) { return FindStep(w, "charge") != nullptr; }, "charging");
  v1::Workflow w;
  absl::Duration took;
  const grpc::Status status = Wait("wf-wait-timeout", absl::Milliseconds(300), &w, &took);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(w.status(), v1::WORKFLOW_STATUS_WAITING);
  EXPECT_NE(FindStep(w, "charge"), nullptr);  // With its step history.
  EXPECT_GE(took, absl::Milliseconds(300));
  EXPECT_LT(took, absl::Seconds(5));

  // The default timeout (30 s) is cut short by the call's own deadline, and the answer still
  // arrives before it: OK, not DEADLINE_EXCEEDED.
  v1::Workflow cut;
  const grpc::Status before_deadline =
      Wait("wf-wait-timeout", std::nullopt, &cut, &took, /*deadline_seconds=*/1);
  ASSERT_TRUE(before_deadline.ok()) << before_deadline.error_message();
  EXPECT_EQ(cut.status(), v1::WORKFLOW_STATUS_WAITING);
  EXPECT_LT(took, absl::Seconds(1));
  EXPECT_GE(took, absl::Milliseconds(500));
}

// A workflow another process settles is not announced here: the waiter finds it by re-reading.
TEST_F(WorkflowServiceTest, WaitWorkflowWithoutAnnouncementsFindsTheEndByReReading) {
  WorkflowServiceHandler unannounced(store_.get());
  testing::GrpcTestServer other({&unannounced});
  std::unique_ptr<v1::WorkflowService::Stub> other_stub =
      v1::WorkflowService::NewStub(other.Channel());
  StartWorkflow("wf-wait-elsewhere", "g");
  std::thread opener([this] {
    absl::SleepFor(absl::Milliseconds(200));
    gate_.Notify();
  });
  v1::Workflow w;
  absl::Duration took;
  const grpc::Status status =
      Wait("wf-wait-elsewhere", absl::Seconds(20), &w, &took, 10, other_stub.get());
  opener.join();
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(w.status(), v1::WORKFLOW_STATUS_COMPLETED);
  EXPECT_LT(took, absl::Seconds(10));
}

TEST_F(WorkflowServiceTest, WaitWorkflowBeyondTheServersLimitIsResourceExhausted) {
  WorkflowWaiters one(/*max_waiters=*/1);  // This server lets one call wait at a time.
  WorkflowServiceHandler limited(store_.get(), nullptr, &one);
  testing::GrpcTestServer other({&limited});
  std::unique_ptr<v1::WorkflowService::Stub> other_stub =
      v1::WorkflowService::NewStub(other.Channel());
  StartWorkflow("wf-wait-limited", "g");  // Held in "reserve" until the gate opens.
  v1::Workflow first;
  grpc::Status first_status;
  std::thread waiting([&] {
    first_status =
        Wait("wf-wait-limited", absl::Seconds(20), &first, nullptr, 25, other_stub.get());
  });
  const absl::Time give_up = absl::Now() + absl::Seconds(10);
  while (one.waiting() == 0 && absl::Now() < give_up) absl::SleepFor(absl::Milliseconds(5));
  ASSERT_EQ(one.waiting(), 1u);

  v1::Workflow second;
  absl::Duration took;
  const grpc::Status refused =
      Wait("wf-wait-limited", absl::Seconds(20), &second, &took, 10, other_stub.get());
  EXPECT_EQ(refused.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << refused.error_message();
  EXPECT_LT(took, absl::Seconds(5));  // Refused at once, not after a wait.

  gate_.Notify();
  waiting.join();
  ASSERT_TRUE(first_status.ok()) << first_status.error_message();
  EXPECT_EQ(first.status(), v1::WORKFLOW_STATUS_COMPLETED);
  // The first wait is over: the next call is admitted.
  v1::Workflow third;
  ASSERT_TRUE(
      Wait("wf-wait-limited", absl::Seconds(20), &third, nullptr, 10, other_stub.get()).ok());
  EXPECT_EQ(third.status(), v1::WORKFLOW_STATUS_COMPLETED);
  EXPECT_EQ(one.waiting(), 0u);
}

// The local engine's word that it runs a workflow saves the first read; should the workflow have
// settled before the waiter registered (so no announcement reaches it), the re-read finds it.
TEST_F(WorkflowServiceTest, WaitWorkflowSkippingTheFirstReadStillFindsAnEndItMissed) {
  StartWorkflow("wf-wait-missed", "a");
  v1::Workflow done;
  ASSERT_TRUE(Wait("wf-wait-missed", absl::Seconds(20), &done).ok());
  ASSERT_EQ(done.status(), v1::WORKFLOW_STATUS_COMPLETED);

  WorkflowWaiters unannounced;
  WorkflowServiceHandler claims_to_run(store_.get(), nullptr, &unannounced,
                                       [](const std::string&) { return true; });
  testing::GrpcTestServer other({&claims_to_run});
  std::unique_ptr<v1::WorkflowService::Stub> other_stub =
      v1::WorkflowService::NewStub(other.Channel());
  v1::Workflow w;
  absl::Duration took;
  ASSERT_TRUE(Wait("wf-wait-missed", absl::Seconds(20), &w, &took, 25, other_stub.get()).ok());
  EXPECT_EQ(w.status(), v1::WORKFLOW_STATUS_COMPLETED);
  EXPECT_EQ(w.steps_size(), done.steps_size());
  EXPECT_LT(took, absl::Seconds(5));  // Found by the first re-read (200 ms), not the timeout.
}

// Calls made with the async client API: each callback records its call's outcome in state it
// shares, so a callback that comes after the test gave up (a failed assertion returns early)
// touches nothing freed; the server's shutdown at TearDown ends whatever still waits.
struct AsyncWaits {
  struct Call {
    grpc::ClientContext context;
    v1::Workflow response;
    grpc::Status status;
  };
  absl::Mutex mu;
  std::vector<std::unique_ptr<Call>> calls;  // Filled before any call starts.
  int answered ABSL_GUARDED_BY(mu) = 0;

  // Starts `n` WaitWorkflow calls for `id` with a 60 s timeout.
  static std::shared_ptr<AsyncWaits> Start(v1::WorkflowService::Stub* stub, const std::string& id,
                                           int n) {
    auto waits = std::make_shared<AsyncWaits>();
    for (int i = 0; i < n; ++i) waits->calls.push_back(std::make_unique<Call>());
    auto request = std::make_shared<v1::WaitWorkflowRequest>();
    request->set_workflow_id(id);
    request->mutable_timeout()->set_seconds(60);
    for (const std::unique_ptr<Call>& call : waits->calls) {
      Call* c = call.get();
      c->context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(90));
      stub->async()->WaitWorkflow(&c->context, request.get(), &c->response,
                                  [waits, request, c](grpc::Status status) {
                                    absl::MutexLock lock(&waits->mu);
                                    c->status = std::move(status);
                                    ++waits->answered;
                                  });
    }
    return waits;
  }
  int Answered() {
    absl::MutexLock lock(&mu);
    return answered;
  }
  bool AwaitAll(absl::Duration timeout) {
    absl::MutexLock lock(&mu);
    auto all = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
      return answered == static_cast<int>(calls.size());
    };
    return mu.AwaitWithTimeout(absl::Condition(&all), timeout);
  }
};

// Threads of this process (the test's client, the server, the engine and gRPC's own).
size_t ThreadCount() {
  size_t n = 0;
  for (const auto& entry : std::filesystem::directory_iterator("/proc/self/task")) {
    (void)entry;
    ++n;
  }
  return n;
}

// Long polls hold no thread: 300 calls waiting at once (sent with the async client API, so the
// client holds none either) add a handful of threads, not one each (with the synchronous
// server API this test saw 319 threads against 57 before); all are answered when the workflow
// ends.
TEST_F(WorkflowServiceTest, ManyWaitsAtOnceHoldNoThreadEach) {
  constexpr int kWaits = 300;
  StartWorkflow("wf-wait-many", "g");  // Held in "reserve" until the gate opens.
  const size_t threads_before = ThreadCount();
  std::shared_ptr<AsyncWaits> waits = AsyncWaits::Start(stub_.get(), "wf-wait-many", kWaits);
  const absl::Time give_up = absl::Now() + absl::Seconds(15);
  while (waiters_.waiting() < kWaits && absl::Now() < give_up) {
    absl::SleepFor(absl::Milliseconds(10));
  }
  ASSERT_EQ(waiters_.waiting(), static_cast<size_t>(kWaits));
  const size_t threads_waiting = ThreadCount();
  EXPECT_LT(threads_waiting, threads_before + 40)
      << threads_before << " threads before the calls, " << threads_waiting << " while they wait";
  EXPECT_EQ(waits->Answered(), 0);  // All still waiting.

  gate_.Notify();
  ASSERT_TRUE(waits->AwaitAll(absl::Seconds(60)));
  for (const auto& call : waits->calls) {
    ASSERT_TRUE(call->status.ok()) << call->status.error_message();
    EXPECT_EQ(call->response.status(), v1::WORKFLOW_STATUS_COMPLETED);
    EXPECT_EQ(call->response.steps_size(), 2);
  }
  EXPECT_EQ(waiters_.waiting(), 0u);
}

// A caller that gives up ends its wait on the server at once: its watch is gone long before the
// wait's 60 s timeout (the CANCELLED the client sees is its own doing; the watch is the server's).
TEST_F(WorkflowServiceTest, ACancelledWaitEndsAtOnce) {
  StartWorkflow("wf-wait-cancel", "g");  // Held in "reserve" until the gate opens.
  std::shared_ptr<AsyncWaits> waits = AsyncWaits::Start(stub_.get(), "wf-wait-cancel", 1);
  const absl::Time give_up = absl::Now() + absl::Seconds(10);
  while (waiters_.waiting() == 0 && absl::Now() < give_up) absl::SleepFor(absl::Milliseconds(5));
  ASSERT_EQ(waiters_.waiting(), 1u);
  waits->calls[0]->context.TryCancel();
  ASSERT_TRUE(waits->AwaitAll(absl::Seconds(10)));
  EXPECT_EQ(waits->calls[0]->status.error_code(), grpc::StatusCode::CANCELLED);
  const absl::Time gone_by = absl::Now() + absl::Seconds(5);
  while (waiters_.waiting() > 0 && absl::Now() < gone_by) absl::SleepFor(absl::Milliseconds(5));
  EXPECT_EQ(waiters_.waiting(), 0u);
}

// At shutdown (the registry closed) every wait answers at once with the workflow as it is, and
// so does a wait that starts after the close.
TEST_F(WorkflowServiceTest, ClosingTheWaitersAnswersEveryWaitAtOnce) {
  StartWorkflow("wf-wait-close", "g");  // Held in "reserve" until the gate opens.
  std::shared_ptr<AsyncWaits> waits = AsyncWaits::Start(stub_.get(), "wf-wait-close", 3);
  const absl::Time give_up = absl::Now() + absl::Seconds(10);
  while (waiters_.waiting() < 3 && absl::Now() < give_up) absl::SleepFor(absl::Milliseconds(5));
  ASSERT_EQ(waiters_.waiting(), 3u);
  const absl::Time closed_at = absl::Now();
  waiters_.Close();
  ASSERT_TRUE(waits->AwaitAll(absl::Seconds(30)));
  EXPECT_LT(absl::Now() - closed_at, absl::Seconds(10));
  for (const auto& call : waits->calls) {
    ASSERT_TRUE(call->status.ok()) << call->status.error_message();
    EXPECT_EQ(call->response.status(), v1::WORKFLOW_STATUS_RUNNING);  // As it is: still held.
  }
  v1::Workflow later;
  absl::Duration took;
  ASSERT_TRUE(Wait("wf-wait-close", absl::Seconds(60), &later, &took, 90).ok());
  EXPECT_LT(took, absl::Seconds(5));
}

TEST_F(WorkflowServiceTest, WaitWorkflowRejectsBadInput) {
  v1::Workflow w;
  EXPECT_EQ(Wait("wf-nope", absl::Seconds(1), &w).error_code(), grpc::StatusCode::NOT_FOUND);
  ExpectInvalidField(Wait("", absl::Seconds(1), &w), "workflow_id");
  ExpectInvalidField(Wait("wf x", absl::Seconds(1), &w), "workflow_id");
  ExpectInvalidField(Wait("wf-x", absl::Minutes(6), &w), "timeout");
  ExpectInvalidField(Wait("wf-x", absl::Microseconds(10), &w), "timeout");
  ExpectInvalidField(Wait("wf-x", absl::ZeroDuration(), &w), "timeout");
  v1::WaitWorkflowRequest negative;
  negative.set_workflow_id("wf-x");
  negative.mutable_timeout()->set_seconds(-1);
  ExpectInvalidField(stub_->WaitWorkflow(ContextWithDeadline().get(), negative, &w), "timeout");
  v1::WaitWorkflowRequest bad_nanos;
  bad_nanos.set_workflow_id("wf-x");
  bad_nanos.mutable_timeout()->set_nanos(1000000000);
  ExpectInvalidField(stub_->WaitWorkflow(ContextWithDeadline().get(), bad_nanos, &w), "timeout");
}

TEST_F(WorkflowServiceTest, ListWorkflowsFiltersByTypeStatusAndStartTime) {
  std::vector<std::string> toys;
  for (int i = 0; i < 5; ++i) {
    toys.push_back(absl::StrCat("wf-toy-", i));
    StartWorkflow(toys.back(), "");
  }
  StartWorkflow("wf-other-0", "", "Other");
  StartWorkflow("wf-other-1", "", "Other");
  StartWorkflow("wf-toy-waiting", "w");
  for (const std::string& id : toys) AwaitStatus(id, v1::WORKFLOW_STATUS_COMPLETED);
  AwaitStatus("wf-other-0", v1::WORKFLOW_STATUS_COMPLETED);
  AwaitStatus("wf-other-1", v1::WORKFLOW_STATUS_COMPLETED);
  AwaitWaitingForSignal("wf-toy-waiting");

  v1::ListWorkflowsRequest request;
  v1::ListWorkflowsResponse all;
  ASSERT_TRUE(List(request, &all).ok());  // page_size 0: 50.
  EXPECT_EQ(all.workflows_size(), 8);
  EXPECT_EQ(all.next_page_token(), "");
  // Newest first; list entries carry no step history.
  for (int i = 1; i < all.workflows_size(); ++i) {
    EXPECT_GE(ToTime(all.workflows(i - 1).start_time()), ToTime(all.workflows(i).start_time()));
  }
  EXPECT_EQ(all.workflows(0).workflow_id(), "wf-toy-waiting");
  EXPECT_EQ(all.workflows(0).steps_size(), 0);

  request.set_workflow_type("Toy");
  request.set_status(v1::WORKFLOW_STATUS_COMPLETED);
  std::vector<std::string> completed_toys = ListAll(request);
  std::vector<std::string> expected(toys.rbegin(), toys.rend());
  EXPECT_EQ(completed_toys, expected);

  request.set_status(v1::WORKFLOW_STATUS_WAITING);
  EXPECT_EQ(ListAll(request), std::vector<std::string>{"wf-toy-waiting"});

  request.Clear();
  request.set_workflow_type("Other");
  EXPECT_EQ(ListAll(request), (std::vector<std::string>{"wf-other-1", "wf-other-0"}));

  // start_time_from is inclusive, start_time_to exclusive.
  v1::Workflow pivot;
  ASSERT_TRUE(Get("wf-toy-2", &pivot).ok());
  request.Clear();
  request.set_workflow_type("Toy");
  *request.mutable_start_time_from() = pivot.start_time();
  EXPECT_EQ(ListAll(request),
            (std::vector<std::string>{"wf-toy-waiting", "wf-toy-4", "wf-toy-3", "wf-toy-2"}));
  request.clear_start_time_from();
  *request.mutable_start_time_to() = pivot.start_time();
  EXPECT_EQ(ListAll(request), (std::vector<std::string>{"wf-toy-1", "wf-toy-0"}));
  *request.mutable_start_time_from() = pivot.start_time();
  EXPECT_TRUE(ListAll(request).empty());  // An empty range is allowed.
}

TEST_F(WorkflowServiceTest, ListWorkflowsPagesThroughEveryWorkflowOnce) {
  std::vector<std::string> ids;
  for (int i = 0; i < 7; ++i) {
    ids.push_back(absl::StrCat("wf-page-", i));
    StartWorkflow(ids.back(), "");
  }
  for (const std::string& id : ids) AwaitStatus(id, v1::WORKFLOW_STATUS_COMPLETED);

  v1::ListWorkflowsRequest request;
  request.set_page_size(3);
  int pages = 0;
  const std::vector<std::string> listed = ListAll(request, &pages);
  EXPECT_EQ(pages, 3);  // 3 + 3 + 1.
  EXPECT_EQ(listed, std::vector<std::string>(ids.rbegin(), ids.rend()));

  // A token is bound to its filters, and must be one the service issued.
  v1::ListWorkflowsResponse first;
  ASSERT_TRUE(List(request, &first).ok());
  ASSERT_FALSE(first.next_page_token().empty());
  v1::ListWorkflowsRequest other_filter = request;
  other_filter.set_page_token(first.next_page_token());
  other_filter.set_status(v1::WORKFLOW_STATUS_COMPLETED);
  v1::ListWorkflowsResponse response;
  ExpectInvalidField(List(other_filter, &response), "page_token");
  other_filter.set_status(v1::WORKFLOW_STATUS_UNSPECIFIED);
  other_filter.set_workflow_type("Other");
  ExpectInvalidField(List(other_filter, &response), "page_token");

  v1::ListWorkflowsRequest garbage = request;
  garbage.set_page_token("not-a-page-token");
  ExpectInvalidField(List(garbage, &response), "page_token");
  garbage.set_page_token(first.next_page_token().substr(0, first.next_page_token().size() - 2));
  ExpectInvalidField(List(garbage, &response), "page_token");

  // The same token with the same filters and another page size is fine.
  v1::ListWorkflowsRequest bigger = request;
  bigger.set_page_size(100);
  bigger.set_page_token(first.next_page_token());
  ASSERT_TRUE(List(bigger, &response).ok());
  EXPECT_EQ(response.workflows_size(), 4);
}

TEST_F(WorkflowServiceTest, CancelWaitingWorkflowEndsCancelledAfterCompensating) {
  StartWorkflow("wf-cancel", "w");
  AwaitWaitingForSignal("wf-cancel");

  v1::Workflow after;
  grpc::Status status = Cancel("wf-cancel", "customer changed their mind", &after);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(after.workflow_id(), "wf-cancel");
  EXPECT_GT(after.steps_size(), 0);
  // Either still pending ("cancel requested: ...") or already done ("cancelled: ...").
  EXPECT_THAT(after.status_reason(), HasSubstr("customer changed their mind"));

  const v1::Workflow w = AwaitStatus("wf-cancel", v1::WORKFLOW_STATUS_CANCELLED);
  EXPECT_EQ(w.status_reason(), "customer changed their mind");
  EXPECT_TRUE(w.has_end_time());
  const v1::Step* undo = FindStep(w, "compensate:reserve");
  ASSERT_NE(undo, nullptr) << w.ShortDebugString();
  EXPECT_EQ(undo->kind(), v1::STEP_KIND_COMPENSATION);
  EXPECT_EQ(undo->status(), v1::STEP_STATUS_SUCCEEDED);
  EXPECT_EQ(Unreserved("wf-cancel"), 1);
  EXPECT_EQ(Charged("wf-cancel"), "<not charged>");

  // Cancelling again once it is over is refused.
  v1::Workflow again;
  EXPECT_EQ(Cancel("wf-cancel", "again", &again, "cancel-2").error_code(),
            grpc::StatusCode::FAILED_PRECONDITION);
}

TEST_F(WorkflowServiceTest, ActionsOnFinishedWorkflowAreFailedPrecondition) {
  StartWorkflow("wf-done", "");
  AwaitStatus("wf-done", v1::WORKFLOW_STATUS_COMPLETED);
  v1::Workflow w;
  grpc::Status cancel = Cancel("wf-done", "too late", &w);
  EXPECT_EQ(cancel.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_THAT(cancel.error_message(), HasSubstr("completed"));
  EXPECT_EQ(Signal("wf-done", "x", &w).error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_EQ(Retry("wf-done", &w).error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_EQ(Unreserved("wf-done"), 0);
}

TEST_F(WorkflowServiceTest, SignalDeliversPayloadToWaitingWorkflow) {
  StartWorkflow("wf-signal", "w");
  AwaitWaitingForSignal("wf-signal");

  v1::Workflow after;
  grpc::Status status = Signal("wf-signal", "approved-by-ops", &after);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(after.workflow_id(), "wf-signal");

  const v1::Workflow w = AwaitStatus("wf-signal", v1::WORKFLOW_STATUS_COMPLETED);
  EXPECT_EQ(Charged("wf-signal"), "approved-by-ops");
  const v1::Step* wait = FindStep(w, "signal:approve");
  ASSERT_NE(wait, nullptr);
  EXPECT_EQ(wait->kind(), v1::STEP_KIND_SIGNAL);
  EXPECT_EQ(wait->status(), v1::STEP_STATUS_SUCCEEDED);
}

TEST_F(WorkflowServiceTest, SignalSentBeforeTheWaitIsKept) {
  StartWorkflow("wf-early", "gw");  // Held in "reserve" until the gate opens.
  v1::Workflow after;
  grpc::Status status = Signal("wf-early", "early-bird", &after);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(FindStep(after, "signal:approve"), nullptr);  // Not waiting yet.
  gate_.Notify();

  AwaitStatus("wf-early", v1::WORKFLOW_STATUS_COMPLETED);
  EXPECT_EQ(Charged("wf-early"), "early-bird");
}

TEST_F(WorkflowServiceTest, SignalsWithTheSameRequestIdAreDeliveredOnce) {
  StartWorkflow("wf-dedupe", "gww");  // Waits for "approve" twice, after the gate.
  v1::Workflow after;
  ASSERT_TRUE(Signal("wf-dedupe", "A", &after, "sig-1").ok());
  ASSERT_TRUE(Signal("wf-dedupe", "B", &after, "sig-1").ok());  // A retry of the first: dropped.
  ASSERT_TRUE(Signal("wf-dedupe", "C", &after, "sig-2").ok());
  gate_.Notify();

  AwaitStatus("wf-dedupe", v1::WORKFLOW_STATUS_COMPLETED);
  EXPECT_EQ(Charged("wf-dedupe"), "A+C");
}

TEST_F(WorkflowServiceTest, RetryNeedsAttentionWorkflowRunsTheGivenUpCompensationAgain) {
  unreserve_broken_ = true;
  StartWorkflow("wf-stuck", "f");
  const v1::Workflow stuck = AwaitStatus("wf-stuck", v1::WORKFLOW_STATUS_NEEDS_ATTENTION);
  EXPECT_THAT(stuck.status_reason(), HasSubstr("warehouse offline"));
  EXPECT_FALSE(stuck.has_end_time());
  const v1::Step* charge = FindStep(stuck, "charge");
  ASSERT_NE(charge, nullptr);
  EXPECT_EQ(charge->status(), v1::STEP_STATUS_FAILED);
  EXPECT_EQ(charge->last_error(), "card declined");
  const v1::Step* undo = FindStep(stuck, "compensate:reserve");
  ASSERT_NE(undo, nullptr);
  EXPECT_EQ(undo->status(), v1::STEP_STATUS_FAILED);
  EXPECT_EQ(undo->attempts(), 3);
  EXPECT_EQ(undo->last_error(), "warehouse offline");

  unreserve_broken_ = false;  // The operator fixed the warehouse.
  v1::Workflow after;
  grpc::Status status = Retry("wf-stuck", &after);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_NE(after.status(), v1::WORKFLOW_STATUS_NEEDS_ATTENTION);

  const v1::Workflow w = AwaitStatus("wf-stuck", v1::WORKFLOW_STATUS_COMPENSATED);
  EXPECT_TRUE(w.has_end_time());
  undo = FindStep(w, "compensate:reserve");
  ASSERT_NE(undo, nullptr);
  EXPECT_EQ(undo->status(), v1::STEP_STATUS_SUCCEEDED);
  EXPECT_EQ(Unreserved("wf-stuck"), 1);

  // The operator's tool retries the call, its answer having been lost: the same request id is
  // answered with the workflow as it is now; another request id is refused.
  v1::Workflow repeated;
  status = Retry("wf-stuck", &repeated);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(repeated.status(), v1::WORKFLOW_STATUS_COMPENSATED);
  EXPECT_EQ(Unreserved("wf-stuck"), 1);
  EXPECT_EQ(Retry("wf-stuck", &repeated, "retry-2").error_code(),
            grpc::StatusCode::FAILED_PRECONDITION);
}

TEST_F(WorkflowServiceTest, RetryOfRunningWorkflowIsFailedPrecondition) {
  StartWorkflow("wf-busy", "w");
  AwaitWaitingForSignal("wf-busy");
  v1::Workflow after;
  grpc::Status status = Retry("wf-busy", &after);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::FAILED_PRECONDITION) << status.error_message();
  v1::Workflow w;
  ASSERT_TRUE(Get("wf-busy", &w).ok());
  EXPECT_EQ(w.status(), v1::WORKFLOW_STATUS_WAITING);
}

TEST_F(WorkflowServiceTest, BadInputIsInvalidArgumentNamingTheField) {
  v1::Workflow w;
  ExpectInvalidField(Get("", &w), "workflow_id");
  ExpectInvalidField(Get("has space", &w), "workflow_id");
  ExpectInvalidField(Get(std::string(201, 'a'), &w), "workflow_id");

  ExpectInvalidField(Cancel("wf-x", "why", &w, ""), "request_id");
  ExpectInvalidField(Cancel("", "why", &w), "workflow_id");
  ExpectInvalidField(Cancel("wf-x", "bell\a", &w), "reason");
  ExpectInvalidField(Cancel("wf-x", std::string(501, 'r'), &w), "reason");

  ExpectInvalidField(Signal("wf-x", "p", &w, ""), "request_id");
  ExpectInvalidField(Signal("wf-x", "p", &w, "sig-1", ""), "signal_name");
  ExpectInvalidField(Signal("wf-x", "p", &w, "sig-1", "two words"), "signal_name");
  ExpectInvalidField(Signal("wf-x", "p", &w, "sig-1", std::string(65, 's')), "signal_name");
  ExpectInvalidField(Signal("wf-x", std::string(64 * 1024 + 1, 'x'), &w), "payload");

  ExpectInvalidField(Retry("wf-x", &w, ""), "request_id");
  ExpectInvalidField(Retry("wf-\n", &w), "workflow_id");

  v1::ListWorkflowsResponse response;
  v1::ListWorkflowsRequest list;
  list.set_page_size(1001);
  ExpectInvalidField(List(list, &response), "page_size");
  list.set_page_size(-1);
  ExpectInvalidField(List(list, &response), "page_size");
  list.Clear();
  list.set_status(static_cast<v1::WorkflowStatus>(99));
  ExpectInvalidField(List(list, &response), "status");
  list.Clear();
  list.set_workflow_type("Place Order");
  ExpectInvalidField(List(list, &response), "workflow_type");
  list.Clear();
  list.mutable_start_time_from()->set_seconds(2000);
  list.mutable_start_time_to()->set_seconds(1000);
  ExpectInvalidField(List(list, &response), "start_time_from");
  list.Clear();
  list.mutable_start_time_from()->set_nanos(-1);
  ExpectInvalidField(List(list, &response), "start_time_from");
  list.Clear();
  list.mutable_start_time_to()->set_seconds(int64_t{1} << 40);
  ExpectInvalidField(List(list, &response), "start_time_to");
}

}  // namespace
}  // namespace order_platform::saga
