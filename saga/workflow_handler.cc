#include "saga/workflow_handler.h"

#include <algorithm>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "google/protobuf/duration.pb.h"
#include "services/common/errors.h"
#include "services/common/grpc_edge.h"
#include "services/common/page_token.h"
#include "services/common/validation.h"

namespace order_platform::saga {
namespace {

constexpr size_t kMaxWorkflowIdLength = 200;  // saga.workflows.id CHECK.
constexpr size_t kMaxWorkflowTypeLength = 128;
constexpr size_t kMaxSignalNameLength = 64;
constexpr size_t kMaxPayloadBytes = size_t{64} * 1024;
constexpr size_t kMaxReasonBytes = 500;
constexpr int32_t kDefaultPageSize = 50;
constexpr int32_t kMaxPageSize = 1000;
// Timestamps PostgreSQL and page tokens handle: 0001-01-01T00:00:00Z .. 9999-12-31T23:59:59Z.
constexpr int64_t kMinTimestampSeconds = -62135596800;
constexpr int64_t kMaxTimestampSeconds = 253402300799;

// WaitWorkflow: the wait when the request sets none, and the most it may ask for.
constexpr absl::Duration kDefaultWaitTimeout = absl::Seconds(30);
constexpr absl::Duration kMaxWaitTimeout = absl::Minutes(5);
// A waited-for workflow may be settled by another process, whose engine does not announce it
// here: it is re-read after 200 ms, then at doubling intervals of at most 1 s.
constexpr absl::Duration kFirstRecheck = absl::Milliseconds(200);
constexpr absl::Duration kMaxRecheck = absl::Seconds(1);
// The wait ends this long before the call's deadline, so the answer arrives before it.
constexpr absl::Duration kDeadlineMargin = absl::Milliseconds(50);

absl::Status ValidateWorkflowId(absl::string_view id) {
  return ValidateIdentifier(id, "workflow_id", kMaxWorkflowIdLength);
}

// A workflow that will not move without an operator or ever again.
bool Settled(WorkflowStatus status) {
  return IsTerminal(status) || status == WorkflowStatus::kNeedsAttention;
}

absl::StatusOr<absl::Duration> WaitTimeout(const v1::WaitWorkflowRequest& request) {
  if (!request.has_timeout()) return kDefaultWaitTimeout;
  const std::optional<absl::Duration> timeout = DurationFromProto(request.timeout());
  if (!timeout || *timeout < absl::Milliseconds(1) || *timeout > kMaxWaitTimeout) {
    return InvalidField("timeout", "must be between 1ms and 5m");
  }
  return *timeout;
}

bool InTimestampRange(absl::Time t) {
  return t >= absl::FromUnixSeconds(kMinTimestampSeconds) &&
         t <= absl::FromUnixSeconds(kMaxTimestampSeconds);
}

// A set Timestamp field as absl::Time rounded up to PostgreSQL's microseconds: for integral
// `created_at`, `created_at >= t` and `created_at < t` keep their meaning under the rounding.
absl::StatusOr<absl::Time> FilterTime(const google::protobuf::Timestamp& proto,
                                      absl::string_view field) {
  if (proto.seconds() < kMinTimestampSeconds || proto.seconds() > kMaxTimestampSeconds ||
      proto.nanos() < 0 || proto.nanos() > 999999999) {
    return InvalidField(field, "must be a valid timestamp between 0001-01-01 and 9999-12-31");
  }
  const absl::Time t = TimeFromProto(proto);
  const absl::Time floor = absl::FromUnixMicros(absl::ToUnixMicros(t));
  return floor == t ? t : floor + absl::Microseconds(1);
}

absl::StatusOr<std::optional<WorkflowStatus>> StatusFilterFromProto(v1::WorkflowStatus status) {
  switch (status) {
    case v1::WORKFLOW_STATUS_UNSPECIFIED:
      return std::optional<WorkflowStatus>();
    case v1::WORKFLOW_STATUS_RUNNING:
      return std::optional<WorkflowStatus>(WorkflowStatus::kRunning);
    case v1::WORKFLOW_STATUS_WAITING:
      return std::optional<WorkflowStatus>(WorkflowStatus::kWaiting);
    case v1::WORKFLOW_STATUS_COMPENSATING:
      return std::optional<WorkflowStatus>(WorkflowStatus::kCompensating);
    case v1::WORKFLOW_STATUS_COMPLETED:
      return std::optional<WorkflowStatus>(WorkflowStatus::kCompleted);
    case v1::WORKFLOW_STATUS_COMPENSATED:
      return std::optional<WorkflowStatus>(WorkflowStatus::kCompensated);
    case v1::WORKFLOW_STATUS_CANCELLED:
      return std::optional<WorkflowStatus>(WorkflowStatus::kCancelled);
    case v1::WORKFLOW_STATUS_FAILED:
      return std::optional<WorkflowStatus>(WorkflowStatus::kFailed);
    case v1::WORKFLOW_STATUS_NEEDS_ATTENTION:
      return std::optional<WorkflowStatus>(WorkflowStatus::kNeedsAttention);
    default:
      return InvalidField("status", absl::StrCat("unknown status value ", status));
  }
}

v1::WorkflowStatus StatusToProto(WorkflowStatus status) {
  switch (status) {
    case WorkflowStatus::kRunning:
      return v1::WORKFLOW_STATUS_RUNNING;
    case WorkflowStatus::kWaiting:
      return v1::WORKFLOW_STATUS_WAITING;
    case WorkflowStatus::kCompensating:
      return v1::WORKFLOW_STATUS_COMPENSATING;
    case WorkflowStatus::kCompleted:
      return v1::WORKFLOW_STATUS_COMPLETED;
    case WorkflowStatus::kCompensated:
      return v1::WORKFLOW_STATUS_COMPENSATED;
    case WorkflowStatus::kCancelled:
      return v1::WORKFLOW_STATUS_CANCELLED;
    case WorkflowStatus::kFailed:
      return v1::WORKFLOW_STATUS_FAILED;
    case WorkflowStatus::kNeedsAttention:
      return v1::WORKFLOW_STATUS_NEEDS_ATTENTION;
  }
  return v1::WORKFLOW_STATUS_UNSPECIFIED;
}

v1::StepKind KindToProto(StepKind kind) {
  switch (kind) {
    case StepKind::kForward:
      return v1::STEP_KIND_FORWARD;
    case StepKind::kCompensation:
      return v1::STEP_KIND_COMPENSATION;
    case StepKind::kTimer:
      return v1::STEP_KIND_TIMER;
    case StepKind::kSignal:
      return v1::STEP_KIND_SIGNAL;
  }
  return v1::STEP_KIND_UNSPECIFIED;
}

v1::StepStatus StepStatusToProto(StepStatus status) {
  switch (status) {
    case StepStatus::kRunning:
    case StepStatus::kWaiting:  // A timer or signal wait in progress.
      return v1::STEP_STATUS_RUNNING;
    case StepStatus::kSucceeded:
      return v1::STEP_STATUS_SUCCEEDED;
    case StepStatus::kFailed:
      return v1::STEP_STATUS_FAILED;
    case StepStatus::kRetryScheduled:
      return v1::STEP_STATUS_RETRY_SCHEDULED;
  }
  return v1::STEP_STATUS_UNSPECIFIED;
}

void DurationToProto(absl::Duration d, google::protobuf::Duration* proto) {
  if (d < absl::ZeroDuration()) d = absl::ZeroDuration();  // Clock skew: never negative.
  const int64_t seconds = absl::IDivDuration(d, absl::Seconds(1), &d);
  proto->set_seconds(seconds);
  proto->set_nanos(static_cast<int32_t>(absl::ToInt64Nanoseconds(d)));
}

void StepToProto(const StepRecord& step, v1::Step* proto) {
  proto->set_sequence(step.seq);
  proto->set_name(step.name);
  proto->set_kind(KindToProto(step.kind));
  proto->set_status(StepStatusToProto(step.status));
  proto->set_attempts(step.attempts);
  proto->set_last_error(step.error_message);
  TimeToProto(step.started_at, proto->mutable_start_time());
  if (step.finished_at != absl::InfinitePast()) {
    TimeToProto(step.finished_at, proto->mutable_end_time());
  }
  if (step.status == StepStatus::kRetryScheduled && step.next_attempt_at != absl::InfinitePast()) {
    TimeToProto(step.next_attempt_at, proto->mutable_next_attempt_time());
  }
}

// What a workflow list's page token is bound to: its filters (not its page size).
struct ListFilter {
  std::optional<std::string> type;
  std::optional<WorkflowStatus> status;
  absl::Time from = absl::InfinitePast();
  absl::Time to = absl::InfiniteFuture();

