// Knowledge distillation of stage 6 (docs/training_losses.md; Hinton, Vinyals, Dean 2015): forward
// KL(teacher || student) of temperature-softened distributions, scaled by T^2, mixed with the
// student's CE. Only logits are compared, so teacher and student may differ in hidden size, depth
// or experts; they must share the tokenizer (same vocabulary size).
#pragma once

#include <ATen/ATen.h>

namespace chronos {

struct DistillConfig {
  double temperature = 4.0;  // T: both distributions are softmax(z / T)
  double alpha = 0.7;        // weight of KD; CE gets 1 - alpha (minimind: alpha weights CE)
  void validate() const;     // ConfigError unless T > 0 and 0 <= alpha <= 1, both finite
};

struct DistillOutput {
  at::Tensor loss;    // scalar alpha * kd + (1 - alpha) * ce
  at::Tensor kd;      // scalar T^2 * sum_w KL(softmax(t/T) || softmax(s/T)) / max(sum w, 1)
  at::Tensor ce;      // scalar mean CE of the student on the same tokens (T = 1)
  at::Tensor tokens;  // scalar number of distilled positions (float)
};

// student_logits and teacher_logits [B,S,V] from forward passes on the same input ids; labels
// [B,S] unshifted (-100 = ignored). Position t < S-1 is distilled when labels[b,t+1] >= 0, the
// same alignment as the CE (B7 fix: logits[:, :-1] against labels[:, 1:]). The teacher is a
// constant (detached). Only the distilled rows are upcast to fp32, so padding costs no memory;
// finding them is the function's one host synchronisation.
// Throws InvalidArgument when the vocabularies or [B,S] differ.
DistillOutput distill_loss(const at::Tensor& student_logits, const at::Tensor& teacher_logits,
                           const at::Tensor& labels, const DistillConfig& config);

}  // namespace chronos
