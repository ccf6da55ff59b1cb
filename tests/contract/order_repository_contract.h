// The OrderRepository contract: one typed test suite that every implementation must pass.
// Instantiate it with a type whose static `Make()` returns a fresh, empty OrderRepositoryEnv
// (see order_repository_memory_test.cc and order_repository_pg_test.cc).
#pragma once

#include <atomic>
#include <memory>
#include <set>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "services/common/errors.h"
#include "services/orders/order.h"
#include "services/orders/order_repository.h"

namespace order_platform::orders {

// Owns a repository (and whatever backs it) for one test.
class OrderRepositoryEnv {
 public:
  virtual ~OrderRepositoryEnv() = default;
  virtual OrderRepository& repository() = 0;
};

inline Order SampleOrder(const std::string& customer, const std::string& request_id,
                         int items = 3) {
  NewOrder request;
  request.request_id = request_id;
  request.customer_id = customer;
  request.payment_token = "tok_approve";
  for (int i = 0; i < items; ++i) {
    request.items.push_back(OrderItem{absl::StrCat("SKU-", i), i + 1, Money{"USD", 250 + i}});
  }
  absl::StatusOr<Order> order = MakeOrder(request);
  EXPECT_TRUE(order.ok()) << order.status();
  return *order;
}

template <typename Impl>
class OrderRepositoryContractTest : public ::testing::Test {
 protected:
  void SetUp() override { env_ = Impl::Make(); }
  OrderRepository& repo() { return env_->repository(); }

