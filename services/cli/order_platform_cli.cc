// order_platform_cli: a small command-line client for the platform's gRPC API, used by the local
// run script (health check, demo seeding, demo order) and handy for operators.
//
//   order_platform_cli [--target=host:port] health [--wait=30s]
//   order_platform_cli seed-demo                 upserts the demo products
//   order_platform_cli place-demo-order          creates an order for the demo products
//   order_platform_cli get-order ORDER_ID
//   order_platform_cli list-orders [CUSTOMER_ID]
//   order_platform_cli get-product SKU
//   order_platform_cli get-workflow ID
//   order_platform_cli wait-workflow ID [--wait=30s]   until it settles; exit 3 if it has not
//   order_platform_cli list-workflows [TYPE] [--status=needs_attention]
//   order_platform_cli cancel-workflow ID [REASON]
//   order_platform_cli signal-workflow ID NAME [PAYLOAD]
//   order_platform_cli retry-workflow ID
// Responses are printed as JSON (proto3 JSON mapping).
#include <chrono>
#include <cstdio>
#include <string>
#include <thread>
#include <vector>

#include <google/protobuf/util/json_util.h>
#include <google/protobuf/util/time_util.h>
#include <grpcpp/grpcpp.h>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/random/random.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "order_platform/inventory/v1/inventory.grpc.pb.h"
#include "order_platform/orders/v1/orders.grpc.pb.h"
#include "order_platform/saga/v1/workflow.grpc.pb.h"
#include "grpc/health/v1/health.grpc.pb.h"

ABSL_FLAG(std::string, target, "127.0.0.1:50051", "Server address host:port.");
ABSL_FLAG(absl::Duration, wait, absl::ZeroDuration(),
          "For `health`: keep trying until SERVING or this long has passed. For `wait-workflow`: "
          "how long to wait for the workflow to settle (0: the server's default, 30s; at most "
          "5m).");
ABSL_FLAG(absl::Duration, deadline, absl::Seconds(10), "Per-call deadline.");
ABSL_FLAG(std::string, status, "",
          "For `list-workflows`: only workflows in this status (e.g. needs_attention).");

namespace {

namespace inventory = order_platform::inventory::v1;
namespace orders = order_platform::orders::v1;
namespace workflows = order_platform::saga::v1;

struct DemoProduct {
  const char* sku;
  const char* name;
  int64_t price_minor;
  int64_t on_hand;
};
constexpr DemoProduct kDemoProducts[] = {
    {"SKU-COFFEE-1KG", "Coffee beans, 1 kg", 2450, 500},
    {"SKU-MUG-CERAMIC", "Ceramic mug", 1200, 200},
    {"SKU-GRINDER", "Burr grinder", 8999, 25},
};

std::unique_ptr<grpc::ClientContext> Context() {
  auto context = std::make_unique<grpc::ClientContext>();
  context->set_deadline(absl::ToChronoTime(absl::Now() + absl::GetFlag(FLAGS_deadline)));
  return context;
}

int Fail(const grpc::Status& status) {
  std::fprintf(stderr, "error: %d %s\n", static_cast<int>(status.error_code()),
               status.error_message().c_str());
  return 1;
}

int Print(const google::protobuf::Message& message) {
  std::string json;
  google::protobuf::util::JsonPrintOptions options;
  options.add_whitespace = true;
  options.preserve_proto_field_names = true;
  (void)google::protobuf::util::MessageToJsonString(message, &json, options);
  std::printf("%s", json.c_str());
  return 0;
}

int Health(const std::shared_ptr<grpc::Channel>& channel) {
  auto stub = grpc::health::v1::Health::NewStub(channel);
  const absl::Time give_up = absl::Now() + absl::GetFlag(FLAGS_wait);
  while (true) {
    grpc::health::v1::HealthCheckRequest request;
    grpc::health::v1::HealthCheckResponse response;
    auto context = std::make_unique<grpc::ClientContext>();
    context->set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(2)));
    grpc::Status status = stub->Check(context.get(), request, &response);
    if (status.ok() && response.status() == grpc::health::v1::HealthCheckResponse::SERVING) {
      std::printf("SERVING\n");
      return 0;
    }
    if (absl::Now() >= give_up) {
      if (!status.ok()) return Fail(status);
      std::printf("NOT_SERVING\n");
      return 1;
    }
    absl::SleepFor(absl::Milliseconds(200));
  }
}

