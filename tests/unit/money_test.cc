// Unit tests for services/common/money.h: ISO 4217 codes, amount validation with field paths,
// exact overflow-checked arithmetic and display formatting.
#include "services/common/money.h"

#include <cstdint>
#include <limits>

#include "gtest/gtest.h"
#include "services/common/errors.h"

namespace order_platform {
namespace {

constexpr int64_t kMax = std::numeric_limits<int64_t>::max();
constexpr int64_t kMin = std::numeric_limits<int64_t>::min();

Money Usd(int64_t minor) { return Money{"USD", minor}; }

// ---- IsKnownCurrency
// -----------------------------------------------------------------------------

TEST(IsKnownCurrencyTest, AcceptsActiveIso4217Codes) {
  for (absl::string_view code : {"USD", "EUR", "JPY", "GBP", "CHF", "AED", "ZWL", "BHD"}) {
    EXPECT_TRUE(IsKnownCurrency(code)) << code;
  }
}

TEST(IsKnownCurrencyTest, RejectsUnknownMalformedAndLowerCaseCodes) {
  for (absl::string_view code :
       {"", "XXX", "ABC", "usd", "Usd", "US", "USDD", " USD", "USD ", "XAU", "U D", "USD EUR"}) {
    EXPECT_FALSE(IsKnownCurrency(code)) << "\"" << code << "\"";
  }
}

// ---- ValidateAmount
// ------------------------------------------------------------------------------

TEST(ValidateAmountTest, PositiveAmountInKnownCurrencyIsValid) {
  EXPECT_TRUE(ValidateAmount(Usd(1), "amount").ok());
  EXPECT_TRUE(ValidateAmount(Usd(kMax), "amount").ok());
  EXPECT_TRUE(ValidateAmount(Money{"JPY", 500}, "amount").ok());
}

TEST(ValidateAmountTest, ZeroIsRejectedByDefault) {
  absl::Status status = ValidateAmount(Usd(0), "amount");
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(FieldOf(status), "amount.amount_minor");
  EXPECT_EQ(status.message(), "amount.amount_minor: must be positive");
}

TEST(ValidateAmountTest, ZeroIsAcceptedWhenAllowed) {
  EXPECT_TRUE(ValidateAmount(Usd(0), "amount", /*allow_zero=*/true).ok());
}

TEST(ValidateAmountTest, NegativeIsRejectedEvenWhenZeroIsAllowed) {
  absl::Status strict = ValidateAmount(Usd(-1), "refund.amount");
  EXPECT_EQ(strict.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(FieldOf(strict), "refund.amount.amount_minor");

  absl::Status lenient = ValidateAmount(Usd(kMin), "refund.amount", /*allow_zero=*/true);
  EXPECT_EQ(lenient.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(FieldOf(lenient), "refund.amount.amount_minor");
  EXPECT_EQ(lenient.message(), "refund.amount.amount_minor: must not be negative");
}

TEST(ValidateAmountTest, MissingCurrencyNamesTheCurrencyField) {
  absl::Status status = ValidateAmount(Money{"", 100}, "items[3].unit_price");
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(FieldOf(status), "items[3].unit_price.currency_code");
  EXPECT_EQ(status.message(), "items[3].unit_price.currency_code: is required");
}

TEST(ValidateAmountTest, UnknownCurrencyNamesTheCurrencyFieldAndTheCode) {
  absl::Status status = ValidateAmount(Money{"XYZ", 100}, "total");
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(FieldOf(status), "total.currency_code");
  EXPECT_EQ(status.message(), "total.currency_code: \"XYZ\" is not an ISO 4217 code");
}

TEST(ValidateAmountTest, CurrencyIsCheckedBeforeAmount) {
  absl::Status status = ValidateAmount(Money{"usd", -5}, "total");
  EXPECT_EQ(FieldOf(status), "total.currency_code");
}

// ---- AddMoney / SubtractMoney / MultiplyMoney
// ----------------------------------------------------

TEST(AddMoneyTest, AddsExactly) {
  absl::StatusOr<Money> sum = AddMoney(Usd(1999), Usd(1));
  ASSERT_TRUE(sum.ok()) << sum.status();
  EXPECT_EQ(*sum, Usd(2000));

  absl::StatusOr<Money> big = AddMoney(Usd(kMax - 1), Usd(1));
  ASSERT_TRUE(big.ok()) << big.status();
  EXPECT_EQ(*big, Usd(kMax));

  absl::StatusOr<Money> negative = AddMoney(Usd(-5), Usd(3));
  ASSERT_TRUE(negative.ok()) << negative.status();
  EXPECT_EQ(*negative, Usd(-2));
}

TEST(AddMoneyTest, CurrencyMismatchIsInvalidArgument) {
  absl::StatusOr<Money> sum = AddMoney(Usd(1), Money{"EUR", 1});
  EXPECT_EQ(sum.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(sum.status().message(), "currency mismatch: USD and EUR");
}

TEST(AddMoneyTest, OverflowIsOutOfRange) {
  EXPECT_EQ(AddMoney(Usd(kMax), Usd(1)).status().code(), absl::StatusCode::kOutOfRange);
  EXPECT_EQ(AddMoney(Usd(kMax), Usd(kMax)).status().code(), absl::StatusCode::kOutOfRange);
}

TEST(AddMoneyTest, UnderflowIsOutOfRange) {
  EXPECT_EQ(AddMoney(Usd(kMin), Usd(-1)).status().code(), absl::StatusCode::kOutOfRange);
}

TEST(SubtractMoneyTest, SubtractsExactly) {
  absl::StatusOr<Money> diff = SubtractMoney(Usd(2000), Usd(1));
  ASSERT_TRUE(diff.ok()) << diff.status();
  EXPECT_EQ(*diff, Usd(1999));

  absl::StatusOr<Money> below_zero = SubtractMoney(Usd(1), Usd(2));
  ASSERT_TRUE(below_zero.ok()) << below_zero.status();
  EXPECT_EQ(*below_zero, Usd(-1));

  absl::StatusOr<Money> to_min = SubtractMoney(Usd(kMin + 1), Usd(1));
  ASSERT_TRUE(to_min.ok()) << to_min.status();
  EXPECT_EQ(*to_min, Usd(kMin));
}

TEST(SubtractMoneyTest, CurrencyMismatchIsInvalidArgument) {
  EXPECT_EQ(SubtractMoney(Money{"GBP", 5}, Usd(1)).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(SubtractMoneyTest, UnderflowIsOutOfRange) {
  EXPECT_EQ(SubtractMoney(Usd(kMin), Usd(1)).status().code(), absl::StatusCode::kOutOfRange);
}

TEST(SubtractMoneyTest, OverflowIsOutOfRange) {
  EXPECT_EQ(SubtractMoney(Usd(kMax), Usd(-1)).status().code(), absl::StatusCode::kOutOfRange);
  EXPECT_EQ(SubtractMoney(Usd(0), Usd(kMin)).status().code(), absl::StatusCode::kOutOfRange);
}

TEST(MultiplyMoneyTest, MultipliesExactlyAndKeepsCurrency) {
  absl::StatusOr<Money> line = MultiplyMoney(Money{"EUR", 1999}, 3);
  ASSERT_TRUE(line.ok()) << line.status();
  EXPECT_EQ(*line, (Money{"EUR", 5997}));

  absl::StatusOr<Money> zero = MultiplyMoney(Usd(kMax), 0);
  ASSERT_TRUE(zero.ok()) << zero.status();
  EXPECT_EQ(*zero, Usd(0));

  // 3037000499^2 is the largest square below 2^63 - 1: no rounding through doubles.
  absl::StatusOr<Money> square = MultiplyMoney(Usd(3037000499), 3037000499);
  ASSERT_TRUE(square.ok()) << square.status();
  EXPECT_EQ(square->minor, int64_t{9223372030926249001});
}

TEST(MultiplyMoneyTest, OverflowIsOutOfRange) {
  EXPECT_EQ(MultiplyMoney(Usd(3037000500), 3037000500).status().code(),
            absl::StatusCode::kOutOfRange);
  EXPECT_EQ(MultiplyMoney(Usd(kMax / 2 + 1), 2).status().code(), absl::StatusCode::kOutOfRange);
  EXPECT_EQ(MultiplyMoney(Usd(kMin), -1).status().code(), absl::StatusCode::kOutOfRange);
}

TEST(MultiplyMoneyTest, UnderflowIsOutOfRange) {
  EXPECT_EQ(MultiplyMoney(Usd(kMin / 2 - 1), 2).status().code(), absl::StatusCode::kOutOfRange);
  EXPECT_EQ(MultiplyMoney(Usd(kMax), -2).status().code(), absl::StatusCode::kOutOfRange);
}

// ---- FormatMoney
// ---------------------------------------------------------------------------------

TEST(FormatMoneyTest, RendersCurrencyAndTwoMinorDigits) {
  EXPECT_EQ(FormatMoney(Usd(1999)), "USD 19.99");
  EXPECT_EQ(FormatMoney(Usd(0)), "USD 0.00");
  EXPECT_EQ(FormatMoney(Usd(5)), "USD 0.05");
  EXPECT_EQ(FormatMoney(Money{"EUR", 100}), "EUR 1.00");
}

TEST(FormatMoneyTest, RendersNegativeAmountsWithSign) {
  EXPECT_EQ(FormatMoney(Usd(-5)), "USD -0.05");
  EXPECT_EQ(FormatMoney(Usd(-1999)), "USD -19.99");
}

TEST(FormatMoneyTest, RendersInt64ExtremesWithoutOverflow) {
  EXPECT_EQ(FormatMoney(Usd(kMax)), "USD 92233720368547758.07");
  EXPECT_EQ(FormatMoney(Usd(kMin)), "USD -92233720368547758.08");
}

}  // namespace
}  // namespace order_platform
