// Globally unique, time-ordered identifiers (UUIDv7, RFC 9562) for entities the platform creates.
//
// Order ids carry the customer's shard bucket in the 12 `rand_a` bits, so an order id alone tells
// which customer shard holds the order; the remaining 62 random bits keep ids unique across
// processes and databases without a central sequence. Ids sort by creation millisecond.
#pragma once

#include <cstdint>
#include <string>
#include "absl/strings/string_view.h"

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace order_platform {

// Number of shard buckets; a deployment maps buckets to databases.
inline constexpr uint32_t kShardBuckets = 4096;

// The bucket (0..kShardBuckets-1) of a customer: a stable hash of the customer id.
uint32_t CustomerBucket(absl::string_view customer_id);

// A new UUIDv7 string (lower-case canonical form) for time `now`, embedding `bucket`.
// Thread-safe.
std::string NewUuidV7(absl::Time now, uint32_t bucket);

// A new UUIDv7 for an order of `customer_id` (embeds CustomerBucket(customer_id)).
std::string NewOrderId(absl::string_view customer_id, absl::Time now = absl::Now());

// The shard bucket embedded in a UUIDv7 order id. INVALID_ARGUMENT if not a UUIDv7.
absl::StatusOr<uint32_t> BucketOfOrderId(absl::string_view order_id);

// True when `value` is a UUID in canonical 8-4-4-4-12 hex form (either case).
bool IsCanonicalUuid(absl::string_view value);

}  // namespace order_platform
