// order_platform_cli: a small command-line client for the platform's gRPC API, used by the local
// run script (health check, demo seeding, demo order) and handy for operators.
//
//   order_platform_cli [--target=host:port] health [--wait=30s]
//   order_platform_cli seed-demo                 upserts the demo products
//   order_platform_cli place-demo-order          creates an order for the demo products
//   order_platform_cli get-order ORDER_ID
//   order_platform_cli list-orders [CUSTOMER_ID]
//   order_platform_cli get-product SKU
// Responses are printed as JSON (proto3 JSON mapping).
#include <chrono>
#include <cstdio>
#include <string>
#include <thread>
#include <vector>

#include <google/protobuf/util/json_util.h>
#include <grpcpp/grpcpp.h>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/random/random.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "order_platform/inventory/v1/inventory.grpc.pb.h"
#include "order_platform/orders/v1/orders.grpc.pb.h"
#include "grpc/health/v1/health.grpc.pb.h"

ABSL_FLAG(std::string, target, "127.0.0.1:50051", "Server address host:port.");
ABSL_FLAG(absl::Duration, wait, absl::ZeroDuration(),
          "For `health`: keep trying until SERVING or this long has passed.");
ABSL_FLAG(absl::Duration, deadline, absl::Seconds(10), "Per-call deadline.");

namespace {

namespace inventory = order_platform::inventory::v1;
namespace orders = order_platform::orders::v1;

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
  return Print(response);
}

}  // namespace

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "order_platform_cli [--target=host:port] health|seed-demo|place-demo-order|"
      "get-order ID|list-orders [CUSTOMER]|get-product SKU");
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
  std::fprintf(stderr, "unknown command or wrong arguments: %s\n", command.c_str());
  return 2;
}
