// Unit tests for services/common/ids.h: UUIDv7 layout (RFC 9562), uniqueness across threads,
// time ordering, and the customer shard bucket carried in order ids.
#include "services/common/ids.h"

#include <string>
#include <thread>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/ascii.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"

namespace order_platform {
namespace {

// 2024-01-02T03:04:05.678Z in Unix milliseconds.
constexpr int64_t kSomeMillis = 1704164645678;

int HexDigit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  return c - 'a' + 10;
}

// ---- NewUuidV7
// -----------------------------------------------------------------------------------

TEST(NewUuidV7Test, IsLowerCaseCanonicalForm) {
  const std::string id = NewUuidV7(absl::FromUnixMillis(kSomeMillis), 123);
  ASSERT_EQ(id.size(), 36u);
  for (size_t i = 0; i < id.size(); ++i) {
    if (i == 8 || i == 13 || i == 18 || i == 23) {
      EXPECT_EQ(id[i], '-') << id;
    } else {
      EXPECT_TRUE(absl::ascii_isdigit(id[i]) || (id[i] >= 'a' && id[i] <= 'f')) << id;
    }
  }
  EXPECT_TRUE(IsCanonicalUuid(id));
}

TEST(NewUuidV7Test, HasVersion7AndRfcVariant) {
  for (int i = 0; i < 1000; ++i) {
    const std::string id = NewUuidV7(absl::Now(), i % kShardBuckets);
    EXPECT_EQ(id[14], '7') << id;
    // Variant 0b10xx: the first hex digit of the fourth group is 8, 9, a or b.
    EXPECT_EQ(HexDigit(id[19]) & 0xc, 0x8) << id;
  }
}

TEST(NewUuidV7Test, StartsWithTheUnixMillisecondsInBigEndianHex) {
  const std::string id = NewUuidV7(absl::FromUnixMillis(0x0123456789ab), 0);
  EXPECT_EQ(id.substr(0, 13), "01234567-89ab") << id;

  const std::string real = NewUuidV7(absl::FromUnixMillis(kSomeMillis), 0);
  EXPECT_EQ(real.substr(0, 13), "018cc820-db2e") << real;  // 0x018cc820db2e.
}

TEST(NewUuidV7Test, EmbedsTheBucketInRandA) {
  const std::string id = NewUuidV7(absl::FromUnixMillis(kSomeMillis), 0xabc);
  EXPECT_EQ(id.substr(14, 4), "7abc") << id;
  const std::string zero = NewUuidV7(absl::FromUnixMillis(kSomeMillis), 0);
  EXPECT_EQ(zero.substr(14, 4), "7000") << zero;
  const std::string last = NewUuidV7(absl::FromUnixMillis(kSomeMillis), kShardBuckets - 1);
  EXPECT_EQ(last.substr(14, 4), "7fff") << last;
}

TEST(NewUuidV7Test, SameMillisecondAndBucketStillDiffer) {
  const absl::Time now = absl::FromUnixMillis(kSomeMillis);
  EXPECT_NE(NewUuidV7(now, 7), NewUuidV7(now, 7));
}

TEST(NewUuidV7Test, HundredThousandIdsFromFourThreadsAreUnique) {
  constexpr int kThreads = 4;
  constexpr int kPerThread = 25000;
  // Same millisecond and bucket everywhere: only the 62 random bits can tell the ids apart, and
  // each thread's generator must be seeded independently.
  const absl::Time now = absl::FromUnixMillis(kSomeMillis);
  std::vector<std::vector<std::string>> per_thread(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      per_thread[t].reserve(kPerThread);
      for (int i = 0; i < kPerThread; ++i) per_thread[t].push_back(NewUuidV7(now, 42));
    });
  }
  for (std::thread& thread : threads) thread.join();

  absl::flat_hash_set<std::string> all;
  for (const auto& ids : per_thread) {
    for (const std::string& id : ids) all.insert(id);
  }
  EXPECT_EQ(all.size(), static_cast<size_t>(kThreads * kPerThread));
}

TEST(NewUuidV7Test, IdsFromLaterMillisecondsSortAfterEarlierOnes) {
  const absl::Time t0 = absl::FromUnixMillis(kSomeMillis);
  std::string previous = NewUuidV7(t0, kShardBuckets - 1);  // Largest bucket, earliest time.
  for (int step : {1, 2, 1000, 60 * 1000, 86400 * 1000}) {
    const std::string next = NewUuidV7(t0 + absl::Milliseconds(step), 0);  // Smallest bucket.
    EXPECT_LT(previous, next) << "step " << step << "ms";
    previous = next;
  }
}

TEST(NewUuidV7Test, SubMillisecondDifferencesShareTheTimePrefix) {
  const absl::Time t0 = absl::FromUnixMillis(kSomeMillis);
  EXPECT_EQ(NewUuidV7(t0, 1).substr(0, 13),
            NewUuidV7(t0 + absl::Microseconds(999), 1).substr(0, 13));
}

// ---- CustomerBucket / NewOrderId / BucketOfOrderId
// -----------------------------------------------

TEST(CustomerBucketTest, IsStableAndInRange) {
  // FNV-1a("hello") = 0xa430d84680aabd0b; the bucket is its low 12 bits.
  EXPECT_EQ(CustomerBucket("hello"), 0xd0bu);
  EXPECT_EQ(CustomerBucket("alice"), CustomerBucket("alice"));
  for (int i = 0; i < 1000; ++i) {
    EXPECT_LT(CustomerBucket(std::to_string(i)), kShardBuckets);
  }
}

