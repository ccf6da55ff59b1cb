// Opaque keyset page tokens. A token encodes the position after the last row of a page
// (a timestamp and an id, or just a key) plus a fingerprint of the list's filters, so that a
// token from one query is rejected by another. Tokens are base64url text; clients must treat
// them as opaque.
#pragma once

#include <optional>
#include <string>
#include "absl/strings/string_view.h"

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace order_platform {

// A keyset position: rows strictly after (time, id) in the list's order.
struct PageCursor {
  absl::Time time;  // Unused (InfinitePast) for lists keyed by id alone.
  std::string id;
};

// Encodes `cursor` for a list whose filters hash to `filter_fingerprint`.
std::string EncodePageToken(const PageCursor& cursor, uint64_t filter_fingerprint);

// Decodes a token produced by EncodePageToken for the same filters. An empty token means the
// first page (nullopt). INVALID_ARGUMENT on field "page_token" for malformed tokens or tokens of
// a different filter.
absl::StatusOr<std::optional<PageCursor>> DecodePageToken(absl::string_view token,
                                                          uint64_t filter_fingerprint);

}  // namespace order_platform
