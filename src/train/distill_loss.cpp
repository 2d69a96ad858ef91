#include "chronos/train/distill_loss.h"

#include <cmath>

#include "chronos/core/error.h"
#include "chronos/train/global_batch.h"
#include "chronos/train/sequence_log_probs.h"
#include "train/loss_utils.h"

namespace chronos {

using losses::check_config;
using losses::require;
using losses::shape_of;

void DistillConfig::validate() const {
  check_config(std::isfinite(temperature) && temperature > 0, "distill.temperature", "finite and > 0", temperature);
  check_config(std::isfinite(alpha) && alpha >= 0 && alpha <= 1, "distill.alpha", "in [0, 1]", alpha);
}

DistillOutput distill_loss(const at::Tensor& student_logits, const at::Tensor& teacher_logits,
                           const at::Tensor& labels, const DistillConfig& config) {
  config.validate();
  require(student_logits.defined() && student_logits.dim() == 3 && teacher_logits.defined() &&
              teacher_logits.dim() == 3,
          cat("distill_loss: expected student and teacher logits [B,S,V] (got ", shape_of(student_logits), " and ",
              shape_of(teacher_logits), ")"));
  const int64_t B = student_logits.size(0), S = student_logits.size(1), V = student_logits.size(2);
  require(teacher_logits.size(2) == V,
          cat("distill_loss: teacher vocabulary ", teacher_logits.size(2), " != student vocabulary ", V,
              " (teacher and student must share one tokenizer)"));
  require(teacher_logits.size(0) == B && teacher_logits.size(1) == S,
          cat("distill_loss: teacher logits ", shape_of(teacher_logits), " and student logits ", shape_of(student_logits),
              " must come from the same input ids"));
  require(labels.defined() && labels.dim() == 2 && labels.size(0) == B && labels.size(1) == S && S >= 2,
          cat("distill_loss: labels must be [", B, ",", S, "] with S >= 2 (got ", shape_of(labels), ")"));

  // Rows of the flattened [B*S, V] logits whose next label is supervised: position (b, t) with
  // t < S-1 and labels[b, t+1] >= 0. Selecting them first keeps padding out of every fp32 copy.
  const at::Device device = student_logits.device();
  const at::Tensor next = labels.to(device, at::kLong).narrow(1, 1, S - 1);
  const at::Tensor supervised = at::cat({next >= 0, at::zeros({B, 1}, next.options().dtype(at::kBool))}, 1);
  const at::Tensor rows = supervised.reshape({B * S}).nonzero().squeeze(1);
  const at::Tensor targets = at::cat({next, at::zeros({B, 1}, next.options())}, 1).reshape({B * S}).index_select(0, rows);

  const at::Tensor student = losses::upcast(student_logits.reshape({B * S, V}).index_select(0, rows));
  const at::Tensor teacher =
      teacher_logits.detach().to(device).reshape({B * S, V}).index_select(0, rows).to(student.scalar_type());
  const double T = config.temperature;
  const at::Tensor student_log_p = at::log_softmax(student / T, -1);
  const at::Tensor teacher_log_p = at::log_softmax(teacher / T, -1);
  // Forward KL: the teacher distribution weights the log-ratio.
  const at::Tensor kl = (teacher_log_p.exp() * (teacher_log_p - student_log_p)).sum(-1);

  DistillOutput out;
  out.tokens = at::full({}, static_cast<double>(rows.size(0)), student.options());
  const at::Tensor denominator = sum_over_ranks(out.tokens).clamp_min(1);  // the global batch's tokens
  out.kd = (T * T) * kl.sum() / denominator;
  out.ce = -target_log_probs(student.unsqueeze(0), targets.unsqueeze(0)).sum() / denominator;
  out.loss = config.alpha * out.kd + (1.0 - config.alpha) * out.ce;
  return out;
}

}  // namespace chronos
