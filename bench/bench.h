// The benchmark binaries' common part: interleaved side-by-side measurement, the comparison
// table, and main().
//
// These machines are noisy (2 cores shared with builds), so a baseline and our runtime are
// never measured minutes apart: a benchmark owns several Sides (e.g. "raw" and "ours", each
// with its own guest) and interleave() runs them in turns of `block` operations, rotating
// which side goes first. Each Google Benchmark iteration is one turn of every side. The
// results are Google Benchmark counters:
//   <side>           seconds per operation of that side: the median over the run's turns;
//   <side>/<first>   for every side after the first: the median over the run's turns of
//                    (that side's turn time / the first side's turn time).
// main() runs the benchmarks (use --benchmark_repetitions=N), then prints every registered
// Comparison as one table: medians over the repetitions of both sides and of the ratio. With
// --bench_summary=FILE it also writes the table as JSON (for bench/run.py). A benchmark that
// reports an error (State::SkipWithError) makes main() return 1, so the smoke tests fail.
#pragma once

#include <benchmark/benchmark.h>

#include <chrono>
#include <cstddef>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace bench {

// One variant being measured; run(n) performs n operations and returns the seconds they took.
class Side {
 public:
  explicit Side(std::string name) : name_(std::move(name)) {}
  virtual ~Side() = default;
  const std::string& name() const noexcept { return name_; }
  virtual double run(std::size_t n) = 0;
  // An optional second measure of the last run() (compile_bench: wall time, where run()
  // returns CPU time), reported as "<side>_<secondary_name()>" like a side of its own.
  virtual const char* secondary_name() const { return nullptr; }
  virtual double secondary() const { return 0; }

 private:
  std::string name_;
};

// A Side timing n calls of `op` with the steady clock (the call is inlined into the loop).
template <class Op>
class TimedSide final : public Side {
 public:
  TimedSide(std::string name, Op op) : Side(std::move(name)), op_(std::move(op)) {}
  double run(std::size_t n) override {
    auto t0 = std::chrono::steady_clock::now();
    for (std::size_t i = 0; i < n; ++i) op_();
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  }

 private:
  Op op_;
};

template <class Op>
std::unique_ptr<Side> side(std::string name, Op op) {
  return std::make_unique<TimedSide<Op>>(std::move(name), std::move(op));
}

using Sides = std::vector<std::unique_ptr<Side>>;

template <class... S>
Sides sides(S... s) {
  Sides v;
  (v.push_back(std::move(s)), ...);
  return v;
}

// Runs the benchmark loop: each iteration is one turn of `block` operations per side.
void interleave(benchmark::State& st, Sides sides, std::size_t block);

enum class Goal {
  Info,        // no target, shown for context
  MaxRatio,    // candidate / baseline <= target
  MinSpeedup,  // baseline / candidate >= target
  MaxTime,     // candidate's median <= target nanoseconds
};

struct Comparison {
  std::string title;      // "exit round trip, out"
  std::string benchmark;  // as registered, e.g. "exit/out"
  std::string baseline;   // side names
  std::string candidate;
  Goal goal = Goal::Info;
  double target = 0;  // ratio, speedup or nanoseconds, per goal
  // Set when the candidate side belongs to another benchmark: the ratio is then the ratio of
  // the two medians, not a median of interleaved ratios.
  std::string candidate_benchmark = {};
};

// Registers a comparison; returns true so it can initialise a namespace-scope constant.
bool compare(Comparison c);

// A binary's own --name=value flag, declared at namespace scope (before main() runs) and read
// inside benchmarks. main() rejects flags that neither Google Benchmark nor a declaration knows.
bool declare_flag(const std::string& name, const std::string& default_value);
const std::string& flag(const std::string& name);

}  // namespace bench
