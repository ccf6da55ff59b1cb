// Unit tests for the order domain (services/orders/order.h) and the order use cases
// (services/orders/order_service.h) on the in-memory repository: request validation with field
// paths, exact totals, the status state machine, idempotent create and cancel, batch reads and
// keyset paging.
#include "services/orders/order.h"

#include <cstdint>
#include <functional>
#include <limits>
#include <ostream>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "services/common/errors.h"
#include "services/common/ids.h"
#include "services/common/page_token.h"
#include "services/orders/memory_order_repository.h"
#include "services/orders/order_service.h"

namespace order_platform::orders {
namespace {

constexpr int64_t kMaxMinor = std::numeric_limits<int64_t>::max();

// A valid three-item USD order: 3 x 19.99 + 2 x 2.50 + 1 x 0.01 = 64.98.
NewOrder ValidRequest(std::string request_id = "req-1", std::string customer_id = "alice") {
  NewOrder request;
  request.request_id = std::move(request_id);
  request.customer_id = std::move(customer_id);
  request.payment_token = "tok_approve";
  request.items = {
      OrderItem{"SKU-A", 3, Money{"USD", 1999}},
      OrderItem{"SKU-B", 2, Money{"USD", 250}},
      OrderItem{"SKU-C", 1, Money{"USD", 1}},
  };
  return request;
}

NewOrder WithItems(int count) {
  NewOrder request = ValidRequest();
  request.items.clear();
  for (int i = 0; i < count; ++i) {
    request.items.push_back(OrderItem{absl::StrCat("SKU-", i), 1, Money{"USD", 100}});
  }
  return request;
}

// ================================================================================================
// MakeOrder: validation
// ================================================================================================

struct InvalidOrderCase {
  std::string name;
  std::function<void(NewOrder&)> mutate;
  std::string field;
  std::string message;
};

void PrintTo(const InvalidOrderCase& c, std::ostream* os) { *os << c.name; }

class MakeOrderRejectsTest : public ::testing::TestWithParam<InvalidOrderCase> {};

TEST_P(MakeOrderRejectsTest, WithFieldPathAndMessage) {
  NewOrder request = ValidRequest();
  GetParam().mutate(request);
  absl::StatusOr<Order> order = MakeOrder(request);
  ASSERT_EQ(order.status().code(), absl::StatusCode::kInvalidArgument) << order.status();
  EXPECT_EQ(FieldOf(order.status()), GetParam().field);
  EXPECT_EQ(order.status().message(), GetParam().message);
}

INSTANTIATE_TEST_SUITE_P(
    EveryField, MakeOrderRejectsTest,
    ::testing::Values(
        InvalidOrderCase{"MissingRequestId", [](NewOrder& r) { r.request_id = ""; }, "request_id",
                         "request_id: is required"},
        InvalidOrderCase{"RequestIdOver128", [](NewOrder& r) { r.request_id.assign(129, 'r'); },
                         "request_id", "request_id: must be at most 128 characters"},
        InvalidOrderCase{"RequestIdWithControl", [](NewOrder& r) { r.request_id = "req\n1"; },
                         "request_id", "request_id: must be printable ASCII without spaces"},
        InvalidOrderCase{"MissingCustomerId", [](NewOrder& r) { r.customer_id = ""; },
                         "customer_id", "customer_id: is required"},
        InvalidOrderCase{"CustomerIdOver64", [](NewOrder& r) { r.customer_id.assign(65, 'c'); },
                         "customer_id", "customer_id: must be at most 64 characters"},
        InvalidOrderCase{"CustomerIdWithSpace", [](NewOrder& r) { r.customer_id = "alice smith"; },
                         "customer_id", "customer_id: must be printable ASCII without spaces"},
        InvalidOrderCase{"MissingPaymentToken", [](NewOrder& r) { r.payment_token = ""; },
                         "payment_token", "payment_token: is required"},
        InvalidOrderCase{"PaymentTokenOver128",
                         [](NewOrder& r) { r.payment_token.assign(129, 't'); }, "payment_token",
                         "payment_token: must be at most 128 characters"},
        InvalidOrderCase{"ConfirmWithinUnderASecond",
                         [](NewOrder& r) { r.confirm_within = absl::Milliseconds(999); },
                         "confirm_within", "confirm_within: must be between 1s and 30 days"},
        InvalidOrderCase{"ConfirmWithinZero",
                         [](NewOrder& r) { r.confirm_within = absl::ZeroDuration(); },
                         "confirm_within", "confirm_within: must be between 1s and 30 days"},
        InvalidOrderCase{
            "ConfirmWithinOver30Days",
            [](NewOrder& r) { r.confirm_within = absl::Hours(24 * 30) + absl::Nanoseconds(1); },
            "confirm_within", "confirm_within: must be between 1s and 30 days"},
        InvalidOrderCase{"NoItems", [](NewOrder& r) { r.items.clear(); }, "items",
                         "items: at least one item is required"},
        InvalidOrderCase{"MoreThan100Items", [](NewOrder& r) { r = WithItems(101); }, "items",
                         "items: at most 100 items"},
        InvalidOrderCase{"MissingSku", [](NewOrder& r) { r.items[1].sku = ""; }, "items[1].sku",
                         "items[1].sku: is required"},
        InvalidOrderCase{"SkuWithSpace", [](NewOrder& r) { r.items[2].sku = "SKU C"; },
                         "items[2].sku", "items[2].sku: must match [A-Za-z0-9._-]+"},
        InvalidOrderCase{"SkuOver64", [](NewOrder& r) { r.items[0].sku.assign(65, 'S'); },
                         "items[0].sku", "items[0].sku: must be at most 64 characters"},
        InvalidOrderCase{"DuplicateSku", [](NewOrder& r) { r.items[2].sku = "SKU-A"; },
                         "items[2].sku", "items[2].sku: appears more than once in the order"},
        InvalidOrderCase{"ZeroQuantity", [](NewOrder& r) { r.items[2].quantity = 0; },
                         "items[2].quantity", "items[2].quantity: must be between 1 and 10000"},
        InvalidOrderCase{"NegativeQuantity", [](NewOrder& r) { r.items[0].quantity = -1; },
                         "items[0].quantity", "items[0].quantity: must be between 1 and 10000"},
        InvalidOrderCase{"QuantityOver10000", [](NewOrder& r) { r.items[1].quantity = 10001; },
                         "items[1].quantity", "items[1].quantity: must be between 1 and 10000"},
        InvalidOrderCase{"NegativeUnitPrice", [](NewOrder& r) { r.items[1].unit_price.minor = -1; },
                         "items[1].unit_price.amount_minor",
                         "items[1].unit_price.amount_minor: must not be negative"},
        InvalidOrderCase{
            "MissingCurrency", [](NewOrder& r) { r.items[1].unit_price.currency = ""; },
            "items[1].unit_price.currency_code", "items[1].unit_price.currency_code: is required"},
        InvalidOrderCase{"UnknownCurrency",
                         [](NewOrder& r) { r.items[1].unit_price.currency = "XXX"; },
                         "items[1].unit_price.currency_code",
                         "items[1].unit_price.currency_code: \"XXX\" is not an ISO 4217 code"},
        InvalidOrderCase{"LowerCaseCurrencyOnFirstItem",
                         [](NewOrder& r) { r.items[0].unit_price.currency = "usd"; },
                         "items[0].unit_price.currency_code",
                         "items[0].unit_price.currency_code: \"usd\" is not an ISO 4217 code"},
        InvalidOrderCase{"MixedCurrency",
                         [](NewOrder& r) { r.items[2].unit_price.currency = "EUR"; },
                         "items[2].unit_price.currency_code",
                         "items[2].unit_price.currency_code: every item of an order must use the "
                         "same currency"},
        InvalidOrderCase{"LineTotalOverflows",
                         [](NewOrder& r) {
                           r.items[0].unit_price.minor = kMaxMinor / 2;
                           r.items[0].quantity = 3;
                         },
                         "items", "items: order total overflows"},
        InvalidOrderCase{"SumOfLinesOverflows",
                         [](NewOrder& r) {
                           r.items[0].unit_price.minor = kMaxMinor / 2 + 1;
                           r.items[0].quantity = 1;
                           r.items[1].unit_price.minor = kMaxMinor / 2 + 1;
                           r.items[1].quantity = 1;
                         },
                         "items", "items: order total overflows"}),
    [](const ::testing::TestParamInfo<InvalidOrderCase>& info) { return info.param.name; });

TEST(MakeOrderTest, ReportsTheFirstInvalidItem) {
  NewOrder request = ValidRequest();
  request.items[1].quantity = 0;
  request.items[2].sku = "";
  absl::StatusOr<Order> order = MakeOrder(request);
  EXPECT_EQ(FieldOf(order.status()), "items[1].quantity");
}

TEST(MakeOrderTest, AcceptsLimitsAtTheirBoundaries) {
  NewOrder hundred = WithItems(kMaxItemsPerOrder);
  EXPECT_TRUE(MakeOrder(hundred).ok());

  NewOrder request = ValidRequest();
  request.request_id.assign(128, 'r');
  request.customer_id.assign(64, 'c');
  request.payment_token.assign(128, 't');
  request.items[0].quantity = kMaxItemQuantity;
  request.items[1].sku.assign(64, 'S');
  absl::StatusOr<Order> order = MakeOrder(request);
  EXPECT_TRUE(order.ok()) << order.status();
}

TEST(MakeOrderTest, AcceptsFreeItems) {
  NewOrder request = ValidRequest();
  request.items[1].unit_price.minor = 0;
  absl::StatusOr<Order> order = MakeOrder(request);
  ASSERT_TRUE(order.ok()) << order.status();
  EXPECT_EQ(order->total, (Money{"USD", 3 * 1999 + 1}));
}

TEST(MakeOrderTest, SkusDifferingOnlyInCaseAreDistinct) {
  NewOrder request = ValidRequest();
  request.items[1].sku = "sku-a";
  EXPECT_TRUE(MakeOrder(request).ok());
}

// ================================================================================================
// MakeOrder: the built order
// ================================================================================================

TEST(MakeOrderTest, TotalIsTheExactSumOfLines) {
  absl::StatusOr<Order> order = MakeOrder(ValidRequest());
  ASSERT_TRUE(order.ok()) << order.status();
  EXPECT_EQ(order->total, (Money{"USD", 6498}));
}

TEST(MakeOrderTest, TotalIsExactNearInt64Max) {
  // 922337203685477 x 10000 = 9223372036854770000, representable; a double would round it.
  NewOrder request = ValidRequest();
  request.items = {OrderItem{"BIG", kMaxItemQuantity, Money{"JPY", kMaxMinor / 10000}},
                   OrderItem{"SMALL", 1, Money{"JPY", 5807}}};
  absl::StatusOr<Order> order = MakeOrder(request);
  ASSERT_TRUE(order.ok()) << order.status();
  EXPECT_EQ(order->total, (Money{"JPY", kMaxMinor}));
}

TEST(MakeOrderTest, ConfirmWithinIsKeptFromOneSecondToThirtyDays) {
  for (const absl::Duration within : {kMinConfirmWithin, absl::Minutes(15), kMaxConfirmWithin}) {
    NewOrder request = ValidRequest();
    request.confirm_within = within;
    absl::StatusOr<Order> order = MakeOrder(request);
    ASSERT_TRUE(order.ok()) << order.status();
    EXPECT_EQ(order->confirm_within, within);
  }
  absl::StatusOr<Order> unset = MakeOrder(ValidRequest());
  ASSERT_TRUE(unset.ok()) << unset.status();
  EXPECT_FALSE(unset->confirm_within.has_value());
}

TEST(MakeOrderTest, BuildsPendingOrderFromTheRequest) {
  const absl::Time now = absl::FromUnixMillis(1704164645678);
  const NewOrder request = ValidRequest("req-build", "bob");
  absl::StatusOr<Order> order = MakeOrder(request, now);
  ASSERT_TRUE(order.ok()) << order.status();
  EXPECT_EQ(order->status, OrderStatus::kPending);
  EXPECT_EQ(order->version, 1);
  EXPECT_EQ(order->customer_id, "bob");
  EXPECT_EQ(order->items, request.items);
  EXPECT_EQ(order->payment_token, "tok_approve");
  EXPECT_EQ(order->request_id, "req-build");
  EXPECT_EQ(order->request_fingerprint, FingerprintOf(request));
  EXPECT_EQ(order->create_time, now);
  EXPECT_TRUE(order->cancel_request_id.empty());
}

TEST(MakeOrderTest, IdIsUuidV7OfTheCustomersBucketAndTime) {
  const absl::Time now = absl::FromUnixMillis(0x018cc820db2e);
  absl::StatusOr<Order> order = MakeOrder(ValidRequest("req-1", "bob"), now);
  ASSERT_TRUE(order.ok()) << order.status();
  EXPECT_TRUE(IsCanonicalUuid(order->id)) << order->id;
  EXPECT_EQ(order->id.substr(0, 13), "018cc820-db2e") << order->id;
  absl::StatusOr<uint32_t> bucket = BucketOfOrderId(order->id);
  ASSERT_TRUE(bucket.ok()) << bucket.status();
  EXPECT_EQ(*bucket, CustomerBucket("bob"));
}

TEST(MakeOrderTest, WorkflowIdIsThePlaceOrderWorkflowOfTheOrder) {
  absl::StatusOr<Order> order = MakeOrder(ValidRequest());
  ASSERT_TRUE(order.ok()) << order.status();
  EXPECT_EQ(order->workflow_id, "place-order-" + order->id);
  EXPECT_EQ(order->workflow_id, PlaceOrderWorkflowId(order->id));
}

TEST(MakeOrderTest, EachCallMintsAFreshId) {
  absl::StatusOr<Order> a = MakeOrder(ValidRequest());
  absl::StatusOr<Order> b = MakeOrder(ValidRequest());
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_NE(a->id, b->id);
  EXPECT_EQ(a->request_fingerprint, b->request_fingerprint);
}

// ================================================================================================
// FingerprintOf
// ================================================================================================

TEST(FingerprintOfTest, SameRequestSameFingerprint) {
  EXPECT_EQ(FingerprintOf(ValidRequest()), FingerprintOf(ValidRequest()));
}

struct RequestChange {
  std::string name;
  std::function<void(NewOrder&)> mutate;
};

void PrintTo(const RequestChange& c, std::ostream* os) { *os << c.name; }

class FingerprintOfChangesTest : public ::testing::TestWithParam<RequestChange> {};

TEST_P(FingerprintOfChangesTest, WhenAnyFieldChanges) {
  NewOrder changed = ValidRequest();
  GetParam().mutate(changed);
  EXPECT_NE(FingerprintOf(changed), FingerprintOf(ValidRequest()));
}

INSTANTIATE_TEST_SUITE_P(
    EveryField, FingerprintOfChangesTest,
    ::testing::Values(
        RequestChange{"CustomerId", [](NewOrder& r) { r.customer_id = "alicf"; }},
        RequestChange{"PaymentToken", [](NewOrder& r) { r.payment_token = "tok_decline"; }},
        RequestChange{"Sku", [](NewOrder& r) { r.items[1].sku = "SKU-Z"; }},
        RequestChange{"Quantity", [](NewOrder& r) { r.items[1].quantity = 3; }},
        RequestChange{"Currency",
                      [](NewOrder& r) {
                        for (OrderItem& item : r.items) item.unit_price.currency = "EUR";
                      }},
        RequestChange{"UnitPrice", [](NewOrder& r) { r.items[2].unit_price.minor = 2; }},
        RequestChange{"ItemAdded",
                      [](NewOrder& r) {
                        r.items.push_back({"SKU-D", 1, Money{"USD", 1}});
                      }},
        RequestChange{"ItemRemoved", [](NewOrder& r) { r.items.pop_back(); }},
        RequestChange{"ConfirmWithinSet", [](NewOrder& r) { r.confirm_within = absl::Hours(1); }},
        // Moving text between adjacent fields must not produce the same canonical string.
        RequestChange{"CustomerAndTokenBoundary",
                      [](NewOrder& r) {
                        r.customer_id = "alicetok";
                        r.payment_token = "_approve";
                      }},
        RequestChange{"QuantityAndPriceBoundary",
                      [](NewOrder& r) {
                        r.items[0].quantity = 31;  // "3" "1999" vs "31" "999".
                        r.items[0].unit_price.minor = 999;
                      }}),
    [](const ::testing::TestParamInfo<RequestChange>& info) { return info.param.name; });

// ================================================================================================
// Status names and the state machine
// ================================================================================================

constexpr OrderStatus kAllStatuses[] = {OrderStatus::kPending, OrderStatus::kConfirmed,
                                        OrderStatus::kRejected, OrderStatus::kCancelled};

TEST(OrderStatusTest, NamesRoundTrip) {
  EXPECT_STREQ(OrderStatusName(OrderStatus::kPending), "pending");
  EXPECT_STREQ(OrderStatusName(OrderStatus::kConfirmed), "confirmed");
  EXPECT_STREQ(OrderStatusName(OrderStatus::kRejected), "rejected");
  EXPECT_STREQ(OrderStatusName(OrderStatus::kCancelled), "cancelled");
  for (OrderStatus status : kAllStatuses) {
    EXPECT_EQ(ParseOrderStatus(OrderStatusName(status)), status);
  }
  EXPECT_EQ(ParseOrderStatus("PENDING"), std::nullopt);
  EXPECT_EQ(ParseOrderStatus(""), std::nullopt);
  EXPECT_EQ(ParseOrderStatus("canceled"), std::nullopt);
}

TEST(OrderStatusTest, OnlyRejectedAndCancelledAreTerminal) {
  EXPECT_FALSE(IsTerminal(OrderStatus::kPending));
  EXPECT_FALSE(IsTerminal(OrderStatus::kConfirmed));
  EXPECT_TRUE(IsTerminal(OrderStatus::kRejected));
  EXPECT_TRUE(IsTerminal(OrderStatus::kCancelled));
}

TEST(CanTransitionTest, MatchesTheDocumentedTableForAll16Pairs) {
  using S = OrderStatus;
  struct Row {
    S from;
    S to;
    bool allowed;
  };
  const Row table[] = {
      {S::kPending, S::kPending, false},    {S::kPending, S::kConfirmed, true},
      {S::kPending, S::kRejected, true},    {S::kPending, S::kCancelled, true},
      {S::kConfirmed, S::kPending, false},  {S::kConfirmed, S::kConfirmed, false},
      {S::kConfirmed, S::kRejected, false}, {S::kConfirmed, S::kCancelled, true},
      {S::kRejected, S::kPending, false},   {S::kRejected, S::kConfirmed, false},
      {S::kRejected, S::kRejected, false},  {S::kRejected, S::kCancelled, false},
      {S::kCancelled, S::kPending, false},  {S::kCancelled, S::kConfirmed, false},
      {S::kCancelled, S::kRejected, false}, {S::kCancelled, S::kCancelled, false},
  };
  for (const Row& row : table) {
    EXPECT_EQ(CanTransition(row.from, row.to), row.allowed)
        << OrderStatusName(row.from) << " -> " << OrderStatusName(row.to);
  }
}

TEST(CanTransitionTest, StatusesThatCanBecomeListsEveryAllowedSource) {
  for (OrderStatus to : kAllStatuses) {
    std::vector<OrderStatus> expected;
    for (OrderStatus from : kAllStatuses) {
      if (CanTransition(from, to)) expected.push_back(from);
    }
    EXPECT_EQ(StatusesThatCanBecome(to), expected) << OrderStatusName(to);
  }
  EXPECT_EQ(StatusesThatCanBecome(OrderStatus::kConfirmed),
            std::vector<OrderStatus>{OrderStatus::kPending});
}

TEST(CanTransitionTest, TerminalStatesAllowNothing) {
  for (OrderStatus from : {OrderStatus::kRejected, OrderStatus::kCancelled}) {
    for (OrderStatus to : kAllStatuses) {
      EXPECT_FALSE(CanTransition(from, to))
          << OrderStatusName(from) << " -> " << OrderStatusName(to);
    }
  }
}

TEST(TransitionToTest, AllowedTransitionSetsStatusAndReason) {
  Order order;
  order.id = "o-1";
  ASSERT_TRUE(order.TransitionTo(OrderStatus::kConfirmed, "payment captured").ok());
  EXPECT_EQ(order.status, OrderStatus::kConfirmed);
  EXPECT_EQ(order.status_reason, "payment captured");
  ASSERT_TRUE(order.TransitionTo(OrderStatus::kCancelled, "refunded").ok());
  EXPECT_EQ(order.status, OrderStatus::kCancelled);
  EXPECT_EQ(order.status_reason, "refunded");
}

TEST(TransitionToTest, ForbiddenTransitionIsFailedPreconditionAndChangesNothing) {
  Order order;
  order.id = "o-1";
  order.status = OrderStatus::kRejected;
  order.status_reason = "card declined";
  absl::Status status = order.TransitionTo(OrderStatus::kConfirmed, "late capture");
  EXPECT_EQ(status.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(status.message(), "order o-1 is rejected and cannot become confirmed");
  EXPECT_EQ(order.status, OrderStatus::kRejected);
  EXPECT_EQ(order.status_reason, "card declined");
}

TEST(TransitionToTest, MessageNamesBothStatesForEveryForbiddenPair) {
  int forbidden = 0;
  for (OrderStatus from : kAllStatuses) {
    for (OrderStatus to : kAllStatuses) {
      if (CanTransition(from, to)) continue;
      ++forbidden;
      Order order;
      order.id = "o-9";
      order.status = from;
      absl::Status status = order.TransitionTo(to, "x");
      EXPECT_EQ(status.code(), absl::StatusCode::kFailedPrecondition);
      EXPECT_EQ(status.message(), absl::StrCat("order o-9 is ", OrderStatusName(from),
                                               " and cannot become ", OrderStatusName(to)));
    }
  }
  EXPECT_EQ(forbidden, 12);  // 16 pairs minus the 4 allowed transitions.
}

// ================================================================================================
// OrderService on MemoryOrderRepository
// ================================================================================================

class OrderServiceTest : public ::testing::Test {
 protected:
  // Creates a valid order for `customer` and returns it.
  Order CreateOrder(const std::string& request_id, const std::string& customer = "alice") {
    absl::StatusOr<CreateOrderResult> result = service_.Create(ValidRequest(request_id, customer));
    EXPECT_TRUE(result.ok()) << result.status();
    EXPECT_TRUE(result.ok() && result->created);
    return result.ok() ? result->order : Order{};
  }

  // Forces `order_id` into `status` the way the PlaceOrder workflow would, through the repository.
  void SetStatus(const std::string& order_id, OrderStatus status) {
    absl::StatusOr<Order> updated = repository_.Update(order_id, [&](Order& order) {
      order.status = status;
      return absl::OkStatus();
    });
    ASSERT_TRUE(updated.ok()) << updated.status();
  }

  CancelOrderParams CancelOf(const Order& order, std::string request_id = "cancel-1") {
    CancelOrderParams params;
    params.request_id = std::move(request_id);
    params.order_id = order.id;
    params.reason = "changed my mind";
    return params;
  }

  Order Stored(const std::string& order_id) {
    absl::StatusOr<Order> order = repository_.Get(order_id);
    EXPECT_TRUE(order.ok()) << order.status();
    return order.ok() ? *order : Order{};
  }

  MemoryOrderRepository repository_;
  OrderService service_{&repository_};
};

// ---- Create and Get
// ------------------------------------------------------------------------------

TEST_F(OrderServiceTest, CreateStoresPendingOrder) {
  absl::StatusOr<CreateOrderResult> result = service_.Create(ValidRequest("req-1"));
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_TRUE(result->created);
  EXPECT_EQ(result->order.status, OrderStatus::kPending);
  EXPECT_EQ(result->order.total, (Money{"USD", 6498}));

  absl::StatusOr<Order> got = service_.Get(result->order.id);
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(got->id, result->order.id);
  EXPECT_EQ(got->request_id, "req-1");
}

TEST_F(OrderServiceTest, CreateReplayReturnsFirstOrderWithCreatedFalse) {
  const Order first = CreateOrder("req-1");
  absl::StatusOr<CreateOrderResult> replay = service_.Create(ValidRequest("req-1"));
  ASSERT_TRUE(replay.ok()) << replay.status();
  EXPECT_FALSE(replay->created);
  EXPECT_EQ(replay->order.id, first.id);
  EXPECT_EQ(replay->order.version, first.version);
  EXPECT_EQ(replay->order.create_time, first.create_time);

  ListOrdersParams all;
  absl::StatusOr<ListOrdersResult> listed = service_.List(all);
  ASSERT_TRUE(listed.ok()) << listed.status();
  EXPECT_EQ(listed->orders.size(), 1u);
}

TEST_F(OrderServiceTest, CreateWithSameRequestIdAndDifferentContentIsAlreadyExists) {
  const Order first = CreateOrder("req-1");
  NewOrder different = ValidRequest("req-1");
  different.items[0].quantity = 4;
  absl::StatusOr<CreateOrderResult> result = service_.Create(different);
  EXPECT_EQ(result.status().code(), absl::StatusCode::kAlreadyExists) << result.status();
  EXPECT_EQ(Stored(first.id).items, first.items);
}

TEST_F(OrderServiceTest, CreateInvalidRequestStoresNothing) {
  NewOrder bad = ValidRequest("req-1");
  bad.items[2].quantity = 0;
  absl::StatusOr<CreateOrderResult> result = service_.Create(bad);
  EXPECT_EQ(result.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(FieldOf(result.status()), "items[2].quantity");

  absl::StatusOr<ListOrdersResult> listed = service_.List(ListOrdersParams{});
  ASSERT_TRUE(listed.ok()) << listed.status();
  EXPECT_TRUE(listed->orders.empty());
}

TEST_F(OrderServiceTest, GetAcceptsUpperCaseIds) {
  const Order order = CreateOrder("req-1");
  absl::StatusOr<Order> got = service_.Get(absl::AsciiStrToUpper(order.id));
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(got->id, order.id);
}

TEST_F(OrderServiceTest, GetUnknownIsNotFoundAndMalformedIsInvalid) {
  EXPECT_EQ(service_.Get(NewOrderId("alice")).status().code(), absl::StatusCode::kNotFound);
  absl::StatusOr<Order> malformed = service_.Get("order-1");
  EXPECT_EQ(malformed.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(FieldOf(malformed.status()), "order_id");
  EXPECT_EQ(FieldOf(service_.Get("").status()), "order_id");
}

// ---- Cancel
// --------------------------------------------------------------------------------------

TEST_F(OrderServiceTest, CancelPendingOrderCancelsItAndBumpsVersion) {
  const Order order = CreateOrder("req-1");
  absl::StatusOr<Order> cancelled = service_.Cancel(CancelOf(order));
  ASSERT_TRUE(cancelled.ok()) << cancelled.status();
  EXPECT_EQ(cancelled->status, OrderStatus::kCancelled);
  EXPECT_EQ(cancelled->status_reason, "changed my mind");
  EXPECT_EQ(cancelled->cancel_request_id, "cancel-1");
  EXPECT_EQ(cancelled->version, 2);
  EXPECT_EQ(Stored(order.id).status, OrderStatus::kCancelled);
}

TEST_F(OrderServiceTest, CancelWithoutReasonRecordsDefaultReason) {
  const Order order = CreateOrder("req-1");
  CancelOrderParams params = CancelOf(order);
  params.reason = "";
  absl::StatusOr<Order> cancelled = service_.Cancel(params);
  ASSERT_TRUE(cancelled.ok()) << cancelled.status();
  EXPECT_EQ(cancelled->status_reason, "cancelled by request");
}

TEST_F(OrderServiceTest, CancelWithCurrentExpectedVersionSucceeds) {
  const Order order = CreateOrder("req-1");
  CancelOrderParams params = CancelOf(order);
  params.expected_version = 1;
  absl::StatusOr<Order> cancelled = service_.Cancel(params);
  ASSERT_TRUE(cancelled.ok()) << cancelled.status();
  EXPECT_EQ(cancelled->status, OrderStatus::kCancelled);
}

TEST_F(OrderServiceTest, CancelWithStaleExpectedVersionIsAbortedAndChangesNothing) {
  const Order order = CreateOrder("req-1");
  CancelOrderParams params = CancelOf(order);
  params.expected_version = 2;  // The order is at version 1.
  absl::StatusOr<Order> result = service_.Cancel(params);
  EXPECT_EQ(result.status().code(), absl::StatusCode::kAborted) << result.status();

  const Order stored = Stored(order.id);
  EXPECT_EQ(stored.status, OrderStatus::kPending);
  EXPECT_EQ(stored.version, 1);
}

TEST_F(OrderServiceTest, CancelReplayReturnsOrderUnchanged) {
  const Order order = CreateOrder("req-1");
  CancelOrderParams params = CancelOf(order);
  params.expected_version = 1;
  absl::StatusOr<Order> first = service_.Cancel(params);
  ASSERT_TRUE(first.ok()) << first.status();

  // The very same request again: its expected_version is now stale, yet it is a replay.
  absl::StatusOr<Order> replay = service_.Cancel(params);
  ASSERT_TRUE(replay.ok()) << replay.status();
  EXPECT_EQ(replay->status, OrderStatus::kCancelled);
  EXPECT_EQ(replay->version, first->version);
  EXPECT_EQ(replay->update_time, first->update_time);
  EXPECT_EQ(replay->status_reason, first->status_reason);
  EXPECT_EQ(Stored(order.id).version, first->version);
}

TEST_F(OrderServiceTest, CancelAlreadyCancelledByAnotherRequestIsFailedPrecondition) {
  const Order order = CreateOrder("req-1");
  ASSERT_TRUE(service_.Cancel(CancelOf(order, "cancel-1")).ok());
  absl::StatusOr<Order> again = service_.Cancel(CancelOf(order, "cancel-2"));
  EXPECT_EQ(again.status().code(), absl::StatusCode::kFailedPrecondition) << again.status();
  EXPECT_EQ(Stored(order.id).cancel_request_id, "cancel-1");
}

TEST_F(OrderServiceTest, CancelConfirmedOrderIsFailedPrecondition) {
  const Order order = CreateOrder("req-1");
  SetStatus(order.id, OrderStatus::kConfirmed);
  absl::StatusOr<Order> result = service_.Cancel(CancelOf(order));
  EXPECT_EQ(result.status().code(), absl::StatusCode::kFailedPrecondition) << result.status();

  const Order stored = Stored(order.id);
  EXPECT_EQ(stored.status, OrderStatus::kConfirmed);
  EXPECT_EQ(stored.version, 2);  // Only the confirmation bumped it.
  EXPECT_TRUE(stored.cancel_request_id.empty());
}

TEST_F(OrderServiceTest, CancelRejectedOrderIsFailedPrecondition) {
  const Order order = CreateOrder("req-1");
  SetStatus(order.id, OrderStatus::kRejected);
  EXPECT_EQ(service_.Cancel(CancelOf(order)).status().code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(Stored(order.id).status, OrderStatus::kRejected);
}

TEST_F(OrderServiceTest, CancelUnknownOrderIsNotFound) {
  Order ghost;
  ghost.id = NewOrderId("alice");
  EXPECT_EQ(service_.Cancel(CancelOf(ghost)).status().code(), absl::StatusCode::kNotFound);
}

TEST_F(OrderServiceTest, CancelAcceptsUpperCaseOrderId) {
  const Order order = CreateOrder("req-1");
  CancelOrderParams params = CancelOf(order);
  params.order_id = absl::AsciiStrToUpper(order.id);
  absl::StatusOr<Order> cancelled = service_.Cancel(params);
  ASSERT_TRUE(cancelled.ok()) << cancelled.status();
  EXPECT_EQ(Stored(order.id).status, OrderStatus::kCancelled);
}

TEST_F(OrderServiceTest, CancelValidatesEveryField) {
  const Order order = CreateOrder("req-1");
  struct Case {
    std::function<void(CancelOrderParams&)> mutate;
    std::string field;
  };
  const Case cases[] = {
      {[](CancelOrderParams& p) { p.request_id = ""; }, "request_id"},
      {[](CancelOrderParams& p) { p.order_id = ""; }, "order_id"},
      {[](CancelOrderParams& p) { p.order_id = "not-a-uuid"; }, "order_id"},
      {[](CancelOrderParams& p) { p.reason = "bad\x01reason"; }, "reason"},
      {[](CancelOrderParams& p) { p.reason.assign(kMaxReasonLength + 1, 'r'); }, "reason"},
      {[](CancelOrderParams& p) { p.expected_version = -1; }, "expected_version"},
  };
  for (const Case& c : cases) {
    CancelOrderParams params = CancelOf(order);
    c.mutate(params);
    absl::StatusOr<Order> result = service_.Cancel(params);
    EXPECT_EQ(result.status().code(), absl::StatusCode::kInvalidArgument) << c.field;
    EXPECT_EQ(FieldOf(result.status()), c.field);
  }
  EXPECT_EQ(Stored(order.id).status, OrderStatus::kPending);
}

// ---- BatchGet
// ------------------------------------------------------------------------------------

std::vector<std::string> IdsOf(const std::vector<Order>& orders) {
  std::vector<std::string> ids;
  for (const Order& order : orders) ids.push_back(order.id);
  return ids;
}

TEST_F(OrderServiceTest, BatchGetReturnsOrdersInRequestOrder) {
  const Order a = CreateOrder("req-a");
  const Order b = CreateOrder("req-b");
  const Order c = CreateOrder("req-c");
  absl::StatusOr<BatchGetResult> result = service_.BatchGet({c.id, a.id, b.id});
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(IdsOf(result->orders), (std::vector<std::string>{c.id, a.id, b.id}));
  EXPECT_TRUE(result->missing_ids.empty());
}

TEST_F(OrderServiceTest, BatchGetReportsMissingIds) {
  const Order a = CreateOrder("req-a");
  const std::string ghost1 = NewOrderId("alice");
  const std::string ghost2 = NewOrderId("bob");
  absl::StatusOr<BatchGetResult> result = service_.BatchGet({ghost1, a.id, ghost2});
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(IdsOf(result->orders), (std::vector<std::string>{a.id}));
  EXPECT_EQ(result->missing_ids, (std::vector<std::string>{ghost1, ghost2}));
}

TEST_F(OrderServiceTest, BatchGetCollapsesDuplicatesIncludingCaseVariants) {
  const Order a = CreateOrder("req-a");
  const Order b = CreateOrder("req-b");
  const std::string ghost = NewOrderId("alice");
  absl::StatusOr<BatchGetResult> result =
      service_.BatchGet({b.id, a.id, b.id, absl::AsciiStrToUpper(a.id), ghost, ghost});
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(IdsOf(result->orders), (std::vector<std::string>{b.id, a.id}));
  EXPECT_EQ(result->missing_ids, (std::vector<std::string>{ghost}));
}

TEST_F(OrderServiceTest, BatchGetNeedsBetweenOneAnd1000Ids) {
  absl::StatusOr<BatchGetResult> none = service_.BatchGet({});
  EXPECT_EQ(none.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(FieldOf(none.status()), "order_ids");

  std::vector<std::string> ids;
  for (int i = 0; i < kMaxBatchGet; ++i) ids.push_back(NewOrderId("alice"));
  absl::StatusOr<BatchGetResult> at_limit = service_.BatchGet(ids);
  ASSERT_TRUE(at_limit.ok()) << at_limit.status();
  EXPECT_EQ(at_limit->missing_ids.size(), static_cast<size_t>(kMaxBatchGet));

  ids.push_back(NewOrderId("alice"));
  absl::StatusOr<BatchGetResult> over = service_.BatchGet(ids);
  EXPECT_EQ(over.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(FieldOf(over.status()), "order_ids");
}

TEST_F(OrderServiceTest, BatchGetNamesTheMalformedIdByIndex) {
  const Order a = CreateOrder("req-a");
  absl::StatusOr<BatchGetResult> result = service_.BatchGet({a.id, a.id, "nope"});
  EXPECT_EQ(result.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(FieldOf(result.status()), "order_ids[2]");
}

// ---- List
// ----------------------------------------------------------------------------------------

// Pages through every order matching `params` and returns the pages' sizes.
std::vector<size_t> PageThrough(OrderService& service, ListOrdersParams params,
                                std::vector<Order>* all) {
  std::vector<size_t> sizes;
  for (int guard = 0; guard < 100; ++guard) {
    absl::StatusOr<ListOrdersResult> page = service.List(params);
    EXPECT_TRUE(page.ok()) << page.status();
    if (!page.ok()) break;
    sizes.push_back(page->orders.size());
    all->insert(all->end(), page->orders.begin(), page->orders.end());
    if (page->next_page_token.empty()) break;
    params.page_token = page->next_page_token;
  }
  return sizes;
}

TEST_F(OrderServiceTest, ListPagesThrough25OrdersSevenAtATimeNewestFirst) {
  std::set<std::string> created;
  for (int i = 0; i < 25; ++i) created.insert(CreateOrder(absl::StrCat("req-", i)).id);

  ListOrdersParams params;
  params.page_size = 7;
  std::vector<Order> all;
  EXPECT_EQ(PageThrough(service_, params, &all), (std::vector<size_t>{7, 7, 7, 4}));

  std::set<std::string> seen;
  for (const Order& order : all) seen.insert(order.id);
  EXPECT_EQ(seen, created);  // No gaps, no duplicates.
  ASSERT_EQ(all.size(), 25u);
  for (size_t i = 1; i < all.size(); ++i) {
    EXPECT_TRUE(std::tie(all[i - 1].create_time, all[i - 1].id) >
                std::tie(all[i].create_time, all[i].id))
        << "orders " << i - 1 << " and " << i << " are not newest first";
  }
}

TEST_F(OrderServiceTest, ListWithExactlyOneFullPageHasNoNextToken) {
  for (int i = 0; i < 7; ++i) CreateOrder(absl::StrCat("req-", i));
  ListOrdersParams params;
  params.page_size = 7;
  absl::StatusOr<ListOrdersResult> page = service_.List(params);
  ASSERT_TRUE(page.ok()) << page.status();
  EXPECT_EQ(page->orders.size(), 7u);
  EXPECT_EQ(page->next_page_token, "");
}

TEST_F(OrderServiceTest, ListFiltersByCustomerAndStatusAcrossPages) {
  for (int i = 0; i < 5; ++i) CreateOrder(absl::StrCat("req-alice-", i), "alice");
  for (int i = 0; i < 4; ++i) CreateOrder(absl::StrCat("req-bob-", i), "bob");
  const Order confirmed = CreateOrder("req-alice-confirmed", "alice");
  SetStatus(confirmed.id, OrderStatus::kConfirmed);

  ListOrdersParams alice;
  alice.customer_id = "alice";
  alice.page_size = 2;
  std::vector<Order> alices;
  EXPECT_EQ(PageThrough(service_, alice, &alices), (std::vector<size_t>{2, 2, 2}));
  for (const Order& order : alices) EXPECT_EQ(order.customer_id, "alice");

  ListOrdersParams alice_confirmed = alice;
  alice_confirmed.status = OrderStatus::kConfirmed;
  std::vector<Order> confirmed_only;
  PageThrough(service_, alice_confirmed, &confirmed_only);
  EXPECT_EQ(IdsOf(confirmed_only), (std::vector<std::string>{confirmed.id}));
}

TEST_F(OrderServiceTest, ListPageSizeZeroMeansDefaultAndAboveMaxIsInvalid) {
  for (int i = 0; i < kDefaultPageSize + 1; ++i) CreateOrder(absl::StrCat("req-", i));
  absl::StatusOr<ListOrdersResult> page = service_.List(ListOrdersParams{});
  ASSERT_TRUE(page.ok()) << page.status();
  EXPECT_EQ(page->orders.size(), static_cast<size_t>(kDefaultPageSize));
  EXPECT_FALSE(page->next_page_token.empty());

  for (int32_t bad : {-1, kMaxPageSize + 1}) {
    ListOrdersParams params;
    params.page_size = bad;
    absl::StatusOr<ListOrdersResult> result = service_.List(params);
    EXPECT_EQ(result.status().code(), absl::StatusCode::kInvalidArgument) << bad;
    EXPECT_EQ(FieldOf(result.status()), "page_size") << bad;
  }
}

TEST_F(OrderServiceTest, ListRejectsGarbageToken) {
  for (int i = 0; i < 3; ++i) CreateOrder(absl::StrCat("req-", i));
  ListOrdersParams params;
  params.page_token = "definitely-not-a-token";
  absl::StatusOr<ListOrdersResult> result = service_.List(params);
  EXPECT_EQ(result.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(FieldOf(result.status()), "page_token");
}

TEST_F(OrderServiceTest, ListRejectsTokenFromAnotherFilter) {
  for (int i = 0; i < 3; ++i) CreateOrder(absl::StrCat("req-a", i), "alice");
  for (int i = 0; i < 3; ++i) CreateOrder(absl::StrCat("req-b", i), "bob");
  ListOrdersParams alice;
  alice.customer_id = "alice";
  alice.page_size = 1;
  absl::StatusOr<ListOrdersResult> first = service_.List(alice);
  ASSERT_TRUE(first.ok()) << first.status();
  ASSERT_FALSE(first->next_page_token.empty());

  ListOrdersParams bob = alice;
  bob.customer_id = "bob";
  bob.page_token = first->next_page_token;
  absl::StatusOr<ListOrdersResult> result = service_.List(bob);
  EXPECT_EQ(result.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(FieldOf(result.status()), "page_token");

  ListOrdersParams pending = alice;
  pending.status = OrderStatus::kPending;
  pending.page_token = first->next_page_token;
  EXPECT_EQ(FieldOf(service_.List(pending).status()), "page_token");
}

// DecodePageToken cannot tell a token cut inside its id (see page_token_test); List must still
// refuse it rather than resume from a made-up position.
TEST_F(OrderServiceTest, ListRejectsTruncatedToken) {
  for (int i = 0; i < 3; ++i) CreateOrder(absl::StrCat("req-", i));
  ListOrdersParams params;
  params.page_size = 1;
  absl::StatusOr<ListOrdersResult> first = service_.List(params);
  ASSERT_TRUE(first.ok()) << first.status();
  ASSERT_FALSE(first->next_page_token.empty());
  for (size_t cut : {1, 2, 4, 8, 20}) {
    params.page_token = first->next_page_token.substr(0, first->next_page_token.size() - cut);
    absl::StatusOr<ListOrdersResult> result = service_.List(params);
    EXPECT_EQ(result.status().code(), absl::StatusCode::kInvalidArgument) << "cut " << cut;
    EXPECT_EQ(FieldOf(result.status()), "page_token") << "cut " << cut;
  }
}

TEST_F(OrderServiceTest, ListRejectsInvalidCustomerFilter) {
  ListOrdersParams params;
  params.customer_id = "has space";
  EXPECT_EQ(FieldOf(service_.List(params).status()), "customer_id");
}

}  // namespace
}  // namespace order_platform::orders
