// The InventoryRepository contract on the in-memory implementation.
#include "services/inventory/memory_inventory_repository.h"
#include "tests/contract/inventory_repository_contract.h"

namespace order_platform::inventory {
namespace {

struct MemoryImpl {
  class Env final : public InventoryRepositoryEnv {
   public:
    InventoryRepository& repository() override { return repository_; }

   private:
    MemoryInventoryRepository repository_;
  };
  static std::unique_ptr<InventoryRepositoryEnv> Make() { return std::make_unique<Env>(); }
};

INSTANTIATE_TYPED_TEST_SUITE_P(Memory, InventoryRepositoryContractTest, MemoryImpl);

}  // namespace
}  // namespace order_platform::inventory
