#include "services/common/grpc_edge.h"

#include <string>

#include "services/common/errors.h"
#include "services/common/log.h"

namespace order_platform {

grpc::Status ToGrpcStatus(const absl::Status& status, absl::string_view method, const RpcIds& ids) {
  if (status.ok()) return grpc::Status::OK;
  grpc::StatusCode code;
  switch (status.code()) {
    case absl::StatusCode::kCancelled:
      code = grpc::StatusCode::CANCELLED;
      break;
    case absl::StatusCode::kInvalidArgument:
      code = grpc::StatusCode::INVALID_ARGUMENT;
      break;
    case absl::StatusCode::kDeadlineExceeded:
      code = grpc::StatusCode::DEADLINE_EXCEEDED;
      break;
    case absl::StatusCode::kNotFound:
      code = grpc::StatusCode::NOT_FOUND;
      break;
    case absl::StatusCode::kAlreadyExists:
      code = grpc::StatusCode::ALREADY_EXISTS;
      break;
    case absl::StatusCode::kPermissionDenied:
      code = grpc::StatusCode::PERMISSION_DENIED;
      break;
    case absl::StatusCode::kResourceExhausted:
      code = grpc::StatusCode::RESOURCE_EXHAUSTED;
      break;
    case absl::StatusCode::kFailedPrecondition:
      code = grpc::StatusCode::FAILED_PRECONDITION;
      break;
    case absl::StatusCode::kAborted:
      code = grpc::StatusCode::ABORTED;
      break;
    case absl::StatusCode::kOutOfRange:
      code = grpc::StatusCode::OUT_OF_RANGE;
      break;
    case absl::StatusCode::kUnimplemented:
      code = grpc::StatusCode::UNIMPLEMENTED;
      break;
    case absl::StatusCode::kUnavailable:
      code = grpc::StatusCode::UNAVAILABLE;
      break;
    case absl::StatusCode::kDataLoss:
      code = grpc::StatusCode::DATA_LOSS;
      break;
    case absl::StatusCode::kUnauthenticated:
      code = grpc::StatusCode::UNAUTHENTICATED;
      break;
    default:  // kUnknown, kInternal and anything new: never surface UNKNOWN.
      code = grpc::StatusCode::INTERNAL;
      break;
  }
  const std::string message(status.message());
  const std::string field = FieldOf(status).value_or("");
  const bool server_fault = code == grpc::StatusCode::INTERNAL ||
                            code == grpc::StatusCode::UNAVAILABLE ||
                            code == grpc::StatusCode::DATA_LOSS;
  Log(server_fault ? LogLevel::kError : LogLevel::kInfo, "request failed",
      {{"method", method},
       {"code", absl::StatusCodeToString(status.code())},
       {"error", message},
       {"field", field},
       {"request_id", ids.request_id},
       {"order_id", ids.order_id},
       {"workflow_id", ids.workflow_id}});
  return grpc::Status(code, message);
}

absl::Status FromGrpcStatus(const grpc::Status& status) {
  if (status.ok()) return absl::OkStatus();
  return absl::Status(static_cast<absl::StatusCode>(status.error_code()), status.error_message());
}

Money MoneyFromProto(const common::v1::Money& proto) {
  return Money{proto.currency_code(), proto.amount_minor()};
}

void MoneyToProto(const Money& money, common::v1::Money* proto) {
  proto->set_currency_code(money.currency);
  proto->set_amount_minor(money.minor);
}

void TimeToProto(absl::Time time, google::protobuf::Timestamp* proto) {
  if (time == absl::InfinitePast() || time == absl::InfiniteFuture()) {
    proto->Clear();
    return;
  }
  const int64_t micros = absl::ToUnixMicros(time);
  int64_t seconds = micros / 1000000;
  int64_t rem = micros % 1000000;
  if (rem < 0) {
    rem += 1000000;
    --seconds;
  }
  proto->set_seconds(seconds);
  proto->set_nanos(static_cast<int32_t>(rem * 1000));
}

absl::Time TimeFromProto(const google::protobuf::Timestamp& proto) {
  return absl::FromUnixSeconds(proto.seconds()) + absl::Nanoseconds(proto.nanos());
}

std::optional<absl::Duration> DurationFromProto(const google::protobuf::Duration& proto) {
  if (proto.seconds() < 0 || proto.nanos() < 0 || proto.nanos() > 999999999) return std::nullopt;
  return absl::Seconds(proto.seconds()) + absl::Nanoseconds(proto.nanos());
}

}  // namespace order_platform
