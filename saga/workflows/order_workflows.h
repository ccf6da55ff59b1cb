// The platform's order workflows on the saga engine:
//
//   PlaceOrder  (started by CreateOrder in the order's own transaction)
//     reserve_stock       -> compensation release_stock
//     authorize_payment   -> compensation void_payment
//     confirm_order       local step, PIVOT: the order becomes CONFIRMED with its checkpoint
//     capture_payment     retried until it succeeds (never compensated)
//     commit_reservation  retried until it succeeds
//   Out of stock, an unknown product, a declined card or exhausted retries end with the
//   compensations run and the order REJECTED with a readable reason; a cancel before the pivot
//   ends with the order CANCELLED. Both are written in the transaction that ends the workflow.
//   Confirmations and rejections are reported to OrderWorkflowOptions::events once committed.
//
//   RefundOrder (CancelOrder on a CONFIRMED order)
//     find_payment (pivot) -> refund_payment -> return_stock -> cancel_order (local)
//
// Participants are reached over gRPC in every deployment shape, each call carrying an
// idempotency key derived from the workflow id and the step name as its request_id.
#pragma once

#include <memory>
#include <string>

#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "db/pg_workflow_store.h"
#include "order_platform/inventory/v1/inventory.grpc.pb.h"
#include "order_platform/payments/v1/payments.grpc.pb.h"
#include "saga/workflow.h"
#include "services/common/business_events.h"
#include "services/orders/order.h"
#include "services/orders/order_service.h"

namespace order_platform::saga {

inline constexpr char kPlaceOrderType[] = "PlaceOrder";
inline constexpr char kRefundOrderType[] = "RefundOrder";

// The participants the order workflows call. Stubs must outlive the workflows; thread-safe.
struct OrderParticipants {
  inventory::v1::InventoryService::StubInterface* inventory = nullptr;
  payments::v1::PaymentService::StubInterface* payments = nullptr;
};

// Timeouts and retries of the participant calls before the pivot.
struct OrderWorkflowOptions {
  // Deadline of each participant call (propagated as the gRPC deadline).
  absl::Duration step_timeout = absl::Seconds(5);
  // Attempts of reserve_stock and authorize_payment before the order is rejected.
  int max_attempts = 6;
  absl::Duration initial_backoff = absl::Milliseconds(100);
  absl::Duration max_backoff = absl::Seconds(5);
  // Told of each order confirmed (when confirm_order commits, not when it replays) and rejected
  // (when the workflow that rejects it has ended). Null: nobody. Must outlive the workflows.
  BusinessEvents* events = nullptr;
};

// The rejection an order's status reason names, for metrics: PlaceOrder's reasons start with
// "out of stock: ", "unknown product: ", "payment declined: " or "payment could not be
// authorized: "; the engine's kDeadlineExceededReason is kDeadlineExceeded; anything else (stock
// that could not be reserved, ...) is kOther.
OrderRejection PlaceOrderRejection(absl::string_view reason);

// The workflow definitions, ready to register with an Engine.
WorkflowDefinition PlaceOrderWorkflow(const OrderParticipants& participants,
                                      const OrderWorkflowOptions& options = {});
WorkflowDefinition RefundOrderWorkflow(const OrderParticipants& participants,
                                       const OrderWorkflowOptions& options = {});

// How CreateOrder starts an order's PlaceOrder workflow (for
// db::PgOrderRepository::SetWorkflowLauncher). The workflow's deadline is the order's
// confirm_within, else `deadline`: an order not confirmed (the pivot) that long after its creation
// is rejected, its stock released and its authorization voided (infinite: no deadline).
db::WorkflowStart PlaceOrderStart(const orders::Order& order, absl::Duration deadline);

// orders::OrderWorkflows on the engine's store: cancel = cancel the PlaceOrder workflow;
// refund = start the RefundOrder workflow. `poke` wakes the local engine (may be empty).
class EngineOrderWorkflows final : public orders::OrderWorkflows {
 public:
  EngineOrderWorkflows(db::PgWorkflowStore* store, std::function<void()> poke)
      : store_(*store), poke_(std::move(poke)) {}
  absl::Status CancelInFlight(const orders::Order& order, const std::string& reason) override;
  absl::Status StartRefund(const orders::Order& order, const std::string& reason) override;

 private:
  db::PgWorkflowStore& store_;
  std::function<void()> poke_;
};

}  // namespace order_platform::saga
