// Timestamps between PostgreSQL and absl::Time: columns are selected as integer microseconds
// since the Unix epoch (OP_EPOCH_US) and mapped with TimeFromField, so no text parsing of
// timestamptz happens anywhere.
#pragma once

#include <pqxx/pqxx>

#include "absl/time/time.h"

// SQL expression: `col` (timestamptz) as bigint microseconds since the epoch.
#define OP_EPOCH_US(col) "(extract(epoch from " col ") * 1000000)::bigint"

namespace order_platform::db {

inline absl::Time TimeFromField(const pqxx::field& f) {
  return f.is_null() ? absl::InfinitePast() : absl::FromUnixMicros(f.as<int64_t>());
}

}  // namespace order_platform::db