int SeedDemo(const std::shared_ptr<grpc::Channel>& channel) {
  auto stub = inventory::InventoryService::NewStub(channel);
  for (const DemoProduct& p : kDemoProducts) {
    inventory::UpsertProductRequest request;
    request.set_request_id(absl::StrCat("seed-", p.sku));
    request.set_sku(p.sku);
    request.set_name(p.name);
    request.mutable_unit_price()->set_currency_code("EUR");
    request.mutable_unit_price()->set_amount_minor(p.price_minor);
    request.set_on_hand(p.on_hand);
    inventory::Product product;
    grpc::Status status = stub->UpsertProduct(Context().get(), request, &product);
    if (!status.ok()) return Fail(status);
    std::printf("product %s: %lld on hand\n", product.sku().c_str(),
                static_cast<long long>(product.on_hand()));
  }
  return 0;
}

int PlaceDemoOrder(const std::shared_ptr<grpc::Channel>& channel) {
  auto stub = orders::OrderService::NewStub(channel);
  absl::BitGen gen;
  orders::CreateOrderRequest request;
  request.set_request_id(absl::StrCat("demo-", absl::ToUnixMicros(absl::Now()), "-",
                                      absl::Uniform<uint32_t>(gen)));
  request.set_customer_id("demo-customer");
  request.set_payment_token("tok_approve");
  for (int i = 0; i < 2; ++i) {
    orders::OrderItem* item = request.add_items();
    item->set_sku(kDemoProducts[i].sku);
    item->set_quantity(i + 1);
    item->mutable_unit_price()->set_currency_code("EUR");
    item->mutable_unit_price()->set_amount_minor(kDemoProducts[i].price_minor);
  }
  orders::CreateOrderResponse response;
  grpc::Status status = stub->CreateOrder(Context().get(), request, &response);
  if (!status.ok()) return Fail(status);
  std::printf("created order %s (PENDING); its PlaceOrder workflow runs now...\n",
              response.order().order_id().c_str());
  // The saga drives the order to CONFIRMED or REJECTED; show where it ends.
  orders::Order order = response.order();
  const absl::Time give_up = absl::Now() + absl::Seconds(15);
  while (order.status() == orders::ORDER_STATUS_PENDING && absl::Now() < give_up) {
    absl::SleepFor(absl::Milliseconds(100));
    orders::GetOrderRequest get;
    get.set_order_id(response.order().order_id());
    status = stub->GetOrder(Context().get(), get, &order);
    if (!status.ok()) return Fail(status);
  }
  return Print(order);
}

// A fresh request id for an operator action run from the command line.
std::string NewRequestId() {
  absl::BitGen gen;
  return absl::StrCat("cli-", absl::ToUnixMicros(absl::Now()), "-", absl::Uniform<uint32_t>(gen));
}