  uint64_t Fingerprint() const {
    const auto micros = [](absl::Time t, absl::Time unset) {
      return t == unset ? std::string() : absl::StrCat(absl::ToUnixMicros(t));
    };
    return order_platform::Fingerprint(absl::StrCat(
        "workflows|", type.value_or(""), "|", status ? WorkflowStatusName(*status) : "", "|",
        micros(from, absl::InfinitePast()), "|", micros(to, absl::InfiniteFuture())));
  }
};

absl::StatusOr<ListFilter> ListFilterFromProto(const v1::ListWorkflowsRequest& request) {
  ListFilter filter;
  if (!request.workflow_type().empty()) {
    OP_RETURN_IF_ERROR(
        ValidateIdentifier(request.workflow_type(), "workflow_type", kMaxWorkflowTypeLength));
    filter.type = request.workflow_type();
  }
  OP_ASSIGN_OR_RETURN(filter.status, StatusFilterFromProto(request.status()));
  if (request.has_start_time_from()) {
    OP_ASSIGN_OR_RETURN(filter.from, FilterTime(request.start_time_from(), "start_time_from"));
  }
  if (request.has_start_time_to()) {
    OP_ASSIGN_OR_RETURN(filter.to, FilterTime(request.start_time_to(), "start_time_to"));
  }
  if (filter.from > filter.to) {
    return InvalidField("start_time_from", "must not be after start_time_to");
  }
  return filter;
}

// A decoded cursor must be one this service could have issued: a real time and a workflow id.
absl::Status ValidateCursor(const PageCursor& cursor) {
  if (!InTimestampRange(cursor.time) || !ValidateWorkflowId(cursor.id).ok()) {
    return InvalidField("page_token", "is not a valid page token");
  }
  return absl::OkStatus();
}

}  // namespace

void WorkflowToProto(const WorkflowRecord& workflow, absl::Time now, v1::Workflow* proto) {
  proto->set_workflow_id(workflow.id);
  proto->set_workflow_type(workflow.type);
  proto->set_status(StatusToProto(workflow.status));
  std::string reason = workflow.status_reason;
  if (reason.empty() && workflow.cancel_requested && !IsTerminal(workflow.status)) {
    reason = workflow.cancel_reason.empty()
                 ? "cancel requested"
                 : absl::StrCat("cancel requested: ", workflow.cancel_reason);
  }
  proto->set_status_reason(reason);
  proto->set_business_key(workflow.business_key);
  for (const StepRecord& step : workflow.steps) StepToProto(step, proto->add_steps());
  TimeToProto(workflow.created_at, proto->mutable_start_time());
  TimeToProto(workflow.updated_at, proto->mutable_update_time());
  const bool finished = IsTerminal(workflow.status) && workflow.finished_at != absl::InfinitePast();
  if (finished) TimeToProto(workflow.finished_at, proto->mutable_end_time());
  if (workflow.deadline_at != absl::InfiniteFuture()) {
    TimeToProto(workflow.deadline_at, proto->mutable_deadline_time());
  }
  if (workflow.created_at != absl::InfinitePast()) {
    DurationToProto((finished ? workflow.finished_at : now) - workflow.created_at,
                    proto->mutable_duration());
  }
}

void WorkflowServiceHandler::AfterAction(const WorkflowRecord& acted, v1::Workflow* response) {
  if (poke_) poke_();
  absl::StatusOr<WorkflowRecord> reread = store_.Get(acted.id, /*with_steps=*/true);
  WorkflowToProto(reread.ok() ? *reread : acted, absl::Now(), response);
}

grpc::Status WorkflowServiceHandler::GetWorkflow(grpc::ServerContext*,
                                                 const v1::GetWorkflowRequest* request,
                                                 v1::Workflow* response) {
  return HandleRpc("GetWorkflow", {.workflow_id = request->workflow_id()}, [&]() -> absl::Status {
    OP_RETURN_IF_ERROR(ValidateWorkflowId(request->workflow_id()));
    OP_ASSIGN_OR_RETURN(WorkflowRecord workflow,
                        store_.Get(request->workflow_id(), /*with_steps=*/true));
    WorkflowToProto(workflow, absl::Now(), response);
    return absl::OkStatus();
  });
}

// One WaitWorkflow call between its start and its answer. Three things can end the wait: the
// local engine's announcement (the watch), a re-read that finds the workflow settled or the
// timeout passed (a timer task), and the caller's cancel; whichever comes first sets `done_` and
// answers, and the others find it set. Tasks hold a shared_ptr (the watch's callback a weak one),
// so the call outlives whatever may still run for it; `reactor_` and `response_` are gRPC's until
// Finish and are not touched after it.
class WorkflowServiceHandler::WaitCall : public std::enable_shared_from_this<WaitCall> {
 public:
  WaitCall(WorkflowServiceHandler* handler, grpc::ServerUnaryReactor* reactor,
           v1::Workflow* response, std::string workflow_id, absl::Time until)
      : handler_(*handler),
        reactor_(reactor),
        response_(response),
        id_(std::move(workflow_id)),
        until_(until) {}

