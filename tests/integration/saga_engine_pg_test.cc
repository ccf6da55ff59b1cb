// The saga engine against PostgreSQL with toy workflows: replay, durable retries, compensation
// in reverse order, pivot, cancellation, signals, timers, idempotent start, operator retry,
// fencing of a stale worker, several engines sharing one schema, start-and-run (a workflow
// inserted under its starter's lease) and batched checkpoints (written with the next write).
#include <atomic>
#include <functional>
#include <map>
#include <optional>
#include <pqxx/pqxx>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "db/migrations.h"
#include "db/pg_workflow_store.h"
#include "db/pool.h"
#include "db/transaction.h"
#include "gtest/gtest.h"
#include "saga/engine.h"
#include "services/common/errors.h"
#include "tests/support/answer_dropping_proxy.h"
#include "tests/support/pg_stats.h"
#include "tests/support/test_postgres.h"

namespace order_platform::saga {
namespace {

// Counts how often each (workflow, step) effect ran, and the order compensations ran in.
struct Ledger {
  absl::Mutex mu;
  std::map<std::string, int> effects ABSL_GUARDED_BY(mu);
  std::vector<std::string> undo_order ABSL_GUARDED_BY(mu);
  std::map<std::string, int> failures_left ABSL_GUARDED_BY(mu);  // By step key.
  std::vector<FinishInfo> finished ABSL_GUARDED_BY(mu);

  void Record(const std::string& key) {
    absl::MutexLock lock(&mu);
    effects[key]++;
  }
  int Count(const std::string& key) {
    absl::MutexLock lock(&mu);
    return effects[key];
  }
  // Returns true (and decrements) while `key` still has failures configured.
  bool ShouldFail(const std::string& key) {
    absl::MutexLock lock(&mu);
    auto it = failures_left.find(key);
    if (it == failures_left.end() || it->second == 0) return false;
    if (it->second > 0) it->second--;
    return true;
  }
  void SetFailures(const std::string& key, int n) {
    absl::MutexLock lock(&mu);
    failures_left[key] = n;  // -1: forever.
  }
};

RetryPolicy FastRetry(int attempts = 5) {
  RetryPolicy policy;
  policy.initial_interval = absl::Milliseconds(20);
  policy.maximum_interval = absl::Milliseconds(100);
  policy.maximum_attempts = attempts;
  return policy;
}

class SagaEngineTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dsn_ = testing::CreateTestDatabase("saga_engine");
    absl::StatusOr<int64_t> migrated = db::Migrator(dsn_, *db::EmbeddedMigrations("saga")).Up();
    ASSERT_TRUE(migrated.ok()) << migrated.status();
    pool_ = std::make_unique<db::ConnectionPool>(db::PoolOptions{.dsn = dsn_, .size = 16});
    store_ = std::make_unique<db::PgWorkflowStore>(pool_.get());
  }
  void TearDown() override { engines_.clear(); }

  EngineOptions Options() {
    EngineOptions options;
    options.workers = 4;
    options.poll_interval = absl::Milliseconds(50);
    options.lease = absl::Seconds(5);
    options.heartbeat_interval = absl::Seconds(1);
    options.listen_dsn = dsn_;
    return options;
  }

  // A workflow "Toy" whose input is a comma-free script: for each letter a step "s<letter>"
  // that records its effect, with compensation "undo" recording "undo:<step>". Step names ending
  // in '!' are pivots. Failures are configured through the ledger by step key.
  WorkflowDefinition ToyDefinition(const std::string& type = "Toy") {
    WorkflowDefinition def;
    def.type = type;
    def.run = [this](WorkflowContext& ctx, const std::string& input) -> absl::StatusOr<std::string> {
      std::string out;
      for (char c : input) {
        if (c == '!') continue;
        StepOptions options;
        options.name = std::string("s") + c;
        options.retry = FastRetry();
        options.compensation = "undo";
        options.compensation_args = options.name;
        const size_t pos = input.find(c);
        options.pivot = pos + 1 < input.size() && input[pos + 1] == '!';
        const std::string key = absl::StrCat(ctx.workflow_id(), "/", options.name);
        OP_ASSIGN_OR_RETURN(std::string r, ctx.Step(options, [&](const StepCall& call)
                                                                 -> absl::StatusOr<std::string> {
          EXPECT_EQ(call.idempotency_key, key);
          if (ledger_.ShouldFail(key)) {
            return ledger_.ShouldFail(key + "#terminal")
                       ? absl::FailedPreconditionError("refused: " + key)
                       : absl::UnavailableError("flaky: " + key);
          }
          ledger_.Record(key);
          return std::string(1, c);
        }));
        out += r;
      }
      return out;
    };
    def.compensations["undo"] = [this](const CompensationCall& call) -> absl::Status {
      const std::string key = absl::StrCat(call.workflow_id, "/undo:", call.args);
      if (ledger_.ShouldFail(key)) return absl::UnavailableError("undo failed: " + key);
      ledger_.Record(key);
      absl::MutexLock lock(&ledger_.mu);
      ledger_.undo_order.push_back(call.args);
      return absl::OkStatus();
    };
    def.compensation_retry = FastRetry(0);
    def.compensation_max_attempts = 4;
    def.on_finish = [this](pqxx::transaction_base& tx, const FinishInfo& info) {
      tx.exec("SELECT 1");  // Runs inside the finishing transaction.
      absl::MutexLock lock(&ledger_.mu);
      ledger_.finished.push_back(info);
      return absl::OkStatus();
    };
    return def;
  }

  Engine& NewEngine(std::vector<WorkflowDefinition> definitions, EngineOptions options) {
    auto engine = std::make_unique<Engine>(store_.get(), options);
    for (WorkflowDefinition& d : definitions) EXPECT_TRUE(engine->Register(std::move(d)).ok());
    EXPECT_TRUE(engine->Start().ok());
    engines_.push_back(std::move(engine));
    return *engines_.back();
  }
  Engine& NewEngine() { return NewEngine({ToyDefinition()}, Options()); }

  void StartToy(Engine& engine, const std::string& id, const std::string& script) {
    absl::StatusOr<bool> started = engine.StartWorkflow({"Toy", id, "key-" + id, script});
    ASSERT_TRUE(started.ok()) << started.status();
    EXPECT_TRUE(*started);
  }

  // Waits until the workflow is terminal (or needs attention) and returns it with its steps.
  WorkflowRecord AwaitSettled(const std::string& id, absl::Duration timeout = absl::Seconds(20)) {
    const absl::Time give_up = absl::Now() + timeout;
    while (absl::Now() < give_up) {
      absl::StatusOr<WorkflowRecord> w = store_->Get(id, true);
      if (w.ok() && (IsTerminal(w->status) || w->status == WorkflowStatus::kNeedsAttention)) {
        return *w;
      }
      absl::SleepFor(absl::Milliseconds(20));
    }
    ADD_FAILURE() << "workflow " << id << " did not settle";
    return store_->Get(id, true).value_or(WorkflowRecord{});
  }

  std::vector<std::string> UndoOrder() {
    absl::MutexLock lock(&ledger_.mu);
    return ledger_.undo_order;
  }

  std::string dsn_;
  std::unique_ptr<db::ConnectionPool> pool_;
  std::unique_ptr<db::PgWorkflowStore> store_;
  Ledger ledger_;
  std::vector<std::unique_ptr<Engine>> engines_;
};

TEST_F(SagaEngineTest, HappyPathRunsEachStepOnceAndCompletes) {
  Engine& engine = NewEngine();
  StartToy(engine, "wf-happy", "abc");
  WorkflowRecord w = AwaitSettled("wf-happy");
  EXPECT_EQ(w.status, WorkflowStatus::kCompleted);
  EXPECT_EQ(w.result, "abc");
  for (const char* step : {"sa", "sb", "sc"}) {
    EXPECT_EQ(ledger_.Count(absl::StrCat("wf-happy/", step)), 1) << step;
  }
  ASSERT_EQ(w.steps.size(), 3u);
  for (const StepRecord& s : w.steps) {
    EXPECT_EQ(s.status, StepStatus::kSucceeded);
    EXPECT_EQ(s.attempts, 1);
  }
  EXPECT_TRUE(UndoOrder().empty());
}

TEST_F(SagaEngineTest, TransientFailuresAreRetriedDurablyThenSucceed) {
  Engine& engine = NewEngine();
  ledger_.SetFailures("wf-retry/sb", 2);
  StartToy(engine, "wf-retry", "abc");
  WorkflowRecord w = AwaitSettled("wf-retry");
  EXPECT_EQ(w.status, WorkflowStatus::kCompleted);
  EXPECT_EQ(ledger_.Count("wf-retry/sa"), 1);  // Replayed, not re-run, after each wait.
  EXPECT_EQ(ledger_.Count("wf-retry/sb"), 1);
  ASSERT_EQ(w.steps.size(), 3u);
  EXPECT_EQ(w.steps[1].attempts, 3);
}

