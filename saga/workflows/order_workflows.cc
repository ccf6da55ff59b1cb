#include "saga/workflows/order_workflows.h"

#include <grpcpp/grpcpp.h>

#include <optional>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "db/pg_order_repository.h"
#include "saga/context.h"
#include "services/common/errors.h"
#include "services/common/grpc_edge.h"
#include "services/orders/order_handler.h"

namespace order_platform::saga {
namespace {

namespace inv = ::order_platform::inventory::v1;
namespace pay = ::order_platform::payments::v1;
using ::order_platform::orders::OrderStatus;

std::unique_ptr<grpc::ClientContext> CallContext(absl::Time deadline) {
  auto context = std::make_unique<grpc::ClientContext>();
  context->set_deadline(absl::ToChronoTime(deadline));
  return context;
}

// Runs a unary call and returns the serialized response, or the call's status.
template <typename Response, typename Call>
absl::StatusOr<std::string> Invoke(absl::Time deadline, Call call) {
  Response response;
  auto context = CallContext(deadline);
  grpc::Status status = call(context.get(), &response);
  if (!status.ok()) return FromGrpcStatus(status);
  return response.SerializeAsString();
}

template <typename Message>
absl::StatusOr<Message> Parse(const std::string& bytes) {
  Message message;
  if (!message.ParseFromString(bytes)) return absl::DataLossError("unreadable step result");
  return message;
}

// Before the pivot: bounded retries; refusals (RetryPolicy's non-retryable codes) end at once.
RetryPolicy ParticipantRetry(const OrderWorkflowOptions& options) {
  RetryPolicy policy;
  policy.initial_interval = options.initial_backoff;
  policy.maximum_interval = options.max_backoff;
  policy.maximum_attempts = options.max_attempts;
  return policy;
}

// After the pivot, and for refunds: keep trying, more patiently, whatever the error.
RetryPolicy UntilDone() {
  RetryPolicy policy = RetryPolicy::Forever();
  policy.initial_interval = absl::Milliseconds(200);
  policy.maximum_interval = absl::Seconds(30);
  policy.non_retryable_codes.clear();
  return policy;
}

std::string AuthorizeKey(const std::string& workflow_id) {
  return absl::StrCat(workflow_id, "/authorize_payment");
}

// Compensation arguments of void_payment: the order and the authorization's request id.
std::string VoidArgs(const std::string& order_id, const std::string& authorize_key) {
  return absl::StrCat(order_id, "\n", authorize_key);
}

absl::StatusOr<orders::v1::Order> OrderInput(const std::string& input) {
  return Parse<orders::v1::Order>(input);
}

// The payment an authorization request created for an order, if any.
absl::StatusOr<std::optional<pay::Payment>> FindPayment(
    pay::PaymentService::StubInterface& payments, const std::string& order_id,
    const std::string& authorize_key, absl::Time deadline) {
  pay::ListPaymentsRequest request;
  request.set_order_id(order_id);
  request.set_page_size(100);
  pay::ListPaymentsResponse response;
  auto context = CallContext(deadline);
  grpc::Status status = payments.ListPayments(context.get(), request, &response);
  if (!status.ok()) return FromGrpcStatus(status);
  for (const pay::Payment& p : response.payments()) {
    if (authorize_key.empty() || p.request_id() == authorize_key) {
      return std::optional<pay::Payment>(p);
    }
  }
  return std::optional<pay::Payment>();
}

// How PlaceOrder's rejection reasons begin ("<prefix>: <detail>"); PlaceOrderRejection reads
// them back.
constexpr absl::string_view kOutOfStock = "out of stock";
constexpr absl::string_view kUnknownProduct = "unknown product";
constexpr absl::string_view kPaymentDeclined = "payment declined";
constexpr absl::string_view kPaymentFailed = "payment could not be authorized";

// A readable reason for a failed forward step of PlaceOrder.
absl::Status Rejection(absl::string_view what, const absl::Status& error) {
  return absl::Status(error.code(), absl::StrCat(what, ": ", error.message()));
}

absl::StatusOr<std::string> RunPlaceOrder(const OrderParticipants& p,
                                          const OrderWorkflowOptions& o, WorkflowContext& ctx,
                                          const std::string& input) {
  OP_ASSIGN_OR_RETURN(orders::v1::Order order, OrderInput(input));
  const std::string& order_id = order.order_id();

  StepOptions reserve;
  reserve.name = "reserve_stock";
  reserve.retry = ParticipantRetry(o);
  reserve.timeout = o.step_timeout;
  reserve.compensation = "release_stock";
  reserve.compensation_args = order_id;
  absl::StatusOr<std::string> reserved = ctx.Step(reserve, [&](const StepCall& call) {
    inv::ReserveStockRequest request;
    request.set_request_id(call.idempotency_key);
    request.set_order_id(order_id);
    for (const orders::v1::OrderItem& item : order.items()) {
      inv::ReservationItem* out = request.add_items();
      out->set_sku(item.sku());
      out->set_quantity(item.quantity());
    }
    return Invoke<inv::Reservation>(call.deadline, [&](grpc::ClientContext* c, inv::Reservation* r) {
      return p.inventory->ReserveStock(c, request, r);
    });
  });
  if (!reserved.ok()) {
    // The run stopped (suspended, past its deadline, cancelled, lease lost): not the step's
    // outcome, and its status goes back as it is (the deadline's reason is the engine's).
    if (!ctx.stop_status().ok()) return reserved.status();
    switch (reserved.status().code()) {
      case absl::StatusCode::kFailedPrecondition:
        return Rejection(kOutOfStock, reserved.status());
      case absl::StatusCode::kNotFound:
        return Rejection(kUnknownProduct, reserved.status());
      default:
        return Rejection("could not reserve stock", reserved.status());
    }
  }

  StepOptions authorize;
  authorize.name = "authorize_payment";
  authorize.retry = ParticipantRetry(o);
  authorize.timeout = o.step_timeout;
  authorize.compensation = "void_payment";
  authorize.compensation_args = VoidArgs(order_id, AuthorizeKey(ctx.workflow_id()));
  absl::StatusOr<std::string> authorized = ctx.Step(authorize, [&](const StepCall& call) {
    pay::AuthorizePaymentRequest request;
    request.set_request_id(call.idempotency_key);
    request.set_order_id(order_id);
    *request.mutable_amount() = order.total();
    request.set_payment_token(order.payment_token());
    return Invoke<pay::Payment>(call.deadline, [&](grpc::ClientContext* c, pay::Payment* r) {
      return p.payments->AuthorizePayment(c, request, r);
    });
  });
  if (!authorized.ok()) {
    if (!ctx.stop_status().ok()) return authorized.status();  // As for reserve_stock.
    return Rejection(kPaymentFailed, authorized.status());
  }
  OP_ASSIGN_OR_RETURN(pay::Payment payment, Parse<pay::Payment>(*authorized));
  if (payment.status() == pay::PAYMENT_STATUS_DECLINED) {
    return absl::FailedPreconditionError(
        absl::StrCat(kPaymentDeclined, ": ", payment.decline_reason()));
  }

  StepOptions confirm;
  confirm.name = "confirm_order";
  confirm.pivot = true;
  confirm.retry = ParticipantRetry(o);
  bool confirmed_now = false;  // The update ran and committed here; not a replay of the step.
  OP_RETURN_IF_ERROR(ctx.LocalStep(confirm, [&](pqxx::transaction_base& tx)
                                                -> absl::StatusOr<std::string> {
                          confirmed_now = true;
                          OP_RETURN_IF_ERROR(db::PgOrderRepository::TransitionInTransaction(
                              tx, order_id, OrderStatus::kConfirmed, ""));
                          return std::string();
                        }).status());
  if (confirmed_now && o.events != nullptr) o.events->OrderConfirmed();

  StepOptions capture;
  capture.name = "capture_payment";
  capture.retry = UntilDone();
  capture.timeout = 2 * o.step_timeout;
  OP_RETURN_IF_ERROR(ctx.Step(capture, [&](const StepCall& call) {
                          pay::CapturePaymentRequest request;
                          request.set_request_id(call.idempotency_key);
                          request.set_payment_id(payment.payment_id());
                          return Invoke<pay::Payment>(
                              call.deadline, [&](grpc::ClientContext* c, pay::Payment* r) {
                                return p.payments->CapturePayment(c, request, r);
                              });
                        }).status());

  StepOptions commit;
  commit.name = "commit_reservation";
  commit.retry = UntilDone();
  OP_RETURN_IF_ERROR(ctx.Step(commit, [&](const StepCall& call) {
                          inv::CommitReservationRequest request;
                          request.set_request_id(call.idempotency_key);
                          request.set_order_id(order_id);
                          return Invoke<inv::Reservation>(
                              call.deadline, [&](grpc::ClientContext* c, inv::Reservation* r) {
                                return p.inventory->CommitReservation(c, request, r);
                              });
                        }).status());
  return std::string();
}

absl::Status ReleaseStock(const OrderParticipants& p, const CompensationCall& call) {
  inv::ReleaseReservationRequest request;
  request.set_request_id(call.idempotency_key);
  request.set_order_id(call.args);
  inv::Reservation reservation;
  auto context = CallContext(call.deadline);
  grpc::Status status = p.inventory->ReleaseReservation(context.get(), request, &reservation);
  // No reservation: the reserve never took effect, so there is nothing to undo.
  if (status.error_code() == grpc::StatusCode::NOT_FOUND) return absl::OkStatus();
  return FromGrpcStatus(status);
}

absl::Status VoidPayment(const OrderParticipants& p, const CompensationCall& call) {
  const size_t newline = call.args.find('\n');
  const std::string order_id = call.args.substr(0, newline);
  const std::string authorize_key =
      newline == std::string::npos ? std::string() : call.args.substr(newline + 1);
  OP_ASSIGN_OR_RETURN(std::optional<pay::Payment> payment,
                      FindPayment(*p.payments, order_id, authorize_key, call.deadline));
  if (!payment.has_value()) return absl::OkStatus();  // Never authorized: nothing to undo.
  pay::VoidPaymentRequest request;
  request.set_request_id(call.idempotency_key);
  request.set_payment_id(payment->payment_id());
  pay::Payment voided;
  auto context = CallContext(call.deadline);
  return FromGrpcStatus(p.payments->VoidPayment(context.get(), request, &voided));
}

// What the end of a PlaceOrder workflow makes of its order: REJECTED after a failure, CANCELLED
// after a cancel, nothing otherwise (completed: confirmed by its step; needs attention:
// unresolved).
std::optional<OrderStatus> OrderStatusAtEnd(WorkflowStatus status) {
  switch (status) {
    case WorkflowStatus::kCompensated:
    case WorkflowStatus::kFailed:
      return OrderStatus::kRejected;
    case WorkflowStatus::kCancelled:
      return OrderStatus::kCancelled;
    default:
      return std::nullopt;
  }
}

// Records the workflow's end on the order, in the workflow's finishing transaction.
absl::Status FinishPlaceOrder(pqxx::transaction_base& tx, const FinishInfo& info) {
  const std::optional<OrderStatus> target = OrderStatusAtEnd(info.status);
  if (!target.has_value()) return absl::OkStatus();
  absl::StatusOr<orders::Order> updated = db::PgOrderRepository::UpdateInTransaction(
      tx, info.business_key, [&](orders::Order& o) -> absl::Status {
        if (o.status != OrderStatus::kPending) return absl::CancelledError("already settled");
        return o.TransitionTo(*target, info.reason);
      });
  if (updated.ok() || updated.status().code() == absl::StatusCode::kCancelled) {
    return absl::OkStatus();
  }
  return updated.status();
}

absl::StatusOr<std::string> RunRefundOrder(const OrderParticipants& p,
                                           const OrderWorkflowOptions& o, WorkflowContext& ctx,
                                           const std::string& input) {
  OP_ASSIGN_OR_RETURN(orders::v1::Order order, OrderInput(input));
  const std::string& order_id = order.order_id();
  const std::string place_order_id = orders::PlaceOrderWorkflowId(order_id);

  StepOptions find;
  find.name = "find_payment";
  find.pivot = true;
  find.retry = UntilDone();
  find.timeout = o.step_timeout;
  OP_ASSIGN_OR_RETURN(std::string found, ctx.Step(find, [&](const StepCall& call)
                                                             -> absl::StatusOr<std::string> {
    OP_ASSIGN_OR_RETURN(std::optional<pay::Payment> payment,
                        FindPayment(*p.payments, order_id, AuthorizeKey(place_order_id),
                                    call.deadline));
    if (!payment.has_value()) return absl::NotFoundError("no payment for the order");
    return payment->SerializeAsString();
  }));
  OP_ASSIGN_OR_RETURN(pay::Payment payment, Parse<pay::Payment>(found));

  // The capture runs after the order is confirmed: until it has, the refund is refused with
  // FAILED_PRECONDITION and retried.
  StepOptions refund;
  refund.name = "refund_payment";
  refund.retry = UntilDone();
  OP_RETURN_IF_ERROR(ctx.Step(refund, [&](const StepCall& call) {
                          pay::RefundPaymentRequest request;
                          request.set_request_id(call.idempotency_key);
                          request.set_payment_id(payment.payment_id());
                          request.set_reason(order.status_reason());
                          return Invoke<pay::Payment>(
                              call.deadline, [&](grpc::ClientContext* c, pay::Payment* r) {
                                return p.payments->RefundPayment(c, request, r);
                              });
                        }).status());

  StepOptions restock;
  restock.name = "return_stock";
  restock.retry = UntilDone();
  OP_RETURN_IF_ERROR(ctx.Step(restock, [&](const StepCall& call) {
                          inv::ReturnReservationRequest request;
                          request.set_request_id(call.idempotency_key);
                          request.set_order_id(order_id);
                          return Invoke<inv::Reservation>(
                              call.deadline, [&](grpc::ClientContext* c, inv::Reservation* r) {
                                return p.inventory->ReturnReservation(c, request, r);
                              });
                        }).status());

  StepOptions cancel;
  cancel.name = "cancel_order";
  cancel.retry = UntilDone();
  OP_RETURN_IF_ERROR(ctx.LocalStep(cancel, [&](pqxx::transaction_base& tx)
                                               -> absl::StatusOr<std::string> {
                          absl::StatusOr<orders::Order> updated =
                              db::PgOrderRepository::UpdateInTransaction(
                                  tx, order_id, [&](orders::Order& o) -> absl::Status {
                                    if (o.status == OrderStatus::kCancelled) {
                                      return absl::CancelledError("already cancelled");
                                    }
                                    return o.TransitionTo(OrderStatus::kCancelled,
                                                          order.status_reason());
                                  });
                          if (!updated.ok() &&
                              updated.status().code() != absl::StatusCode::kCancelled) {
                            return updated.status();
                          }
                          return std::string();
                        }).status());
  return std::string();
}

}  // namespace

OrderRejection PlaceOrderRejection(absl::string_view reason) {
  const auto names = [reason](absl::string_view prefix) {
    return absl::StartsWith(reason, absl::StrCat(prefix, ": "));
  };
  if (names(kOutOfStock)) return OrderRejection::kOutOfStock;
  if (names(kUnknownProduct)) return OrderRejection::kUnknownProduct;
  if (names(kPaymentDeclined)) return OrderRejection::kPaymentDeclined;
  if (names(kPaymentFailed)) return OrderRejection::kPaymentFailed;
  if (reason == kDeadlineExceededReason) return OrderRejection::kDeadlineExceeded;
  return OrderRejection::kOther;
}

WorkflowDefinition PlaceOrderWorkflow(const OrderParticipants& participants,
                                      const OrderWorkflowOptions& options) {
  WorkflowDefinition def;
  def.type = kPlaceOrderType;
  def.run = [participants, options](WorkflowContext& ctx, const std::string& input) {
    return RunPlaceOrder(participants, options, ctx, input);
  };
  def.compensations["release_stock"] = [participants](const CompensationCall& call) {
    return ReleaseStock(participants, call);
  };
  def.compensations["void_payment"] = [participants](const CompensationCall& call) {
    return VoidPayment(participants, call);
  };
  def.compensation_retry = UntilDone();
  def.compensation_max_attempts = 8;
  def.on_finish = FinishPlaceOrder;
  def.on_finish_applies = [](WorkflowStatus status) {
    return OrderStatusAtEnd(status).has_value();
  };
  def.after_finish = [events = options.events](const FinishInfo& info) {
    if (events != nullptr && OrderStatusAtEnd(info.status) == OrderStatus::kRejected) {
      events->OrderRejected(PlaceOrderRejection(info.reason));
    }
  };
  return def;
}

WorkflowDefinition RefundOrderWorkflow(const OrderParticipants& participants,
                                       const OrderWorkflowOptions& options) {
  WorkflowDefinition def;
  def.type = kRefundOrderType;
  def.run = [participants, options](WorkflowContext& ctx, const std::string& input) {
    return RunRefundOrder(participants, options, ctx, input);
  };
  return def;
}

db::WorkflowStart PlaceOrderStart(const orders::Order& order, absl::Duration deadline) {
  orders::v1::Order proto;
  orders::OrderToProto(order, &proto);
  return db::WorkflowStart{kPlaceOrderType, order.workflow_id, order.id, proto.SerializeAsString(),
                           order.confirm_within.value_or(deadline)};
}

absl::Status EngineOrderWorkflows::CancelInFlight(const orders::Order& order,
                                                  const std::string& reason) {
  absl::Status status = store_.RequestCancel(order.workflow_id, reason).status();
  if (status.ok() && poke_) poke_();
  return status;
}

absl::Status EngineOrderWorkflows::StartRefund(const orders::Order& order,
                                               const std::string& reason) {
  orders::v1::Order proto;
  orders::OrderToProto(order, &proto);
  proto.set_status_reason(reason);
  absl::StatusOr<bool> started = store_.Start(
      {kRefundOrderType, absl::StrCat("refund-order-", order.id), order.id,
       proto.SerializeAsString()});
  if (started.ok() && poke_) poke_();
  return started.status();
}

}  // namespace order_platform::saga
