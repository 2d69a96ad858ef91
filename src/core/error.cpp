#include "chronos/core/error.h"

// The error classes are header-only; this file anchors the vtables in the library.
namespace chronos {}
