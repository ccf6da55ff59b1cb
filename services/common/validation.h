// Field validators shared by the services' domain code. Each returns OK or an INVALID_ARGUMENT
// naming `field` (see errors.h), so callers can pass nested paths like "items[2].sku".
#pragma once

#include <cstdint>
#include "absl/strings/string_view.h"

#include "absl/status/status.h"

namespace order_platform {

// A client idempotency key: 1-128 printable ASCII characters, no spaces.
absl::Status ValidateRequestId(absl::string_view value, absl::string_view field = "request_id");

// An opaque identifier chosen by a caller (customer id, order reference): 1-`max_len` printable
// ASCII characters, no spaces.
absl::Status ValidateIdentifier(absl::string_view value, absl::string_view field,
                                size_t max_len = 64);

// A SKU: 1-64 characters of [A-Za-z0-9._-].
absl::Status ValidateSku(absl::string_view value, absl::string_view field);

// Free text shown to people (names, reasons): valid UTF-8 without control characters (C0, DEL,
// C1), at most
// `max_len` bytes, non-empty when `required`.
absl::Status ValidateText(absl::string_view value, absl::string_view field, size_t max_len,
                          bool required);

// An integer in [min, max].
absl::Status ValidateRange(int64_t value, absl::string_view field, int64_t min, int64_t max);

// A page size: 0 means `default_size`; otherwise 1..max_size. Returns the effective size via
// `out`.
absl::Status ValidatePageSize(int32_t value, absl::string_view field, int32_t default_size,
                              int32_t max_size, int32_t* out);

// Stable 64-bit FNV-1a hash, used to fingerprint requests so that a request_id reused for a
// different request is detected. Stable across processes and builds (unlike absl::Hash).
uint64_t Fingerprint(absl::string_view data);

}  // namespace order_platform