// A short retry scheduled while the dispatcher waits out a long poll interval runs when it is due,
// not at the next poll.
TEST_F(SagaEngineTest, ShortRetriesRunWhenDueWhateverThePollInterval) {
  EngineOptions options = Options();
  options.poll_interval = absl::Seconds(3);
  Engine& engine = NewEngine({ToyDefinition()}, options);
  ledger_.SetFailures("wf-due/sb", 2);  // Two waits of 20-100 ms.
  const absl::Time start = absl::Now();
  StartToy(engine, "wf-due", "abc");
  WorkflowRecord w = AwaitSettled("wf-due");
  EXPECT_EQ(w.status, WorkflowStatus::kCompleted);
  ASSERT_EQ(w.steps.size(), 3u);
  EXPECT_EQ(w.steps[1].attempts, 3);
  EXPECT_LT(absl::Now() - start, absl::Milliseconds(2500)) << "a retry waited for the 3 s poll";
}

// Work announced while every worker is busy is claimed as soon as one is free, even when a poll
// came and went meanwhile.
TEST_F(SagaEngineTest, WorkAnnouncedWhileEveryWorkerIsBusyRunsWhenOneIsFree) {
  absl::Notification entered;
  absl::Notification release;
  WorkflowDefinition hold;
  hold.type = "Hold";
  hold.run = [&](WorkflowContext& ctx, const std::string&) -> absl::StatusOr<std::string> {
    StepOptions step;
    step.name = "hold";
    return ctx.Step(step, [&](const StepCall&) -> absl::StatusOr<std::string> {
      entered.Notify();
      release.WaitForNotificationWithTimeout(absl::Seconds(20));
      return std::string("held");
    });
  };
  EngineOptions options = Options();
  options.workers = 1;
  options.poll_interval = absl::Seconds(3);
  Engine& engine = NewEngine({std::move(hold), ToyDefinition()}, options);
  ASSERT_TRUE(engine.StartWorkflow({"Hold", "wf-busy", "key-busy", ""}).ok());
  ASSERT_TRUE(entered.WaitForNotificationWithTimeout(absl::Seconds(10)));
  StartToy(engine, "wf-next", "a");        // Announced; the only worker is busy.
  absl::SleepFor(absl::Milliseconds(3300));  // The dispatcher's poll passes meanwhile.
  const absl::Time released = absl::Now();
  release.Notify();
  EXPECT_EQ(AwaitSettled("wf-next").status, WorkflowStatus::kCompleted);
  EXPECT_LT(absl::Now() - released, absl::Milliseconds(1500))
      << "the announced workflow waited for the next poll";
  EXPECT_EQ(AwaitSettled("wf-busy").status, WorkflowStatus::kCompleted);
}

// A cancel accepted while a remote pivot step's call is in flight wins over the pivot: its
// checkpoint is refused and the run compensates, so CancelWorkflow's OK is not lost.
TEST_F(SagaEngineTest, CancelAcceptedDuringARemotePivotCallIsNotLost) {
  absl::Notification entered;
  absl::Notification release;
  WorkflowDefinition def;
  def.type = "RemotePivot";
  def.run = [&](WorkflowContext& ctx, const std::string&) -> absl::StatusOr<std::string> {
    StepOptions reserve;
    reserve.name = "reserve";
    reserve.compensation = "undo";
    reserve.compensation_args = "reserve";
    OP_RETURN_IF_ERROR(ctx.Step(reserve, [&](const StepCall& call) -> absl::StatusOr<std::string> {
                            ledger_.Record(call.idempotency_key);
                            return std::string("r");
                          }).status());
    StepOptions pivot;
    pivot.name = "charge";
    pivot.pivot = true;
    pivot.compensation = "undo";
    pivot.compensation_args = "charge";
    OP_RETURN_IF_ERROR(ctx.Step(pivot, [&](const StepCall& call) -> absl::StatusOr<std::string> {
                            entered.Notify();
                            release.WaitForNotificationWithTimeout(absl::Seconds(20));
                            ledger_.Record(call.idempotency_key);
                            return std::string("c");
                          }).status());
    StepOptions after;
    after.name = "ship";
    return ctx.Step(after, [&](const StepCall& call) -> absl::StatusOr<std::string> {
      ledger_.Record(call.idempotency_key);
      return std::string("s");
    });
  };
  def.compensations["undo"] = [this](const CompensationCall& call) -> absl::Status {
    absl::MutexLock lock(&ledger_.mu);
    ledger_.undo_order.push_back(call.args);
    return absl::OkStatus();
  };
  Engine& engine = NewEngine({std::move(def)}, Options());
  ASSERT_TRUE(engine.StartWorkflow({"RemotePivot", "wf-pivot", "key-pivot", ""}).ok());
  ASSERT_TRUE(entered.WaitForNotificationWithTimeout(absl::Seconds(10)));
  absl::StatusOr<WorkflowRecord> cancelled = store_->RequestCancel("wf-pivot", "customer asked");
  ASSERT_TRUE(cancelled.ok()) << cancelled.status();  // Accepted: not past the pivot yet.
  release.Notify();

  const WorkflowRecord w = AwaitSettled("wf-pivot");
  EXPECT_EQ(w.status, WorkflowStatus::kCancelled) << w.status_reason;
  EXPECT_FALSE(w.past_pivot);
  EXPECT_EQ(ledger_.Count("wf-pivot/ship"), 0);  // Nothing ran after the refused pivot.
  // Both calls may have taken effect; both are undone, the pivot's first.
  EXPECT_EQ(UndoOrder(), (std::vector<std::string>{"charge", "reserve"}));
}

TEST_F(SagaEngineTest, TerminalFailureCompensatesCompletedStepsInReverseOrder) {
  Engine& engine = NewEngine();
  ledger_.SetFailures("wf-fail/sd", 1);
  ledger_.SetFailures("wf-fail/sd#terminal", 1);
  StartToy(engine, "wf-fail", "abcd");
  WorkflowRecord w = AwaitSettled("wf-fail");
  EXPECT_EQ(w.status, WorkflowStatus::kCompensated);
  EXPECT_NE(w.status_reason.find("refused"), std::string::npos) << w.status_reason;
  EXPECT_EQ(UndoOrder(), (std::vector<std::string>{"sc", "sb", "sa"}));
  for (const char* step : {"sa", "sb", "sc"}) {
    EXPECT_EQ(ledger_.Count(absl::StrCat("wf-fail/undo:", step)), 1) << step;
  }
  absl::MutexLock lock(&ledger_.mu);
  ASSERT_EQ(ledger_.finished.size(), 1u);
  EXPECT_EQ(ledger_.finished[0].status, WorkflowStatus::kCompensated);
  EXPECT_EQ(ledger_.finished[0].business_key, "key-wf-fail");
}

TEST_F(SagaEngineTest, FirstStepRefusedFailsWithNothingToCompensate) {
  Engine& engine = NewEngine();
  ledger_.SetFailures("wf-refused/sa", 1);
  ledger_.SetFailures("wf-refused/sa#terminal", 1);
  StartToy(engine, "wf-refused", "ab");
  WorkflowRecord w = AwaitSettled("wf-refused");
  EXPECT_EQ(w.status, WorkflowStatus::kFailed);
  EXPECT_TRUE(UndoOrder().empty());
  EXPECT_EQ(ledger_.Count("wf-refused/sb"), 0);
}

TEST_F(SagaEngineTest, ExhaustedRetriesCompensateTheStepThatMayHaveTakenEffect) {
  Engine& engine = NewEngine();
  ledger_.SetFailures("wf-exhaust/sb", -1);  // UNAVAILABLE forever: maybe applied.
  StartToy(engine, "wf-exhaust", "ab");
  WorkflowRecord w = AwaitSettled("wf-exhaust");
  EXPECT_EQ(w.status, WorkflowStatus::kCompensated);
  EXPECT_EQ(UndoOrder(), (std::vector<std::string>{"sb", "sa"}));
}

TEST_F(SagaEngineTest, CompensationFailingSomeTimesIsRetriedUntilItSucceeds) {
  Engine& engine = NewEngine();
  ledger_.SetFailures("wf-comp-retry/sc", 1);
  ledger_.SetFailures("wf-comp-retry/sc#terminal", 1);
  ledger_.SetFailures("wf-comp-retry/undo:sb", 2);
  StartToy(engine, "wf-comp-retry", "abc");
  WorkflowRecord w = AwaitSettled("wf-comp-retry");
  EXPECT_EQ(w.status, WorkflowStatus::kCompensated);
  EXPECT_EQ(UndoOrder(), (std::vector<std::string>{"sb", "sa"}));
  EXPECT_EQ(ledger_.Count("wf-comp-retry/undo:sb"), 1);
}

