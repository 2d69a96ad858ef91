// Which routed experts each calibration token chose, layer by layer: the input of co-activation
// clustering (chronos-pack). Stored compactly as int16 ids [tokens, L, k] per sequence, token-major.
#pragma once

#include <cstdint>
#include <functional>
#include <vector>

namespace chronos {

class ChronosForCausalLMImpl;
class ExpertSource;

class RoutingTrace {
 public:
  RoutingTrace() = default;
  // Throws InvalidArgument unless L >= 1, 1 <= k <= E and E fits an int16 id.
  RoutingTrace(int64_t num_layers, int64_t num_experts, int64_t top_k);

  // Appends one sequence: `ids` holds tokens * L * k expert ids, token-major ([t][layer][slot]).
  // Throws InvalidArgument when the size is not a multiple of L * k or an id is outside [0, E).
  void add_sequence(std::vector<int16_t> ids);

  int64_t num_layers() const { return num_layers_; }
  int64_t num_experts() const { return num_experts_; }
  int64_t top_k() const { return top_k_; }
  size_t num_sequences() const { return sequences_.size(); }
  // Tokens of sequence `seq`.
  int64_t length(size_t seq) const { return static_cast<int64_t>(sequences_[seq].size()) / (num_layers_ * top_k_); }
  // Tokens over all sequences.
  int64_t tokens() const { return tokens_; }
  // The k expert ids token `token` of sequence `seq` chose at `layer`.
  const int16_t* experts(size_t seq, int64_t token, int64_t layer) const {
    return sequences_[seq].data() + (token * num_layers_ + layer) * top_k_;
  }

 private:
  int64_t num_layers_ = 0, num_experts_ = 0, top_k_ = 0, tokens_ = 0;
  std::vector<std::vector<int16_t>> sequences_;
};

struct RoutingOptions {
  int64_t batch_size = 8;  // sequences per forward pass (sequences of similar length are batched together)
  ExpertSource* expert_source = nullptr;  // where the routed experts come from (null: the model's own)

  // Throws ConfigError naming the field.
  void validate() const;
};

// Called after each batch with the tokens routed so far and the total.
using RoutingProgress = std::function<void(int64_t tokens_done, int64_t tokens_total)>;

// Runs the model over `sequences` (token ids, any lengths; empty ones are kept as empty) in eval
// mode without gradients, on the device of its parameters, right-padded in batches, and records
// the experts every real token chose at every layer (padding is skipped). One device-to-host copy of
// the ids per batch. The model's training mode is restored afterwards. Throws InvalidArgument for a
// model without routed experts or an id outside the vocabulary.
RoutingTrace record_routing(ChronosForCausalLMImpl& model, const std::vector<std::vector<int64_t>>& sequences,
                            const RoutingOptions& options = {}, const RoutingProgress& progress = {});

}  // namespace chronos
