// Precompiled header for the library, tools and tests: the LibTorch headers dominate compile time.
#pragma once
#include <torch/torch.h>
