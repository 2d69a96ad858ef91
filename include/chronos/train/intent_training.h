// Training the IntentClassifier on activation logs (train/intent_data.h). A seeded split holds out
// val_fraction of the examples; the rest train it with AdamW on BCE-with-logits over every
// (layer, expert) (multi-label; padding tokens are masked out of the pooling and batches have no
// padded rows). The output bias starts at the logit of each (layer, expert)'s usage frequency over
// the training split, so step 0 predicts the frequency baseline and training only has to add what
// the prompt tells. The validation figures compare the classifier with that frequency baseline.
#pragma once

#include <ATen/Tensor.h>

#include <cstdint>
#include <functional>
#include <vector>

#include "chronos/routing/intent_classifier.h"
#include "chronos/train/intent_data.h"

namespace chronos {

struct IntentTrainingConfig {
  int64_t steps = 200;        // optimizer steps
  int64_t batch_size = 16;    // examples per step (the last of an epoch may be smaller)
  double lr = 1e-3;           // AdamW learning rate (constant)
  double weight_decay = 0.01; // AdamW weight decay of the matrices
  double val_fraction = 0.1;  // share held out for validation, in [0, 1)
  double threshold = 0.5;     // probability above which an expert counts as predicted
  uint64_t seed = 0;          // split, order and initial weights

  // Throws ConfigError naming the field, value and rule.
  void validate() const;
};

// Figures of one predictor over a set of examples.
struct IntentMetrics {
  double loss = 0;              // mean BCE over examples x L x E
  double precision = 0;         // of the thresholded set, micro-averaged
  double recall = 0;            // of the thresholded set, micro-averaged
  double recall_at_budget = 0;  // share of used (layer, expert) pairs among the top-`budget` predicted per example
  int64_t budget = 0;           // pairs allowed per example: the mean used-set size over the training split, rounded up
};

struct IntentEvaluation {
  IntentMetrics classifier;
  IntentMetrics baseline;  // the usage frequency over the training split, the same for every prompt
  int64_t examples = 0;
};

struct IntentTrainingResult {
  IntentClassifier classifier{nullptr};
  at::Tensor frequency;             // [L,E] usage frequency over the training split
  std::vector<double> losses;       // training loss of each step
  IntentEvaluation validation;      // on the held-out split (examples == 0 when there is none)
  IntentEvaluation training;        // on the training split
  int64_t train_examples = 0;
  int64_t val_examples = 0;
};

// Scores `probs` ([N,L,E]) against `targets` ([N,L,E] 0/1).
IntentMetrics score_intent(const at::Tensor& probs, const at::Tensor& targets, double threshold, int64_t budget);

// Trains a fresh classifier of `config` on `examples` (targets [L,E] matching the config). Throws
// InvalidArgument when there are too few examples for the split (at least one training example).
// `on_step(step, loss)` is called after each step (may be empty).
IntentTrainingResult train_intent_classifier(const IntentClassifierConfig& config, const std::vector<IntentExample>& examples,
                                             const IntentTrainingConfig& training,
                                             const std::function<void(int64_t, double)>& on_step = {});

}  // namespace chronos
