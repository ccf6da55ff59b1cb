// Exact money: integer minor units of an ISO 4217 currency, with overflow-checked arithmetic.
// Floating point is never used for money anywhere in the platform.
#pragma once

#include <cstdint>
#include <string>
#include "absl/strings/string_view.h"

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace order_platform {

struct Money {
  std::string currency;  // ISO 4217 code, upper case ("USD").
  int64_t minor = 0;     // Amount in the currency's minor unit (cents for USD).

  friend bool operator==(const Money& a, const Money& b) {
    return a.currency == b.currency && a.minor == b.minor;
  }
  friend bool operator!=(const Money& a, const Money& b) { return !(a == b); }
};

// True when `code` is an active ISO 4217 currency code (three upper-case letters on the list).
bool IsKnownCurrency(absl::string_view code);

// Checks `money` as the value of field `field`: a known currency and, unless `allow_zero`, a
// positive amount (negative amounts are never valid). INVALID_ARGUMENT names the field.
absl::Status ValidateAmount(const Money& money, absl::string_view field, bool allow_zero = false);

// a + b. INVALID_ARGUMENT when the currencies differ, OUT_OF_RANGE on int64 overflow.
absl::StatusOr<Money> AddMoney(const Money& a, const Money& b);

// a - b. INVALID_ARGUMENT when the currencies differ, OUT_OF_RANGE on overflow.
absl::StatusOr<Money> SubtractMoney(const Money& a, const Money& b);

// unit * quantity. OUT_OF_RANGE on int64 overflow.
absl::StatusOr<Money> MultiplyMoney(const Money& unit, int64_t quantity);

// "USD 19.99"-style rendering for messages and logs (assumes two minor digits for display only).
std::string FormatMoney(const Money& money);

}  // namespace order_platform
