// The SimulatorCounters contract on the in-memory implementation.
#include "services/payments/memory_simulator_counters.h"
#include "tests/contract/simulator_counters_contract.h"

namespace order_platform::payments {
namespace {

struct MemoryImpl {
  class Env final : public SimulatorCountersEnv {
   public:
    SimulatorCounters& counters() override { return counters_; }

   private:
    MemorySimulatorCounters counters_;
  };
  static std::unique_ptr<SimulatorCountersEnv> Make() { return std::make_unique<Env>(); }
};

INSTANTIATE_TYPED_TEST_SUITE_P(Memory, SimulatorCountersContractTest, MemoryImpl);

}  // namespace
}  // namespace order_platform::payments