TEST_F(SagaEngineTest, CompensationThatNeverSucceedsNeedsAttentionAndOperatorRetryFinishes) {
  Engine& engine = NewEngine();
  ledger_.SetFailures("wf-stuck/sb", 1);
  ledger_.SetFailures("wf-stuck/sb#terminal", 1);
  ledger_.SetFailures("wf-stuck/undo:sa", -1);
  StartToy(engine, "wf-stuck", "ab");
  WorkflowRecord w = AwaitSettled("wf-stuck");
  EXPECT_EQ(w.status, WorkflowStatus::kNeedsAttention);
  EXPECT_NE(w.status_reason.find("compensation undo of step sa failed 4 times"),
            std::string::npos)
      << w.status_reason;

  // The operator fixes the cause and retries: compensation completes.
  ledger_.SetFailures("wf-stuck/undo:sa", 0);
  absl::StatusOr<WorkflowRecord> retried = store_->Retry("wf-stuck", "retry-1");
  ASSERT_TRUE(retried.ok()) << retried.status();
  engine.Poke();
  w = AwaitSettled("wf-stuck");
  EXPECT_EQ(w.status, WorkflowStatus::kCompensated);
  EXPECT_EQ(ledger_.Count("wf-stuck/undo:sa"), 1);
  // Compensated now: a new retry is refused; the same one again (its answer lost) is answered.
  EXPECT_EQ(store_->Retry("wf-stuck", "retry-2").status().code(),
            absl::StatusCode::kFailedPrecondition);
  absl::StatusOr<WorkflowRecord> repeated = store_->Retry("wf-stuck", "retry-1");
  ASSERT_TRUE(repeated.ok()) << repeated.status();
  EXPECT_EQ(repeated->status, WorkflowStatus::kCompensated);
  EXPECT_EQ(ledger_.Count("wf-stuck/undo:sa"), 1);  // And nothing ran again.
}

TEST_F(SagaEngineTest, FailureAfterPivotNeedsAttentionAndNeverCompensates) {
  Engine& engine = NewEngine();
  ledger_.SetFailures("wf-pivot/sc", 1);
  ledger_.SetFailures("wf-pivot/sc#terminal", 1);
  StartToy(engine, "wf-pivot", "ab!c");
  WorkflowRecord w = AwaitSettled("wf-pivot");
  EXPECT_EQ(w.status, WorkflowStatus::kNeedsAttention);
  EXPECT_TRUE(w.past_pivot);
  EXPECT_TRUE(UndoOrder().empty());
  EXPECT_EQ(store_->RequestCancel("wf-pivot", "too late").status().code(),
            absl::StatusCode::kFailedPrecondition);
  // The operator retries the refused step: it runs again and the workflow completes.
  ASSERT_TRUE(store_->Retry("wf-pivot", "retry-pivot").ok());
  engine.Poke();
  w = AwaitSettled("wf-pivot");
  EXPECT_EQ(w.status, WorkflowStatus::kCompleted);
  EXPECT_EQ(ledger_.Count("wf-pivot/sc"), 1);
}

WorkflowDefinition SignalDefinition(Ledger* ledger) {
  WorkflowDefinition def;
  def.type = "Signals";
  def.run = [ledger](WorkflowContext& ctx, const std::string& input) -> absl::StatusOr<std::string> {
    StepOptions reserve;
    reserve.name = "reserve";
    reserve.compensation = "release";
    reserve.compensation_args = "r";
    OP_RETURN_IF_ERROR(ctx.Step(reserve, [&](const StepCall& call) -> absl::StatusOr<std::string> {
                            ledger->Record(call.idempotency_key);
                            return std::string("ok");
                          }).status());
    OP_RETURN_IF_ERROR(ctx.Sleep("nap", absl::Milliseconds(input == "sleep" ? 300 : 0)));
    return ctx.WaitForSignal("approve", absl::Milliseconds(input == "short" ? 300 : 20000));
  };
  def.compensations["release"] = [ledger](const CompensationCall& call) {
    ledger->Record(call.idempotency_key);
    return absl::OkStatus();
  };
  return def;
}

TEST_F(SagaEngineTest, SignalSentBeforeTheWaitIsNotLost) {
  Engine& engine = NewEngine({SignalDefinition(&ledger_)}, Options());
  ASSERT_TRUE(store_->Start({"Signals", "wf-early", "", "sleep"}).ok());
  // The workflow is sleeping when the signal arrives.
  absl::SleepFor(absl::Milliseconds(100));
  ASSERT_TRUE(store_->Signal("wf-early", "approve", "yes", "sig-1").ok());
  ASSERT_TRUE(store_->Signal("wf-early", "approve", "yes", "sig-1").ok());  // Duplicate: kept once.
  engine.Poke();
  WorkflowRecord w = AwaitSettled("wf-early");
  EXPECT_EQ(w.status, WorkflowStatus::kCompleted);
  EXPECT_EQ(w.result, "yes");
}

TEST_F(SagaEngineTest, SignalWaitTimesOutAndCompensates) {
  NewEngine({SignalDefinition(&ledger_)}, Options());
  ASSERT_TRUE(store_->Start({"Signals", "wf-timeout", "", "short"}).ok());
  WorkflowRecord w = AwaitSettled("wf-timeout");
  EXPECT_EQ(w.status, WorkflowStatus::kCompensated);
  EXPECT_NE(w.status_reason.find("no signal"), std::string::npos) << w.status_reason;
  EXPECT_EQ(ledger_.Count("wf-timeout/compensate/reserve"), 1);
}

TEST_F(SagaEngineTest, CancelWhileWaitingRunsCompensationsAndEndsCancelled) {
  Engine& engine = NewEngine({SignalDefinition(&ledger_)}, Options());
  ASSERT_TRUE(store_->Start({"Signals", "wf-cancel", "", "long"}).ok());
  // Wait until it is parked on the signal.
  for (int i = 0; i < 200; ++i) {
    absl::StatusOr<WorkflowRecord> w = store_->Get("wf-cancel", false);
    if (w.ok() && w->status == WorkflowStatus::kWaiting) break;
    absl::SleepFor(absl::Milliseconds(20));
  }
  ASSERT_TRUE(store_->RequestCancel("wf-cancel", "customer asked").ok());
  engine.Poke();
  WorkflowRecord w = AwaitSettled("wf-cancel");
  EXPECT_EQ(w.status, WorkflowStatus::kCancelled);
  EXPECT_EQ(w.status_reason, "customer asked");
  EXPECT_EQ(ledger_.Count("wf-cancel/compensate/reserve"), 1);
  EXPECT_EQ(store_->RequestCancel("wf-cancel", "again").status().code(),
            absl::StatusCode::kFailedPrecondition);
}

TEST_F(SagaEngineTest, DurableSleepHoldsNoWorker) {
  EngineOptions options = Options();
  options.workers = 1;
  Engine& engine = NewEngine({SignalDefinition(&ledger_), ToyDefinition()}, options);
  ASSERT_TRUE(store_->Start({"Signals", "wf-sleeper", "", "sleep"}).ok());
  absl::SleepFor(absl::Milliseconds(50));
  // With the only worker free while the sleeper waits, another workflow runs to the end.
  StartToy(engine, "wf-while-sleeping", "ab");
  WorkflowRecord toy = AwaitSettled("wf-while-sleeping", absl::Seconds(5));
  EXPECT_EQ(toy.status, WorkflowStatus::kCompleted);
  absl::StatusOr<WorkflowRecord> sleeper = store_->Get("wf-sleeper", false);
  ASSERT_TRUE(sleeper.ok());
  EXPECT_FALSE(IsTerminal(sleeper->status));
}

// "Deadline": a compensable step "reserve", then what the input names — "retry": a step failing
// UNAVAILABLE with an hour's backoff; "sleep": an hour's timer; "signal": an hour's wait for a
// signal; "call": a step with an hour's timeout (its call deadline recorded as "call"); "pivot": a
// pivot step with an hour's timeout ("pay"), a 2.5 s timer and a step with an hour's timeout
// ("after_pivot").
WorkflowDefinition DeadlineDefinition(Ledger* ledger, std::map<std::string, absl::Time>* deadlines,
                                      absl::Mutex* mu) {
  WorkflowDefinition def;
  def.type = "Deadline";
  def.run = [=](WorkflowContext& ctx, const std::string& input) -> absl::StatusOr<std::string> {
    auto call = [&](const std::string& name, bool pivot, bool fail) {
      StepOptions step;
      step.name = name;
      step.pivot = pivot;
      step.timeout = absl::Hours(1);
      step.retry.initial_interval = absl::Hours(1);
      step.retry.maximum_interval = absl::Hours(1);
      step.retry.maximum_attempts = 10;
      return ctx.Step(step, [&](const StepCall& c) -> absl::StatusOr<std::string> {
        {
          absl::MutexLock lock(mu);
          (*deadlines)[name] = c.deadline;
        }
        if (fail) return absl::UnavailableError("participant down");
        ledger->Record(c.idempotency_key);
        return name;
      });
    };
    StepOptions reserve;
    reserve.name = "reserve";
    reserve.compensation = "release";
    OP_RETURN_IF_ERROR(ctx.Step(reserve,
                                [&](const StepCall& c) -> absl::StatusOr<std::string> {
                                  ledger->Record(c.idempotency_key);
                                  return std::string("r");
                                })
                           .status());
    if (input == "retry") return call("charge", false, true);
    if (input == "sleep") OP_RETURN_IF_ERROR(ctx.Sleep("nap", absl::Hours(1)));
    if (input == "signal") return ctx.WaitForSignal("approve", absl::Hours(1));
    if (input == "call") return call("call", false, false);
    if (input == "pivot") {
      OP_RETURN_IF_ERROR(call("pay", true, false).status());
      OP_RETURN_IF_ERROR(ctx.Sleep("nap", absl::Milliseconds(2500)));
      return call("after_pivot", false, false);
    }
    return std::string("done");
  };
  def.compensations["release"] = [ledger](const CompensationCall& call) {
    ledger->Record(call.idempotency_key);
    return absl::OkStatus();
  };
  return def;
}