  // Registers the watch, then reads at once, or (when the local engine runs the workflow and will
  // announce its end) first waits for the announcement or the first re-read.
  void Start() {
    const std::shared_ptr<WaitCall> self = shared_from_this();
    if (handler_.waiters_ != nullptr) {
      // A weak reference: the watch is this call's, and must not keep it alive.
      absl::StatusOr<std::unique_ptr<WorkflowWaiters::Watch>> watch =
          handler_.waiters_->Register(id_, [weak = weak_from_this()] {
            if (std::shared_ptr<WaitCall> call = weak.lock()) call->Announced();
          });
      if (!watch.ok()) {
        FinishWith(ToGrpcStatus(watch.status(), "WaitWorkflow", {.workflow_id = id_}));
        return;
      }
      absl::MutexLock lock(&mu_);
      // Answered already (the registry is closed, or the workflow settled just now): the answer
      // is on its way, and this watch is dropped on return.
      if (done_) return;
      watch_ = *std::move(watch);
    }
    // A workflow the local engine runs exists and will be announced when it settles (after the
    // watch registered above, or before it: then the re-read finds it): no first read.
    const bool read_first =
        handler_.waiters_ == nullptr || !handler_.running_here_ || !handler_.running_here_(id_);
    if (read_first) {
      handler_.wait_runner_.Run([self] { self->Check(); });
    } else {
      ScheduleCheck();
    }
  }

