#include "chronos/store/expert_storage.h"

#include "chronos/core/dtype.h"
#include "chronos/core/error.h"

namespace chronos {

ExpertStorage ExpertStorage::parse(const std::string& name) {
  if (name == "int8") return quantized(QuantFormat::int8);
  if (name == "int4") return quantized(QuantFormat::int4);
  try {
    return dense(parse_float_dtype(name));
  } catch (const InvalidArgument&) {
    throw InvalidArgument(cat("unknown expert storage '", name, "' (expected fp32, fp16, bf16, int8 or int4)"));
  }
}

ExpertStorage ExpertStorage::from_manifest_name(const std::string& name) {
  if (name == "F32") return dense(c10::kFloat);
  if (name == "F16") return dense(c10::kHalf);
  if (name == "BF16") return dense(c10::kBFloat16);
  if (name == "INT8_B32" || name == "INT8_B32_G4" || name == "INT4_B32" || name == "INT4_B32_G4") {
    return quantized(name.compare(0, 4, "INT8") == 0 ? QuantFormat::int8 : QuantFormat::int4, name.size() > 8);
  }
  throw InvalidArgument(cat("must be F32, F16, BF16, INT8_B32, INT4_B32, INT8_B32_G4 or INT4_B32_G4 (got \"", name, "\")"));
}

std::string ExpertStorage::name() const { return is_quantized() ? to_string(quant) : dtype_name(dtype); }

std::string ExpertStorage::manifest_name() const {
  switch (quant) {
    case QuantFormat::int8: return row_groups ? "INT8_B32_G4" : "INT8_B32";
    case QuantFormat::int4: return row_groups ? "INT4_B32_G4" : "INT4_B32";
    case QuantFormat::none: break;
  }
  switch (dtype) {
    case c10::kFloat: return "F32";
    case c10::kHalf: return "F16";
    case c10::kBFloat16: return "BF16";
    default: throw InvalidArgument(cat("expert storage dtype ", dtype_name(dtype), " is not fp32, fp16 or bf16"));
  }
}

uint64_t ExpertStorage::matrix_bytes(int64_t rows, int64_t cols) const {
  uint64_t elements = 1;
  for (const int64_t d : stored_shape(rows, cols)) elements *= static_cast<uint64_t>(d);
  return elements * c10::elementSize(dtype);
}

uint64_t ExpertStorage::expert_bytes(int64_t hidden, int64_t intermediate) const {
  return 2 * matrix_bytes(intermediate, hidden) + matrix_bytes(hidden, intermediate);
}

std::vector<int64_t> ExpertStorage::stored_shape(int64_t rows, int64_t cols) const {
  if (row_groups) return {rows, (cols + kQuantBlock - 1) / kQuantBlock, quantized_block_bytes(quant)};
  return {rows, is_quantized() ? quantized_row_bytes(quant, cols) : cols};
}

}  // namespace chronos