// A workflow's deadline (from its start, database clock) ends every kind of wait before the pivot
// at the deadline, not when the wait would have ended: the run that wakes compensates.
TEST_F(SagaEngineTest, WorkflowDeadlineEndsRetryWaitsTimersAndSignalWaitsAndCompensates) {
  std::map<std::string, absl::Time> deadlines;
  absl::Mutex mu;
  Engine& engine = NewEngine({DeadlineDefinition(&ledger_, &deadlines, &mu)}, Options());
  for (const std::string wait : {"retry", "sleep", "signal"}) {
    const std::string id = "wf-deadline-" + wait;
    const absl::Time started = absl::Now();
    ASSERT_TRUE(engine.StartWorkflow({"Deadline", id, "", wait, absl::Seconds(1)}).ok());
    const WorkflowRecord w = AwaitSettled(id);
    EXPECT_LT(absl::Now() - started, absl::Seconds(4)) << wait << ": waited past the deadline";
    EXPECT_EQ(w.status, WorkflowStatus::kCompensated) << wait;
    EXPECT_EQ(w.status_reason, "workflow deadline exceeded") << wait;
    EXPECT_EQ(w.deadline_at, w.created_at + absl::Seconds(1)) << wait;
    EXPECT_EQ(ledger_.Count(id + "/reserve"), 1) << wait;
    EXPECT_EQ(ledger_.Count(id + "/compensate/reserve"), 1) << wait;
  }
}

// Before the pivot a call's deadline is at most the workflow's, but for the pivot's own call (it
// may take effect; the workflow then goes forward). After the pivot neither the deadline nor a
// wait past it stops the workflow, and calls get their full timeout.
TEST_F(SagaEngineTest, WorkflowDeadlineBoundsCallsBeforeThePivotAndNothingAfterIt) {
  std::map<std::string, absl::Time> deadlines;
  absl::Mutex mu;
  Engine& engine = NewEngine({DeadlineDefinition(&ledger_, &deadlines, &mu)}, Options());
  const absl::Time started = absl::Now();
  ASSERT_TRUE(engine.StartWorkflow({"Deadline", "wf-call", "", "call", absl::Seconds(2)}).ok());
  EXPECT_EQ(AwaitSettled("wf-call").status, WorkflowStatus::kCompleted);
  ASSERT_TRUE(engine.StartWorkflow({"Deadline", "wf-past", "", "pivot", absl::Seconds(2)}).ok());
  const WorkflowRecord past = AwaitSettled("wf-past");
  EXPECT_EQ(past.status, WorkflowStatus::kCompleted) << past.status_reason;
  EXPECT_TRUE(past.past_pivot);
  EXPECT_EQ(ledger_.Count("wf-past/compensate/reserve"), 0);
  EXPECT_EQ(ledger_.Count("wf-past/after_pivot"), 1);

  absl::MutexLock lock(&mu);
  ASSERT_EQ(deadlines.count("call"), 1u);
  EXPECT_LE(deadlines["call"], started + absl::Seconds(3));  // The workflow's, not an hour.
  ASSERT_EQ(deadlines.count("pay"), 1u);
  EXPECT_GT(deadlines["pay"], absl::Now() + absl::Minutes(30));  // The pivot's call: not capped.
  ASSERT_EQ(deadlines.count("after_pivot"), 1u);
  EXPECT_GT(deadlines["after_pivot"], absl::Now() + absl::Minutes(30));
}

// A local step whose transaction committed (its business write with its checkpoint) but whose
// COMMIT answer was lost with the connection, on its second attempt: the outcome is unknown to
// the run, so it must not record anything over that checkpoint (updating the step's retry row
// would erase the success, and the step would run again). The run stops, and the workflow goes
// on from what committed: the step replays. (On a first attempt the retry row's insert collided
// with the committed row, which stopped the run by luck.)
TEST_F(SagaEngineTest, ALocalStepWhoseCommitAnswerWasLostRunsOnce) {
  {
    pqxx::connection setup(dsn_);
    pqxx::nontransaction(setup).exec("CREATE TABLE local_effects (workflow_id text NOT NULL)");
  }
  testing::AnswerDroppingProxy proxy(dsn_);
  db::ConnectionPool pool(db::PoolOptions{.dsn = proxy.dsn(), .size = 8});
  db::PgWorkflowStore store(&pool);
  std::atomic<bool> failed{false};
  std::atomic<bool> armed{false};
  WorkflowDefinition def;
  def.type = "LocalCommit";
  def.run = [&](WorkflowContext& ctx, const std::string&) -> absl::StatusOr<std::string> {
    StepOptions confirm;
    confirm.name = "confirm";
    confirm.pivot = true;
    confirm.retry = FastRetry();
    OP_RETURN_IF_ERROR(
        ctx.LocalStep(confirm,
                      [&](pqxx::transaction_base& tx) -> absl::StatusOr<std::string> {
                        if (!failed.exchange(true)) return absl::UnavailableError("busy");
                        tx.exec("INSERT INTO local_effects VALUES (" + tx.quote(ctx.workflow_id()) +
                                ")");
                        if (!armed.exchange(true)) proxy.DropNextCommitAnswer();
                        return std::string("confirmed");
                      })
            .status());
    StepOptions ship;
    ship.name = "ship";
    return ctx.Step(ship, [&](const StepCall& call) -> absl::StatusOr<std::string> {
      ledger_.Record(call.idempotency_key);
      return std::string("shipped");
    });
  };
  Engine engine(&store, Options());
  ASSERT_TRUE(engine.Register(std::move(def)).ok());
  ASSERT_TRUE(engine.Start().ok());
  ASSERT_TRUE(engine.StartWorkflow({"LocalCommit", "wf-local-commit", "", ""}).ok());
  const WorkflowRecord w = AwaitSettled("wf-local-commit");
  engine.Stop(absl::Seconds(5));

  EXPECT_EQ(proxy.dropped(), 1);
  EXPECT_EQ(w.status, WorkflowStatus::kCompleted) << w.status_reason;
  pqxx::connection direct(dsn_);
  EXPECT_EQ(
      pqxx::nontransaction(direct)
          .exec1("SELECT count(*) FROM local_effects WHERE workflow_id = 'wf-local-commit'")[0]
          .as<int>(),
      1);
  ASSERT_EQ(w.steps.size(), 2u);
  EXPECT_EQ(w.steps[0].name, "confirm");
  EXPECT_EQ(w.steps[0].status, StepStatus::kSucceeded);
  EXPECT_EQ(w.steps[0].attempts, 2);
  EXPECT_EQ(w.steps[0].result, "confirmed");
  EXPECT_EQ(ledger_.Count("wf-local-commit/ship"), 1);
}

// A workflow's end whose COMMIT answer was lost (the end runs the definition's on_finish in its
// transaction, so it is not a single idempotent statement): the engine reads the row, finds the
// end recorded, and carries on as if the answer had arrived: after_finish runs (business
// metrics) and the end is announced (local WaitWorkflow calls), once each.
TEST_F(SagaEngineTest, AnEndWhoseCommitAnswerWasLostIsAnnouncedOnce) {
  testing::AnswerDroppingProxy proxy(dsn_);
  db::ConnectionPool pool(db::PoolOptions{.dsn = proxy.dsn(), .size = 8});
  db::PgWorkflowStore store(&pool);
  std::atomic<int> after_finish{0};
  std::atomic<int> settled{0};
  WorkflowDefinition def = ToyDefinition();
  def.on_finish = [&](pqxx::transaction_base& tx, const FinishInfo&) {
    tx.exec("SELECT 1");
    proxy.DropNextCommitAnswer();
    return absl::OkStatus();
  };
  def.after_finish = [&](const FinishInfo&) { after_finish++; };
  EngineOptions options = Options();
  options.on_settled = [&](absl::string_view) { settled++; };
  Engine engine(&store, options);
  ASSERT_TRUE(engine.Register(std::move(def)).ok());
  ASSERT_TRUE(engine.Start().ok());
  ASSERT_TRUE(engine.StartWorkflow({"Toy", "wf-end-lost", "", "ab"}).ok());
  const WorkflowRecord w = AwaitSettled("wf-end-lost");
  for (int i = 0; i < 100 && settled.load() == 0; ++i) absl::SleepFor(absl::Milliseconds(20));
  engine.Stop(absl::Seconds(5));

  EXPECT_EQ(proxy.dropped(), 1);
  EXPECT_EQ(w.status, WorkflowStatus::kCompleted) << w.status_reason;
  EXPECT_EQ(after_finish.load(), 1);
  EXPECT_EQ(settled.load(), 1);
  EXPECT_EQ(ledger_.Count("wf-end-lost/sa"), 1);
  EXPECT_EQ(ledger_.Count("wf-end-lost/sb"), 1);
}