TEST(BucketOfOrderIdTest, RoundTripsTheCustomerBucket) {
  for (absl::string_view customer : {"alice", "bob", "hello", "cust-000001", "x"}) {
    const std::string id = NewOrderId(customer);
    absl::StatusOr<uint32_t> bucket = BucketOfOrderId(id);
    ASSERT_TRUE(bucket.ok()) << bucket.status();
    EXPECT_EQ(*bucket, CustomerBucket(customer)) << customer << " " << id;
  }
}

TEST(BucketOfOrderIdTest, RoundTripsEveryBucket) {
  const absl::Time now = absl::FromUnixMillis(kSomeMillis);
  for (uint32_t bucket = 0; bucket < kShardBuckets; ++bucket) {
    absl::StatusOr<uint32_t> got = BucketOfOrderId(NewUuidV7(now, bucket));
    ASSERT_TRUE(got.ok()) << got.status();
    ASSERT_EQ(*got, bucket);
  }
}

TEST(BucketOfOrderIdTest, AcceptsUpperCase) {
  const std::string id = NewUuidV7(absl::FromUnixMillis(kSomeMillis), 0xabc);
  absl::StatusOr<uint32_t> bucket = BucketOfOrderId(absl::AsciiStrToUpper(id));
  ASSERT_TRUE(bucket.ok()) << bucket.status();
  EXPECT_EQ(*bucket, 0xabcu);
}

TEST(BucketOfOrderIdTest, RejectsOtherVersionsAndMalformedIds) {
  for (absl::string_view bad : {
           "", "not-a-uuid",
           "123e4567-e89b-42d3-a456-426614174000",    // Version 4.
           "017f22e2-79b0-6cc3-98c4-dc0c0c07398f",    // Version 6.
           "00000000-0000-0000-0000-000000000000",    // Nil UUID.
           "ffffffff-ffff-ffff-ffff-ffffffffffff",    // Max UUID.
           "018cc8b6a84e7abc8123456789abcdef",        // No hyphens.
           "{018cc8b6-a84e-7abc-8123-456789abcdef}",  // Braces.
           "018cc8b6-a84e-7abc-8123-456789abcde",     // Too short.
           "018cc8b6-a84e-7abc-8123-456789abcdef0",   // Too long.
           "018cc8b6-a84e-7abg-8123-456789abcdef",    // Non-hex in the bucket.
           "018cc8b6-a84e7-abc-8123-456789abcdef",    // Hyphen misplaced.
       }) {
    EXPECT_EQ(BucketOfOrderId(bad).status().code(), absl::StatusCode::kInvalidArgument) << bad;
  }
}

// RFC 9562 defines version 7 only within the RFC variant (0b10xx); a "7" version nibble with
// another variant (NCS 0xxx, Microsoft 110x, reserved 111x) is not a UUIDv7.
TEST(BucketOfOrderIdTest, RejectsVersion7NibbleWithNonRfcVariant) {
  for (absl::string_view bad : {
           "018cc8b6-a84e-7abc-0123-456789abcdef",  // NCS variant.
           "018cc8b6-a84e-7abc-7123-456789abcdef",  // NCS variant.
           "018cc8b6-a84e-7abc-c123-456789abcdef",  // Microsoft variant.
           "018cc8b6-a84e-7abc-f123-456789abcdef",  // Reserved variant.
       }) {
    EXPECT_EQ(BucketOfOrderId(bad).status().code(), absl::StatusCode::kInvalidArgument) << bad;
  }
}

// ---- IsCanonicalUuid
// -----------------------------------------------------------------------------

TEST(IsCanonicalUuidTest, AcceptsHyphenatedHexOfAnyVersionAndCase) {
  for (absl::string_view good : {
           "018cc8b6-a84e-7abc-8123-456789abcdef",
           "018CC8B6-A84E-7ABC-8123-456789ABCDEF",
           "018cC8b6-A84e-7aBc-8123-456789AbCdEf",
           "123e4567-e89b-42d3-a456-426614174000",
           "00000000-0000-0000-0000-000000000000",
       }) {
    EXPECT_TRUE(IsCanonicalUuid(good)) << good;
  }
}

TEST(IsCanonicalUuidTest, RejectsEverythingElse) {
  for (absl::string_view bad : {
           "",
           "018cc8b6a84e7abc8123456789abcdef",
           "018cc8b6-a84e-7abc-8123-456789abcdef ",
           " 018cc8b6-a84e-7abc-8123-456789abcdef",
           "{018cc8b6-a84e-7abc-8123-456789abcdef}",
           "urn:uuid:018cc8b6-a84e-7abc-8123-456789abcdef",
           "018cc8b6-a84e-7abc-8123-456789abcdeg",
           "018cc8b6-a84e-7abc-8123_456789abcdef",
           "018cc8b-6a84e-7abc-8123-456789abcdef",
           "018cc8b6-a84e-7abc-8123-456789abcde",
           "018cc8b6-a84e-7abc-8123-456789abcdef0",
           "------------------------------------",
       }) {
    EXPECT_FALSE(IsCanonicalUuid(bad)) << bad;
  }
}

}  // namespace
}  // namespace order_platform
