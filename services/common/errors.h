// Error vocabulary of the domain: how a rule violation is reported as an absl::Status so that the
// gRPC edge can map it to a precise code without parsing messages.
//
// Canonical codes used inside the platform, and what they mean to a caller:
//   INVALID_ARGUMENT     a field is malformed; the field path is attached (see FieldOf).
//   NOT_FOUND            the addressed entity does not exist.
//   ALREADY_EXISTS       a request_id was reused for a different request.
//   FAILED_PRECONDITION  the entity's state forbids the change (state machine, stock, amounts).
//   ABORTED              an optimistic-concurrency check lost (expected_version moved).
//   UNAVAILABLE          a dependency (PostgreSQL, the gateway) is down; retrying may succeed.
//   DEADLINE_EXCEEDED    the caller's deadline passed.
//   RESOURCE_EXHAUSTED   a bounded resource (connection pool) stayed full past its timeout.
//   INTERNAL             a bug or corrupt data; logged with context.
#pragma once

#include <optional>
#include <string>
#include "absl/strings/string_view.h"

#include "absl/status/status.h"

namespace order_platform {

// INVALID_ARGUMENT "<field>: <problem>", with `field` attached as a payload for FieldOf.
absl::Status InvalidField(absl::string_view field, absl::string_view problem);

// The field path attached by InvalidField, if any.
std::optional<std::string> FieldOf(const absl::Status& status);

// NOT_FOUND "<kind> \"<id>\" not found".
absl::Status NotFound(absl::string_view kind, absl::string_view id);

// ALREADY_EXISTS for a request_id that was first used for a different request.
absl::Status RequestIdReused(absl::string_view request_id);

// Returns early from the enclosing function when `expr` (an absl::Status) is not OK.
#define OP_RETURN_IF_ERROR(expr)                  \
  do {                                            \
    if (absl::Status op_status_ = (expr); !op_status_.ok()) { \
      return op_status_;                          \
    }                                             \
  } while (false)

#define OP_CONCAT_INNER_(a, b) a##b
#define OP_CONCAT_(a, b) OP_CONCAT_INNER_(a, b)

// Declares `lhs` from an absl::StatusOr expression, returning its status early when not OK.
#define OP_ASSIGN_OR_RETURN(lhs, expr) \
  OP_ASSIGN_OR_RETURN_IMPL_(OP_CONCAT_(op_statusor_, __LINE__), lhs, expr)
#define OP_ASSIGN_OR_RETURN_IMPL_(tmp, lhs, expr) \
  auto tmp = (expr);                              \
  if (!tmp.ok()) return tmp.status();             \
  lhs = std::move(tmp).value()

}  // namespace order_platform
