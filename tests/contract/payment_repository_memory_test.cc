// The PaymentRepository contract on the in-memory implementation.
#include "services/payments/memory_payment_repository.h"
#include "tests/contract/payment_repository_contract.h"

namespace order_platform::payments {
namespace {

struct MemoryImpl {
  class Env final : public PaymentRepositoryEnv {
   public:
    PaymentRepository& repository() override { return repository_; }

   private:
    MemoryPaymentRepository repository_;
  };
  static std::unique_ptr<PaymentRepositoryEnv> Make() { return std::make_unique<Env>(); }
};

INSTANTIATE_TYPED_TEST_SUITE_P(Memory, PaymentRepositoryContractTest, MemoryImpl);

}  // namespace
}  // namespace order_platform::payments
