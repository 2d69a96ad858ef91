// How a model keeps its matrices for inference (docs/decode.md "Weight formats"): float32, bfloat16,
// or the int8 / int4 block formats of chronos/model/quantized.h. Batch-1 decoding streams every weight
// it uses once per token, so the bytes per weight set its speed. A converted model holds its projection
// matrices (attention, every FFN and expert, the lm_head and the embedding) in the chosen format and
// keeps in float32 what is small: norms, biases, the MoE router, the shared-expert gate, the
// LookaheadRouter, and MLA's k_nope_proj and v_proj, which the absorbed one-token form multiplies
// against the whole cached latent (docs/decode.md has their share of the bytes).
// A stored matrix is a bfloat16 [rows, cols] tensor, or a uint8 [rows, quantized row bytes] one, or
// (int8 and int4 as convert_weights leaves them, rows a multiple of four) a uint8 [rows, blocks, block
// bytes] one in groups of four rows (docs/formats.md); its format follows from the dtype and, for
// uint8, from the row bytes and the logical column count.
#pragma once

#include <ATen/Tensor.h>

#include <cstdint>
#include <string>
#include <vector>

namespace chronos {

class ChronosForCausalLMImpl;

enum class WeightFormat : uint8_t { fp32, bf16, int8, int4 };

// "fp32", "bf16", "int8", "int4".
const char* to_string(WeightFormat format);

// fp32|float32, bf16|bfloat16, int8, int4. Throws InvalidArgument naming the value otherwise.
WeightFormat parse_weight_format(const std::string& name);

// Bytes of one stored row of `cols` weights.
int64_t weight_row_bytes(WeightFormat format, int64_t cols);

// Bytes per weight averaged over a row of `cols` (the packed size of the block formats).
double bytes_per_weight(WeightFormat format, int64_t cols);

// The format of a stored [rows, cols]-matrix `weight`: float32 or bfloat16 by dtype, int8 or int4 by
// its uint8 row bytes. Throws InvalidArgument describing the tensor when it fits none.
WeightFormat stored_format(const at::Tensor& weight, int64_t cols);

// [rows, cols] floating-point weights -> the stored matrix of `format` on the CPU (float32 input
// stays shared when format is fp32).
at::Tensor to_weight_format(const at::Tensor& weight, WeightFormat format);

// A stored matrix of `cols` columns -> float32 [rows, cols] on the CPU (bf16 widens exactly).
at::Tensor widen_weight(const at::Tensor& stored, int64_t cols);

// Whether `weight` is a stored matrix of `cols` columns a kernel can read in place: on the CPU,
// contiguous, of one of the formats, and nothing needs a gradient through it.
bool is_stored_matrix(const at::Tensor& weight, int64_t cols);

// A matrix the weight formats apply to: its parameter name (as named_parameters() gives it) and its
// logical column count.
struct FormattedMatrix {
  std::string name;
  int64_t cols = 0;
};
std::vector<FormattedMatrix> formatted_matrices(ChronosForCausalLMImpl& model);

// Converts the model's matrices to `format` in place (from any stored format; int8 and int4 matrices
// end in groups of four rows where their rows allow) and returns the bytes they take afterwards. The
// parameters stop requiring gradients: a converted model is for inference. Call
// gather_weights_in_huge_pages after.
int64_t convert_weights(ChronosForCausalLMImpl& model, WeightFormat format);

// The format the model's matrices are stored in beside float32 compute (that of its lm_head weight);
// fp32 for a model that was not converted, whatever its compute dtype.
WeightFormat weights_format(ChronosForCausalLMImpl& model);

}  // namespace chronos
