#include "services/orders/order_service.h"

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "services/common/errors.h"
#include "services/common/ids.h"
#include "services/common/validation.h"

namespace order_platform::orders {
namespace {

absl::Status ValidateOrderId(absl::string_view id, absl::string_view field) {
  if (id.empty()) return InvalidField(field, "is required");
  if (!IsCanonicalUuid(id)) return InvalidField(field, "must be a UUID");
  return absl::OkStatus();
}

uint64_t ListFingerprint(const ListOrdersParams& params) {
  return Fingerprint(absl::StrCat("orders|", params.customer_id, "|",
                                  params.status ? OrderStatusName(*params.status) : ""));
}

std::string Lower(absl::string_view id) {
  std::string out(id);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

}  // namespace

absl::StatusOr<CreateOrderResult> OrderService::Create(const NewOrder& request) {
  OP_ASSIGN_OR_RETURN(Order order, MakeOrder(request));
  OP_ASSIGN_OR_RETURN(CreateOrderResult result, repository_.Create(order));
  if (!result.created && result.order.request_fingerprint != order.request_fingerprint) {
    return RequestIdReused(request.request_id);
  }
  if (result.created) events_.OrderCreated(result.order.total);
  return result;
}

absl::StatusOr<Order> OrderService::Get(absl::string_view order_id) {
  OP_RETURN_IF_ERROR(ValidateOrderId(order_id, "order_id"));
  return repository_.Get(Lower(order_id));
}

absl::StatusOr<ListOrdersResult> OrderService::List(const ListOrdersParams& params) {
  OrderListQuery query;
  if (!params.customer_id.empty()) {
    OP_RETURN_IF_ERROR(ValidateIdentifier(params.customer_id, "customer_id"));
    query.customer_id = params.customer_id;
  }
  query.status = params.status;
  OP_RETURN_IF_ERROR(ValidatePageSize(params.page_size, "page_size", kDefaultPageSize,
                                      kMaxPageSize, &query.page_size));
  const uint64_t fingerprint = ListFingerprint(params);
  OP_ASSIGN_OR_RETURN(query.after, DecodePageToken(params.page_token, fingerprint));
  if (query.after && !IsCanonicalUuid(query.after->id)) {
    return InvalidField("page_token", "is not a valid page token");
  }
  OP_ASSIGN_OR_RETURN(OrderPage page, repository_.List(query));
  ListOrdersResult result;
  result.orders = std::move(page.orders);
  if (page.next) result.next_page_token = EncodePageToken(*page.next, fingerprint);
  return result;
}

absl::StatusOr<BatchGetResult> OrderService::BatchGet(const std::vector<std::string>& order_ids) {
  if (order_ids.empty()) return InvalidField("order_ids", "at least one id is required");
  if (order_ids.size() > kMaxBatchGet) {
    return InvalidField("order_ids", absl::StrCat("at most ", kMaxBatchGet, " ids"));
  }
  std::vector<std::string> unique;
  absl::flat_hash_map<std::string, size_t> seen;
  for (size_t i = 0; i < order_ids.size(); ++i) {
    OP_RETURN_IF_ERROR(ValidateOrderId(order_ids[i], absl::StrCat("order_ids[", i, "]")));
    std::string id = Lower(order_ids[i]);
    if (seen.emplace(id, unique.size()).second) unique.push_back(std::move(id));
  }
  OP_ASSIGN_OR_RETURN(std::vector<Order> found, repository_.BatchGet(unique));
  absl::flat_hash_map<std::string, Order*> by_id;
  for (Order& order : found) by_id[order.id] = &order;
  BatchGetResult result;
  for (const std::string& id : unique) {
    if (auto it = by_id.find(id); it != by_id.end()) {
      result.orders.push_back(std::move(*it->second));
    } else {
      result.missing_ids.push_back(id);
    }
  }
  return result;
}

absl::StatusOr<Order> OrderService::Cancel(const CancelOrderParams& params) {
  OP_RETURN_IF_ERROR(ValidateRequestId(params.request_id));
  OP_RETURN_IF_ERROR(ValidateOrderId(params.order_id, "order_id"));
  OP_RETURN_IF_ERROR(ValidateText(params.reason, "reason", kMaxReasonLength, false));
  if (params.expected_version < 0) {
    return InvalidField("expected_version", "must not be negative");
  }
  const std::string id = Lower(params.order_id);
  if (workflows_ != nullptr) return CancelThroughWorkflow(params, id);
  bool replay = false;
  absl::StatusOr<Order> updated = repository_.Update(id, [&](Order& order) -> absl::Status {
    replay = false;
    if (order.status == OrderStatus::kCancelled && order.cancel_request_id == params.request_id) {
      replay = true;
      return absl::CancelledError("replay");  // Nothing to save; reported below.
    }
    if (params.expected_version != 0 && order.version != params.expected_version) {
      return absl::AbortedError(absl::StrCat("order ", order.id, " is at version ", order.version,
                                             ", not ", params.expected_version,
                                             "; re-read it and try again"));
    }
    if (order.status == OrderStatus::kConfirmed) {
      return absl::FailedPreconditionError(
          absl::StrCat("order ", order.id,
                       " is confirmed; cancelling it requires a refund by its workflow"));
    }
    order.cancel_request_id = params.request_id;
    return order.TransitionTo(OrderStatus::kCancelled,
                              params.reason.empty() ? "cancelled by request" : params.reason);
  });
  if (replay) return repository_.Get(id);
  if (updated.ok()) events_.OrderCancelled();
  return updated;
}

absl::StatusOr<Order> OrderService::CancelThroughWorkflow(const CancelOrderParams& params,
                                                        const std::string& id) {
  OP_ASSIGN_OR_RETURN(Order order, repository_.Get(id));
  const bool replay = order.cancel_request_id == params.request_id;
  if (!replay) {
    if (params.expected_version != 0 && order.version != params.expected_version) {
      return absl::AbortedError(absl::StrCat("order ", order.id, " is at version ", order.version,
                                             ", not ", params.expected_version,
                                             "; re-read it and try again"));
    }
    if (IsTerminal(order.status)) {
      return absl::FailedPreconditionError(absl::StrCat(
          "order ", order.id, " is already ", OrderStatusName(order.status)));
    }
    const std::string reason = params.reason.empty() ? "cancelled by request" : params.reason;
    if (order.status == OrderStatus::kPending) {
      absl::Status cancelled = workflows_->CancelInFlight(order, reason);
      if (cancelled.code() == absl::StatusCode::kFailedPrecondition) {
        // Past the pivot: the order is being confirmed. Once confirmed, refund it instead.
        OP_ASSIGN_OR_RETURN(order, repository_.Get(id));
        if (order.status != OrderStatus::kConfirmed) {
          return absl::FailedPreconditionError(absl::StrCat(
              "order ", order.id, " is being confirmed; cancel it again in a moment to refund it"));
        }
        cancelled = workflows_->StartRefund(order, reason);
      }
      OP_RETURN_IF_ERROR(cancelled);
    } else {
      OP_RETURN_IF_ERROR(workflows_->StartRefund(order, reason));
    }
    // Remember who asked, so a replay of this request returns the order unchanged.
    absl::StatusOr<Order> marked = repository_.Update(id, [&](Order& o) -> absl::Status {
      if (!o.cancel_request_id.empty()) return absl::CancelledError("already marked");
      o.cancel_request_id = params.request_id;
      return absl::OkStatus();
    });
    if (marked.ok()) events_.OrderCancelled();
  }
  // Give the workflow a moment to finish, so callers usually see CANCELLED.
  const absl::Time give_up = absl::Now() + cancel_wait_;
  while (true) {
    OP_ASSIGN_OR_RETURN(order, repository_.Get(id));
    if (IsTerminal(order.status) || absl::Now() >= give_up) return order;
    absl::SleepFor(absl::Milliseconds(25));
  }
}

}  // namespace order_platform::orders
