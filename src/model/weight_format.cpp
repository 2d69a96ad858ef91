#include "chronos/model/weight_format.h"

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <c10/core/GradMode.h>
#include <torch/nn/modules/embedding.h>
#include <torch/nn/modules/linear.h>

#include <algorithm>
#include <cstring>
#include <vector>

#include "chronos/core/error.h"
#include "chronos/model/attention.h"
#include "chronos/model/causal_lm.h"
#include "chronos/model/quantized.h"
#include "model/row_groups.h"
#include "model/stored_rows.h"

namespace chronos {
namespace {

QuantFormat quant_of(WeightFormat format) {
  return format == WeightFormat::int8 ? QuantFormat::int8 : format == WeightFormat::int4 ? QuantFormat::int4 : QuantFormat::none;
}

// Row `row` of a matrix in row groups (model/row_groups.h) widened block by block straight from its
// groups, the same products as dequantize_row (d * q): no row-major copy first, and loops of sixteen
// the compiler vectorizes (the general path widens every weight of a prompt's matrices).
void widen_group_row(const uint8_t* grouped, WeightFormat format, int64_t blocks, int64_t cols, int64_t row, float* out) {
  const int64_t quant_bytes = block_quant_bytes(format), k = row % kGroupRows;
  const uint8_t* group = grouped + row / kGroupRows * kGroupRows * blocks * (2 + quant_bytes);
  for (int64_t b = 0; b < blocks; ++b) {
    const uint8_t* scale = group + group_scale_offset(b, k);
    const float d = c10::detail::fp16_ieee_to_fp32_value(static_cast<uint16_t>(scale[0] | scale[1] << 8));
    const uint8_t* q = group + group_quants_offset(blocks, quant_bytes, b, k);
    float block[kQuantBlock];
    constexpr int64_t kHalf = kQuantBlock / 2;
    if (format == WeightFormat::int8) {
      for (int64_t i = 0; i < kHalf; ++i) block[i] = d * static_cast<float>(static_cast<int8_t>(q[i]));
      for (int64_t i = 0; i < kHalf; ++i) block[kHalf + i] = d * static_cast<float>(static_cast<int8_t>(q[64 + i]));
    } else {  // byte i: weight i in the low nibble, i + 16 in the high one, each q + 8
      for (int64_t i = 0; i < kHalf; ++i) block[i] = d * static_cast<float>((q[i] & 0x0f) - 8);
      for (int64_t i = 0; i < kHalf; ++i) block[kHalf + i] = d * static_cast<float>((q[i] >> 4) - 8);
    }
    const int64_t n = std::min(kQuantBlock, cols - b * kQuantBlock);
    std::memcpy(out + b * kQuantBlock, block, static_cast<size_t>(n) * sizeof(float));
  }
}

// A CPU stored matrix's rows, its format and layout read once (widen_rows_into calls widen() per row).
class StoredRows {
 public:
  StoredRows(const at::Tensor& stored, int64_t cols)
      : format_(stored_format(stored, cols)), grouped_(grouped_format(stored, cols).has_value()), data_(stored.data_ptr()), cols_(cols),
        blocks_(grouped_ ? stored.size(1) : 0) {}

  void widen(int64_t row, float* out) const {
    switch (format_) {
      case WeightFormat::fp32:
        std::memcpy(out, static_cast<const float*>(data_) + row * cols_, static_cast<size_t>(cols_) * sizeof(float));
        return;
      case WeightFormat::bf16: {
        const int64_t cols = cols_;  // a local bound: the byte copies below may alias the members
        const uint16_t* bits = static_cast<const uint16_t*>(data_) + row * cols;
        for (int64_t i = 0; i < cols; ++i) {
          const uint32_t widened = static_cast<uint32_t>(bits[i]) << 16;
          float value;
          std::memcpy(&value, &widened, sizeof value);
          out[i] = value;
        }
        return;
      }
      case WeightFormat::int8:
      case WeightFormat::int4: {
        const auto* bytes = static_cast<const uint8_t*>(data_);
        if (grouped_)
          widen_group_row(bytes, format_, blocks_, cols_, row, out);
        else
          dequantize_row(quant_of(format_), bytes + row * weight_row_bytes(format_, cols_), cols_, out);
        return;
      }
    }
  }

