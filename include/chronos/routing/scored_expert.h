// A (layer, expert) pair with the predicted probability that decode will use it, the unit the
// predictors of routing/ hand to the prefetch and prefill logic.
#pragma once

#include "chronos/store/expert_key.h"

namespace chronos {

struct ScoredExpert {
  ExpertKey key;
  float probability = 0;  // predicted probability of use (an estimate: it orders requests)
};

}  // namespace chronos
