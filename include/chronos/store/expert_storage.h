// How an expert cache stores each expert matrix (docs/formats.md "Expert cache"): a float dtype
// (fp32, fp16, bf16), or block-quantized int8 / int4 (chronos/model/quantized.h), quantized at pack
// time from the model's weights. Sizes, names on the command line and in the manifest.
#pragma once

#include <c10/core/ScalarType.h>

#include <cstdint>
#include <string>
#include <vector>

#include "chronos/model/quantized.h"

namespace chronos {

struct ExpertStorage {
  c10::ScalarType dtype = c10::kFloat;    // fp32/fp16/bf16; c10::kByte when quantized
  QuantFormat quant = QuantFormat::none;  // int8/int4: blocks of kQuantBlock weights with an fp16 scale
  // Quantized matrices in groups of four rows (docs/formats.md "Quantized experts"), as the decode
  // kernels read them fastest. Packing asks for them by default and writes them where H and I are
  // multiples of four.
  bool row_groups = false;

  static ExpertStorage dense(c10::ScalarType dtype) { return {dtype, QuantFormat::none}; }
  static ExpertStorage quantized(QuantFormat quant, bool row_groups = true) { return {c10::kByte, quant, row_groups}; }
  // fp32|float32, fp16|float16|half, bf16|bfloat16, int8, int4. Throws InvalidArgument otherwise.
  static ExpertStorage parse(const std::string& name);
  // The manifest's "dtype": F32, F16, BF16, INT8_B32, INT4_B32, INT8_B32_G4, INT4_B32_G4. Throws
  // InvalidArgument otherwise.
  static ExpertStorage from_manifest_name(const std::string& name);

  bool is_quantized() const { return quant != QuantFormat::none; }
  std::string name() const;           // fp32, fp16, bf16, int8, int4
  std::string manifest_name() const;  // F32, F16, BF16, INT8_B32, INT4_B32 (+ _G4 in row groups)
  // Bytes of one stored [rows, cols] matrix.
  uint64_t matrix_bytes(int64_t rows, int64_t cols) const;
  // Bytes of one expert's gate [I,H] | up [I,H] | down [H,I].
  uint64_t expert_bytes(int64_t hidden, int64_t intermediate) const;
  // The shape a stored matrix of logical shape [rows, cols] has in its file: [rows, cols] in dtype,
  // [rows, quantized row bytes] of uint8, or in row groups [rows, blocks, block bytes].
  std::vector<int64_t> stored_shape(int64_t rows, int64_t cols) const;

  bool operator==(const ExpertStorage& other) const { return dtype == other.dtype && quant == other.quant && row_groups == other.row_groups; }
  bool operator!=(const ExpertStorage& other) const { return !(*this == other); }
};

}  // namespace chronos
