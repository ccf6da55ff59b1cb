// The InventoryRepository contract: one typed test suite that every implementation must pass.
// Instantiate it with a type whose static `Make()` returns a fresh, empty InventoryRepositoryEnv
// (see inventory_repository_memory_test.cc and inventory_repository_pg_test.cc).
#pragma once

#include <algorithm>
#include <atomic>
#include <memory>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "gtest/gtest.h"
#include "services/inventory/inventory.h"
#include "services/inventory/inventory_repository.h"

namespace order_platform::inventory {

// Owns a repository (and whatever backs it) for one test.
class InventoryRepositoryEnv {
 public:
  virtual ~InventoryRepositoryEnv() = default;
  virtual InventoryRepository& repository() = 0;
};

// A valid product as the service would build it, stamped with `request_id`.
inline Product SampleProduct(const std::string& sku, int64_t on_hand,
                             const std::string& request_id = "",
                             const std::string& name = "Widget") {
  ProductUpsert upsert;
  upsert.request_id =
      request_id.empty() ? absl::StrCat("upsert-", sku, "-", on_hand, "-", name) : request_id;
  upsert.sku = sku;
  upsert.name = name;
  upsert.unit_price = Money{"USD", 1999};
  upsert.on_hand = on_hand;
  absl::StatusOr<Product> product = MakeProduct(upsert);
  EXPECT_TRUE(product.ok()) << product.status();
  return *product;
}

// A valid HELD reservation as the service would build it.
inline Reservation SampleReservation(const std::string& order_id,
                                     std::vector<ReservationItem> items,
                                     const std::string& request_id = "") {
  ReserveRequest request;
  request.request_id = request_id.empty() ? absl::StrCat("reserve-", order_id) : request_id;
  request.order_id = order_id;
  request.items = std::move(items);
  absl::StatusOr<Reservation> reservation = MakeReservation(request);
  EXPECT_TRUE(reservation.ok()) << reservation.status();
  return *reservation;
}

template <typename Impl>
class InventoryRepositoryContractTest : public ::testing::Test {
 protected:
  void SetUp() override { env_ = Impl::Make(); }
  InventoryRepository& repo() { return env_->repository(); }

  // Creates `sku` with `on_hand` units; fails the test on error.
  Product Stock(const std::string& sku, int64_t on_hand) {
    absl::StatusOr<UpsertProductResult> r = repo().UpsertProduct(SampleProduct(sku, on_hand), 0);
    EXPECT_TRUE(r.ok()) << r.status();
    return r.ok() ? r->product : Product{};
  }

  // The stored product; fails the test when it cannot be read.
  Product Read(const std::string& sku) {
    absl::StatusOr<Product> p = repo().GetProduct(sku);
    EXPECT_TRUE(p.ok()) << p.status();
    return p.ok() ? *p : Product{};
  }