TEST_F(SagaEngineTest, StartWithAnExistingIdKeepsTheFirstWorkflow) {
  Engine& engine = NewEngine();
  StartToy(engine, "wf-once", "a");
  absl::StatusOr<bool> again = engine.StartWorkflow({"Toy", "wf-once", "other", "zz"});
  ASSERT_TRUE(again.ok());
  EXPECT_FALSE(*again);
  WorkflowRecord w = AwaitSettled("wf-once");
  EXPECT_EQ(w.result, "a");
  EXPECT_EQ(engine.StartWorkflow({"Nope", "wf-x", "", ""}).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST_F(SagaEngineTest, StartAndRunHandsTheWorkflowToItsStarterWithoutAClaim) {
  // No LISTEN and a poll interval past the test: only the hand-over can run the workflow.
  EngineOptions options = Options();
  options.listen_dsn.clear();
  options.poll_interval = absl::Hours(1);
  Engine& engine = NewEngine({ToyDefinition()}, options);
  db::WorkflowStart start{"Toy", "wf-adopted", "", "ab"};
  engine.OfferLease(&start);
  ASSERT_EQ(start.owner, engine.owner());
  ASSERT_TRUE(*store_->Start(start));
  absl::StatusOr<WorkflowRecord> leased = store_->Get("wf-adopted", false);
  ASSERT_TRUE(leased.ok());
  EXPECT_EQ(leased->owner, engine.owner());
  EXPECT_EQ(leased->lease_epoch, 1);
  engine.Adopt(start);
  WorkflowRecord w = AwaitSettled("wf-adopted", absl::Seconds(10));
  EXPECT_EQ(w.status, WorkflowStatus::kCompleted);
  EXPECT_EQ(w.result, "ab");
  EXPECT_EQ(w.lease_epoch, 1);  // Never claimed.
  EXPECT_EQ(ledger_.Count("wf-adopted/sa"), 1);

  // An unowned start: Adopt only pokes, and the dispatcher claims it.
  db::WorkflowStart unowned{"Toy", "wf-unowned", "", "a"};
  ASSERT_TRUE(*store_->Start(unowned));
  engine.Adopt(unowned);  // Just a poke; the dispatcher claims it.
  EXPECT_EQ(AwaitSettled("wf-unowned", absl::Seconds(10)).status, WorkflowStatus::kCompleted);
}

// A run that outlives its lease (here the lease is expired by hand while its first step's call
// is in flight) is claimed again by its own engine: the stale run stops at its next step boundary
// and leaves the new run's bookkeeping alone. Before, the stale run went on to its next call,
// and when it ended it removed the workflow from the engine's running map, so the engine no
// longer knew it ran it and the new run's compensation, looking itself up there, threw
// std::out_of_range and aborted the process (seen once in the chaos test under load).
TEST_F(SagaEngineTest, ARunClaimedAgainByItsOwnEngineStopsAndTheNewRunFinishes) {
  absl::Notification first_call_entered, release_first, second_call_made, fail_entered,
      release_fail;
  std::atomic<int> hold_calls{0};
  std::atomic<int> fail_calls{0};
  WorkflowDefinition def;
  def.type = "Reclaimed";
  def.run = [&](WorkflowContext& ctx, const std::string&) -> absl::StatusOr<std::string> {
    StepOptions hold;
    hold.name = "hold";
    hold.compensation = "undo";
    hold.compensation_args = "hold";
    OP_RETURN_IF_ERROR(ctx.Step(hold, [&](const StepCall&) -> absl::StatusOr<std::string> {
                            if (++hold_calls == 1) {
                              first_call_entered.Notify();
                              release_first.WaitForNotificationWithTimeout(absl::Seconds(20));
                            } else {
                              second_call_made.Notify();
                            }
                            return std::string("held");
                          }).status());
    StepOptions fail;
    fail.name = "fail";
    fail.retry = FastRetry(1);
    return ctx.Step(fail, [&](const StepCall&) -> absl::StatusOr<std::string> {
      // The first caller (the new run) waits until the stale run had its chance to go on.
      if (++fail_calls == 1) {
        fail_entered.Notify();
        release_fail.WaitForNotificationWithTimeout(absl::Seconds(20));
      }
      return absl::FailedPreconditionError("refused");
    });
  };
  def.compensations["undo"] = [this](const CompensationCall& call) -> absl::Status {
    absl::MutexLock lock(&ledger_.mu);
    ledger_.undo_order.push_back(call.args);
    return absl::OkStatus();
  };
  Engine& engine = NewEngine({std::move(def)}, Options());
  ASSERT_TRUE(engine.StartWorkflow({"Reclaimed", "wf-reclaimed", "key-reclaimed", ""}).ok());
  ASSERT_TRUE(first_call_entered.WaitForNotificationWithTimeout(absl::Seconds(10)));
  {
    // Expired until the engine's poll claims it again (epoch 2): the heartbeat, which renews
    // the lease of every workflow the engine holds, may renew it in between.
    pqxx::connection conn(dsn_);
    const absl::Time give_up = absl::Now() + absl::Seconds(10);
    while (!second_call_made.HasBeenNotified() && absl::Now() < give_up) {
      pqxx::work tx(conn);
      tx.exec(
          "UPDATE saga.workflows SET lease_expires_at = now() - interval '1 second' "
          "WHERE id = 'wf-reclaimed' AND lease_epoch = 1");
      tx.commit();
      absl::SleepFor(absl::Milliseconds(20));
    }
  }
  // The new run replays "hold" and waits in "fail".
  ASSERT_TRUE(second_call_made.WaitForNotificationWithTimeout(absl::Seconds(10)));
  ASSERT_TRUE(fail_entered.WaitForNotificationWithTimeout(absl::Seconds(10)));
  release_first.Notify();  // The stale run's call returns.
  absl::SleepFor(absl::Milliseconds(500));  // It stops (or, before, went on to "fail" and ended).
  EXPECT_EQ(fail_calls.load(), 1) << "the stale run went on to its next step";
  EXPECT_TRUE(engine.IsRunning("wf-reclaimed")) << "the engine forgot the run it still runs";
  release_fail.Notify();

  const WorkflowRecord w = AwaitSettled("wf-reclaimed");
  EXPECT_EQ(w.status, WorkflowStatus::kCompensated) << w.status_reason;
  EXPECT_EQ(w.lease_epoch, 2);
  EXPECT_EQ(UndoOrder(), (std::vector<std::string>{"hold"}));
}

// Starts run by their starter (start-and-run) keep every worker busy; a workflow waiting to be
// claimed must still run soon, not when the stream of starts stops.
TEST_F(SagaEngineTest, AClaimableWorkflowIsNotStarvedByAStreamOfStartsRunHere) {
  WorkflowDefinition slow;
  slow.type = "Slow";
  slow.run = [](WorkflowContext& ctx, const std::string&) -> absl::StatusOr<std::string> {
    StepOptions options;
    options.name = "work";
    return ctx.Step(options, [](const StepCall&) -> absl::StatusOr<std::string> {
      absl::SleepFor(absl::Milliseconds(20));
      return std::string("done");
    });
  };
  EngineOptions options = Options();
  options.workers = 2;
  Engine& engine = NewEngine({ToyDefinition(), std::move(slow)}, options);
  std::atomic<bool> stop{false};
  std::atomic<int> adopted{0};
  std::thread stream([&] {
    for (int i = 0; !stop.load(); ++i) {
      db::WorkflowStart start{"Slow", absl::StrCat("wf-stream-", i), "", ""};
      engine.OfferLease(&start);
      if (!start.owner.empty()) ++adopted;
      ASSERT_TRUE(store_->Start(start).ok());
      engine.Adopt(start);
      absl::SleepFor(absl::Milliseconds(5));
    }
  });
  absl::SleepFor(absl::Milliseconds(300));                      // The stream has the workers.
  ASSERT_TRUE(*store_->Start({"Toy", "wf-waiting", "", "a"}));  // Unowned, as from elsewhere.
  engine.Poke();                                                // Its NOTIFY.
  WorkflowRecord w = AwaitSettled("wf-waiting", absl::Seconds(5));
  stop = true;
  stream.join();
  EXPECT_EQ(w.status, WorkflowStatus::kCompleted);
  EXPECT_GT(adopted.load(), 0);
}

TEST_F(SagaEngineTest, ALeaseFromAStarterThatDiedExpiresAndAnotherEngineRunsIt) {
  db::WorkflowStart start{"Toy", "wf-orphan", "", "ab"};
  start.owner = "starter-that-died";
  start.lease = absl::Milliseconds(300);
  ASSERT_TRUE(*store_->Start(start));
  NewEngine();
  WorkflowRecord w = AwaitSettled("wf-orphan");
  EXPECT_EQ(w.status, WorkflowStatus::kCompleted);
  EXPECT_EQ(w.lease_epoch, 2);  // Taken over from the starter's epoch 1.
  EXPECT_EQ(ledger_.Count("wf-orphan/sa"), 1);
}

// Remote steps without compensation around a local step and a signal wait, to see where each
// buffered checkpoint lands.
WorkflowDefinition BufferedDefinition(Ledger* ledger) {
  WorkflowDefinition def;
  def.type = "Buffered";
  def.run = [ledger](WorkflowContext& ctx, const std::string&) -> absl::StatusOr<std::string> {
    auto remote = [&](const std::string& name) {
      StepOptions options;
      options.name = name;
      return ctx.Step(options, [&](const StepCall& call) -> absl::StatusOr<std::string> {
        ledger->Record(call.idempotency_key);
        return name + "-done";
      });
    };
    OP_RETURN_IF_ERROR(remote("a").status());
    StepOptions local;
    local.name = "local";
    OP_RETURN_IF_ERROR(ctx.LocalStep(local, [&](pqxx::transaction_base& tx)
                                                -> absl::StatusOr<std::string> {
                            tx.exec("INSERT INTO saga_test_effects VALUES ('" +
                                    tx.esc(ctx.workflow_id()) + "')");
                            return std::string("local-done");
                          }).status());
    OP_RETURN_IF_ERROR(remote("b").status());
    OP_ASSIGN_OR_RETURN(std::string go, ctx.WaitForSignal("go", absl::Seconds(20)));
    OP_ASSIGN_OR_RETURN(std::string c, remote("c"));
    return go + "/" + c;
  };
  return def;
}

TEST_F(SagaEngineTest, BufferedCheckpointsAreWrittenWithTheNextWrite) {
  {
    pqxx::connection conn(dsn_);
    pqxx::work tx(conn);
    tx.exec("CREATE TABLE saga_test_effects (workflow_id text NOT NULL)");
    tx.commit();
  }
  Engine& engine = NewEngine({BufferedDefinition(&ledger_)}, Options());
  ASSERT_TRUE(*engine.StartWorkflow({"Buffered", "wf-buffered", "", ""}));
  // Waiting for the signal: "a" was written with the local step, "b" with the suspension.
  absl::StatusOr<WorkflowRecord> waiting;
  for (int i = 0; i < 500; ++i) {
    waiting = store_->Get("wf-buffered", true);
    ASSERT_TRUE(waiting.ok()) << waiting.status();
    if (waiting->status == WorkflowStatus::kWaiting) break;
    absl::SleepFor(absl::Milliseconds(10));
  }
  ASSERT_EQ(waiting->status, WorkflowStatus::kWaiting);
  std::map<std::string, StepRecord> by_name;
  for (const StepRecord& s : waiting->steps) by_name[s.name] = s;
  for (const char* name : {"a", "local", "b"}) {
    ASSERT_EQ(by_name.count(name), 1u) << name;
    EXPECT_EQ(by_name[name].status, StepStatus::kSucceeded) << name;
    EXPECT_EQ(by_name[name].attempts, 1) << name;
    EXPECT_NE(by_name[name].finished_at, absl::InfinitePast()) << name;
  }
  EXPECT_EQ(by_name["a"].result, "a-done");
  EXPECT_EQ(by_name["local"].result, "local-done");

  ASSERT_TRUE(store_->Signal("wf-buffered", "go", "yes", "go-1").ok());
  engine.Poke();
  WorkflowRecord w = AwaitSettled("wf-buffered");
  EXPECT_EQ(w.status, WorkflowStatus::kCompleted);
  EXPECT_EQ(w.result, "yes/c-done");
  // "c" was written with the workflow's end.
  ASSERT_EQ(w.steps.size(), 5u);
  EXPECT_EQ(w.steps.back().name, "c");
  EXPECT_EQ(w.steps.back().status, StepStatus::kSucceeded);
  EXPECT_EQ(w.steps.back().result, "c-done");
  for (const char* step : {"a", "b", "c"}) {
    EXPECT_EQ(ledger_.Count(absl::StrCat("wf-buffered/", step)), 1) << step;
  }
  pqxx::connection conn(dsn_);
  pqxx::nontransaction tx(conn);
  EXPECT_EQ(tx.exec1("SELECT count(*) FROM saga_test_effects")[0].as<int>(), 1);
}

TEST_F(SagaEngineTest, StaleWorkerIsFencedAndTheNewOwnerFinishesOnce) {
  // A claims the workflow directly through the store, then "pauses": its lease expires and B's
  // engine takes over. A's late checkpoint is refused.
  absl::StatusOr<bool> started = store_->Start({"Toy", "wf-fence", "", "ab"});
  ASSERT_TRUE(started.ok());
  absl::StatusOr<std::vector<db::ClaimedWorkflow>> a =
      store_->Claim("worker-a", absl::Milliseconds(200), 10);
  ASSERT_TRUE(a.ok());
  ASSERT_EQ(a->size(), 1u);
  const db::Fence stale{"wf-fence", "worker-a", (*a)[0].workflow.lease_epoch};
  absl::SleepFor(absl::Milliseconds(300));

  NewEngine();
  WorkflowRecord w = AwaitSettled("wf-fence");
  EXPECT_EQ(w.status, WorkflowStatus::kCompleted);
  StepRecord late;
  late.seq = 9;
  late.name = "late";
  absl::Status write = store_->WriteSteps(stale, {late});
  EXPECT_TRUE(db::IsFenced(write)) << write;
  EXPECT_EQ(ledger_.Count("wf-fence/sa"), 1);
}

// Checkpoints of different workflows made while a checkpoint statement is in flight. The first
// write is held at a row lock another connection takes on its workflow, so the writes that come
// after it queue; the next statement carries them all.
class CheckpointBatchTest : public SagaEngineTest {
 protected:
  void SetUp() override {
    SagaEngineTest::SetUp();
    for (int i = 0; i < 5; ++i) {
      const std::string id = absl::StrCat("cp-", i);
      absl::StatusOr<bool> started =
          store_->Start({.type = "Toy", .id = id, .owner = "worker-a", .lease = absl::Minutes(5)});
      ASSERT_TRUE(started.ok() && *started) << started.status();
      fences_.push_back({id, "worker-a", 1});
    }
  }

  static StepRecord Step(int seq, StepStatus status) {
    StepRecord step;
    step.seq = seq;
    step.name = absl::StrCat("step-", seq);
    step.status = status;
    step.attempts = 1;
    step.result = absl::StrCat("result-", seq);
    return step;
  }

  // Runs `writes` on threads of their own: the first alone, held in its statement by a lock on
  // its workflow's row, the others once it is; waits until they are all queued, releases the
  // lock, and returns their statuses (in order).
  std::vector<absl::Status> WriteWhileAStatementIsHeld(
      const std::vector<std::function<absl::Status()>>& writes) {
    pqxx::connection locker(dsn_);
    pqxx::work lock(locker);
    lock.exec("SELECT 1 FROM saga.workflows WHERE id = 'cp-0' FOR UPDATE");
    std::vector<absl::Status> statuses(writes.size());
    std::vector<std::thread> threads;
    threads.emplace_back([&] { statuses[0] = writes[0](); });
    WaitFor("the first statement waits for the lock",
            [&] { return testing::LockWaits(dsn_) == 1; });
    for (size_t i = 1; i < writes.size(); ++i) {
      threads.emplace_back([&, i] { statuses[i] = writes[i](); });
    }
    WaitFor("the other writes queue", [&] {
      return store_->CheckpointStats().queued == static_cast<int64_t>(writes.size()) - 1;
    });
    lock.abort();
    for (std::thread& t : threads) t.join();
    return statuses;
  }

  static void WaitFor(const std::string& what, const std::function<bool()>& done) {
    for (int i = 0; i < 1000 && !done(); ++i) absl::SleepFor(absl::Milliseconds(10));
    ASSERT_TRUE(done()) << what;
  }

  std::vector<db::Fence> fences_;
};

TEST_F(CheckpointBatchTest, WritesQueuedBehindAStatementShareTheNextAndAreFencedEachOnItsOwn) {
  const db::Fence stale{"cp-3", "worker-a", 2};
  const db::CheckpointBatchStats before = store_->CheckpointStats();
  const std::vector<absl::Status> statuses = WriteWhileAStatementIsHeld({
      [&] { return store_->WriteSteps(fences_[0], {Step(1, StepStatus::kRunning)}); },
      [&] { return store_->WriteSteps(fences_[1], {Step(1, StepStatus::kSucceeded)}); },
      [&] {
        return store_->Finish(fences_[2], {.status = WorkflowStatus::kCompleted}, "done", nullptr,
                              {Step(1, StepStatus::kSucceeded), Step(2, StepStatus::kSucceeded)});
      },
      [&] { return store_->WriteSteps(stale, {Step(1, StepStatus::kSucceeded)}); },
      [&] {
        return store_->Finish(fences_[4],
                              {.status = WorkflowStatus::kNeedsAttention, .reason = "stuck"}, "",
                              nullptr, {Step(1, StepStatus::kFailed)});
      },
      // A second write of cp-1's run: never in the same statement as its first.
      [&] { return store_->WriteSteps(fences_[1], {Step(2, StepStatus::kRunning)}); },
  });
  EXPECT_TRUE(statuses[0].ok()) << statuses[0];
  EXPECT_TRUE(statuses[1].ok()) << statuses[1];
  EXPECT_TRUE(statuses[2].ok()) << statuses[2];
  EXPECT_TRUE(db::IsFenced(statuses[3])) << statuses[3];
  EXPECT_TRUE(statuses[4].ok()) << statuses[4];
  EXPECT_TRUE(statuses[5].ok()) << statuses[5];
  // The held one, the four queued behind it (one per workflow), then cp-1's second write.
  const db::CheckpointBatchStats after = store_->CheckpointStats();
  EXPECT_EQ(after.statements - before.statements, 3);
  EXPECT_EQ(after.checkpoints - before.checkpoints, 6);
  EXPECT_EQ(after.queued, 0);

  std::map<std::string, WorkflowRecord> w;
  for (int i = 0; i < 5; ++i) {
    const std::string id = absl::StrCat("cp-", i);
    absl::StatusOr<WorkflowRecord> record = store_->Get(id, true);
    ASSERT_TRUE(record.ok()) << record.status();
    w[id] = *record;
  }
  ASSERT_EQ(w["cp-0"].steps.size(), 1u);
  EXPECT_EQ(w["cp-0"].steps[0].status, StepStatus::kRunning);
  EXPECT_EQ(w["cp-0"].status, WorkflowStatus::kRunning);
  EXPECT_EQ(w["cp-0"].owner, "worker-a");
  ASSERT_EQ(w["cp-1"].steps.size(), 2u);
  EXPECT_EQ(w["cp-1"].steps[0].status, StepStatus::kSucceeded);
  EXPECT_EQ(w["cp-1"].steps[0].result, "result-1");
  EXPECT_NE(w["cp-1"].steps[0].finished_at, absl::InfinitePast());
  EXPECT_EQ(w["cp-1"].steps[1].status, StepStatus::kRunning);
  EXPECT_EQ(w["cp-1"].status, WorkflowStatus::kRunning);
  EXPECT_EQ(w["cp-2"].status, WorkflowStatus::kCompleted);
  EXPECT_EQ(w["cp-2"].result, "done");
  EXPECT_EQ(w["cp-2"].owner, "");
  EXPECT_EQ(w["cp-2"].lease_expires_at, absl::InfinitePast());
  EXPECT_NE(w["cp-2"].finished_at, absl::InfinitePast());
  EXPECT_EQ(w["cp-2"].steps.size(), 2u);
  EXPECT_TRUE(w["cp-3"].steps.empty());
  EXPECT_EQ(w["cp-3"].owner, "worker-a");
  EXPECT_EQ(w["cp-4"].status, WorkflowStatus::kNeedsAttention);
  EXPECT_EQ(w["cp-4"].status_reason, "stuck");
  EXPECT_EQ(w["cp-4"].finished_at, absl::InfinitePast());
  ASSERT_EQ(w["cp-4"].steps.size(), 1u);
  EXPECT_EQ(w["cp-4"].steps[0].status, StepStatus::kFailed);
}

TEST_F(CheckpointBatchTest, AStatementThatFailsIsRetriedWriteByWriteSoOnlyTheBadOneFails) {
  const db::CheckpointBatchStats before = store_->CheckpointStats();
  const std::vector<absl::Status> statuses = WriteWhileAStatementIsHeld({
      [&] { return store_->WriteSteps(fences_[0], {Step(1, StepStatus::kRunning)}); },
      [&] { return store_->WriteSteps(fences_[1], {Step(1, StepStatus::kSucceeded)}); },
      // seq must be at least 1 (a CHECK constraint): this row fails the whole statement.
      [&] { return store_->WriteSteps(fences_[2], {Step(0, StepStatus::kSucceeded)}); },
      [&] {
        return store_->Finish(fences_[3], {.status = WorkflowStatus::kCompleted}, "", nullptr);
      },
  });
  EXPECT_TRUE(statuses[0].ok()) << statuses[0];
  EXPECT_TRUE(statuses[1].ok()) << statuses[1];
  EXPECT_EQ(statuses[2].code(), absl::StatusCode::kFailedPrecondition) << statuses[2];
  EXPECT_TRUE(statuses[3].ok()) << statuses[3];
  // The held one, the failed one with three, then each of the three alone.
  const db::CheckpointBatchStats after = store_->CheckpointStats();
  EXPECT_EQ(after.statements - before.statements, 5);
  EXPECT_EQ(after.checkpoints - before.checkpoints, 3);
  absl::StatusOr<WorkflowRecord> written = store_->Get("cp-1", true);
  ASSERT_TRUE(written.ok());
  EXPECT_EQ(written->steps.size(), 1u);
  absl::StatusOr<WorkflowRecord> bad = store_->Get("cp-2", true);
  ASSERT_TRUE(bad.ok());
  EXPECT_TRUE(bad->steps.empty());
  absl::StatusOr<WorkflowRecord> finished = store_->Get("cp-3", false);
  ASSERT_TRUE(finished.ok());
  EXPECT_EQ(finished->status, WorkflowStatus::kCompleted);
}

// The checkpoint statement's plan is cached on its connection when it first runs. Made while
// saga.workflows was small, a plan that joins the arrays to the table by hashing scans all of it;
// once the table has grown, every checkpoint would read every workflow.
TEST_F(CheckpointBatchTest, APlanCachedWhileTheTableWasSmallStillProbesTheIndexOnceItGrew) {
  pqxx::connection admin(dsn_);
  pqxx::nontransaction tx(admin);
  const auto add_workflows = [&](const std::string& prefix, int n) {
    tx.exec(absl::StrCat("INSERT INTO saga.workflows (id, type, input, status) SELECT '", prefix,
                         "-' || g, 'Toy', '', 'completed' FROM generate_series(1, ", n, ") g"));
  };
  const auto checkpoints = [&](int first_seq, int last_seq) {
    for (int seq = first_seq; seq <= last_seq; ++seq) {
      ASSERT_TRUE(store_->WriteSteps(fences_[seq % 5], {Step(seq, StepStatus::kSucceeded)}).ok());
    }
  };
  tx.exec("ALTER TABLE saga.workflows SET (autovacuum_enabled = off)");
  add_workflows("small", 300);
  tx.exec("ANALYZE saga.workflows");
  checkpoints(1, 8);  // Enough for the connection to settle on a generic plan.
  add_workflows("grown", 30000);
  checkpoints(9, 20);
  // Before the growth, the checkpoints could read at most 8 times the 300-row table; one scan
  // after it reads 30,000.
  const int64_t read = testing::SeqTuplesRead(dsn_).at("saga.workflows");
  EXPECT_LT(read, 30000) << "checkpoints read saga.workflows sequentially";
}

TEST_F(CheckpointBatchTest, AWorkflowRowHeldLockedFailsTheStatementAfterTheLockTimeout) {
  db::PgWorkflowStore store(pool_.get(), {.checkpoint_lock_timeout = absl::Milliseconds(200)});
  pqxx::connection locker(dsn_);
  pqxx::work lock(locker);
  lock.exec("SELECT 1 FROM saga.workflows WHERE id = 'cp-0' FOR UPDATE");
  absl::Status held;
  absl::Notification gave_up;
  std::thread writer([&] {
    held = store.WriteSteps(fences_[0], {Step(1, StepStatus::kRunning)});
    gave_up.Notify();
  });
  // Well before the lock is released (after the wait, so a write that waits for it ends too).
  EXPECT_TRUE(gave_up.WaitForNotificationWithTimeout(absl::Seconds(5)));
  if (gave_up.HasBeenNotified()) {
    EXPECT_FALSE(held.ok());
    EXPECT_FALSE(db::IsFenced(held)) << held;
    // The others are not held up.
    EXPECT_TRUE(store.WriteSteps(fences_[1], {Step(1, StepStatus::kSucceeded)}).ok());
  }
  lock.abort();
  writer.join();
  // The one held is written once its row is free.
  EXPECT_TRUE(store.WriteSteps(fences_[0], {Step(1, StepStatus::kRunning)}).ok());
}

TEST_F(CheckpointBatchTest, WithBatchingOffAWriteDoesNotWaitForAStatementInFlight) {
  db::PgWorkflowStore store(pool_.get(), {.max_checkpoint_batch = 1});
  pqxx::connection locker(dsn_);
  pqxx::work lock(locker);
  lock.exec("SELECT 1 FROM saga.workflows WHERE id = 'cp-0' FOR UPDATE");
  absl::Status held;
  std::thread first([&] { held = store.WriteSteps(fences_[0], {Step(1, StepStatus::kRunning)}); });
  absl::Notification second_done;
  absl::Status second;
  std::thread other([&] {
    second = store.WriteSteps(fences_[1], {Step(1, StepStatus::kSucceeded)});
    second_done.Notify();
  });
  // Written on a connection of its own while the first still waits for the lock.
  EXPECT_TRUE(second_done.WaitForNotificationWithTimeout(absl::Seconds(10)));
  lock.abort();
  first.join();
  other.join();
  EXPECT_TRUE(held.ok()) << held;
  EXPECT_TRUE(second.ok()) << second;
  const db::CheckpointBatchStats stats = store.CheckpointStats();
  EXPECT_EQ(stats.statements, 2);
  EXPECT_EQ(stats.checkpoints, 2);
  EXPECT_EQ(stats.queued, 0);
}

// A checkpoint the database refuses for a reason of its own (here an injected error on step
// "sb"'s row, twice) is not the step's failure: the run stops, nothing is compensated, and the
// workflow runs again from its checkpoints until it completes.
TEST_F(SagaEngineTest, ACheckpointTheDatabaseFailsToWriteStopsTheRunButCompensatesNothing) {
  {
    pqxx::connection conn(dsn_);
    pqxx::work tx(conn);
    tx.exec("CREATE SEQUENCE checkpoint_failures");
    tx.exec(
        "CREATE FUNCTION fail_checkpoint() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN"
        "  IF NEW.workflow_id = 'wf-store-fails' AND NEW.name = 'sb'"
        "     AND nextval('checkpoint_failures') <= 2 THEN"
        "    RAISE EXCEPTION 'injected checkpoint failure' USING ERRCODE = 'XX000';"
        "  END IF;"
        "  RETURN NEW; END $$");
    tx.exec(
        "CREATE TRIGGER fail_checkpoint BEFORE INSERT ON saga.steps FOR EACH ROW"
        " EXECUTE FUNCTION fail_checkpoint()");
    tx.commit();
  }
  Engine& engine = NewEngine();
  StartToy(engine, "wf-store-fails", "abc");
  WorkflowRecord w = AwaitSettled("wf-store-fails");
  EXPECT_EQ(w.status, WorkflowStatus::kCompleted) << w.status_reason;
  EXPECT_EQ(w.result, "abc");
  EXPECT_TRUE(UndoOrder().empty());
  for (const char* step : {"sa", "sb", "sc"}) {
    EXPECT_GE(ledger_.Count(absl::StrCat("wf-store-fails/", step)), 1) << step;
  }
  pqxx::connection conn(dsn_);
  pqxx::nontransaction tx(conn);
  EXPECT_GE(tx.exec1("SELECT last_value FROM checkpoint_failures")[0].as<int>(), 3);
}

TEST_F(SagaEngineTest, SeveralEnginesShareTheLoadAndRunEachWorkflowOnce) {
  Engine& first = NewEngine();
  NewEngine();
  NewEngine();
  constexpr int kWorkflows = 60;
  for (int i = 0; i < kWorkflows; ++i) StartToy(first, absl::StrCat("wf-many-", i), "abc");
  for (int i = 0; i < kWorkflows; ++i) {
    WorkflowRecord w = AwaitSettled(absl::StrCat("wf-many-", i));
    EXPECT_EQ(w.status, WorkflowStatus::kCompleted);
  }
  for (int i = 0; i < kWorkflows; ++i) {
    for (const char* step : {"sa", "sb", "sc"}) {
      EXPECT_EQ(ledger_.Count(absl::StrCat("wf-many-", i, "/", step)), 1);
    }
  }
}

// Without a finish hook every checkpoint, the ends included, goes through the store's queue:
// many workflows on many workers, each effect once, every end and step row written.
TEST_F(SagaEngineTest, ManyWorkflowsWhoseCheckpointsShareStatementsEachCompleteOnce) {
  WorkflowDefinition def = ToyDefinition();
  def.on_finish = nullptr;
  EngineOptions options = Options();
  options.workers = 12;
  Engine& engine = NewEngine({std::move(def)}, options);
  constexpr int kWorkflows = 120;
  std::vector<std::thread> starters;
  for (int t = 0; t < 4; ++t) {
    starters.emplace_back([&, t] {
      for (int i = t; i < kWorkflows; i += 4) StartToy(engine, absl::StrCat("wf-q-", i), "abcd");
    });
  }
  for (std::thread& t : starters) t.join();
  for (int i = 0; i < kWorkflows; ++i) {
    WorkflowRecord w = AwaitSettled(absl::StrCat("wf-q-", i));
    EXPECT_EQ(w.status, WorkflowStatus::kCompleted) << w.status_reason;
    EXPECT_EQ(w.result, "abcd");
    ASSERT_EQ(w.steps.size(), 4u);
    for (const StepRecord& step : w.steps) EXPECT_EQ(step.status, StepStatus::kSucceeded);
    for (const char* step : {"sa", "sb", "sc", "sd"}) {
      EXPECT_EQ(ledger_.Count(absl::StrCat("wf-q-", i, "/", step)), 1) << i << step;
    }
  }
  // 4 obligations and the end per workflow, written in no more statements than that.
  const db::CheckpointBatchStats stats = store_->CheckpointStats();
  EXPECT_GE(stats.checkpoints, 5 * kWorkflows);
  EXPECT_LE(stats.statements, stats.checkpoints);
  EXPECT_EQ(stats.queued, 0);
}

TEST_F(SagaEngineTest, ListAndGetShowHistory) {
  Engine& engine = NewEngine();
  for (int i = 0; i < 5; ++i) StartToy(engine, absl::StrCat("wf-list-", i), "ab");
  for (int i = 0; i < 5; ++i) AwaitSettled(absl::StrCat("wf-list-", i));
  db::WorkflowListQuery query;
  query.type = "Toy";
  query.status = WorkflowStatus::kCompleted;
  query.page_size = 2;
  std::set<std::string> seen;
  for (int pages = 0; pages < 5; ++pages) {
    absl::StatusOr<db::WorkflowPage> page = store_->List(query);
    ASSERT_TRUE(page.ok()) << page.status();
    for (const WorkflowRecord& w : page->workflows) EXPECT_TRUE(seen.insert(w.id).second);
    if (!page->next) break;
    query.after = page->next;
  }
  EXPECT_EQ(seen.size(), 5u);
  absl::StatusOr<WorkflowRecord> got = store_->Get("wf-list-3", true);
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->steps.size(), 2u);
  EXPECT_EQ(store_->Get("nope", false).status().code(), absl::StatusCode::kNotFound);
}

// Listing by a rare status or type reads through that column's index even with the plan a
// long-lived connection caches (forced generic here): 3000 completed workflows are not walked to
// find the one that needs attention.
TEST_F(SagaEngineTest, ListByTypeOrStatusUsesItsIndexWithAGenericPlan) {
  {
    pqxx::connection conn(dsn_);
    pqxx::work tx(conn);
    tx.exec(
        "INSERT INTO saga.workflows (id, type, input, status, created_at) "
        "SELECT 'bulk-' || g, 'Toy', '', 'completed', now() - g * interval '1 second' "
        "FROM generate_series(1, 3000) g");
    tx.exec(
        "INSERT INTO saga.workflows (id, type, input, status, created_at) VALUES "
        "('stuck', 'Toy', '', 'needs_attention', now() - interval '2 hours'),"
        "('rare', 'Rare', '', 'completed', now() - interval '3 hours')");
    tx.exec("ANALYZE saga.workflows");
    tx.commit();
  }
  const std::string generic = dsn_ + (dsn_.find('?') == std::string::npos ? "?" : "&") +
                              "options=-c%20plan_cache_mode%3Dforce_generic_plan";
  db::ConnectionPool one(db::PoolOptions{.dsn = generic, .size = 1});
  db::PgWorkflowStore store(&one);
  struct Case {
    std::optional<std::string> type;
    std::optional<WorkflowStatus> status;
    std::string expected_id;
    std::string statement;
    std::string explain_args;  // After the 5 common ones.
    std::string index;
  };
  const std::vector<Case> cases = {
      {std::nullopt, WorkflowStatus::kNeedsAttention, "stuck", "saga.list_by_status",
       ", 'needs_attention'", "workflows_status_created_idx"},
      {"Rare", std::nullopt, "rare", "saga.list_by_type", ", 'Rare'", "workflows_type_created_idx"},
      {"Toy", WorkflowStatus::kNeedsAttention, "stuck", "saga.list_by_type_status",
       ", 'needs_attention', 'Toy'", "workflows_status_created_idx"},
  };
  for (const Case& c : cases) {
    db::WorkflowListQuery query;
    query.type = c.type;
    query.status = c.status;
    query.page_size = 10;
    absl::StatusOr<db::WorkflowPage> page = store.List(query);
    ASSERT_TRUE(page.ok()) << page.status();
    ASSERT_EQ(page->workflows.size(), 1u) << c.statement;
    EXPECT_EQ(page->workflows[0].id, c.expected_id);
    // The plan of the statement List just ran, on the same (only) connection.
    std::string plan;
    ASSERT_TRUE(
        db::RunTransaction(one, {.mode = db::TxMode::kAutocommit}, [&](pqxx::transaction_base& tx) {
          for (const pqxx::row& row : tx.exec("EXPLAIN EXECUTE \"" + c.statement +
                                              "\"(253402300799000000, 'z', "
                                              "-62135596800000000, 253402300799000000, 11" +
                                              c.explain_args + ")")) {
            plan += row[0].as<std::string>() + "\n";
          }
          return absl::OkStatus();
        }).ok());
    EXPECT_NE(plan.find(c.index), std::string::npos) << c.statement << ":\n" << plan;
  }
}

}  // namespace
}  // namespace order_platform::saga