 private:
  WeightFormat format_;
  bool grouped_;
  const void* data_;
  int64_t cols_, blocks_;
};

bool ends_with(const std::string& s, const std::string& tail) {
  return s.size() >= tail.size() && s.compare(s.size() - tail.size(), tail.size(), tail) == 0;
}

// Calls fn(name, weight, cols) for each matrix a format applies to (weight_format.h).
template <typename Fn>
void for_each_formatted(ChronosForCausalLMImpl& model, Fn&& fn) {
  std::vector<std::string> mla;  // prefixes of the MLA modules, whose absorbed matrices stay float32
  for (const auto& item : model.named_modules("", /*include_self=*/false))
    if (dynamic_cast<MLAttentionImpl*>(item.value().get()) != nullptr) mla.push_back(item.key() + ".");
  for (const auto& item : model.named_modules("", /*include_self=*/false)) {
    const std::string& path = item.key();
    at::Tensor* weight = nullptr;
    int64_t cols = 0;
    if (auto* linear = dynamic_cast<torch::nn::LinearImpl*>(item.value().get())) {
      weight = &linear->weight;
      cols = linear->options.in_features();
    } else if (auto* embedding = dynamic_cast<torch::nn::EmbeddingImpl*>(item.value().get())) {
      weight = &embedding->weight;
      cols = embedding->options.embedding_dim();
    }
    if (weight == nullptr || weight->numel() == 0) continue;
    if (ends_with(path, "mlp.gate") || path.find("shared_expert_gate") != std::string::npos ||
        path.find("lookahead_router") != std::string::npos)
      continue;
    const bool absorbed = std::any_of(mla.begin(), mla.end(), [&](const std::string& prefix) {
      return path == prefix + "k_nope_proj" || path == prefix + "v_proj";
    });
    if (!absorbed) fn(path + ".weight", *weight, cols);
  }
}

}  // namespace

const char* to_string(WeightFormat format) {
  switch (format) {
    case WeightFormat::fp32: return "fp32";
    case WeightFormat::bf16: return "bf16";
    case WeightFormat::int8: return "int8";
    case WeightFormat::int4: return "int4";
  }
  return "?";
}

WeightFormat parse_weight_format(const std::string& name) {
  if (name == "fp32" || name == "float32") return WeightFormat::fp32;
  if (name == "bf16" || name == "bfloat16") return WeightFormat::bf16;
  if (name == "int8") return WeightFormat::int8;
  if (name == "int4") return WeightFormat::int4;
  throw InvalidArgument(cat("unknown weights format '", name, "' (expected fp32, bf16, int8 or int4)"));
}

int64_t weight_row_bytes(WeightFormat format, int64_t cols) {
  switch (format) {
    case WeightFormat::fp32: return 4 * cols;
    case WeightFormat::bf16: return 2 * cols;
    case WeightFormat::int8:
    case WeightFormat::int4: return quantized_row_bytes(quant_of(format), cols);
  }
  return 0;
}

double bytes_per_weight(WeightFormat format, int64_t cols) {
  return cols > 0 ? static_cast<double>(weight_row_bytes(format, cols)) / static_cast<double>(cols) : 0.0;
}

WeightFormat stored_format(const at::Tensor& weight, int64_t cols) {
  if (const std::optional<WeightFormat> grouped = grouped_format(weight, cols)) return *grouped;
  if (weight.defined() && weight.dim() == 2) {
    if (weight.scalar_type() == at::kFloat && weight.size(1) == cols) return WeightFormat::fp32;
    if (weight.scalar_type() == at::kBFloat16 && weight.size(1) == cols) return WeightFormat::bf16;
    if (weight.scalar_type() == at::kByte) {
      for (const WeightFormat f : {WeightFormat::int8, WeightFormat::int4})
        if (weight.size(1) == weight_row_bytes(f, cols)) return f;
    }
  }
  if (!weight.defined()) throw InvalidArgument("stored_format: undefined weight");
  throw InvalidArgument(cat("a ", weight.scalar_type(), " ", weight.sizes(), " tensor is no stored matrix of ", cols,
                            " columns (float32 or bfloat16 [rows, ", cols, "], uint8 [rows, ", weight_row_bytes(WeightFormat::int8, cols),
                            "] for int8, [rows, ", weight_row_bytes(WeightFormat::int4, cols), "] for int4, or [rows, ", (cols + kQuantBlock - 1) / kQuantBlock,
                            ", 34 or 18] in groups of four rows)"));
}

at::Tensor to_weight_format(const at::Tensor& weight, WeightFormat format) {
  switch (format) {
    case WeightFormat::fp32: return weight.detach().to(at::kCPU, at::kFloat).contiguous();
    case WeightFormat::bf16: return weight.detach().to(at::kCPU, at::kBFloat16).contiguous();
    case WeightFormat::int8:
    case WeightFormat::int4: return quantize_matrix(weight, quant_of(format));
  }
  return {};
}

at::Tensor widen_weight(const at::Tensor& stored, int64_t cols) {
  const WeightFormat format = stored_format(stored, cols);
  if (format == WeightFormat::fp32 || format == WeightFormat::bf16) return stored.detach().to(at::kCPU, at::kFloat).contiguous();
  if (grouped_format(stored, cols)) return dequantize_matrix(ungroup_rows(stored, 0, stored.size(0)), quant_of(format), cols);
  return dequantize_matrix(stored, quant_of(format), cols);
}

at::Tensor widen_rows(const at::Tensor& stored, int64_t first, int64_t count, int64_t cols) {
  if (!grouped_format(stored, cols)) return widen_weight(stored.narrow(0, first, count), cols);
  at::Tensor out = at::empty({count, cols}, at::TensorOptions().dtype(at::kFloat));
  widen_rows_into(stored, first, count, cols, out.data_ptr<float>());
  return out;
}

void widen_rows_into(const at::Tensor& stored, int64_t first, int64_t count, int64_t cols, float* out) {
  if (first < 0 || count < 0 || first + count > stored.size(0))
    throw InvalidArgument(cat("rows [", first, ", ", first + count, ") of a matrix of ", stored.size(0), " rows"));
  if (!stored.device().is_cpu() || !stored.is_contiguous()) throw InvalidArgument("widen_rows_into: the matrix must be contiguous on the CPU");
  const StoredRows rows(stored, cols);
  // Chunks of >= 64 K values: a fine.json expert's 32 K went slower over two threads than on one.
  const int64_t grain = std::max<int64_t>(1, (int64_t{1} << 16) / std::max<int64_t>(cols, 1));
  at::parallel_for(0, count, grain, [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) rows.widen(first + r, out + r * cols);
  });
}

