#include "chronos/model/weight_arena.h"

#include <ATen/ATen.h>
#include <gtest/gtest.h>
#include <torch/nn/modules/linear.h>

#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>

#include "chronos/model/causal_lm.h"
#include "support/tiny_config.h"

namespace chronos {
namespace {

TEST(WeightArena, KeepsTheModelsOutputsAndPacksItsWeights) {
  at::manual_seed(2);
  ChronosForCausalLM model(testing::tiny_config());
  model->eval();
  const at::Tensor ids = at::randint(3, 97, {2, 7}, at::kLong);
  at::NoGradGuard no_grad;
  const at::Tensor before = model->forward(ids, {}).logits;
  int64_t bytes = 0;
  for (const auto& p : model->parameters()) bytes += p.numel() * p.element_size();

  const int64_t moved = gather_weights_in_huge_pages(*model);
  EXPECT_GE(moved, bytes);
  EXPECT_LT(moved, bytes + 64 * static_cast<int64_t>(model->parameters().size()));
  EXPECT_TRUE(at::equal(model->forward(ids, {}).logits, before));

  // One allocation, in registration order, each tensor on a cache line.
  const auto params = model->parameters();
  const auto* first = static_cast<const char*>(params.front().data_ptr());
  EXPECT_EQ(reinterpret_cast<uintptr_t>(first) % (2 << 20), 0u);
  for (size_t i = 0; i < params.size(); ++i) {
    const auto* data = static_cast<const char*>(params[i].data_ptr());
    EXPECT_EQ(reinterpret_cast<uintptr_t>(data) % 64, 0u);
    EXPECT_GE(data, first);
    EXPECT_LT(data, first + moved);
    if (i > 0) EXPECT_GT(data, static_cast<const char*>(params[i - 1].data_ptr()));
    EXPECT_TRUE(params[i].requires_grad());
  }
}

// The mapping of /proc/self/smaps that holds `p`: its name ("[heap]", a file, or empty) and VmFlags.
struct Mapping {
  bool found = false;
  std::string name, flags;
};

Mapping mapping_of(const void* p) {
  std::ifstream smaps("/proc/self/smaps");
  const auto address = reinterpret_cast<uintptr_t>(p);
  Mapping m;
  bool inside = false;
  for (std::string line; std::getline(smaps, line);) {
    unsigned long first = 0, last = 0;
    char dash = 0;
    std::istringstream head(line);
    if (head >> std::hex >> first >> dash >> last && dash == '-') {
      if (m.found) break;
      inside = address >= first && address < last;
      if (inside) {
        m.found = true;
        std::string perms, offset, device, inode;
        head >> perms >> offset >> device >> inode;
        std::getline(head >> std::ws, m.name);
      }
    } else if (inside && line.rfind("VmFlags:", 0) == 0) {
      m.flags = line.substr(8);
    }
  }
  return m;
}

// Once malloc has freed a large block it serves blocks below that size from its heap, already mapped
// in 4 KiB pages that MADV_HUGEPAGE does not change: the arena takes fresh pages of its own instead.
TEST(WeightArena, TakesFreshPagesAfterALargeBlockWasFreed) {
  void* large = std::malloc(24 << 20);  // mapped on its own; freeing it raises malloc's threshold
  ASSERT_NE(large, nullptr);
  std::memset(large, 1, 24 << 20);
  std::free(large);
  torch::nn::Linear linear(1024, 1024);  // 4 MiB of weights
  const at::Tensor before = linear->weight.detach().clone();
  ASSERT_GT(gather_weights_in_huge_pages(*linear), 4 << 20);
  EXPECT_TRUE(at::equal(linear->weight, before));
  const Mapping m = mapping_of(linear->weight.data_ptr());
  if (!m.found) GTEST_SKIP() << "/proc/self/smaps does not list the weights' mapping";
  EXPECT_NE(m.name, "[heap]");
  // Advised where the kernel has transparent huge pages at all (without them the advice is refused).
  if (std::ifstream("/sys/kernel/mm/transparent_hugepage/enabled").good())
    EXPECT_NE(m.flags.find(" hg"), std::string::npos) << "VmFlags:" << m.flags;
}

TEST(WeightArena, ParametersStillTrain) {
  at::manual_seed(3);
  torch::nn::Linear linear(4, 3);
  gather_weights_in_huge_pages(*linear);
  const at::Tensor before = linear->weight.detach().clone();
  const at::Tensor loss = linear->forward(at::ones({2, 4})).sum();
  loss.backward();
  ASSERT_TRUE(linear->weight.grad().defined());
  {
    at::NoGradGuard no_grad;
    linear->weight.sub_(linear->weight.grad());
  }
  EXPECT_TRUE(at::allclose(linear->weight.detach(), before - 2));
}

// The same tensor registered twice stays one tensor; views into one storage are left where they are.
struct TwoNames : torch::nn::Module {
  explicit TwoNames(bool view) {
    const at::Tensor base = at::arange(12, at::kFloat);
    a = register_parameter("a", base.clone());
    b = register_parameter("b", view ? a.narrow(0, 2, 4) : a);
  }
  at::Tensor a, b;
};

TEST(WeightArena, TiedWeightsStayTied) {
  TwoNames tied(false);
  EXPECT_GT(gather_weights_in_huge_pages(tied), 0);
  EXPECT_EQ(tied.a.data_ptr(), tied.b.data_ptr());
  EXPECT_TRUE(at::equal(tied.a, at::arange(12, at::kFloat)));

  TwoNames viewed(true);
  const void* before = viewed.a.data_ptr();
  EXPECT_EQ(gather_weights_in_huge_pages(viewed), 0);
  EXPECT_EQ(viewed.a.data_ptr(), before);
}

TEST(WeightArena, NothingOnTheCpuMovesNothing) {
  torch::nn::Module empty;
  EXPECT_EQ(gather_weights_in_huge_pages(empty), 0);
}

}  // namespace
}  // namespace chronos
