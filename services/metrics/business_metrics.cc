#include "services/metrics/business_metrics.h"

#include <iterator>
#include <tuple>

#include "prometheus/counter.h"
#include "prometheus/family.h"

namespace order_platform::metrics {
namespace {

constexpr PaymentOutcome kOutcomes[] = {
    PaymentOutcome::kAuthorized, PaymentOutcome::kDeclined, PaymentOutcome::kCaptured,
    PaymentOutcome::kVoided,     PaymentOutcome::kRefunded, PaymentOutcome::kFailed,
};
constexpr ReservationFailure kReasons[] = {
    ReservationFailure::kInsufficientStock,
    ReservationFailure::kUnknownSku,
};
constexpr OrderRejection kRejections[] = {
    OrderRejection::kOutOfStock,       OrderRejection::kUnknownProduct,
    OrderRejection::kPaymentDeclined,  OrderRejection::kPaymentFailed,
    OrderRejection::kDeadlineExceeded, OrderRejection::kOther,
};

}  // namespace

BusinessMetrics::BusinessMetrics(MetricsRegistry& registry)
    : created_(prometheus::BuildCounter()
                   .Name("order_platform_orders_created_total")
                   .Help("Orders created (replays of a CreateOrder not counted), by currency.")
                   .Register(registry.registry())),
      value_minor_(prometheus::BuildCounter()
                       .Name("order_platform_order_value_minor_total")
                       .Help("Sum of the totals of created orders, in minor units of the "
                             "currency (cents for USD).")
                       .Register(registry.registry())),
      cancelled_(prometheus::BuildCounter()
                     .Name("order_platform_orders_cancelled_total")
                     .Help("Orders cancelled (replays not counted).")
                     .Register(registry.registry())
                     .Add({})),
      confirmed_(prometheus::BuildCounter()
                     .Name("order_platform_orders_confirmed_total")
                     .Help("Orders confirmed by their PlaceOrder workflow (stock reserved, "
                           "payment authorized).")
                     .Register(registry.registry())
                     .Add({})) {
  static_assert(std::size(kOutcomes) == std::tuple_size<decltype(payments_)>::value);
  static_assert(std::size(kReasons) == std::tuple_size<decltype(reservations_)>::value);
  static_assert(std::size(kRejections) == std::tuple_size<decltype(rejections_)>::value);
  auto& payments = prometheus::BuildCounter()
                       .Name("order_platform_payments_total")
                       .Help(
                           "Payment operations by outcome: authorized, declined, captured, "
                           "voided, refunded, failed (gateway call failed).")
                       .Register(registry.registry());
  for (PaymentOutcome outcome : kOutcomes) {
    payments_[static_cast<size_t>(outcome)] =
        &payments.Add({{"outcome", std::string(PaymentOutcomeName(outcome))}});
  }
  auto& reservations = prometheus::BuildCounter()
                           .Name("order_platform_stock_reservations_failed_total")
                           .Help(
                               "Stock reservations refused, by reason: insufficient_stock, "
                               "unknown_sku.")
                           .Register(registry.registry());
  for (ReservationFailure reason : kReasons) {
    reservations_[static_cast<size_t>(reason)] =
        &reservations.Add({{"reason", std::string(ReservationFailureName(reason))}});
  }
  auto& rejections = prometheus::BuildCounter()
                         .Name("order_platform_orders_rejected_total")
                         .Help(
                             "Orders rejected by their PlaceOrder workflow, by reason: "
                             "out_of_stock, unknown_product, payment_declined, payment_failed, "
                             "other.")
                         .Register(registry.registry());
  for (OrderRejection reason : kRejections) {
    rejections_[static_cast<size_t>(reason)] =
        &rejections.Add({{"reason", std::string(OrderRejectionName(reason))}});
  }
}

BusinessMetrics::CurrencySeries BusinessMetrics::SeriesFor(const std::string& currency) {
  const std::string label = IsKnownCurrency(currency) ? currency : "other";
  {
    absl::ReaderMutexLock lock(&mu_);
    if (auto it = currencies_.find(label); it != currencies_.end()) return it->second;
  }
  absl::MutexLock lock(&mu_);
  auto [it, inserted] = currencies_.try_emplace(label);
  if (inserted) {
    it->second.created = &created_.Add({{"currency", label}});
    it->second.value_minor = &value_minor_.Add({{"currency", label}});
  }
  return it->second;
}

void BusinessMetrics::OrderCreated(const Money& total) {
  const CurrencySeries series = SeriesFor(total.currency);
  series.created->Increment();
  if (total.minor > 0) series.value_minor->Increment(static_cast<double>(total.minor));
}

void BusinessMetrics::OrderCancelled() { cancelled_.Increment(); }

void BusinessMetrics::OrderConfirmed() { confirmed_.Increment(); }

void BusinessMetrics::OrderRejected(OrderRejection reason) {
  const size_t index = static_cast<size_t>(reason);
  if (index < rejections_.size()) rejections_[index]->Increment();
}

void BusinessMetrics::PaymentRecorded(PaymentOutcome outcome) {
  const size_t index = static_cast<size_t>(outcome);
  if (index < payments_.size()) payments_[index]->Increment();
}

void BusinessMetrics::ReservationFailed(ReservationFailure reason) {
  const size_t index = static_cast<size_t>(reason);
  if (index < reservations_.size()) reservations_[index]->Increment();
}

}  // namespace order_platform::metrics