at::Tensor widen_selected_rows(const at::Tensor& stored, const at::Tensor& index, int64_t cols) {
  const std::optional<WeightFormat> grouped = grouped_format(stored, cols);
  if (!grouped) return widen_weight(stored.index_select(0, index), cols);
  const at::Tensor ids = index.to(at::kCPU, at::kLong).contiguous(), table = stored.contiguous();
  const int64_t n = ids.numel(), rows = table.size(0), blocks = table.size(1), row_bytes = weight_row_bytes(*grouped, cols);
  at::Tensor picked = at::empty({n, row_bytes}, table.options());
  const int64_t* id = ids.data_ptr<int64_t>();
  for (int64_t i = 0; i < n; ++i) {
    if (id[i] < 0 || id[i] >= rows) throw InvalidArgument(cat("row ", id[i], " of a matrix of ", rows, " rows"));
    ungroup_row(table.data_ptr<uint8_t>(), table.size(2), blocks, id[i], picked.data_ptr<uint8_t>() + i * row_bytes);
  }
  return dequantize_matrix(picked, quant_of(*grouped), cols);
}

void widen_row_into(const at::Tensor& stored, int64_t row, int64_t cols, float* out) {
  if (row < 0 || row >= stored.size(0)) throw InvalidArgument(cat("row ", row, " of a matrix of ", stored.size(0), " rows"));
  StoredRows(stored, cols).widen(row, out);
}

bool is_stored_matrix(const at::Tensor& weight, int64_t cols) {
  if (!weight.defined() || !weight.device().is_cpu() || !weight.is_contiguous()) return false;
  if (c10::GradMode::is_enabled() && weight.requires_grad()) return false;
  if (grouped_format(weight, cols)) return true;
  if (weight.dim() != 2) return false;
  const bool floats = (weight.scalar_type() == at::kFloat || weight.scalar_type() == at::kBFloat16) && weight.size(1) == cols;
  const bool blocks = weight.scalar_type() == at::kByte &&
                      (weight.size(1) == weight_row_bytes(WeightFormat::int8, cols) || weight.size(1) == weight_row_bytes(WeightFormat::int4, cols));
  return floats || blocks;
}

std::vector<FormattedMatrix> formatted_matrices(ChronosForCausalLMImpl& model) {
  std::vector<FormattedMatrix> out;
  for_each_formatted(model, [&](const std::string& name, at::Tensor&, int64_t cols) { out.push_back({name, cols}); });
  return out;
}

int64_t convert_weights(ChronosForCausalLMImpl& model, WeightFormat format) {
  at::NoGradGuard no_grad;
  int64_t bytes = 0;
  for_each_formatted(model, [&](const std::string& name, at::Tensor& weight, int64_t cols) {
    if (!weight.device().is_cpu())
      throw InvalidArgument(cat("convert_weights: ", name, " is on ", weight.device(), "; the weight formats are CPU formats"));
    const WeightFormat current = stored_format(weight, cols);
    if (current != format) {
      // A converted tensor cannot require a gradient (uint8) and a converted model is for inference.
      weight.requires_grad_(false);
      weight.set_data(to_weight_format(current == WeightFormat::fp32 ? weight : widen_weight(weight, cols), format));
    }
    // The block formats decode from groups of four rows (model/row_groups.h).
    if (quant_of(format) != QuantFormat::none && weight.size(0) % kGroupRows == 0 && !grouped_format(weight, cols))
      weight.set_data(group_rows(weight, format, cols));
    bytes += static_cast<int64_t>(weight.nbytes());
  });
  for (at::Tensor& p : model.parameters()) p.requires_grad_(false);
  return bytes;
}

WeightFormat weights_format(ChronosForCausalLMImpl& model) {
  const at::Tensor weight = model.lm_head_weight();
  if (weight.scalar_type() == model.model->norm->weight.scalar_type()) return WeightFormat::fp32;  // the compute dtype
  return stored_format(weight, model.config().hidden_size);
}

}  // namespace chronos
