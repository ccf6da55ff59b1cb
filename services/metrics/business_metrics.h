// Business metrics of the order platform, fed by the domain services through
// order_platform::BusinessEvents (services/common/business_events.h):
//   order_platform_orders_created_total{currency}          orders stored
//   order_platform_order_value_minor_total{currency}       their totals, in minor units
//   order_platform_orders_cancelled_total                  orders cancelled
//   order_platform_orders_confirmed_total                  orders confirmed
//   order_platform_orders_rejected_total{reason}           orders rejected
//   order_platform_payments_total{outcome}                 payment outcomes
//   order_platform_stock_reservations_failed_total{reason} refused reservations
// Labels are bounded: currency is a known ISO 4217 code (else "other"), outcome and reason come
// from enums. Every outcome and reason series exists from the start with value 0.
#pragma once

#include <array>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"
#include "services/common/business_events.h"
#include "services/metrics/metrics_registry.h"

namespace prometheus {
class Counter;
template <typename T>
class Family;
}  // namespace prometheus

namespace order_platform::metrics {

// Thread-safe. Must outlive the services it is given to.
class BusinessMetrics final : public BusinessEvents {
 public:
  explicit BusinessMetrics(MetricsRegistry& registry);

  void OrderCreated(const Money& total) override;
  void OrderCancelled() override;
  void OrderConfirmed() override;
  void OrderRejected(OrderRejection reason) override;
  void PaymentRecorded(PaymentOutcome outcome) override;
  void ReservationFailed(ReservationFailure reason) override;

 private:
  // The created and value counters of one currency.
  struct CurrencySeries {
    prometheus::Counter* created;
    prometheus::Counter* value_minor;
  };
  CurrencySeries SeriesFor(const std::string& currency);

  prometheus::Family<prometheus::Counter>& created_;
  prometheus::Family<prometheus::Counter>& value_minor_;
  prometheus::Counter& cancelled_;
  prometheus::Counter& confirmed_;
  std::array<prometheus::Counter*, 6> payments_{};      // By PaymentOutcome.
  std::array<prometheus::Counter*, 2> reservations_{};  // By ReservationFailure.
  std::array<prometheus::Counter*, 6> rejections_{};    // By OrderRejection.

  absl::Mutex mu_;
  absl::flat_hash_map<std::string, CurrencySeries> currencies_ ABSL_GUARDED_BY(mu_);
};

}  // namespace order_platform::metrics
