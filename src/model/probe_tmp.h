#pragma once
#include <x86intrin.h>
#include <cstdio>
namespace probe {
struct Slot { const char* name = nullptr; unsigned long long ticks = 0, n = 0; };
inline Slot slots[32];
struct Dump { ~Dump() { for (auto& s : slots) if (s.n) std::fprintf(stderr, "PROBE %-24s %8.0f ticks x %llu\n", s.name, double(s.ticks) / s.n, s.n); } };
inline Dump dump;
struct Scope { int i; unsigned long long t; Scope(int i, const char* nm) : i(i), t(__rdtsc()) { slots[i].name = nm; } ~Scope() { slots[i].ticks += __rdtsc() - t; slots[i].n++; } };
}
#define PROBE(i, name) probe::Scope probe_scope_##i(i, name)
