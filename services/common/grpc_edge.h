// The gRPC edge shared by every handler: the one mapping from domain statuses to gRPC statuses,
// the request logging that goes with it, and proto <-> domain conversions of shared types.
// Only handlers include this file; domain code never sees gRPC.
#pragma once

#include <grpcpp/grpcpp.h>

#include <optional>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "google/protobuf/duration.pb.h"
#include "google/protobuf/timestamp.pb.h"
#include "order_platform/common/v1/money.pb.h"
#include "services/common/money.h"

namespace order_platform {

// What a failed request's log line names besides its method, so an operator can follow one order
// or workflow through the logs. Empty: not part of the request.
struct RpcIds {
  absl::string_view request_id;
  absl::string_view order_id;
  absl::string_view workflow_id;
};

// Maps a domain status to the gRPC status a caller sees. Every absl code has a gRPC twin; codes
// the domain must never produce (UNKNOWN) are reported as INTERNAL. Non-OK results are logged as
// one structured line naming `method` and the request's ids.
grpc::Status ToGrpcStatus(const absl::Status& status, absl::string_view method,
                          const RpcIds& ids = {});

// Runs `fn` and maps its status; exceptions (which the domain should never throw) become
// INTERNAL instead of crashing the server.
template <typename Fn>
grpc::Status HandleRpc(absl::string_view method, const RpcIds& ids, Fn&& fn) {
  absl::Status status;
  try {
    status = fn();
  } catch (const std::exception& e) {
    status = absl::InternalError(std::string("unexpected exception: ") + e.what());
  }
  return ToGrpcStatus(status, method, ids);
}

// The absl twin of a gRPC status a participant returned (codes are numerically identical).
absl::Status FromGrpcStatus(const grpc::Status& status);

Money MoneyFromProto(const common::v1::Money& proto);
void MoneyToProto(const Money& money, common::v1::Money* proto);

void TimeToProto(absl::Time time, google::protobuf::Timestamp* proto);
absl::Time TimeFromProto(const google::protobuf::Timestamp& proto);
// A request's non-negative duration; nullopt when it is negative or malformed (nanos outside
// 0..999,999,999), which callers report as INVALID_ARGUMENT naming the field.
std::optional<absl::Duration> DurationFromProto(const google::protobuf::Duration& proto);

}  // namespace order_platform
