#include "chronos/model/rope.h"

#include <ATen/ATen.h>

#include <cmath>

#include "chronos/model/config.h"

namespace chronos {
namespace {

constexpr double kYarnOriginal = 2048, kYarnFactor = 16, kYarnBetaFast = 32, kYarnBetaSlow = 1;
constexpr double kPi = 3.14159265358979323846;

}  // namespace

RotaryTable::RotaryTable(const ModelConfig& config, int64_t width)
    : width_(width), theta_(config.rope_theta), yarn_(config.yarn_enabled()) {
  const int64_t half = width / 2;
  inv_freq_ = at::empty({half}, at::kFloat);
  auto* f = inv_freq_.data_ptr<float>();
  // Same arithmetic as the reference: 1 / theta^(2i/width) evaluated in fp32.
  at::Tensor exponents = at::arange(0, width, 2, at::kFloat).slice(0, 0, half) / static_cast<float>(width);
  inv_freq_.copy_(1.0f / at::pow(at::scalar_tensor(theta_, at::kFloat), exponents));
  if (yarn_) {
    auto g = [&](double beta) { return width * std::log(kYarnOriginal / (2 * kPi * beta)) / (2 * std::log(theta_)); };
    const double lo = std::max(std::floor(g(kYarnBetaFast)), 0.0);
    const double hi = std::min(std::ceil(g(kYarnBetaSlow)), static_cast<double>(half - 1));
    for (int64_t i = 0; i < half; ++i) {
      const double ramp = std::clamp((static_cast<double>(i) - lo) / std::max(hi - lo, 0.001), 0.0, 1.0);
      f[i] = static_cast<float>(f[i] * (1 - ramp + ramp / kYarnFactor));
    }
  }
  build(std::max<int64_t>(config.max_position_embeddings, 1));
}

void RotaryTable::build(int64_t length) {
  at::Tensor t = at::arange(length, at::kFloat);
  at::Tensor angles = at::outer(t, inv_freq_);        // [length, width/2]
  at::Tensor both = at::cat({angles, angles}, -1);    // frequencies repeated a second time
  cos_ = both.cos();
  sin_ = both.sin();
  length_ = length;
  device_copies_.clear();
}

std::pair<at::Tensor, at::Tensor> RotaryTable::rows(int64_t start, int64_t count, const c10::Device& device) {
  if (start + count > length_) build(std::max(start + count, 2 * length_));
  if (device.is_cpu()) return {cos_.narrow(0, start, count), sin_.narrow(0, start, count)};
  auto& copy = device_copies_[device.str()];
  if (!copy.first.defined()) copy = {cos_.to(device), sin_.to(device)};
  return {copy.first.narrow(0, start, count), copy.second.narrow(0, start, count)};
}

std::pair<const float*, const float*> RotaryTable::cpu_row(int64_t position) {
  if (position >= length_) build(std::max(position + 1, 2 * length_));
  return {cos_.data_ptr<float>() + position * width_, sin_.data_ptr<float>() + position * width_};
}

at::Tensor apply_rope(const at::Tensor& x, const at::Tensor& cos, const at::Tensor& sin) {
  const int64_t d = x.size(-1), h = d / 2;
  const at::Tensor c = cos.narrow(-1, 0, d).unsqueeze(1);  // [S, 1, d] broadcasts over batch and heads
  const at::Tensor s = sin.narrow(-1, 0, d).unsqueeze(1);
  const at::Tensor xf = x.scalar_type() == at::kFloat ? x : x.to(at::kFloat);
  const at::Tensor rotated = at::cat({-xf.narrow(-1, h, d - h), xf.narrow(-1, 0, h)}, -1);
  at::Tensor y = xf * c + rotated * s;
  return y.scalar_type() == x.scalar_type() ? y : y.to(x.scalar_type());
}

}  // namespace chronos
