#include "services/common/ids.h"

#include <array>

#include "absl/random/random.h"
#include "absl/strings/ascii.h"
#include "services/common/validation.h"

namespace order_platform {
namespace {

constexpr char kHex[] = "0123456789abcdef";

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

std::string Format(const std::array<uint8_t, 16>& b) {
  std::string out;
  out.reserve(36);
  for (int i = 0; i < 16; ++i) {
    if (i == 4 || i == 6 || i == 8 || i == 10) out.push_back('-');
    out.push_back(kHex[b[i] >> 4]);
    out.push_back(kHex[b[i] & 0xf]);
  }
  return out;
}

}  // namespace

uint32_t CustomerBucket(absl::string_view customer_id) {
  return static_cast<uint32_t>(Fingerprint(customer_id) % kShardBuckets);
}

std::string NewUuidV7(absl::Time now, uint32_t bucket) {
  thread_local absl::BitGen gen;
  const uint64_t ms = static_cast<uint64_t>(absl::ToUnixMillis(now));
  const uint64_t rand_b = absl::Uniform<uint64_t>(gen);
  std::array<uint8_t, 16> b{};
  for (int i = 0; i < 6; ++i) b[i] = static_cast<uint8_t>(ms >> (40 - 8 * i));
  b[6] = static_cast<uint8_t>(0x70 | ((bucket >> 8) & 0x0f));
  b[7] = static_cast<uint8_t>(bucket & 0xff);
  for (int i = 0; i < 8; ++i) b[8 + i] = static_cast<uint8_t>(rand_b >> (56 - 8 * i));
  b[8] = static_cast<uint8_t>(0x80 | (b[8] & 0x3f));  // RFC 9562 variant.
  return Format(b);
}

std::string NewOrderId(absl::string_view customer_id, absl::Time now) {
  return NewUuidV7(now, CustomerBucket(customer_id));
}

bool IsCanonicalUuid(absl::string_view value) {
  if (value.size() != 36) return false;
  for (size_t i = 0; i < value.size(); ++i) {
    if (i == 8 || i == 13 || i == 18 || i == 23) {
      if (value[i] != '-') return false;
    } else if (HexValue(value[i]) < 0) {
      return false;
    }
  }
  return true;
}

absl::StatusOr<uint32_t> BucketOfOrderId(absl::string_view order_id) {
  const char variant = order_id.size() == 36 ? order_id[19] : '0';
  const bool rfc_variant = variant == '8' || variant == '9' || variant == 'a' || variant == 'b' ||
                           variant == 'A' || variant == 'B';
  if (!IsCanonicalUuid(order_id) || order_id[14] != '7' || !rfc_variant) {
    return absl::InvalidArgumentError("not a UUIDv7 order id");
  }
  // Characters 15..17 hold the 12 rand_a bits.
  return static_cast<uint32_t>((HexValue(order_id[15]) << 8) | (HexValue(order_id[16]) << 4) |
                               HexValue(order_id[17]));
}

}  // namespace order_platform