  // The caller cancelled: answered at once, without reading.
  void Cancelled() {
    FinishWith(grpc::Status(grpc::StatusCode::CANCELLED, "the caller cancelled the wait"));
  }

 private:
  // The watch's callback, under the registry's lock: the answer is read elsewhere.
  void Announced() {
    const std::shared_ptr<WaitCall> self = shared_from_this();
    handler_.wait_runner_.Run([self] { self->Answer(); });
  }

  // A re-read (without steps: one short read) on the runner.
  void Check() {
    {
      absl::MutexLock lock(&mu_);
      if (done_) return;
      timer_ = 0;
    }
    bool settled = false;
    const grpc::Status read =
        HandleRpc("WaitWorkflow", {.workflow_id = id_}, [&]() -> absl::Status {
          OP_ASSIGN_OR_RETURN(const WorkflowRecord workflow,
                              handler_.store_.Get(id_, /*with_steps=*/false));
          settled = Settled(workflow.status);
          return absl::OkStatus();
        });
    if (!read.ok()) {
      FinishWith(read);
      return;
    }
    if (settled || absl::Now() >= until_) {
      Answer();
      return;
    }
    ScheduleCheck();
  }

  // The next re-read: at 200 ms, then at doubling intervals of at most 1 s, or at the timeout.
  void ScheduleCheck() {
    const std::shared_ptr<WaitCall> self = shared_from_this();
    absl::MutexLock lock(&mu_);
    if (done_) return;
    const absl::Time at = std::min(until_, absl::Now() + recheck_);
    recheck_ = std::min(2 * recheck_, kMaxRecheck);
    timer_ = handler_.wait_runner_.RunAt(at, [self] { self->Check(); });
  }

