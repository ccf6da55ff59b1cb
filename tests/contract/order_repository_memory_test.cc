// The OrderRepository contract on the in-memory implementation.
#include "services/orders/memory_order_repository.h"
#include "tests/contract/order_repository_contract.h"

namespace order_platform::orders {
namespace {

struct MemoryImpl {
  class Env final : public OrderRepositoryEnv {
   public:
    OrderRepository& repository() override { return repository_; }

   private:
    MemoryOrderRepository repository_;
  };
  static std::unique_ptr<OrderRepositoryEnv> Make() { return std::make_unique<Env>(); }
};

INSTANTIATE_TYPED_TEST_SUITE_P(Memory, OrderRepositoryContractTest, MemoryImpl);

}  // namespace
}  // namespace order_platform::orders