 private:
  std::unique_ptr<OrderRepositoryEnv> env_;
};

TYPED_TEST_SUITE_P(OrderRepositoryContractTest);

TYPED_TEST_P(OrderRepositoryContractTest, CreateThenGetReturnsOrderWithItems) {
  const Order order = SampleOrder("alice", "req-1");
  absl::StatusOr<CreateOrderResult> created = this->repo().Create(order);
  ASSERT_TRUE(created.ok()) << created.status();
  EXPECT_TRUE(created->created);
  EXPECT_EQ(created->order.version, 1);
  EXPECT_NE(created->order.create_time, absl::InfinitePast());

  absl::StatusOr<Order> got = this->repo().Get(order.id);
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(got->id, order.id);
  EXPECT_EQ(got->customer_id, "alice");
  EXPECT_EQ(got->items, order.items);
  EXPECT_EQ(got->total, order.total);
  EXPECT_EQ(got->status, OrderStatus::kPending);
  EXPECT_EQ(got->workflow_id, order.workflow_id);
  EXPECT_EQ(got->request_fingerprint, order.request_fingerprint);
  EXPECT_EQ(got->create_time, created->order.create_time);
}

TYPED_TEST_P(OrderRepositoryContractTest, CreateWithSameRequestIdReturnsFirstOrder) {
  const Order first = SampleOrder("alice", "req-dup");
  ASSERT_TRUE(this->repo().Create(first).ok());
  const Order second = SampleOrder("alice", "req-dup", 1);  // Different id and items.
  absl::StatusOr<CreateOrderResult> replay = this->repo().Create(second);
  ASSERT_TRUE(replay.ok()) << replay.status();
  EXPECT_FALSE(replay->created);
  EXPECT_EQ(replay->order.id, first.id);
  EXPECT_EQ(replay->order.items.size(), 3u);
  EXPECT_EQ(this->repo().Get(second.id).status().code(), absl::StatusCode::kNotFound);
}

TYPED_TEST_P(OrderRepositoryContractTest, ConcurrentDuplicatesCreateExactlyOneOrder) {
  constexpr int kThreads = 8;
  std::vector<Order> candidates;
  for (int i = 0; i < kThreads; ++i) candidates.push_back(SampleOrder("bob", "req-race"));
  std::atomic<int> created{0};
  std::set<std::string> ids;
  absl::Mutex mu;
  std::vector<std::thread> threads;
  for (int i = 0; i < kThreads; ++i) {
    threads.emplace_back([&, i] {
      absl::StatusOr<CreateOrderResult> r = this->repo().Create(candidates[i]);
      ASSERT_TRUE(r.ok()) << r.status();
      if (r->created) created++;
      absl::MutexLock lock(&mu);
      ids.insert(r->order.id);
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(created.load(), 1);
  EXPECT_EQ(ids.size(), 1u);
}

TYPED_TEST_P(OrderRepositoryContractTest, GetUnknownIsNotFound) {
  absl::StatusOr<Order> got = this->repo().Get("0190a6c4-0000-7000-8000-000000000000");
  EXPECT_EQ(got.status().code(), absl::StatusCode::kNotFound);
}

TYPED_TEST_P(OrderRepositoryContractTest, BatchGetReturnsOnlyExistingOrders) {
  const Order a = SampleOrder("carol", "req-a");
  const Order b = SampleOrder("carol", "req-b", 2);
  ASSERT_TRUE(this->repo().Create(a).ok());
  ASSERT_TRUE(this->repo().Create(b).ok());
  std::vector<std::string> ids = {b.id, "0190a6c4-0000-7000-8000-000000000000", a.id};
  absl::StatusOr<std::vector<Order>> got = this->repo().BatchGet(ids);
  ASSERT_TRUE(got.ok()) << got.status();
  ASSERT_EQ(got->size(), 2u);
  std::set<std::string> found;
  for (const Order& o : *got) {
    found.insert(o.id);
    EXPECT_EQ(o.items.size(), o.id == a.id ? 3u : 2u);
  }
  EXPECT_EQ(found, (std::set<std::string>{a.id, b.id}));
}

TYPED_TEST_P(OrderRepositoryContractTest, ListPagesNewestFirstWithoutGapsOrDuplicates) {
  constexpr int kOrders = 23;
  for (int i = 0; i < kOrders; ++i) {
    ASSERT_TRUE(this->repo().Create(SampleOrder(i % 2 ? "dave" : "erin", absl::StrCat("l-", i), 1)).ok());
  }
  std::vector<Order> all;
  OrderListQuery query;
  query.page_size = 5;
  for (int pages = 0; pages < 10; ++pages) {
    absl::StatusOr<OrderPage> page = this->repo().List(query);
    ASSERT_TRUE(page.ok()) << page.status();
    EXPECT_LE(page->orders.size(), 5u);
    all.insert(all.end(), page->orders.begin(), page->orders.end());
    if (!page->next) break;
    query.after = page->next;
  }
  ASSERT_EQ(all.size(), static_cast<size_t>(kOrders));
  std::set<std::string> ids;
  for (size_t i = 0; i < all.size(); ++i) {
    ids.insert(all[i].id);
    EXPECT_EQ(all[i].items.size(), 1u);
    if (i > 0) {
      EXPECT_TRUE(std::tie(all[i - 1].create_time, all[i - 1].id) >
                  std::tie(all[i].create_time, all[i].id))
          << "not newest first at " << i;
    }
  }
  EXPECT_EQ(ids.size(), static_cast<size_t>(kOrders));
}

TYPED_TEST_P(OrderRepositoryContractTest, ListFiltersByCustomerAndStatus) {
  for (int i = 0; i < 6; ++i) {
    ASSERT_TRUE(this->repo().Create(SampleOrder(i < 4 ? "frank" : "gina", absl::StrCat("f-", i), 1)).ok());
  }
  OrderListQuery by_customer;
  by_customer.customer_id = "frank";
  absl::StatusOr<OrderPage> page = this->repo().List(by_customer);
  ASSERT_TRUE(page.ok()) << page.status();
  EXPECT_EQ(page->orders.size(), 4u);
  for (const Order& o : page->orders) EXPECT_EQ(o.customer_id, "frank");
  EXPECT_FALSE(page->next.has_value());

  // Cancel one of frank's orders, then filter by both.
  ASSERT_TRUE(this->repo()
                  .Update(page->orders[0].id,
                          [](Order& o) { return o.TransitionTo(OrderStatus::kCancelled, "test"); })
                  .ok());
  OrderListQuery both;
  both.customer_id = "frank";
  both.status = OrderStatus::kCancelled;
  page = this->repo().List(both);
  ASSERT_TRUE(page.ok()) << page.status();
  ASSERT_EQ(page->orders.size(), 1u);
  EXPECT_EQ(page->orders[0].status, OrderStatus::kCancelled);

  OrderListQuery pending;
  pending.status = OrderStatus::kPending;
  page = this->repo().List(pending);
  ASSERT_TRUE(page.ok());
  EXPECT_EQ(page->orders.size(), 5u);
}

TYPED_TEST_P(OrderRepositoryContractTest, UpdateSavesChangeAndBumpsVersion) {
  const Order order = SampleOrder("hank", "u-1");
  ASSERT_TRUE(this->repo().Create(order).ok());
  absl::StatusOr<Order> updated = this->repo().Update(order.id, [](Order& o) {
    o.cancel_request_id = "cancel-1";
    return o.TransitionTo(OrderStatus::kCancelled, "customer changed their mind");
  });
  ASSERT_TRUE(updated.ok()) << updated.status();
  EXPECT_EQ(updated->version, 2);
  absl::StatusOr<Order> got = this->repo().Get(order.id);
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->status, OrderStatus::kCancelled);
  EXPECT_EQ(got->status_reason, "customer changed their mind");
  EXPECT_EQ(got->cancel_request_id, "cancel-1");
  EXPECT_EQ(got->version, 2);
  EXPECT_EQ(got->items, order.items);
  EXPECT_GE(got->update_time, got->create_time);
}

TYPED_TEST_P(OrderRepositoryContractTest, UpdateErrorRollsBackEverything) {
  const Order order = SampleOrder("ivan", "u-2");
  ASSERT_TRUE(this->repo().Create(order).ok());
  absl::StatusOr<Order> updated = this->repo().Update(order.id, [](Order& o) {
    o.status_reason = "half-done";
    return absl::FailedPreconditionError("refused");
  });
  EXPECT_EQ(updated.status().code(), absl::StatusCode::kFailedPrecondition);
  absl::StatusOr<Order> got = this->repo().Get(order.id);
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->version, 1);
  EXPECT_EQ(got->status_reason, "");
}

TYPED_TEST_P(OrderRepositoryContractTest, UpdateUnknownIsNotFound) {
  absl::StatusOr<Order> updated = this->repo().Update(
      "0190a6c4-0000-7000-8000-000000000000", [](Order&) { return absl::OkStatus(); });
  EXPECT_EQ(updated.status().code(), absl::StatusCode::kNotFound);
}

TYPED_TEST_P(OrderRepositoryContractTest, ConcurrentUpdatesAreSerialized) {
  const Order order = SampleOrder("judy", "u-3");
  ASSERT_TRUE(this->repo().Create(order).ok());
  constexpr int kThreads = 8;
  std::vector<std::thread> threads;
  for (int i = 0; i < kThreads; ++i) {
    threads.emplace_back([&] {
      absl::StatusOr<Order> r = this->repo().Update(order.id, [](Order& o) {
        o.status_reason += "x";
        return absl::OkStatus();
      });
      EXPECT_TRUE(r.ok()) << r.status();
    });
  }
  for (auto& t : threads) t.join();
  absl::StatusOr<Order> got = this->repo().Get(order.id);
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->version, 1 + kThreads);
  EXPECT_EQ(got->status_reason, std::string(kThreads, 'x'));  // No lost update.
}

REGISTER_TYPED_TEST_SUITE_P(OrderRepositoryContractTest, CreateThenGetReturnsOrderWithItems,
                            CreateWithSameRequestIdReturnsFirstOrder,
                            ConcurrentDuplicatesCreateExactlyOneOrder, GetUnknownIsNotFound,
                            BatchGetReturnsOnlyExistingOrders,
                            ListPagesNewestFirstWithoutGapsOrDuplicates,
                            ListFiltersByCustomerAndStatus, UpdateSavesChangeAndBumpsVersion,
                            UpdateErrorRollsBackEverything, UpdateUnknownIsNotFound,
                            ConcurrentUpdatesAreSerialized);

}  // namespace order_platform::orders