// Runs the workflow commands; returns -1 when `args` is not one of them.
int WorkflowCommand(const std::shared_ptr<grpc::Channel>& channel,
                    const std::vector<char*>& args) {
  const std::string command = args[1];
  auto stub = workflows::WorkflowService::NewStub(channel);
  workflows::Workflow workflow;
  if (command == "get-workflow" && args.size() == 3) {
    workflows::GetWorkflowRequest request;
    request.set_workflow_id(args[2]);
    grpc::Status status = stub->GetWorkflow(Context().get(), request, &workflow);
    return status.ok() ? Print(workflow) : Fail(status);
  }
  if (command == "wait-workflow" && args.size() == 3) {
    workflows::WaitWorkflowRequest request;
    request.set_workflow_id(args[2]);
    absl::Duration wait = absl::GetFlag(FLAGS_wait);
    if (wait > absl::ZeroDuration()) {
      *request.mutable_timeout() = google::protobuf::util::TimeUtil::NanosecondsToDuration(
          absl::ToInt64Nanoseconds(wait));
    } else {
      wait = absl::Seconds(30);
    }
    grpc::ClientContext context;  // The server answers before this deadline.
    context.set_deadline(absl::ToChronoTime(absl::Now() + wait + absl::Seconds(5)));
    grpc::Status status = stub->WaitWorkflow(&context, request, &workflow);
    if (!status.ok()) return Fail(status);
    Print(workflow);
    switch (workflow.status()) {
      case workflows::WORKFLOW_STATUS_RUNNING:
      case workflows::WORKFLOW_STATUS_WAITING:
      case workflows::WORKFLOW_STATUS_COMPENSATING:
        return 3;  // Not settled within the wait.
      default:
        return 0;
    }
  }
  if (command == "list-workflows" && args.size() <= 3) {
    workflows::ListWorkflowsRequest request;
    if (args.size() == 3) request.set_workflow_type(args[2]);
    if (const std::string name = absl::GetFlag(FLAGS_status); !name.empty()) {
      workflows::WorkflowStatus status;
      if (!workflows::WorkflowStatus_Parse(
              absl::StrCat("WORKFLOW_STATUS_", absl::AsciiStrToUpper(name)), &status)) {
        std::fprintf(stderr, "unknown --status=%s\n", name.c_str());
        return 2;
      }
      request.set_status(status);
    }
    workflows::ListWorkflowsResponse response;
    grpc::Status status = stub->ListWorkflows(Context().get(), request, &response);
    return status.ok() ? Print(response) : Fail(status);
  }
  if (command == "cancel-workflow" && (args.size() == 3 || args.size() == 4)) {
    workflows::CancelWorkflowRequest request;
    request.set_request_id(NewRequestId());
    request.set_workflow_id(args[2]);
    if (args.size() == 4) request.set_reason(args[3]);
    grpc::Status status = stub->CancelWorkflow(Context().get(), request, &workflow);
    return status.ok() ? Print(workflow) : Fail(status);
  }
  if (command == "signal-workflow" && (args.size() == 4 || args.size() == 5)) {
    workflows::SignalWorkflowRequest request;
    request.set_request_id(NewRequestId());
    request.set_workflow_id(args[2]);
    request.set_signal_name(args[3]);
    if (args.size() == 5) request.set_payload(args[4]);
    grpc::Status status = stub->SignalWorkflow(Context().get(), request, &workflow);
    return status.ok() ? Print(workflow) : Fail(status);
  }
  if (command == "retry-workflow" && args.size() == 3) {
    workflows::RetryWorkflowRequest request;
    request.set_request_id(NewRequestId());
    request.set_workflow_id(args[2]);
    grpc::Status status = stub->RetryWorkflow(Context().get(), request, &workflow);
    return status.ok() ? Print(workflow) : Fail(status);
  }
  return -1;
}

}  // namespace

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "order_platform_cli [--target=host:port] health|seed-demo|place-demo-order|"
      "get-order ID|list-orders [CUSTOMER]|get-product SKU|get-workflow ID|"
      "list-workflows [TYPE] [--status=S]|cancel-workflow ID [REASON]|"
      "signal-workflow ID NAME [PAYLOAD]|retry-workflow ID");
  std::vector<char*> args = absl::ParseCommandLine(argc, argv);
  if (args.size() < 2) {
    std::fprintf(stderr, "%s\n", absl::ProgramUsageMessage().data());
    return 2;
  }
  const std::string command = args[1];
  auto channel =
      grpc::CreateChannel(absl::GetFlag(FLAGS_target), grpc::InsecureChannelCredentials());
  if (command == "health") return Health(channel);
  if (command == "seed-demo") return SeedDemo(channel);
  if (command == "place-demo-order") return PlaceDemoOrder(channel);
  if (command == "get-order" && args.size() == 3) {
    orders::GetOrderRequest request;
    request.set_order_id(args[2]);
    orders::Order order;
    grpc::Status status =
        orders::OrderService::NewStub(channel)->GetOrder(Context().get(), request, &order);
    return status.ok() ? Print(order) : Fail(status);
  }
  if (command == "list-orders" && args.size() <= 3) {
    orders::ListOrdersRequest request;
    if (args.size() == 3) request.set_customer_id(args[2]);
    orders::ListOrdersResponse response;
    grpc::Status status =
        orders::OrderService::NewStub(channel)->ListOrders(Context().get(), request, &response);
    return status.ok() ? Print(response) : Fail(status);
  }
  if (command == "get-product" && args.size() == 3) {
    inventory::GetProductRequest request;
    request.set_sku(args[2]);
    inventory::Product product;
    grpc::Status status = inventory::InventoryService::NewStub(channel)->GetProduct(
        Context().get(), request, &product);
    return status.ok() ? Print(product) : Fail(status);
  }
  if (const int rc = WorkflowCommand(channel, args); rc >= 0) return rc;
  std::fprintf(stderr, "unknown command or wrong arguments: %s\n", command.c_str());
  return 2;
}