 private:
  std::unique_ptr<InventoryRepositoryEnv> env_;
};

TYPED_TEST_SUITE_P(InventoryRepositoryContractTest);

// ---- products -------------------------------------------------------------------------------

TYPED_TEST_P(InventoryRepositoryContractTest, UpsertThenGetReturnsProduct) {
  const Product product = SampleProduct("SKU-1", 10, "req-1", "Blue widget");
  absl::StatusOr<UpsertProductResult> created = this->repo().UpsertProduct(product, 0);
  ASSERT_TRUE(created.ok()) << created.status();
  EXPECT_TRUE(created->written);
  EXPECT_EQ(created->product.version, 1);
  EXPECT_NE(created->product.create_time, absl::InfinitePast());

  absl::StatusOr<Product> got = this->repo().GetProduct("SKU-1");
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(got->sku, "SKU-1");
  EXPECT_EQ(got->name, "Blue widget");
  EXPECT_EQ(got->unit_price, (Money{"USD", 1999}));
  EXPECT_EQ(got->on_hand, 10);
  EXPECT_EQ(got->reserved, 0);
  EXPECT_EQ(got->available(), 10);
  EXPECT_EQ(got->version, 1);
  EXPECT_EQ(got->last_request_id, "req-1");
  EXPECT_EQ(got->last_request_fingerprint, product.last_request_fingerprint);
  EXPECT_EQ(got->create_time, created->product.create_time);
  EXPECT_EQ(got->update_time, created->product.update_time);
}

TYPED_TEST_P(InventoryRepositoryContractTest, UpsertExistingReplacesFieldsAndBumpsVersion) {
  this->Stock("SKU-1", 10);
  Product replacement = SampleProduct("SKU-1", 25, "req-2", "Renamed");
  replacement.unit_price = Money{"EUR", 500};
  absl::StatusOr<UpsertProductResult> replaced = this->repo().UpsertProduct(replacement, 1);
  ASSERT_TRUE(replaced.ok()) << replaced.status();
  EXPECT_TRUE(replaced->written);
  EXPECT_EQ(replaced->product.version, 2);

  const Product got = this->Read("SKU-1");
  EXPECT_EQ(got.name, "Renamed");
  EXPECT_EQ(got.unit_price, (Money{"EUR", 500}));
  EXPECT_EQ(got.on_hand, 25);
  EXPECT_EQ(got.version, 2);
  EXPECT_GE(got.update_time, got.create_time);
}

TYPED_TEST_P(InventoryRepositoryContractTest, UpsertWithStaleExpectedVersionIsAborted) {
  this->Stock("SKU-1", 10);
  ASSERT_TRUE(this->repo().UpsertProduct(SampleProduct("SKU-1", 11, "req-2"), 1).ok());

  absl::StatusOr<UpsertProductResult> stale =
      this->repo().UpsertProduct(SampleProduct("SKU-1", 12, "req-3"), 1);
  EXPECT_EQ(stale.status().code(), absl::StatusCode::kAborted) << stale.status();
  EXPECT_EQ(this->Read("SKU-1").on_hand, 11);
  EXPECT_EQ(this->Read("SKU-1").version, 2);
}

TYPED_TEST_P(InventoryRepositoryContractTest, UpsertWithExpectedVersionOfMissingProductIsAborted) {
  absl::StatusOr<UpsertProductResult> r =
      this->repo().UpsertProduct(SampleProduct("SKU-NEW", 5), 3);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kAborted) << r.status();
  EXPECT_EQ(this->repo().GetProduct("SKU-NEW").status().code(), absl::StatusCode::kNotFound);
}

TYPED_TEST_P(InventoryRepositoryContractTest, UpsertReplayWithSameRequestIdWritesNothing) {
  const Product first = SampleProduct("SKU-1", 10, "req-1");
  ASSERT_TRUE(this->repo().UpsertProduct(first, 0).ok());
  // Stock moves on (a sale lowers on_hand); a late retry of the upsert must not undo that.
  ASSERT_TRUE(this->repo().Reserve(SampleReservation("order-1", {{"SKU-1", 3}})).ok());
  ASSERT_TRUE(this->repo().Commit("order-1").ok());

  absl::StatusOr<UpsertProductResult> replay = this->repo().UpsertProduct(first, 0);
  ASSERT_TRUE(replay.ok()) << replay.status();
  EXPECT_FALSE(replay->written);
  EXPECT_EQ(replay->product.on_hand, 7);
  EXPECT_EQ(replay->product.last_request_fingerprint, first.last_request_fingerprint);
  EXPECT_EQ(replay->request_fingerprint, first.last_request_fingerprint);
  EXPECT_EQ(this->Read("SKU-1").on_hand, 7);
}

// Every request id is remembered, not just the product's last writer: a late retry of an older
// upsert after a newer one writes nothing and answers with the product as it is now.
TYPED_TEST_P(InventoryRepositoryContractTest, LateReplayOfOlderUpsertAfterAnotherWritesNothing) {
  const Product older = SampleProduct("SKU-1", 10, "req-older");
  ASSERT_TRUE(this->repo().UpsertProduct(older, 0).ok());
  const Product newer = SampleProduct("SKU-1", 20, "req-newer");
  absl::StatusOr<UpsertProductResult> second = this->repo().UpsertProduct(newer, 0);
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_TRUE(second->written);
  EXPECT_EQ(second->request_fingerprint, newer.last_request_fingerprint);

  absl::StatusOr<UpsertProductResult> replay = this->repo().UpsertProduct(older, 0);
  ASSERT_TRUE(replay.ok()) << replay.status();
  EXPECT_FALSE(replay->written);
  EXPECT_EQ(replay->request_fingerprint, older.last_request_fingerprint);
  EXPECT_EQ(replay->product.on_hand, 20);
  EXPECT_EQ(replay->product.version, 2);
  const Product got = this->Read("SKU-1");
  EXPECT_EQ(got.on_hand, 20);
  EXPECT_EQ(got.version, 2);
  EXPECT_EQ(got.last_request_id, "req-newer");
}