  // The answer: the workflow as it is now, with its steps.
  void Answer() {
    if (!Claim()) return;
    // HandleRpc maps the status, and an exception (which the store should never throw) becomes
    // INTERNAL rather than ending the process from a runner thread.
    Finish(HandleRpc("WaitWorkflow", {.workflow_id = id_}, [&]() -> absl::Status {
      OP_ASSIGN_OR_RETURN(const WorkflowRecord workflow,
                          handler_.store_.Get(id_, /*with_steps=*/true));
      WorkflowToProto(workflow, absl::Now(), response_);
      return absl::OkStatus();
    }));
  }

  void FinishWith(const grpc::Status& status) {
    if (!Claim()) return;
    Finish(status);
  }

  // True for the one caller that ends the wait: it alone calls Finish. The watch and the pending
  // re-read are dropped (so nothing is held for this call any longer).
  bool Claim() {
    std::unique_ptr<WorkflowWaiters::Watch> watch;
    TaskRunner::TaskId timer = 0;
    {
      absl::MutexLock lock(&mu_);
      if (done_) return false;
      done_ = true;
      watch = std::move(watch_);
      timer = timer_;
    }
    if (timer != 0) handler_.wait_runner_.Cancel(timer);
    // `watch` unregisters on return, outside mu_: its callback runs under the registry's lock,
    // which is never taken while mu_ is held.
    return true;
  }

  void Finish(const grpc::Status& status) { reactor_->Finish(status); }

  WorkflowServiceHandler& handler_;
  grpc::ServerUnaryReactor* const reactor_;
  v1::Workflow* const response_;
  const std::string id_;
  const absl::Time until_;
  absl::Mutex mu_;
  bool done_ ABSL_GUARDED_BY(mu_) = false;
  std::unique_ptr<WorkflowWaiters::Watch> watch_ ABSL_GUARDED_BY(mu_);
  TaskRunner::TaskId timer_ ABSL_GUARDED_BY(mu_) = 0;
  absl::Duration recheck_ ABSL_GUARDED_BY(mu_) = kFirstRecheck;
};

namespace {

// The call's reactor: hands the caller's cancel to the wait and frees itself when gRPC is done.
// `on_cancel` holds the wait, so the wait lives at least as long as the reactor.
class WaitReactor final : public grpc::ServerUnaryReactor {
 public:
  void set_on_cancel(std::function<void()> on_cancel) { on_cancel_ = std::move(on_cancel); }
  void OnCancel() override {
    if (on_cancel_) on_cancel_();
  }
  void OnDone() override { delete this; }

