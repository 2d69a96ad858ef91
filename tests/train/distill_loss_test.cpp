#include "chronos/train/distill_loss.h"

#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "chronos/core/error.h"
#include "chronos/model/causal_lm.h"
#include "support/tiny_config.h"
#include "train/gradient_check.h"

namespace chronos {
namespace {

at::Tensor logits(std::vector<double> v, int64_t S) { return at::tensor(v, at::kDouble).view({1, S, 2}); }
at::Tensor labels(std::vector<int64_t> v) { return at::tensor(v, at::kLong).view({1, static_cast<int64_t>(v.size())}); }

DistillConfig with(double temperature, double alpha) {
  DistillConfig c;
  c.temperature = temperature;
  c.alpha = alpha;
  return c;
}

// Position 0: teacher p = [0.75, 0.25], student uniform. Position 1 is never distilled.
const double kLn3 = std::log(3.0);

TEST(DistillLoss, ForwardKlOfTeacherFromStudent) {
  // KL(teacher || student) = 0.75 ln 1.5 + 0.25 ln 0.5 (the reverse KL would be 0.1438...).
  const DistillOutput out =
      distill_loss(logits({0, 0, 9, 9}, 2), logits({kLn3, 0, 9, 9}, 2), labels({-100, 1}), with(1.0, 0.7));
  EXPECT_NEAR(out.kd.item<double>(), 0.13081203594113697, 1e-12);
  EXPECT_NEAR(out.ce.item<double>(), std::log(2.0), 1e-12);
  EXPECT_NEAR(out.loss.item<double>(), 0.7 * 0.13081203594113697 + 0.3 * std::log(2.0), 1e-12);
  EXPECT_EQ(out.tokens.item<double>(), 1.0);
}

TEST(DistillLoss, TemperatureSoftensBothAndScalesByTSquared) {
  const DistillOutput out =
      distill_loss(logits({0, 0, 9, 9}, 2), logits({kLn3, 0, 9, 9}, 2), labels({-100, 1}), with(2.0, 0.7));
  EXPECT_NEAR(out.kd.item<double>(), 0.14536313148189411, 1e-12);
  EXPECT_NEAR(out.ce.item<double>(), std::log(2.0), 1e-12);  // CE stays at T = 1
}

TEST(DistillLoss, MaskIsTheShiftedLabels) {  // B7
  // labels[1] is supervised, labels[2] is not: only position 0 is distilled. Position 1 (whose own
  // label is the supervised one) would change the value if the mask were not shifted.
  const DistillOutput out = distill_loss(logits({0, 0, 2, -2, 7, 7}, 3), logits({kLn3, 0, -1, 5, 7, 7}, 3),
                                         labels({-100, 1, -100}), with(1.0, 1.0));
  EXPECT_NEAR(out.kd.item<double>(), 0.13081203594113697, 1e-12);
  EXPECT_EQ(out.tokens.item<double>(), 1.0);
}

TEST(DistillLoss, NoSupervisedTokenGivesZeroNotNaN) {
  const at::Tensor student = logits({0, 0, 1, 2}, 2).set_requires_grad(true);
  const DistillOutput out = distill_loss(student, logits({1, 0, 0, 1}, 2), labels({1, -100}), with(4.0, 0.7));
  EXPECT_EQ(out.loss.item<double>(), 0.0);
  out.loss.backward();
  EXPECT_EQ(student.grad().abs().sum().item<double>(), 0.0);
}

TEST(DistillLoss, GradientMatchesFiniteDifferencesAndSparesTheTeacher) {
  at::manual_seed(14);
  const at::Tensor teacher = at::randn({2, 4, 5}, at::kDouble).set_requires_grad(true);
  const at::Tensor lab = at::tensor(std::vector<int64_t>{-100, 3, 1, -100, -100, -100, 4, 0}, at::kLong).view({2, 4});
  testing::expect_gradient_matches_finite_differences(
      [&](const at::Tensor& x) { return distill_loss(x, teacher, lab, with(2.0, 0.6)).loss; },
      at::randn({2, 4, 5}, at::kDouble));
  EXPECT_FALSE(distill_loss(at::randn({2, 4, 5}, at::kDouble), teacher, lab, with(2.0, 0.6)).loss.requires_grad());
}

TEST(DistillLoss, TeacherWithAnotherHiddenSize) {
  at::manual_seed(15);
  ModelConfig student_config = testing::tiny_config();
  ModelConfig teacher_config = testing::tiny_config();
  teacher_config.hidden_size = 32;
  teacher_config.num_attention_heads = 2;
  teacher_config.num_key_value_heads = 1;
  teacher_config.num_hidden_layers = 2;
  ChronosForCausalLM student(student_config), teacher(teacher_config);
  teacher->eval();
  const at::Tensor ids = at::randint(3, 97, {2, 6}, at::kLong);
  at::Tensor lab = ids.clone();
  lab.narrow(1, 0, 2).fill_(-100);
  const DistillOutput out = distill_loss(student->forward(ids).logits, teacher->forward(ids).logits.detach(), lab,
                                         DistillConfig{});
  EXPECT_TRUE(std::isfinite(out.loss.item<float>()));
  EXPECT_GT(out.kd.item<float>(), 0.0f);
  EXPECT_EQ(out.tokens.item<float>(), 8.0f);  // positions 1..4 of each row predict labels 2..5
  out.loss.backward();
  EXPECT_GT(student->model->embed_tokens->weight.grad().abs().sum().item<float>(), 0.0f);
}

TEST(DistillLoss, RejectsAnotherVocabulary) {
  try {
    distill_loss(at::zeros({1, 3, 5}), at::zeros({1, 3, 6}), labels({0, 1, 2}), DistillConfig{});
    FAIL() << "no error";
  } catch (const InvalidArgument& e) {
    EXPECT_NE(std::string(e.what()).find("vocabulary"), std::string::npos) << e.what();
  }
  EXPECT_THROW(distill_loss(at::zeros({1, 3, 5}), at::zeros({1, 4, 5}), labels({0, 1, 2}), DistillConfig{}),
               InvalidArgument);
}

TEST(DistillConfig, RejectsBadValues) {
  EXPECT_THROW(with(0.0, 0.5).validate(), ConfigError);
  EXPECT_THROW(with(2.0, 1.5).validate(), ConfigError);
  EXPECT_NO_THROW(DistillConfig{}.validate());
}

}  // namespace
}  // namespace chronos