// A request id names one upsert of one SKU: used again for another SKU it writes nothing and
// reports the first request's fingerprint and product.
TYPED_TEST_P(InventoryRepositoryContractTest, UpsertRequestIdOfAnotherSkuWritesNothing) {
  const Product first = SampleProduct("SKU-A", 10, "req-shared");
  ASSERT_TRUE(this->repo().UpsertProduct(first, 0).ok());
  const Product other = SampleProduct("SKU-B", 10, "req-shared");
  absl::StatusOr<UpsertProductResult> reused = this->repo().UpsertProduct(other, 0);
  ASSERT_TRUE(reused.ok()) << reused.status();
  EXPECT_FALSE(reused->written);
  EXPECT_EQ(reused->product.sku, "SKU-A");
  EXPECT_EQ(reused->request_fingerprint, first.last_request_fingerprint);
  EXPECT_NE(reused->request_fingerprint, other.last_request_fingerprint);
  EXPECT_EQ(this->repo().GetProduct("SKU-B").status().code(), absl::StatusCode::kNotFound);
}

// A failed upsert records nothing: its request id can still be applied later.
TYPED_TEST_P(InventoryRepositoryContractTest, FailedUpsertDoesNotRecordItsRequestId) {
  this->Stock("SKU-1", 10);
  const Product stale = SampleProduct("SKU-1", 12, "req-failed");
  EXPECT_EQ(this->repo().UpsertProduct(stale, 5).status().code(), absl::StatusCode::kAborted);
  const Product missing = SampleProduct("SKU-NEW", 3, "req-failed-new");
  EXPECT_EQ(this->repo().UpsertProduct(missing, 2).status().code(), absl::StatusCode::kAborted);

  absl::StatusOr<UpsertProductResult> retry = this->repo().UpsertProduct(stale, 1);
  ASSERT_TRUE(retry.ok()) << retry.status();
  EXPECT_TRUE(retry->written);
  EXPECT_EQ(this->Read("SKU-1").on_hand, 12);
  absl::StatusOr<UpsertProductResult> created = this->repo().UpsertProduct(missing, 0);
  ASSERT_TRUE(created.ok()) << created.status();
  EXPECT_TRUE(created->written);
}