 private:
  std::function<void()> on_cancel_;
};

}  // namespace

WorkflowServiceHandler::~WorkflowServiceHandler() { wait_runner_.Stop(); }

grpc::ServerUnaryReactor* WorkflowServiceHandler::WaitWorkflow(
    grpc::CallbackServerContext* context, const v1::WaitWorkflowRequest* request,
    v1::Workflow* response) {
  auto* reactor = new WaitReactor();
  absl::Time until;
  const grpc::Status valid =
      HandleRpc("WaitWorkflow", {.workflow_id = request->workflow_id()}, [&]() -> absl::Status {
        OP_RETURN_IF_ERROR(ValidateWorkflowId(request->workflow_id()));
        OP_ASSIGN_OR_RETURN(const absl::Duration timeout, WaitTimeout(*request));
        until = std::min(absl::Now() + timeout,
                         absl::FromChrono(context->deadline()) - kDeadlineMargin);
        return absl::OkStatus();
      });
  if (!valid.ok()) {
    reactor->Finish(valid);
    return reactor;
  }
  auto call = std::make_shared<WaitCall>(this, reactor, response, request->workflow_id(), until);
  reactor->set_on_cancel([call] { call->Cancelled(); });
  call->Start();
  return reactor;
}

grpc::Status WorkflowServiceHandler::ListWorkflows(grpc::ServerContext*,
                                                   const v1::ListWorkflowsRequest* request,
                                                   v1::ListWorkflowsResponse* response) {
  return HandleRpc("ListWorkflows", {}, [&]() -> absl::Status {
    OP_ASSIGN_OR_RETURN(ListFilter filter, ListFilterFromProto(*request));
    db::WorkflowListQuery query;
    query.type = filter.type;
    query.status = filter.status;
    query.created_from = filter.from;
    query.created_to = filter.to;
    OP_RETURN_IF_ERROR(ValidatePageSize(request->page_size(), "page_size", kDefaultPageSize,
                                        kMaxPageSize, &query.page_size));
    const uint64_t fingerprint = filter.Fingerprint();
    OP_ASSIGN_OR_RETURN(query.after, DecodePageToken(request->page_token(), fingerprint));
    if (query.after) OP_RETURN_IF_ERROR(ValidateCursor(*query.after));
    OP_ASSIGN_OR_RETURN(db::WorkflowPage page, store_.List(query));
    const absl::Time now = absl::Now();
    for (const WorkflowRecord& workflow : page.workflows) {
      WorkflowToProto(workflow, now, response->add_workflows());
    }
    if (page.next) response->set_next_page_token(EncodePageToken(*page.next, fingerprint));
    return absl::OkStatus();
  });
}

grpc::Status WorkflowServiceHandler::CancelWorkflow(grpc::ServerContext*,
                                                    const v1::CancelWorkflowRequest* request,
                                                    v1::Workflow* response) {
  return HandleRpc(
      "CancelWorkflow",
      {.request_id = request->request_id(), .workflow_id = request->workflow_id()},
      [&]() -> absl::Status {
        OP_RETURN_IF_ERROR(ValidateRequestId(request->request_id()));
        OP_RETURN_IF_ERROR(ValidateWorkflowId(request->workflow_id()));
        OP_RETURN_IF_ERROR(ValidateText(request->reason(), "reason", kMaxReasonBytes, false));
        OP_ASSIGN_OR_RETURN(WorkflowRecord acted,
                            store_.RequestCancel(request->workflow_id(), request->reason()));
        AfterAction(acted, response);
        return absl::OkStatus();
      });
}

grpc::Status WorkflowServiceHandler::SignalWorkflow(grpc::ServerContext*,
                                                    const v1::SignalWorkflowRequest* request,
                                                    v1::Workflow* response) {
  return HandleRpc(
      "SignalWorkflow",
      {.request_id = request->request_id(), .workflow_id = request->workflow_id()},
      [&]() -> absl::Status {
        OP_RETURN_IF_ERROR(ValidateRequestId(request->request_id()));
        OP_RETURN_IF_ERROR(ValidateWorkflowId(request->workflow_id()));
        OP_RETURN_IF_ERROR(
            ValidateIdentifier(request->signal_name(), "signal_name", kMaxSignalNameLength));
        if (request->payload().size() > kMaxPayloadBytes) {
          return InvalidField("payload",
                              absl::StrCat("must be at most ", kMaxPayloadBytes, " bytes"));
        }
        OP_ASSIGN_OR_RETURN(WorkflowRecord acted,
                            store_.Signal(request->workflow_id(), request->signal_name(),
                                          request->payload(), request->request_id()));
        AfterAction(acted, response);
        return absl::OkStatus();
      });
}

grpc::Status WorkflowServiceHandler::RetryWorkflow(grpc::ServerContext*,
                                                   const v1::RetryWorkflowRequest* request,
                                                   v1::Workflow* response) {
  return HandleRpc(
      "RetryWorkflow", {.request_id = request->request_id(), .workflow_id = request->workflow_id()},
      [&]() -> absl::Status {
        OP_RETURN_IF_ERROR(ValidateRequestId(request->request_id()));
        OP_RETURN_IF_ERROR(ValidateWorkflowId(request->workflow_id()));
        OP_ASSIGN_OR_RETURN(WorkflowRecord acted,
                            store_.Retry(request->workflow_id(), request->request_id()));
        AfterAction(acted, response);
        return absl::OkStatus();
      });
}

}  // namespace order_platform::saga
