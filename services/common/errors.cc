#include "services/common/errors.h"

#include "absl/strings/cord.h"
#include "absl/strings/str_cat.h"

namespace order_platform {
namespace {
constexpr absl::string_view kFieldPayload = "type.order-platform/field";
}  // namespace

absl::Status InvalidField(absl::string_view field, absl::string_view problem) {
  absl::Status status = absl::InvalidArgumentError(absl::StrCat(field, ": ", problem));
  status.SetPayload(kFieldPayload, absl::Cord(field));
  return status;
}

std::optional<std::string> FieldOf(const absl::Status& status) {
  auto payload = status.GetPayload(kFieldPayload);
  if (!payload.has_value()) return std::nullopt;
  return std::string(*payload);
}

absl::Status NotFound(absl::string_view kind, absl::string_view id) {
  return absl::NotFoundError(absl::StrCat(kind, " \"", id, "\" not found"));
}

absl::Status RequestIdReused(absl::string_view request_id) {
  return absl::AlreadyExistsError(absl::StrCat("request_id \"", request_id,
                                               "\" was already used for a different request"));
}

}  // namespace order_platform
