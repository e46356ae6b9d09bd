#include <benchmark/benchmark.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <sstream>
#include <vector>

#include "bench.h"

namespace bench {
namespace {

std::vector<Comparison>& comparisons() {
  static std::vector<Comparison> c;
  return c;
}

std::map<std::string, std::string>& flags() {
  static std::map<std::string, std::string> f;
  return f;
}

double median(std::vector<double> v) {
  if (v.empty()) return NAN;
  std::sort(v.begin(), v.end());
  std::size_t n = v.size();
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

// Every counter of every repetition, by benchmark name; and the errors seen.
struct Results {
  std::map<std::string, std::map<std::string, std::vector<double>>> counters;
  std::vector<std::string> errors;
};

class CollectingReporter : public benchmark::ConsoleReporter {
 public:
  explicit CollectingReporter(Results& r)
      : ConsoleReporter(isatty(STDOUT_FILENO) ? OO_ColorTabular : OO_Tabular), r_(r) {}

  void ReportRuns(const std::vector<Run>& runs) override {
    ConsoleReporter::ReportRuns(runs);
    for (const Run& run : runs) {
      if (run.run_type != Run::RT_Iteration) continue;
      const std::string& name = run.run_name.function_name;
      if (run.error_occurred) {
        r_.errors.push_back(name + ": " + run.error_message);
        continue;
      }
      for (const auto& [counter, value] : run.counters)
        r_.counters[name][counter].push_back(value.value);
    }
  }

 private:
  Results& r_;
};

std::string format_time(double ns) {
  if (std::isnan(ns)) return "-";
  char buf[32];
  if (ns < 1e3)
    std::snprintf(buf, sizeof buf, "%.1f ns", ns);
  else if (ns < 1e6)
    std::snprintf(buf, sizeof buf, "%.2f us", ns / 1e3);
  else if (ns < 1e9)
    std::snprintf(buf, sizeof buf, "%.2f ms", ns / 1e6);
  else
    std::snprintf(buf, sizeof buf, "%.2f s", ns / 1e9);
  return buf;
}

std::string format_number(double v, const char* fmt) {
  if (std::isnan(v)) return "-";
  char buf[32];
  std::snprintf(buf, sizeof buf, fmt, v);
  return buf;
}

struct Row {
  const Comparison* c;
  double base_ns, cand_ns, ratio;  // ratio: median of candidate / baseline turn ratios
  std::size_t runs;
  std::string target, verdict;  // verdict: "yes", "NO", "" (info) or "?" (no data)
};

Row evaluate(const Comparison& c, const Results& r) {
  Row row{&c, NAN, NAN, NAN, 0, "", ""};
  auto get = [&](const std::string& bench, const std::string& counter) {
    auto b = r.counters.find(bench);
    if (b == r.counters.end()) return std::vector<double>{};
    auto it = b->second.find(counter);
    return it == b->second.end() ? std::vector<double>{} : it->second;
  };
  const std::string& cand_bench =
      c.candidate_benchmark.empty() ? c.benchmark : c.candidate_benchmark;
  row.base_ns = median(get(c.benchmark, c.baseline)) * 1e9;
  row.cand_ns = median(get(cand_bench, c.candidate)) * 1e9;
  row.runs = get(cand_bench, c.candidate).size();
  std::vector<double> ratios;
  if (cand_bench == c.benchmark) {
    ratios = get(c.benchmark, c.candidate + "/" + c.baseline);
    if (ratios.empty() && r.counters.count(c.benchmark)) {
      // The baseline is not the benchmark's first side: divide, repetition by repetition, the
      // two sides' ratios to the first side.
      for (const auto& [counter, values] : r.counters.at(c.benchmark)) {
        if (counter.rfind(c.candidate + "/", 0) != 0) continue;
        std::vector<double> base =
            get(c.benchmark, c.baseline + counter.substr(c.candidate.size()));
        for (std::size_t i = 0; i < values.size() && i < base.size(); ++i)
          ratios.push_back(values[i] / base[i]);
      }
    }
  }
  row.ratio = ratios.empty() ? row.cand_ns / row.base_ns : median(ratios);
  bool met = false;
  switch (c.goal) {
    case Goal::Info:
      return row;
    case Goal::MaxRatio:
      row.target = "ratio <= " + format_number(c.target, "%.2f");
      met = row.ratio <= c.target;
      break;
    case Goal::MinSpeedup:
      row.target = "speedup >= " + format_number(c.target, "%.1f") + "x";
      met = 1 / row.ratio >= c.target;
      break;
    case Goal::MaxTime:
      row.target = "cand <= " + format_time(c.target);
      met = row.cand_ns <= c.target;
      break;
  }
  bool known = c.goal == Goal::MaxTime ? !std::isnan(row.cand_ns) : !std::isnan(row.ratio);
  row.verdict = !known ? "?" : met ? "yes" : "NO";
  return row;
}

std::string json_escape(const std::string& s) {
  std::string out;
  for (char ch : s) {
    if (ch == '"' || ch == '\\') out += '\\';
    out += ch;
  }
  return out;
}

std::string json_number(double v) {
  if (std::isnan(v) || std::isinf(v)) return "null";
  std::ostringstream os;
  os.precision(6);
  os << v;
  return os.str();
}

void print_table(const std::vector<Row>& rows) {
  std::printf("\n%-44s %-16s %10s  %-16s %10s %9s  %-18s %s\n", "comparison", "baseline", "median",
              "candidate", "median", "cand/base", "target", "met");
  for (const Row& r : rows) {
    const bool cross = !r.c->candidate_benchmark.empty();
    std::string base = cross ? r.c->benchmark + " " + r.c->baseline : r.c->baseline;
    std::string cand = cross ? r.c->candidate_benchmark + " " + r.c->candidate : r.c->candidate;
    std::printf("%-44s %-16s %10s  %-16s %10s %9s  %-18s %s\n", r.c->title.c_str(), base.c_str(),
                format_time(r.base_ns).c_str(), cand.c_str(), format_time(r.cand_ns).c_str(),
                format_number(r.ratio, "%.3f").c_str(), r.target.c_str(), r.verdict.c_str());
  }
  std::fflush(stdout);
}

void write_summary(const std::string& path, const std::vector<Row>& rows) {
  std::ofstream out(path);
  out << "[\n";
  for (std::size_t i = 0; i < rows.size(); ++i) {
    const Row& r = rows[i];
    out << "  {\"title\": \"" << json_escape(r.c->title) << "\", \"benchmark\": \""
        << json_escape(r.c->benchmark) << "\", \"baseline\": \"" << json_escape(r.c->baseline)
        << "\", \"candidate\": \"" << json_escape(r.c->candidate)
        << "\", \"candidate_benchmark\": \"" << json_escape(r.c->candidate_benchmark)
        << "\", \"baseline_ns\": " << json_number(r.base_ns)
        << ", \"candidate_ns\": " << json_number(r.cand_ns)
        << ", \"ratio\": " << json_number(r.ratio) << ", \"runs\": " << r.runs << ", \"target\": \""
        << json_escape(r.target) << "\", \"met\": \"" << r.verdict << "\"}"
        << (i + 1 < rows.size() ? ",\n" : "\n");
  }
  out << "]\n";
}

}  // namespace

void interleave(benchmark::State& st, Sides sides, std::size_t block) {
  // Series 0..n-1 are the sides' run() times, n..2n-1 their secondary measures (if any).
  const std::size_t n = sides.size();
  const bool secondary = sides[0]->secondary_name() != nullptr;
  const std::size_t series = secondary ? 2 * n : n;
  std::vector<std::vector<double>> per_op(series), ratios(series);
  std::vector<double> turn(series);
  std::size_t first = 0;
  for (auto _ : st) {
    for (std::size_t k = 0; k < n; ++k) {
      std::size_t i = (first + k) % n;
      turn[i] = sides[i]->run(block);
      if (secondary) turn[n + i] = sides[i]->secondary();
    }
    first = (first + 1) % n;
    for (std::size_t i = 0; i < series; ++i) {
      per_op[i].push_back(turn[i] / static_cast<double>(block));
      if (i % n != 0) ratios[i].push_back(turn[i] / turn[i - i % n]);
    }
  }
  auto name = [&](std::size_t i) {
    return i < n ? sides[i]->name() : sides[i - n]->name() + "_" + sides[i - n]->secondary_name();
  };
  for (std::size_t i = 0; i < series; ++i) {
    st.counters[name(i)] = median(per_op[i]);
    if (i % n != 0) st.counters[name(i) + "/" + name(i - i % n)] = median(ratios[i]);
  }
}

bool compare(Comparison c) {
  comparisons().push_back(std::move(c));
  return true;
}

bool declare_flag(const std::string& name, const std::string& default_value) {
  flags()[name] = default_value;
  return true;
}

const std::string& flag(const std::string& name) {
  auto it = flags().find(name);
  if (it == flags().end()) {
    std::fprintf(stderr, "bench::flag(\"%s\") was never declared\n", name.c_str());
    std::abort();
  }
  return it->second;
}

}  // namespace bench

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  std::string summary;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    std::size_t eq = arg.find('=');
    std::string name = arg.substr(0, eq);
    std::string value = eq == std::string::npos ? "" : arg.substr(eq + 1);
    if (name == "--bench_summary") {
      summary = value;
    } else if (name.rfind("--", 0) == 0 && bench::flags().count(name.substr(2))) {
      bench::flags()[name.substr(2)] = value;
    } else {
      std::fprintf(stderr, "%s: unknown argument %s\n", argv[0], argv[i]);
      return 2;
    }
  }
  bench::Results results;
  bench::CollectingReporter reporter(results);
  benchmark::RunSpecifiedBenchmarks(&reporter);
  benchmark::Shutdown();

  std::vector<bench::Row> rows;
  for (const bench::Comparison& c : bench::comparisons()) {
    bool ran = results.counters.count(c.benchmark) &&
               (c.candidate_benchmark.empty() || results.counters.count(c.candidate_benchmark));
    if (ran) rows.push_back(bench::evaluate(c, results));
  }
  if (!rows.empty()) bench::print_table(rows);
  if (!summary.empty()) bench::write_summary(summary, rows);
  for (const std::string& e : results.errors)
    std::fprintf(stderr, "benchmark error: %s\n", e.c_str());
  return results.errors.empty() ? 0 : 1;
}