// Concurrent upserts under one request id, each for its own SKU: exactly one writes, the others
// replay it.
TYPED_TEST_P(InventoryRepositoryContractTest, ConcurrentUpsertsWithOneRequestIdWriteOnce) {
  constexpr int kThreads = 8;
  std::vector<Product> candidates;
  for (int i = 0; i < kThreads; ++i) {
    candidates.push_back(SampleProduct(absl::StrCat("RACE-", i), 5, "req-race"));
  }
  std::atomic<int> written{0};
  std::vector<uint64_t> fingerprints(kThreads);
  std::vector<std::thread> threads;
  for (int i = 0; i < kThreads; ++i) {
    threads.emplace_back([&, i] {
      absl::StatusOr<UpsertProductResult> r = this->repo().UpsertProduct(candidates[i], 0);
      ASSERT_TRUE(r.ok()) << r.status();
      if (r->written) written++;
      fingerprints[i] = r->request_fingerprint;
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(written.load(), 1);
  absl::StatusOr<std::vector<Product>> all = this->repo().ListProducts("", 100);
  ASSERT_TRUE(all.ok()) << all.status();
  ASSERT_EQ(all->size(), 1u);
  for (uint64_t fingerprint : fingerprints) {
    EXPECT_EQ(fingerprint, all->front().last_request_fingerprint);
  }
}

TYPED_TEST_P(InventoryRepositoryContractTest, UpsertOnHandBelowReservedIsFailedPrecondition) {
  this->Stock("SKU-1", 10);
  ASSERT_TRUE(this->repo().Reserve(SampleReservation("order-1", {{"SKU-1", 6}})).ok());

  absl::StatusOr<UpsertProductResult> r =
      this->repo().UpsertProduct(SampleProduct("SKU-1", 5, "req-shrink"), 0);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kFailedPrecondition) << r.status();
  const Product got = this->Read("SKU-1");
  EXPECT_EQ(got.on_hand, 10);
  EXPECT_EQ(got.reserved, 6);

  // Exactly what is reserved is allowed.
  ASSERT_TRUE(this->repo().UpsertProduct(SampleProduct("SKU-1", 6, "req-exact"), 0).ok());
  EXPECT_EQ(this->Read("SKU-1").available(), 0);
}

TYPED_TEST_P(InventoryRepositoryContractTest, GetUnknownProductIsNotFound) {
  EXPECT_EQ(this->repo().GetProduct("NOPE").status().code(), absl::StatusCode::kNotFound);
}

TYPED_TEST_P(InventoryRepositoryContractTest, ListProductsPagesBySkuWithoutDuplicatesOrGaps) {
  std::vector<std::string> skus;
  for (int i = 0; i < 23; ++i) skus.push_back(absl::StrCat("SKU-", (i * 7) % 23 + 100));
  // Mixed case and punctuation: the order is byte order in every implementation.
  for (const char* sku : {"a-lower", "Z_upper", "0.zero", "A.dot"}) skus.push_back(sku);
  for (const std::string& sku : skus) this->Stock(sku, 1);
  std::set<std::string> expected(skus.begin(), skus.end());

  std::vector<std::string> seen;
  std::string after;
  for (int page = 0; page < 100; ++page) {
    absl::StatusOr<std::vector<Product>> rows = this->repo().ListProducts(after, 5);
    ASSERT_TRUE(rows.ok()) << rows.status();
    ASSERT_LE(rows->size(), 5u);
    if (rows->empty()) break;
    for (const Product& p : *rows) seen.push_back(p.sku);
    after = rows->back().sku;
  }
  EXPECT_EQ(seen, std::vector<std::string>(expected.begin(), expected.end()));
}

// ---- reservations ---------------------------------------------------------------------------

TYPED_TEST_P(InventoryRepositoryContractTest, ReserveHoldsStockOfEveryItem) {
  this->Stock("SKU-A", 10);
  this->Stock("SKU-B", 5);
  const Reservation reservation = SampleReservation("order-1", {{"SKU-B", 5}, {"SKU-A", 3}});
  absl::StatusOr<ReserveResult> r = this->repo().Reserve(reservation);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_TRUE(r->created);
  EXPECT_EQ(r->reservation.status, ReservationStatus::kHeld);
  EXPECT_EQ(r->reservation.version, 1);

  EXPECT_EQ(this->Read("SKU-A").reserved, 3);
  EXPECT_EQ(this->Read("SKU-A").available(), 7);
  EXPECT_EQ(this->Read("SKU-A").on_hand, 10);
  EXPECT_EQ(this->Read("SKU-B").available(), 0);

  absl::StatusOr<Reservation> got = this->repo().GetReservation("order-1");
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(got->items, reservation.items);  // In request order.
  EXPECT_EQ(got->status, ReservationStatus::kHeld);
  EXPECT_EQ(got->request_id, reservation.request_id);
  EXPECT_EQ(got->request_fingerprint, reservation.request_fingerprint);
  EXPECT_EQ(got->create_time, r->reservation.create_time);
}

TYPED_TEST_P(InventoryRepositoryContractTest, ReserveWithOneShortSkuLeavesEveryProductUntouched) {
  this->Stock("SKU-A", 10);
  this->Stock("SKU-B", 2);
  this->Stock("SKU-C", 10);
  absl::StatusOr<ReserveResult> r = this->repo().Reserve(
      SampleReservation("order-1", {{"SKU-A", 1}, {"SKU-B", 3}, {"SKU-C", 1}}));
  ASSERT_EQ(r.status().code(), absl::StatusCode::kFailedPrecondition) << r.status();
  EXPECT_EQ(r.status().message(), "insufficient stock for sku SKU-B: requested 3, available 2");
  for (const char* sku : {"SKU-A", "SKU-B", "SKU-C"}) {
    const Product p = this->Read(sku);
    EXPECT_EQ(p.reserved, 0) << sku;
    EXPECT_EQ(p.version, 1) << sku;
  }
  EXPECT_EQ(this->repo().GetReservation("order-1").status().code(), absl::StatusCode::kNotFound);
}

TYPED_TEST_P(InventoryRepositoryContractTest, ReserveUnknownSkuIsNotFoundAndReservesNothing) {
  this->Stock("SKU-A", 10);
  absl::StatusOr<ReserveResult> r =
      this->repo().Reserve(SampleReservation("order-1", {{"SKU-A", 1}, {"SKU-GHOST", 1}}));
  ASSERT_EQ(r.status().code(), absl::StatusCode::kNotFound) << r.status();
  EXPECT_NE(r.status().message().find("SKU-GHOST"), absl::string_view::npos) << r.status();
  EXPECT_EQ(this->Read("SKU-A").reserved, 0);
  EXPECT_EQ(this->repo().GetReservation("order-1").status().code(), absl::StatusCode::kNotFound);
}

TYPED_TEST_P(InventoryRepositoryContractTest, ReserveIsIdempotentPerOrder) {
  this->Stock("SKU-A", 10);
  const Reservation first = SampleReservation("order-1", {{"SKU-A", 4}}, "req-1");
  ASSERT_TRUE(this->repo().Reserve(first).ok());

  // Same request again, and the same order under another request id (with other items): the
  // existing reservation is the answer and no stock moves.
  for (const Reservation& again : {first, SampleReservation("order-1", {{"SKU-A", 9}}, "req-2")}) {
    absl::StatusOr<ReserveResult> r = this->repo().Reserve(again);
    ASSERT_TRUE(r.ok()) << r.status();
    EXPECT_FALSE(r->created);
    EXPECT_EQ(r->reservation.order_id, "order-1");
    EXPECT_EQ(r->reservation.request_id, "req-1");
    EXPECT_EQ(r->reservation.items, first.items);
    EXPECT_EQ(r->reservation.request_fingerprint, first.request_fingerprint);
  }
  EXPECT_EQ(this->Read("SKU-A").reserved, 4);
}

TYPED_TEST_P(InventoryRepositoryContractTest, ReserveWithRequestIdOfAnotherOrderReturnsThatOne) {
  this->Stock("SKU-A", 10);
  ASSERT_TRUE(this->repo().Reserve(SampleReservation("order-1", {{"SKU-A", 1}}, "req-1")).ok());
  absl::StatusOr<ReserveResult> r =
      this->repo().Reserve(SampleReservation("order-2", {{"SKU-A", 1}}, "req-1"));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_FALSE(r->created);
  EXPECT_EQ(r->reservation.order_id, "order-1");
  EXPECT_EQ(this->Read("SKU-A").reserved, 1);
  EXPECT_EQ(this->repo().GetReservation("order-2").status().code(), absl::StatusCode::kNotFound);
}

TYPED_TEST_P(InventoryRepositoryContractTest, ReserveReturnsExistingReservationEvenWhenSettled) {
  this->Stock("SKU-A", 10);
  const Reservation first = SampleReservation("order-1", {{"SKU-A", 4}});
  ASSERT_TRUE(this->repo().Reserve(first).ok());
  ASSERT_TRUE(this->repo().Release("order-1").ok());
  absl::StatusOr<ReserveResult> r = this->repo().Reserve(first);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_FALSE(r->created);
  EXPECT_EQ(r->reservation.status, ReservationStatus::kReleased);
  EXPECT_EQ(this->Read("SKU-A").reserved, 0);
}

TYPED_TEST_P(InventoryRepositoryContractTest, ConcurrentReservationsOfLastUnitSucceedOnce) {
  this->Stock("SKU-LAST", 1);
  constexpr int kThreads = 16;
  std::atomic<int> succeeded{0};
  std::atomic<int> out_of_stock{0};
  std::vector<std::string> unexpected;
  absl::Mutex mu;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      absl::StatusOr<ReserveResult> r =
          this->repo().Reserve(SampleReservation(absl::StrCat("order-", t), {{"SKU-LAST", 1}}));
      if (r.ok() && r->created) {
        ++succeeded;
      } else if (r.status().code() == absl::StatusCode::kFailedPrecondition) {
        ++out_of_stock;
      } else {
        absl::MutexLock lock(&mu);
        unexpected.push_back(r.ok() ? "not created" : r.status().ToString());
      }
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_TRUE(unexpected.empty()) << unexpected.front();
  EXPECT_EQ(succeeded.load(), 1);
  EXPECT_EQ(out_of_stock.load(), kThreads - 1);
  const Product p = this->Read("SKU-LAST");
  EXPECT_EQ(p.reserved, 1);
  EXPECT_EQ(p.available(), 0);
}

TYPED_TEST_P(InventoryRepositoryContractTest, ConcurrentReservationsOfSameOrderReserveOnce) {
  this->Stock("SKU-A", 5);
  this->Stock("SKU-B", 5);
  constexpr int kThreads = 8;
  std::atomic<int> created{0};
  std::atomic<int> replayed{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&] {
      absl::StatusOr<ReserveResult> r =
          this->repo().Reserve(SampleReservation("order-1", {{"SKU-A", 3}, {"SKU-B", 3}}, "req-1"));
      EXPECT_TRUE(r.ok()) << r.status();
      if (r.ok()) ++(r->created ? created : replayed);
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(created.load(), 1);
  EXPECT_EQ(replayed.load(), kThreads - 1);
  EXPECT_EQ(this->Read("SKU-A").reserved, 3);
  EXPECT_EQ(this->Read("SKU-B").reserved, 3);
}

TYPED_TEST_P(InventoryRepositoryContractTest, ConcurrentMixedTrafficNeverOversellsOrDeadlocks) {
  const std::vector<std::string> skus = {"SKU-A", "SKU-B", "SKU-C", "SKU-D"};
  for (const std::string& sku : skus) this->Stock(sku, 20);
  constexpr int kThreads = 8;
  constexpr int kOrdersPerThread = 12;
  std::vector<std::string> unexpected;
  absl::Mutex mu;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      std::mt19937 rng(t);
      for (int n = 0; n < kOrdersPerThread; ++n) {
        // Several SKUs in a random order, so lock order is the repository's business.
        std::vector<std::string> shuffled = skus;
        std::shuffle(shuffled.begin(), shuffled.end(), rng);
        std::vector<ReservationItem> items;
        for (int k = 0; k < 1 + static_cast<int>(rng() % 3); ++k) {
          items.push_back({shuffled[k], 1 + static_cast<int32_t>(rng() % 3)});
        }
        const std::string order = absl::StrCat("order-", t, "-", n);
        absl::StatusOr<ReserveResult> r = this->repo().Reserve(SampleReservation(order, items));
        absl::Status settled = r.status();
        if (r.ok()) {
          settled = (rng() % 2 == 0) ? this->repo().Release(order).status()
                                     : this->repo().Commit(order).status();
        }
        if (!settled.ok() && settled.code() != absl::StatusCode::kFailedPrecondition) {
          absl::MutexLock lock(&mu);
          unexpected.push_back(settled.ToString());
        }
      }
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_TRUE(unexpected.empty()) << unexpected.front();
  // Every reservation is settled, so nothing stays reserved and stock only went down by sales.
  for (const std::string& sku : skus) {
    const Product p = this->Read(sku);
    EXPECT_EQ(p.reserved, 0) << sku;
    EXPECT_GE(p.on_hand, 0) << sku;
    EXPECT_LE(p.on_hand, 20) << sku;
  }
}

TYPED_TEST_P(InventoryRepositoryContractTest, ReleaseReturnsStockAndIsIdempotent) {
  this->Stock("SKU-A", 10);
  this->Stock("SKU-B", 10);
  ASSERT_TRUE(
      this->repo().Reserve(SampleReservation("order-1", {{"SKU-A", 4}, {"SKU-B", 2}})).ok());

  absl::StatusOr<Reservation> released = this->repo().Release("order-1");
  ASSERT_TRUE(released.ok()) << released.status();
  EXPECT_EQ(released->status, ReservationStatus::kReleased);
  EXPECT_EQ(released->version, 2);
  EXPECT_EQ(this->Read("SKU-A").reserved, 0);
  EXPECT_EQ(this->Read("SKU-A").on_hand, 10);
  EXPECT_EQ(this->Read("SKU-B").available(), 10);

  absl::StatusOr<Reservation> again = this->repo().Release("order-1");
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(again->status, ReservationStatus::kReleased);
  EXPECT_EQ(again->version, 2);
  EXPECT_EQ(this->Read("SKU-A").reserved, 0);
  EXPECT_EQ(this->repo().GetReservation("order-1")->status, ReservationStatus::kReleased);
}

TYPED_TEST_P(InventoryRepositoryContractTest, CommitReducesOnHandAndIsIdempotent) {
  this->Stock("SKU-A", 10);
  ASSERT_TRUE(this->repo().Reserve(SampleReservation("order-1", {{"SKU-A", 4}})).ok());

  absl::StatusOr<Reservation> committed = this->repo().Commit("order-1");
  ASSERT_TRUE(committed.ok()) << committed.status();
  EXPECT_EQ(committed->status, ReservationStatus::kCommitted);
  EXPECT_EQ(committed->version, 2);
  Product p = this->Read("SKU-A");
  EXPECT_EQ(p.on_hand, 6);
  EXPECT_EQ(p.reserved, 0);
  EXPECT_EQ(p.available(), 6);

  absl::StatusOr<Reservation> again = this->repo().Commit("order-1");
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(again->version, 2);
  p = this->Read("SKU-A");
  EXPECT_EQ(p.on_hand, 6);
  EXPECT_EQ(p.reserved, 0);
}

TYPED_TEST_P(InventoryRepositoryContractTest, ReleaseAfterCommitIsFailedPrecondition) {
  this->Stock("SKU-A", 10);
  ASSERT_TRUE(this->repo().Reserve(SampleReservation("order-1", {{"SKU-A", 4}})).ok());
  ASSERT_TRUE(this->repo().Commit("order-1").ok());

  absl::StatusOr<Reservation> r = this->repo().Release("order-1");
  EXPECT_EQ(r.status().code(), absl::StatusCode::kFailedPrecondition) << r.status();
  const Product p = this->Read("SKU-A");
  EXPECT_EQ(p.on_hand, 6);
  EXPECT_EQ(p.reserved, 0);
  EXPECT_EQ(this->repo().GetReservation("order-1")->status, ReservationStatus::kCommitted);
}

TYPED_TEST_P(InventoryRepositoryContractTest, CommitAfterReleaseIsFailedPrecondition) {
  this->Stock("SKU-A", 10);
  ASSERT_TRUE(this->repo().Reserve(SampleReservation("order-1", {{"SKU-A", 4}})).ok());
  ASSERT_TRUE(this->repo().Release("order-1").ok());

  absl::StatusOr<Reservation> r = this->repo().Commit("order-1");
  EXPECT_EQ(r.status().code(), absl::StatusCode::kFailedPrecondition) << r.status();
  EXPECT_EQ(this->Read("SKU-A").on_hand, 10);
  EXPECT_EQ(this->repo().GetReservation("order-1")->status, ReservationStatus::kReleased);
}

TYPED_TEST_P(InventoryRepositoryContractTest, ReturnAfterCommitRestoresOnHandAndIsIdempotent) {
  this->Stock("SKU-A", 10);
  this->Stock("SKU-B", 5);
  ASSERT_TRUE(
      this->repo().Reserve(SampleReservation("order-1", {{"SKU-B", 5}, {"SKU-A", 4}})).ok());
  // Another order's hold on SKU-A must survive the return untouched.
  ASSERT_TRUE(this->repo().Reserve(SampleReservation("order-2", {{"SKU-A", 2}})).ok());
  ASSERT_TRUE(this->repo().Commit("order-1").ok());
  const Product sold_a = this->Read("SKU-A");
  const Product sold_b = this->Read("SKU-B");
  ASSERT_EQ(sold_a.on_hand, 6);
  ASSERT_EQ(sold_b.on_hand, 0);

  absl::StatusOr<Reservation> returned = this->repo().Return("order-1");
  ASSERT_TRUE(returned.ok()) << returned.status();
  EXPECT_EQ(returned->status, ReservationStatus::kReturned);
  EXPECT_EQ(returned->version, 3);
  EXPECT_EQ(returned->items, (std::vector<ReservationItem>{{"SKU-B", 5}, {"SKU-A", 4}}));
  EXPECT_GE(returned->update_time, returned->create_time);
  Product a = this->Read("SKU-A");
  EXPECT_EQ(a.on_hand, 10);
  EXPECT_EQ(a.reserved, 2);
  EXPECT_EQ(a.available(), 8);
  EXPECT_EQ(a.version, sold_a.version + 1);
  EXPECT_GE(a.update_time, sold_a.update_time);
  Product b = this->Read("SKU-B");
  EXPECT_EQ(b.on_hand, 5);
  EXPECT_EQ(b.reserved, 0);
  EXPECT_EQ(b.version, sold_b.version + 1);

  // Returning again is the same answer and puts nothing more back.
  absl::StatusOr<Reservation> again = this->repo().Return("order-1");
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(again->status, ReservationStatus::kReturned);
  EXPECT_EQ(again->version, returned->version);
  EXPECT_EQ(again->update_time, returned->update_time);
  a = this->Read("SKU-A");
  EXPECT_EQ(a.on_hand, 10);
  EXPECT_EQ(a.version, sold_a.version + 1);
  b = this->Read("SKU-B");
  EXPECT_EQ(b.on_hand, 5);
  EXPECT_EQ(b.version, sold_b.version + 1);
  absl::StatusOr<Reservation> stored = this->repo().GetReservation("order-1");
  ASSERT_TRUE(stored.ok()) << stored.status();
  EXPECT_EQ(stored->status, ReservationStatus::kReturned);
  EXPECT_EQ(stored->version, returned->version);

  // A returned reservation is settled for good.
  EXPECT_EQ(this->repo().Release("order-1").status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(this->repo().Commit("order-1").status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(this->Read("SKU-A").on_hand, 10);
}

TYPED_TEST_P(InventoryRepositoryContractTest, ReturnOfHeldOrReleasedIsFailedPrecondition) {
  this->Stock("SKU-A", 10);
  ASSERT_TRUE(this->repo().Reserve(SampleReservation("order-held", {{"SKU-A", 3}})).ok());
  ASSERT_TRUE(this->repo().Reserve(SampleReservation("order-released", {{"SKU-A", 2}})).ok());
  ASSERT_TRUE(this->repo().Release("order-released").ok());
  const Product before = this->Read("SKU-A");

  absl::StatusOr<Reservation> held = this->repo().Return("order-held");
  EXPECT_EQ(held.status().code(), absl::StatusCode::kFailedPrecondition) << held.status();
  absl::StatusOr<Reservation> released = this->repo().Return("order-released");
  EXPECT_EQ(released.status().code(), absl::StatusCode::kFailedPrecondition) << released.status();

  const Product after = this->Read("SKU-A");
  EXPECT_EQ(after.on_hand, before.on_hand);
  EXPECT_EQ(after.reserved, 3);
  EXPECT_EQ(after.version, before.version);
  EXPECT_EQ(this->repo().GetReservation("order-held")->status, ReservationStatus::kHeld);
  EXPECT_EQ(this->repo().GetReservation("order-released")->status, ReservationStatus::kReleased);
}

TYPED_TEST_P(InventoryRepositoryContractTest, ConcurrentReturnsOfOneReservationRestockOnce) {
  this->Stock("SKU-A", 10);
  this->Stock("SKU-B", 10);
  ASSERT_TRUE(
      this->repo().Reserve(SampleReservation("order-1", {{"SKU-B", 3}, {"SKU-A", 4}})).ok());
  ASSERT_TRUE(this->repo().Commit("order-1").ok());
  constexpr int kThreads = 8;
  std::atomic<int> returned{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&] {
      absl::StatusOr<Reservation> r = this->repo().Return("order-1");
      EXPECT_TRUE(r.ok()) << r.status();
      if (r.ok() && r->status == ReservationStatus::kReturned && r->version == 3) ++returned;
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(returned.load(), kThreads);
  EXPECT_EQ(this->Read("SKU-A").on_hand, 10);
  EXPECT_EQ(this->Read("SKU-B").on_hand, 10);
}

TYPED_TEST_P(InventoryRepositoryContractTest, SettlingUnknownReservationIsNotFound) {
  EXPECT_EQ(this->repo().Release("order-x").status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(this->repo().Commit("order-x").status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(this->repo().Return("order-x").status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(this->repo().GetReservation("order-x").status().code(), absl::StatusCode::kNotFound);
}

REGISTER_TYPED_TEST_SUITE_P(
    InventoryRepositoryContractTest, UpsertThenGetReturnsProduct,
    UpsertExistingReplacesFieldsAndBumpsVersion, UpsertWithStaleExpectedVersionIsAborted,
    UpsertWithExpectedVersionOfMissingProductIsAborted, UpsertReplayWithSameRequestIdWritesNothing,
    LateReplayOfOlderUpsertAfterAnotherWritesNothing, UpsertRequestIdOfAnotherSkuWritesNothing,
    FailedUpsertDoesNotRecordItsRequestId, ConcurrentUpsertsWithOneRequestIdWriteOnce,
    UpsertOnHandBelowReservedIsFailedPrecondition, GetUnknownProductIsNotFound,
    ListProductsPagesBySkuWithoutDuplicatesOrGaps, ReserveHoldsStockOfEveryItem,
    ReserveWithOneShortSkuLeavesEveryProductUntouched,
    ReserveUnknownSkuIsNotFoundAndReservesNothing, ReserveIsIdempotentPerOrder,
    ReserveWithRequestIdOfAnotherOrderReturnsThatOne,
    ReserveReturnsExistingReservationEvenWhenSettled, ConcurrentReservationsOfLastUnitSucceedOnce,
    ConcurrentReservationsOfSameOrderReserveOnce, ConcurrentMixedTrafficNeverOversellsOrDeadlocks,
    ReleaseReturnsStockAndIsIdempotent, CommitReducesOnHandAndIsIdempotent,
    ReleaseAfterCommitIsFailedPrecondition, CommitAfterReleaseIsFailedPrecondition,
    ReturnAfterCommitRestoresOnHandAndIsIdempotent, ReturnOfHeldOrReleasedIsFailedPrecondition,
    ConcurrentReturnsOfOneReservationRestockOnce, SettlingUnknownReservationIsNotFound);

}  // namespace order_platform::inventory
