// The gRPC edge: every domain code maps to its gRPC twin (never UNKNOWN), and a failed request is
// logged as one JSON line naming its method, code, field and the ids an operator follows.
#include "services/common/grpc_edge.h"

#include <string>

#include "gtest/gtest.h"
#include "services/common/errors.h"

namespace order_platform {
namespace {

std::string LoggedLine(const absl::Status& status, absl::string_view method, const RpcIds& ids,
                       grpc::Status* out) {
  ::testing::internal::CaptureStderr();
  *out = ToGrpcStatus(status, method, ids);
  return ::testing::internal::GetCapturedStderr();
}

TEST(GrpcEdgeTest, FailedRequestLogNamesTheOrderWorkflowAndRequest) {
  grpc::Status mapped;
  const std::string line = LoggedLine(absl::NotFoundError("order o-7 not found"), "CancelOrder",
                                      {.request_id = "cancel-1", .order_id = "o-7"}, &mapped);
  EXPECT_EQ(mapped.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(mapped.error_message(), "order o-7 not found");
  EXPECT_NE(line.find("\"method\":\"CancelOrder\""), std::string::npos) << line;
  EXPECT_NE(line.find("\"code\":\"NOT_FOUND\""), std::string::npos) << line;
  EXPECT_NE(line.find("\"request_id\":\"cancel-1\""), std::string::npos) << line;
  EXPECT_NE(line.find("\"order_id\":\"o-7\""), std::string::npos) << line;
  EXPECT_NE(line.find("\"workflow_id\":\"\""), std::string::npos) << line;

  const std::string workflow_line =
      LoggedLine(InvalidField("timeout", "must be between 1ms and 5m"), "WaitWorkflow",
                 {.workflow_id = "place-order-o-7"}, &mapped);
  EXPECT_EQ(mapped.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(workflow_line.find("\"workflow_id\":\"place-order-o-7\""), std::string::npos)
      << workflow_line;
  EXPECT_NE(workflow_line.find("\"field\":\"timeout\""), std::string::npos) << workflow_line;
}

TEST(GrpcEdgeTest, SuccessIsNeitherMappedToAnErrorNorLogged) {
  grpc::Status mapped;
  const std::string line = LoggedLine(absl::OkStatus(), "GetOrder", {.order_id = "o-1"}, &mapped);
  EXPECT_TRUE(mapped.ok());
  EXPECT_EQ(line, "");
}

TEST(GrpcEdgeTest, UnknownBecomesInternal) {
  grpc::Status mapped;
  LoggedLine(absl::UnknownError("?"), "GetOrder", {}, &mapped);
  EXPECT_EQ(mapped.error_code(), grpc::StatusCode::INTERNAL);
}

}  // namespace
TEST(GrpcEdgeTest, DurationFromProtoRefusesNegativeAndMalformedDurations) {
  google::protobuf::Duration d;
  d.set_seconds(90);
  d.set_nanos(500000000);
  EXPECT_EQ(DurationFromProto(d), absl::Milliseconds(90500));
  d.set_nanos(1000000000);
  EXPECT_EQ(DurationFromProto(d), std::nullopt);
  d.set_nanos(-1);
  EXPECT_EQ(DurationFromProto(d), std::nullopt);
  d.set_seconds(-1);
  d.set_nanos(0);
  EXPECT_EQ(DurationFromProto(d), std::nullopt);
  EXPECT_EQ(DurationFromProto(google::protobuf::Duration()), absl::ZeroDuration());
}

}  // namespace order_platform
