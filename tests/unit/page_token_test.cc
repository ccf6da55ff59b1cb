// Unit tests for services/common/page_token.h: opaque keyset tokens round-trip their cursor,
// an empty token is the first page, and anything malformed or issued for other filters is an
// INVALID_ARGUMENT on field "page_token".
#include "services/common/page_token.h"

#include <optional>
#include <string>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "services/common/errors.h"
#include "services/common/validation.h"

namespace order_platform {
namespace {

constexpr uint64_t kFilter = 0x1234abcd5678ef90ull;
constexpr absl::string_view kOrderId = "018cc820-db2e-7abc-8123-456789abcdef";

// Database timestamps have microsecond resolution, and so do tokens.
absl::Time SomeTime() { return absl::FromUnixMicros(1704164645678901); }

// A token whose decoded text is `raw`, for hand-made malformed tokens.
std::string TokenOf(absl::string_view raw) { return absl::WebSafeBase64Escape(raw); }

// The token body for SomeTime()/kOrderId/kFilter, and a raw token text around a body with the
// checksum the encoder writes (FNV-1a 64 of the body, low 32 bits).
std::string Body() { return absl::StrCat("1704164645678901|", kFilter, "|", kOrderId); }
std::string WithChecksum(absl::string_view version, absl::string_view body) {
  return absl::StrCat(version, "|", Fingerprint(body) & 0xffffffffu, "|", body);
}

void ExpectBadToken(const absl::StatusOr<std::optional<PageCursor>>& decoded) {
  EXPECT_EQ(decoded.status().code(), absl::StatusCode::kInvalidArgument) << decoded.status();
  EXPECT_EQ(FieldOf(decoded.status()), "page_token") << decoded.status();
}

TEST(PageTokenTest, RoundTripsTimeAndId) {
  const std::string token = EncodePageToken(PageCursor{SomeTime(), std::string(kOrderId)}, kFilter);
  absl::StatusOr<std::optional<PageCursor>> decoded = DecodePageToken(token, kFilter);
  ASSERT_TRUE(decoded.ok()) << decoded.status();
  ASSERT_TRUE(decoded->has_value());
  EXPECT_EQ((*decoded)->time, SomeTime());
  EXPECT_EQ((*decoded)->id, kOrderId);
}

TEST(PageTokenTest, RoundTripsTimesBeforeTheEpochAndTheEpochItself) {
  for (absl::Time time : {absl::UnixEpoch(), absl::FromUnixMicros(-1),
                          absl::FromUnixMicros(-86400000000LL * 365 * 30)}) {
    absl::StatusOr<std::optional<PageCursor>> decoded =
        DecodePageToken(EncodePageToken(PageCursor{time, "id"}, kFilter), kFilter);
    ASSERT_TRUE(decoded.ok()) << decoded.status();
    ASSERT_TRUE(decoded->has_value());
    EXPECT_EQ((*decoded)->time, time);
  }
}

TEST(PageTokenTest, RoundTripsKeyOnlyCursorWithInfinitePast) {
  const std::string token = EncodePageToken(PageCursor{absl::InfinitePast(), "SKU-42"}, kFilter);
  absl::StatusOr<std::optional<PageCursor>> decoded = DecodePageToken(token, kFilter);
  ASSERT_TRUE(decoded.ok()) << decoded.status();
  ASSERT_TRUE(decoded->has_value());
  EXPECT_EQ((*decoded)->time, absl::InfinitePast());
  EXPECT_EQ((*decoded)->id, "SKU-42");
}

TEST(PageTokenTest, RoundTripsIdsContainingTheSeparator) {
  const std::string token = EncodePageToken(PageCursor{SomeTime(), "a|b|c"}, kFilter);
  absl::StatusOr<std::optional<PageCursor>> decoded = DecodePageToken(token, kFilter);
  ASSERT_TRUE(decoded.ok()) << decoded.status();
  ASSERT_TRUE(decoded->has_value());
  EXPECT_EQ((*decoded)->id, "a|b|c");
}

TEST(PageTokenTest, TokenIsUrlSafeText) {
  const std::string token = EncodePageToken(PageCursor{SomeTime(), "\xff\xfe?/+=&"}, ~uint64_t{0});
  for (char c : token) {
    EXPECT_TRUE(absl::ascii_isalnum(c) || c == '-' || c == '_') << token;
  }
}

TEST(PageTokenTest, EmptyTokenMeansFirstPage) {
  absl::StatusOr<std::optional<PageCursor>> decoded = DecodePageToken("", kFilter);
  ASSERT_TRUE(decoded.ok()) << decoded.status();
  EXPECT_FALSE(decoded->has_value());
}

TEST(PageTokenTest, GarbageIsRejected) {
  for (absl::string_view garbage : {"!!!!", "not a token", "a", "%%%%%%%%", "====", "ab\ncd"}) {
    SCOPED_TRACE(garbage);
    ExpectBadToken(DecodePageToken(garbage, kFilter));
  }
}

TEST(PageTokenTest, WellFormedBase64OfWrongTextIsRejected) {
  for (absl::string_view raw : {
           "hello", "p1", "p1|1",
           "p1|1|2",                        // Missing the id part.
           "p1|not-a-number|2|id",          // Bad time.
           "p1|1|not-a-number|id",          // Bad fingerprint.
           "p1|1|-1|id",                    // Negative fingerprint.
           "p1|99999999999999999999|2|id",  // Time beyond int64.
       }) {
    SCOPED_TRACE(raw);
    ExpectBadToken(DecodePageToken(TokenOf(raw), kFilter));
  }
}

TEST(PageTokenTest, WrongVersionIsRejected) {
  for (absl::string_view version : {"p0", "p2", "P1", "v1", ""}) {
    SCOPED_TRACE(version);
    ExpectBadToken(DecodePageToken(TokenOf(WithChecksum(version, Body())), kFilter));
  }
  // The same text with the right version is accepted: only the version made the difference.
  EXPECT_TRUE(DecodePageToken(TokenOf(WithChecksum("p1", Body())), kFilter).ok());
}

TEST(PageTokenTest, TokenIssuedForAnotherFilterIsRejected) {
  const std::string token = EncodePageToken(PageCursor{SomeTime(), std::string(kOrderId)}, kFilter);
  absl::StatusOr<std::optional<PageCursor>> decoded = DecodePageToken(token, kFilter + 1);
  ExpectBadToken(decoded);
  EXPECT_EQ(decoded.status().message(),
            "page_token: was issued for a different filter; start again without a token");
}

TEST(PageTokenTest, TokenLongerThan512CharactersIsRejected) {
  // The longest id whose token still fits in 512 characters.
  std::string id_at_limit;
  while (EncodePageToken(PageCursor{SomeTime(), id_at_limit + "x"}, kFilter).size() <= 512) {
    id_at_limit += "x";
  }
  const std::string at_limit = EncodePageToken(PageCursor{SomeTime(), id_at_limit}, kFilter);
  ASSERT_LE(at_limit.size(), 512u);
  ASSERT_GE(at_limit.size(), 509u);
  EXPECT_TRUE(DecodePageToken(at_limit, kFilter).ok());

  const std::string over_limit =
      EncodePageToken(PageCursor{SomeTime(), id_at_limit + "x"}, kFilter);
  ASSERT_GT(over_limit.size(), 512u);
  absl::StatusOr<std::optional<PageCursor>> decoded = DecodePageToken(over_limit, kFilter);
  ExpectBadToken(decoded);
  EXPECT_EQ(decoded.status().message(), "page_token: is too long");

  ExpectBadToken(DecodePageToken(std::string(100000, 'A'), kFilter));
}

TEST(PageTokenTest, TokenTruncatedBeforeItsIdIsRejected) {
  const std::string token = EncodePageToken(PageCursor{SomeTime(), std::string(kOrderId)}, kFilter);
  // Every prefix shorter than the encoded "p1|<time>|<fingerprint>|" header.
  const size_t header_chars = absl::StrCat("p1|1704164645678901|", kFilter, "|").size() * 4 / 3;
  for (size_t length = 1; length < header_chars; ++length) {
    SCOPED_TRACE(length);
    ExpectBadToken(DecodePageToken(token.substr(0, length), kFilter));
  }
}

// A client that truncates a token (a length-limited column, a cut URL) must get an error, not a
// silently different position: the header promises INVALID_ARGUMENT for malformed tokens.
TEST(PageTokenTest, TokenTruncatedInsideItsIdIsRejected) {
  const std::string token = EncodePageToken(PageCursor{SomeTime(), std::string(kOrderId)}, kFilter);
  for (size_t cut : {1, 2, 4, 8, 20}) {
    SCOPED_TRACE(cut);
    absl::StatusOr<std::optional<PageCursor>> decoded =
        DecodePageToken(token.substr(0, token.size() - cut), kFilter);
    if (decoded.ok() && decoded->has_value()) {
      ADD_FAILURE() << "truncated token decoded to id \"" << (*decoded)->id << "\" instead of \""
                    << kOrderId << "\"";
    } else {
      ExpectBadToken(decoded);
    }
  }
}

}  // namespace
}  // namespace order_platform
