#include "chronos/train/intent_training.h"

#include <ATen/ATen.h>
#include <torch/nn/functional/loss.h>
#include <torch/utils.h>

#include <cmath>

#include "chronos/core/error.h"
#include "chronos/train/jsonl.h"
#include "chronos/train/optimizer.h"

namespace chronos {
namespace {

void require(bool ok, const char* field, double value, const char* rule) {
  if (!ok) throw ConfigError(cat("intent_training.", field, " ", rule, " (got ", value, ")"));
}

at::Tensor stack_targets(const std::vector<IntentExample>& examples, const std::vector<size_t>& rows) {
  std::vector<at::Tensor> t;
  t.reserve(rows.size());
  for (size_t r : rows) t.push_back(examples[r].target.to(at::kFloat));
  return at::stack(t);
}

at::Tensor classifier_probs(IntentClassifierImpl& classifier, const std::vector<IntentExample>& examples,
                            const std::vector<size_t>& rows, int64_t batch_size) {
  torch::NoGradGuard no_grad;
  classifier.eval();
  std::vector<at::Tensor> out;
  for (size_t begin = 0; begin < rows.size(); begin += static_cast<size_t>(batch_size)) {
    std::vector<std::vector<int64_t>> prompts;
    for (size_t i = begin; i < std::min(rows.size(), begin + static_cast<size_t>(batch_size)); ++i)
      prompts.push_back(examples[rows[i]].prompt);
    const IntentBatch batch = make_intent_batch(prompts, classifier.config().max_prompt_tokens);
    out.push_back(at::sigmoid(classifier.forward(batch.ids, batch.mask)));
  }
  classifier.train();
  return at::cat(out);
}

IntentEvaluation evaluate(IntentClassifierImpl& classifier, const at::Tensor& frequency, const std::vector<IntentExample>& examples,
                          const std::vector<size_t>& rows, const IntentTrainingConfig& training, int64_t budget) {
  IntentEvaluation e;
  e.examples = static_cast<int64_t>(rows.size());
  if (rows.empty()) return e;
  const at::Tensor targets = stack_targets(examples, rows);
  e.classifier = score_intent(classifier_probs(classifier, examples, rows, training.batch_size), targets, training.threshold, budget);
  e.baseline = score_intent(frequency.unsqueeze(0).expand_as(targets), targets, training.threshold, budget);
  return e;
}

}  // namespace

void IntentTrainingConfig::validate() const {
  require(steps > 0, "steps", static_cast<double>(steps), "must be > 0");
  require(batch_size > 0, "batch_size", static_cast<double>(batch_size), "must be > 0");
  require(lr > 0 && std::isfinite(lr), "lr", lr, "must be > 0");
  require(weight_decay >= 0, "weight_decay", weight_decay, "must be >= 0");
  require(val_fraction >= 0 && val_fraction < 1, "val_fraction", val_fraction, "must be in [0, 1)");
  require(threshold > 0 && threshold < 1, "threshold", threshold, "must be in (0, 1)");
}

IntentMetrics score_intent(const at::Tensor& probs, const at::Tensor& targets, double threshold, int64_t budget) {
  if (probs.sizes() != targets.sizes() || probs.dim() != 3)
    throw InvalidArgument(cat("score_intent: probs ", probs.sizes(), " and targets ", targets.sizes(), " must both be [N,L,E]"));
  IntentMetrics m;
  m.budget = budget;
  const at::Tensor p = probs.to(at::kDouble), t = targets.to(at::kDouble);
  m.loss = at::binary_cross_entropy(p.clamp(1e-7, 1 - 1e-7), t).item<double>();
  const at::Tensor predicted = (p > threshold).to(at::kDouble);
  const double tp = (predicted * t).sum().item<double>();
  const double npred = predicted.sum().item<double>(), nused = t.sum().item<double>();
  m.precision = npred > 0 ? tp / npred : 0.0;
  m.recall = nused > 0 ? tp / nused : 0.0;
  const int64_t n = p.size(0), pairs = p.size(1) * p.size(2);
  const int64_t k = std::min<int64_t>(std::max<int64_t>(budget, 1), pairs);
  const at::Tensor top = std::get<1>(p.reshape({n, pairs}).topk(k, 1));  // ties resolved by topk's order
  const double hit = t.reshape({n, pairs}).gather(1, top).sum().item<double>();
  m.recall_at_budget = nused > 0 ? hit / nused : 0.0;
  return m;
}

IntentTrainingResult train_intent_classifier(const IntentClassifierConfig& config, const std::vector<IntentExample>& examples,
                                             const IntentTrainingConfig& training,
                                             const std::function<void(int64_t, double)>& on_step) {
  config.validate();
  training.validate();
  for (size_t i = 0; i < examples.size(); ++i) {
    const at::Tensor& t = examples[i].target;
    if (!t.defined() || t.dim() != 2 || t.size(0) != config.num_layers || t.size(1) != config.num_experts)
      throw InvalidArgument(cat("train_intent_classifier: example ", i, "'s target must be [", config.num_layers, ",",
                                config.num_experts, "]"));
    for (int64_t id : examples[i].prompt)
      if (id < 0 || id >= config.vocab_size)
        throw InvalidArgument(cat("train_intent_classifier: example ", i, " has token id ", id, " outside [0, ", config.vocab_size, ")"));
  }
  const std::vector<size_t> order = shuffled_order(examples.size(), training.seed);
  auto n_val = static_cast<size_t>(std::llround(training.val_fraction * static_cast<double>(examples.size())));
  if (training.val_fraction > 0 && n_val == 0 && examples.size() >= 2) n_val = 1;
  if (examples.size() <= n_val)
    throw InvalidArgument(cat("train_intent_classifier: ", examples.size(), " example(s) leave none for training after holding out ", n_val));
  const std::vector<size_t> val(order.begin(), order.begin() + static_cast<std::ptrdiff_t>(n_val));
  const std::vector<size_t> train(order.begin() + static_cast<std::ptrdiff_t>(n_val), order.end());

  IntentTrainingResult result;
  result.train_examples = static_cast<int64_t>(train.size());
  result.val_examples = static_cast<int64_t>(val.size());
  const at::Tensor train_targets = stack_targets(examples, train);
  result.frequency = train_targets.mean(0);
  const auto budget = static_cast<int64_t>(std::ceil(train_targets.sum({1, 2}).mean().item<double>() - 1e-9));

  torch::manual_seed(training.seed);
  result.classifier = IntentClassifier(config);
  IntentClassifierImpl& model = *result.classifier;
  {
    torch::NoGradGuard no_grad;
    const at::Tensor f = result.frequency.clamp(1e-3, 1 - 1e-3);
    model.fc2->bias.copy_(at::log(f / (1 - f)).reshape({-1}));
  }
  model.train();
  AdamWSettings settings;
  settings.lr = training.lr;
  settings.beta2 = 0.999;
  settings.weight_decay = training.weight_decay;
  auto optimizer = make_adamw(model, settings);

  size_t cursor = 0;
  uint64_t epoch = 0;
  std::vector<size_t> epoch_order = train;
  for (int64_t step = 1; step <= training.steps; ++step) {
    if (cursor >= epoch_order.size()) {
      cursor = 0;
      ++epoch;
      const std::vector<size_t> perm = shuffled_order(train.size(), training.seed + epoch);
      for (size_t i = 0; i < perm.size(); ++i) epoch_order[i] = train[perm[i]];
    }
    const size_t end = std::min(epoch_order.size(), cursor + static_cast<size_t>(training.batch_size));
    std::vector<size_t> rows(epoch_order.begin() + static_cast<std::ptrdiff_t>(cursor), epoch_order.begin() + static_cast<std::ptrdiff_t>(end));
    cursor = end;
    std::vector<std::vector<int64_t>> prompts;
    for (size_t r : rows) prompts.push_back(examples[r].prompt);
    const IntentBatch batch = make_intent_batch(prompts, config.max_prompt_tokens);
    const at::Tensor logits = model.forward(batch.ids, batch.mask);
    const at::Tensor loss = at::binary_cross_entropy_with_logits(logits, stack_targets(examples, rows));
    optimizer->zero_grad();
    loss.backward();
    optimizer->step();
    result.losses.push_back(loss.item<double>());
    if (on_step) on_step(step, result.losses.back());
  }
  model.eval();
  result.training = evaluate(model, result.frequency, examples, train, training, budget);
  result.validation = evaluate(model, result.frequency, examples, val, training, budget);
  model.eval();
  return result;
}

}  // namespace chronos
