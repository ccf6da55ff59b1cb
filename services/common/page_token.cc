#include "services/common/page_token.h"

#include <cstdint>

#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "services/common/errors.h"
#include "services/common/validation.h"

namespace order_platform {
namespace {
constexpr absl::string_view kVersion = "p1";
constexpr size_t kMaxTokenLength = 512;

absl::Status BadToken(absl::string_view why) { return InvalidField("page_token", why); }

// The checksum guards against truncated or edited tokens (not against forgery: tokens carry
// nothing a caller may not see).
uint64_t Checksum(absl::string_view body) { return Fingerprint(body) & 0xffffffffu; }

}  // namespace

std::string EncodePageToken(const PageCursor& cursor, uint64_t filter_fingerprint) {
  const int64_t micros =
      cursor.time == absl::InfinitePast() ? INT64_MIN : absl::ToUnixMicros(cursor.time);
  const std::string body = absl::StrCat(micros, "|", filter_fingerprint, "|", cursor.id);
  return absl::WebSafeBase64Escape(absl::StrCat(kVersion, "|", Checksum(body), "|", body));
}

absl::StatusOr<std::optional<PageCursor>> DecodePageToken(absl::string_view token,
                                                          uint64_t filter_fingerprint) {
  if (token.empty()) return std::optional<PageCursor>();
  if (token.size() > kMaxTokenLength) return BadToken("is too long");
  std::string raw;
  if (!absl::WebSafeBase64Unescape(token, &raw)) return BadToken("is not a valid page token");
  std::vector<absl::string_view> head = absl::StrSplit(raw, absl::MaxSplits('|', 2));
  uint64_t checksum = 0;
  if (head.size() != 3 || head[0] != kVersion || !absl::SimpleAtoi(head[1], &checksum) ||
      checksum != Checksum(head[2])) {
    return BadToken("is not a valid page token");
  }
  std::vector<absl::string_view> parts = absl::StrSplit(head[2], absl::MaxSplits('|', 2));
  int64_t micros = 0;
  uint64_t fingerprint = 0;
  if (parts.size() != 3 || !absl::SimpleAtoi(parts[0], &micros) ||
      !absl::SimpleAtoi(parts[1], &fingerprint)) {
    return BadToken("is not a valid page token");
  }
  if (fingerprint != filter_fingerprint) {
    return BadToken("was issued for a different filter; start again without a token");
  }
  PageCursor cursor;
  cursor.time = micros == INT64_MIN ? absl::InfinitePast() : absl::FromUnixMicros(micros);
  cursor.id = std::string(parts[2]);
  return std::optional<PageCursor>(std::move(cursor));
}

}  // namespace order_platform
