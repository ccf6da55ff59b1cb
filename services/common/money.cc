#include "services/common/money.h"

#include <cstdlib>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "services/common/errors.h"

namespace order_platform {
namespace {

// Active ISO 4217 codes (list 1, 2024), funds and precious-metal codes excluded.
constexpr absl::string_view kIso4217 =
    "AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BHD BIF BMD BND BOB BRL BSD BTN "
    "BWP BYN BZD CAD CDF CHF CLP CNY COP CRC CUC CUP CVE CZK DJF DKK DOP DZD EGP ERN ETB EUR "
    "FJD FKP GBP GEL GHS GIP GMD GNF GTQ GYD HKD HNL HTG HUF IDR ILS INR IQD IRR ISK JMD JOD "
    "JPY KES KGS KHR KMF KPW KRW KWD KYD KZT LAK LBP LKR LRD LSL LYD MAD MDL MGA MKD MMK MNT "
    "MOP MRU MUR MVR MWK MXN MYR MZN NAD NGN NIO NOK NPR NZD OMR PAB PEN PGK PHP PKR PLN PYG "
    "QAR RON RSD RUB RWF SAR SBD SCR SDG SEK SGD SHP SLE SLL SOS SRD SSP STN SVC SYP SZL THB "
    "TJS TMT TND TOP TRY TTD TWD TZS UAH UGX USD UYU UZS VED VES VND VUV WST XAF XCD XCG XOF "
    "XPF YER ZAR ZMW ZWG ZWL";

const absl::flat_hash_set<absl::string_view>& Currencies() {
  static const auto* set = new absl::flat_hash_set<absl::string_view>(
      absl::StrSplit(kIso4217, ' ', absl::SkipEmpty()));
  return *set;
}

absl::Status CurrencyMismatch(const Money& a, const Money& b) {
  return absl::InvalidArgumentError(
      absl::StrCat("currency mismatch: ", a.currency, " and ", b.currency));
}

}  // namespace

bool IsKnownCurrency(absl::string_view code) { return Currencies().contains(code); }

absl::Status ValidateAmount(const Money& money, absl::string_view field, bool allow_zero) {
  if (money.currency.empty()) {
    return InvalidField(absl::StrCat(field, ".currency_code"), "is required");
  }
  if (!IsKnownCurrency(money.currency)) {
    return InvalidField(absl::StrCat(field, ".currency_code"),
                        absl::StrCat("\"", money.currency, "\" is not an ISO 4217 code"));
  }
  if (money.minor < 0 || (!allow_zero && money.minor == 0)) {
    return InvalidField(absl::StrCat(field, ".amount_minor"),
                        allow_zero ? "must not be negative" : "must be positive");
  }
  return absl::OkStatus();
}

absl::StatusOr<Money> AddMoney(const Money& a, const Money& b) {
  if (a.currency != b.currency) return CurrencyMismatch(a, b);
  Money out{a.currency, 0};
  if (__builtin_add_overflow(a.minor, b.minor, &out.minor)) {
    return absl::OutOfRangeError("money amount overflows");
  }
  return out;
}

absl::StatusOr<Money> SubtractMoney(const Money& a, const Money& b) {
  if (a.currency != b.currency) return CurrencyMismatch(a, b);
  Money out{a.currency, 0};
  if (__builtin_sub_overflow(a.minor, b.minor, &out.minor)) {
    return absl::OutOfRangeError("money amount overflows");
  }
  return out;
}

absl::StatusOr<Money> MultiplyMoney(const Money& unit, int64_t quantity) {
  Money out{unit.currency, 0};
  if (__builtin_mul_overflow(unit.minor, quantity, &out.minor)) {
    return absl::OutOfRangeError("money amount overflows");
  }
  return out;
}

std::string FormatMoney(const Money& money) {
  const uint64_t abs = money.minor < 0 ? 0 - static_cast<uint64_t>(money.minor)
                                       : static_cast<uint64_t>(money.minor);
  return absl::StrFormat("%s %s%d.%02d", money.currency, money.minor < 0 ? "-" : "", abs / 100,
                         abs % 100);
}

}  // namespace order_platform
