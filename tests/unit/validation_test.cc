// Unit tests for services/common/validation.h: field validators (with the field path in every
// error), page sizes, and the stable FNV-1a request fingerprint.
#include "services/common/validation.h"

#include <cstdint>
#include <limits>
#include <string>

#include "absl/strings/escaping.h"
#include "gtest/gtest.h"
#include "services/common/errors.h"

namespace order_platform {
namespace {

// Expects INVALID_ARGUMENT naming `field`.
void ExpectInvalidField(const absl::Status& status, absl::string_view field) {
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << status;
  EXPECT_EQ(FieldOf(status), std::string(field)) << status;
}

// ---- ValidateRequestId
// ---------------------------------------------------------------------------

TEST(ValidateRequestIdTest, AcceptsPrintableAsciiUpTo128Characters) {
  EXPECT_TRUE(ValidateRequestId("r").ok());
  EXPECT_TRUE(ValidateRequestId("req-2024-01-01T00:00:00Z#1~!").ok());
  EXPECT_TRUE(ValidateRequestId(std::string(128, 'x')).ok());
}

TEST(ValidateRequestIdTest, EmptyIsRequiredOnDefaultField) {
  absl::Status status = ValidateRequestId("");
  ExpectInvalidField(status, "request_id");
  EXPECT_EQ(status.message(), "request_id: is required");
}

TEST(ValidateRequestIdTest, LongerThan128IsRejected) {
  absl::Status status = ValidateRequestId(std::string(129, 'x'));
  ExpectInvalidField(status, "request_id");
  EXPECT_EQ(status.message(), "request_id: must be at most 128 characters");
}

TEST(ValidateRequestIdTest, ControlAndNonAsciiCharactersAreRejected) {
  for (absl::string_view bad :
       {absl::string_view("a\nb"), absl::string_view("a\tb"), absl::string_view("a\x7f"),
        absl::string_view("a\0b", 3), absl::string_view("caf\xc3\xa9")}) {
    ExpectInvalidField(ValidateRequestId(bad), "request_id");
  }
}

TEST(ValidateRequestIdTest, UsesTheGivenFieldName) {
  ExpectInvalidField(ValidateRequestId("", "cancel.request_id"), "cancel.request_id");
}

// ---- ValidateIdentifier
// --------------------------------------------------------------------------

TEST(ValidateIdentifierTest, AcceptsPrintableAsciiUpToMaxLen) {
  EXPECT_TRUE(ValidateIdentifier("cust_42", "customer_id").ok());
  EXPECT_TRUE(ValidateIdentifier(std::string(64, 'c'), "customer_id").ok());
  EXPECT_TRUE(ValidateIdentifier(std::string(10, 'c'), "customer_id", 10).ok());
  EXPECT_TRUE(ValidateIdentifier("!~", "customer_id").ok());  // Printable ASCII edges.
}

TEST(ValidateIdentifierTest, EmptyIsRequired) {
  absl::Status status = ValidateIdentifier("", "customer_id");
  ExpectInvalidField(status, "customer_id");
  EXPECT_EQ(status.message(), "customer_id: is required");
}

TEST(ValidateIdentifierTest, DefaultMaxLenIs64) {
  absl::Status status = ValidateIdentifier(std::string(65, 'c'), "customer_id");
  ExpectInvalidField(status, "customer_id");
  EXPECT_EQ(status.message(), "customer_id: must be at most 64 characters");
}

TEST(ValidateIdentifierTest, CustomMaxLenIsEnforced) {
  ExpectInvalidField(ValidateIdentifier(std::string(11, 'c'), "ref", 11 - 1), "ref");
}

TEST(ValidateIdentifierTest, SpacesControlsAndNonAsciiAreRejected) {
  for (absl::string_view bad :
       {absl::string_view("a b"), absl::string_view(" "), absl::string_view("a\r"),
        absl::string_view("\x1f"), absl::string_view("\x7f"), absl::string_view("\0", 1),
        absl::string_view("\xc3\xa9"), absl::string_view("\xff")}) {
    absl::Status status = ValidateIdentifier(bad, "customer_id");
    ExpectInvalidField(status, "customer_id");
    EXPECT_EQ(status.message(), "customer_id: must be printable ASCII without spaces");
  }
}

// ---- ValidateSku
// ---------------------------------------------------------------------------------

TEST(ValidateSkuTest, AcceptsLettersDigitsDotUnderscoreDash) {
  EXPECT_TRUE(ValidateSku("SKU-1", "sku").ok());
  EXPECT_TRUE(ValidateSku("a.b_c-D9", "sku").ok());
  EXPECT_TRUE(ValidateSku(std::string(64, 'Z'), "sku").ok());
}

TEST(ValidateSkuTest, EmptyIsRequired) {
  absl::Status status = ValidateSku("", "items[0].sku");
  ExpectInvalidField(status, "items[0].sku");
  EXPECT_EQ(status.message(), "items[0].sku: is required");
}

TEST(ValidateSkuTest, LongerThan64IsRejected) {
  ExpectInvalidField(ValidateSku(std::string(65, 'Z'), "items[0].sku"), "items[0].sku");
}

TEST(ValidateSkuTest, OtherCharactersAreRejected) {
  for (absl::string_view bad : {"SKU 1", "SKU/1", "SKU+1", "SKU#1", "SKU\n", "SK\xc3\x9c"}) {
    absl::Status status = ValidateSku(bad, "items[2].sku");
    ExpectInvalidField(status, "items[2].sku");
    EXPECT_EQ(status.message(), "items[2].sku: must match [A-Za-z0-9._-]+");
  }
}

// ---- ValidateText
// --------------------------------------------------------------------------------

TEST(ValidateTextTest, EmptyIsRejectedOnlyWhenRequired) {
  absl::Status status = ValidateText("", "name", 100, /*required=*/true);
  ExpectInvalidField(status, "name");
  EXPECT_EQ(status.message(), "name: is required");
  EXPECT_TRUE(ValidateText("", "reason", 100, /*required=*/false).ok());
}

TEST(ValidateTextTest, MaxLenCountsBytes) {
  EXPECT_TRUE(ValidateText(std::string(10, 'a'), "name", 10, true).ok());
  absl::Status status = ValidateText(std::string(11, 'a'), "name", 10, true);
  ExpectInvalidField(status, "name");
  EXPECT_EQ(status.message(), "name: must be at most 10 bytes");
  // "é" is two bytes: five of them are ten bytes, six are twelve.
  EXPECT_TRUE(ValidateText("\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9", "name", 10, true).ok());
  ExpectInvalidField(
      ValidateText("\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9", "name", 10, true), "name");
}

TEST(ValidateTextTest, AcceptsPrintableAsciiWithSpaces) {
  EXPECT_TRUE(ValidateText("Changed my mind, sorry!", "reason", 500, false).ok());
}

TEST(ValidateTextTest, AcceptsValidMultiByteUtf8) {
  for (absl::string_view good : {
           "caf\xc3\xa9",                           // U+00E9, 2 bytes
           "\xdf\xbf",                              // U+07FF, largest 2-byte
           "\xe0\xa0\x80",                          // U+0800, smallest 3-byte
           "\xe2\x82\xac 5",                        // U+20AC euro sign
           "\xed\x9f\xbf",                          // U+D7FF, just below the surrogates
           "\xee\x80\x80",                          // U+E000, just above the surrogates
           "\xef\xbf\xbd",                          // U+FFFD
           "\xf0\x90\x80\x80",                      // U+10000, smallest 4-byte
           "\xf0\x9f\x98\x80 ok",                   // U+1F600 emoji
           "\xf4\x8f\xbf\xbf",                      // U+10FFFF, largest code point
           "\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e",  // 日本語
       }) {
    EXPECT_TRUE(ValidateText(good, "name", 100, true).ok()) << absl::CEscape(good);
  }
}

TEST(ValidateTextTest, AsciiControlCharactersAreRejected) {
  for (absl::string_view bad : {absl::string_view("line\nbreak"), absl::string_view("tab\there"),
                                absl::string_view("cr\r"), absl::string_view("\x1b[31m"),
                                absl::string_view("del\x7f"), absl::string_view("nul\0x", 5)}) {
    absl::Status status = ValidateText(bad, "reason", 500, false);
    ExpectInvalidField(status, "reason");
    EXPECT_EQ(status.message(), "reason: must be UTF-8 text without control characters");
  }
}

// C1 controls (U+0080..U+009F, e.g. U+0085 NEXT LINE) are Unicode control characters (Cc)
// just like C0, and the header promises "without control characters".
TEST(ValidateTextTest, C1ControlCharactersAreRejected) {
  for (absl::string_view bad : {"a\xc2\x85z", "\xc2\x80", "\xc2\x9b[31m", "\xc2\x9f"}) {
    SCOPED_TRACE(absl::CEscape(bad));
    ExpectInvalidField(ValidateText(bad, "reason", 500, false), "reason");
  }
}

TEST(ValidateTextTest, InvalidUtf8IsRejected) {
  for (absl::string_view bad : {
           "\x80",                  // Lone continuation byte.
           "a\xbf",                 // Lone continuation byte after ASCII.
           "\xff",                  // Never valid in UTF-8.
           "\xfe\xfe",              // Never valid in UTF-8.
           "\xf8\x88\x80\x80\x80",  // Five-byte form.
           "\xc3(",                 // Lead byte followed by a non-continuation.
           "\xe2\x28\xa1",          // Second byte not a continuation.
           "\xf0\x90\x28\xbc",      // Third byte not a continuation.
       }) {
    SCOPED_TRACE(absl::CEscape(bad));
    ExpectInvalidField(ValidateText(bad, "name", 100, true), "name");
  }
}

TEST(ValidateTextTest, TruncatedSequencesAreRejected) {
  for (absl::string_view bad : {
           "\xc3",          // 2-byte sequence missing its last byte.
           "abc\xc3",       // ... at the end of the text.
           "\xe2\x82",      // 3-byte sequence missing one byte.
           "\xe2",          // 3-byte sequence missing two bytes.
           "\xf0\x9f\x98",  // 4-byte sequence missing one byte.
           "\xf0\x9f",      // 4-byte sequence missing two bytes.
           "\xf0",          // 4-byte sequence missing three bytes.
           "\xe2\x82 x",    // Truncated in the middle of the text.
       }) {
    SCOPED_TRACE(absl::CEscape(bad));
    ExpectInvalidField(ValidateText(bad, "name", 100, true), "name");
  }
}

TEST(ValidateTextTest, TruncatedSequenceAtEndOfViewIsRejectedWhateverFollowsInMemory) {
  // The view ends after the lead byte; the byte after it in memory would complete the
  // sequence, but it is not part of the value and must not be read.
  const std::string buffer = "ok\xc3\xa9";
  const absl::string_view cut(buffer.data(), buffer.size() - 1);
  ExpectInvalidField(ValidateText(cut, "name", 100, true), "name");
  const std::string euro = "\xe2\x82\xac";
  ExpectInvalidField(ValidateText(absl::string_view(euro.data(), 2), "name", 100, true), "name");
}

TEST(ValidateTextTest, OverlongEncodingsAreRejected) {
  for (absl::string_view bad : {
           "\xc0\xaf",          // '/' in two bytes.
           "\xc1\xbf",          // U+007F in two bytes.
           "\xc0\x80",          // NUL in two bytes ("modified UTF-8").
           "\xe0\x80\xaf",      // '/' in three bytes.
           "\xe0\x9f\xbf",      // U+07FF in three bytes.
           "\xf0\x80\x80\xaf",  // '/' in four bytes.
           "\xf0\x8f\xbf\xbf",  // U+FFFF in four bytes.
       }) {
    SCOPED_TRACE(absl::CEscape(bad));
    ExpectInvalidField(ValidateText(bad, "name", 100, true), "name");
  }
}

TEST(ValidateTextTest, SurrogatesAndCodePointsBeyondUnicodeAreRejected) {
  for (absl::string_view bad : {
           "\xed\xa0\x80",              // U+D800, first high surrogate.
           "\xed\xbf\xbf",              // U+DFFF, last low surrogate.
           "\xed\xa0\xbd\xed\xb8\x80",  // CESU-8 surrogate pair for U+1F600.
           "\xf4\x90\x80\x80",          // U+110000, beyond the last code point.
           "\xf7\xbf\xbf\xbf",          // U+1FFFFF.
       }) {
    SCOPED_TRACE(absl::CEscape(bad));
    ExpectInvalidField(ValidateText(bad, "name", 100, true), "name");
  }
}

// ---- ValidateRange / ValidatePageSize
// ------------------------------------------------------------

TEST(ValidateRangeTest, AcceptsBoundsInclusive) {
  EXPECT_TRUE(ValidateRange(1, "quantity", 1, 10).ok());
  EXPECT_TRUE(ValidateRange(10, "quantity", 1, 10).ok());
  EXPECT_TRUE(ValidateRange(std::numeric_limits<int64_t>::min(), "x",
                            std::numeric_limits<int64_t>::min(), 0)
                  .ok());
}

TEST(ValidateRangeTest, RejectsOutsideBoundsWithRangeInMessage) {
  absl::Status below = ValidateRange(0, "items[1].quantity", 1, 10000);
  ExpectInvalidField(below, "items[1].quantity");
  EXPECT_EQ(below.message(), "items[1].quantity: must be between 1 and 10000");
  ExpectInvalidField(ValidateRange(10001, "items[1].quantity", 1, 10000), "items[1].quantity");
  ExpectInvalidField(ValidateRange(-5, "x", -4, 4), "x");
}

TEST(ValidatePageSizeTest, ZeroMeansDefault) {
  int32_t size = -1;
  ASSERT_TRUE(ValidatePageSize(0, "page_size", 50, 1000, &size).ok());
  EXPECT_EQ(size, 50);
}

TEST(ValidatePageSizeTest, ExplicitSizeWithinLimitIsUsed) {
  int32_t size = -1;
  ASSERT_TRUE(ValidatePageSize(1, "page_size", 50, 1000, &size).ok());
  EXPECT_EQ(size, 1);
  ASSERT_TRUE(ValidatePageSize(1000, "page_size", 50, 1000, &size).ok());
  EXPECT_EQ(size, 1000);
}

TEST(ValidatePageSizeTest, NegativeOrAboveMaxIsInvalid) {
  int32_t size = 0;
  absl::Status too_big = ValidatePageSize(1001, "page_size", 50, 1000, &size);
  ExpectInvalidField(too_big, "page_size");
  EXPECT_EQ(too_big.message(), "page_size: must be between 1 and 1000");
  ExpectInvalidField(ValidatePageSize(-1, "page_size", 50, 1000, &size), "page_size");
  ExpectInvalidField(
      ValidatePageSize(std::numeric_limits<int32_t>::min(), "page_size", 50, 1000, &size),
      "page_size");
}

// ---- Fingerprint
// ---------------------------------------------------------------------------------

TEST(FingerprintTest, IsFnv1a64WithKnownValues) {
  EXPECT_EQ(Fingerprint(""), 0xcbf29ce484222325ull);  // The FNV-1a 64 offset basis.
  EXPECT_EQ(Fingerprint("a"), 0xaf63dc4c8601ec8cull);
  EXPECT_EQ(Fingerprint("hello"), 0xa430d84680aabd0bull);
}

TEST(FingerprintTest, IsStableAcrossCalls) {
  const std::string data = "orders|alice|pending";
  EXPECT_EQ(Fingerprint(data), Fingerprint(std::string(data)));
}

TEST(FingerprintTest, ChangesWithAnyByte) {
  const uint64_t base = Fingerprint("hello");
  EXPECT_NE(Fingerprint("hellp"), base);
  EXPECT_NE(Fingerprint("Hello"), base);
  EXPECT_NE(Fingerprint("hell"), base);
  EXPECT_NE(Fingerprint("hello "), base);
  EXPECT_NE(Fingerprint(absl::string_view("hello\0", 6)), base);
  EXPECT_NE(Fingerprint("olleh"), base);
}

TEST(FingerprintTest, HashesBytesAboveAsciiAsUnsigned) {
  // FNV-1a XORs the byte value 0xff, not a sign-extended char.
  uint64_t expected = 0xcbf29ce484222325ull;
  expected ^= 0xffull;
  expected *= 0x100000001b3ull;
  EXPECT_EQ(Fingerprint("\xff"), expected);
}

}  // namespace
}  // namespace order_platform
