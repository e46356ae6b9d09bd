// main() for Catch2 v2 (Debian package catch2, 2.13) tests run by Bazel.
//
// * When XML_OUTPUT_FILE is set (Bazel sets it for every test) and the user
//   did not choose a reporter / output file, the run uses the JUnit reporter
//   writing to that path, so bazel-testlogs/<pkg>/<test>/test.xml holds real
//   per-test-case results. (Catch2 v2 allows only one reporter per run.)
// * Because the JUnit report goes to a file, a listener prints a readable
//   log to stdout (i.e. test.log): one line per test case, details of failed
//   assertions, and a final one-line summary.
// * Bazel's --test_filter (TESTBRIDGE_TEST_ONLY) is honoured as a Catch2 test
//   spec when no test spec is given on the command line.
//
// The listener writes with C stdio because Catch2 redirects std::cout/cerr
// into the report while a test case runs when the JUnit reporter is active.

#define CATCH_CONFIG_RUNNER
#include <catch2/catch.hpp>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

namespace {

struct RunSummary {
  bool valid = false;
  Catch::Totals totals;
};
RunSummary g_summary;

class StdoutLogListener : public Catch::TestEventListenerBase {
 public:
  using TestEventListenerBase::TestEventListenerBase;

  bool assertionEnded(Catch::AssertionStats const& stats) override {
    const Catch::AssertionResult& r = stats.assertionResult;
    if (r.isOk()) return true;
    const Catch::SourceLineInfo& loc = r.getSourceInfo();
    std::string test = currentTestCaseInfo ? currentTestCaseInfo->name : "?";
    std::fprintf(stdout, "%s:%zu: FAILED in test case \"%s\"\n", loc.file, loc.line, test.c_str());
    for (const Catch::SectionInfo& s : m_sectionStack) {
      if (s.name != test) std::fprintf(stdout, "  in section: %s\n", s.name.c_str());
    }
    if (r.hasExpression()) {
      std::fprintf(stdout, "  %s\n", r.getExpressionInMacro().c_str());
      if (r.hasExpandedExpression()) {
        std::fprintf(stdout, "  with expansion: %s\n", r.getExpandedExpression().c_str());
      }
    }
    if (r.hasMessage()) std::fprintf(stdout, "  %s\n", r.getMessage().c_str());
    for (const Catch::MessageInfo& m : stats.infoMessages) {
      std::fprintf(stdout, "  info: %s\n", m.message.c_str());
    }
    std::fflush(stdout);
    return true;
  }

  void testCaseEnded(Catch::TestCaseStats const& stats) override {
    const bool ok = stats.totals.assertions.allOk() && stats.totals.testCases.failed == 0;
    std::fprintf(stdout, "[%s] %s\n", ok ? "  OK  " : "FAILED", stats.testInfo.name.c_str());
    std::fflush(stdout);
    TestEventListenerBase::testCaseEnded(stats);
  }

  void testRunEnded(Catch::TestRunStats const& stats) override {
    g_summary.valid = true;
    g_summary.totals = stats.totals;
    TestEventListenerBase::testRunEnded(stats);
  }
};

bool HasArg(const std::vector<std::string>& args, std::initializer_list<const char*> names) {
  for (size_t i = 1; i < args.size(); ++i) {
    for (const char* n : names) {
      const size_t len = std::strlen(n);
      // "-r junit", "--reporter junit", "--reporter=junit", "-rjunit".
      if (args[i].compare(0, len, n) == 0) return true;
    }
  }
  return false;
}

bool HasPositionalArg(const std::vector<std::string>& args) {
  for (size_t i = 1; i < args.size(); ++i) {
    if (!args[i].empty() && args[i][0] != '-') {
      // Skip values of options that take an argument.
      const std::string& prev = args[i - 1];
      // clang-format off
      static const char* const kWithValue[] = {
          "-r", "--reporter", "-o", "--out", "-n", "--name", "-x", "--abortx",
          "-w", "--warn", "-d", "--durations", "-D", "--min-duration", "-f",
          "--input-file", "-v", "--verbosity", "-c", "--section", "--order",
          "--rng-seed", "--use-colour", "--wait-for-keypress",
          "--benchmark-samples", "--benchmark-resamples",
          "--benchmark-confidence-interval", "--benchmark-warmup-time"};
      // clang-format on
      bool is_value = false;
      for (const char* o : kWithValue) is_value |= (prev == o);
      if (is_value) continue;
      return true;
    }
  }
  return false;
}

}  // namespace

CATCH_REGISTER_LISTENER(StdoutLogListener)

int main(int argc, char* argv[]) {
  std::vector<std::string> args(argv, argv + argc);

  const char* xml = std::getenv("XML_OUTPUT_FILE");
  const bool listing = HasArg(args, {"-l", "--list", "-t", "-h", "-?", "--help"});
  const bool junit = xml != nullptr && *xml != '\0' && !listing &&
                     !HasArg(args, {"-r", "--reporter", "-o", "--out"});
  if (junit) args.insert(args.end(), {"--reporter", "junit", "--out", xml});

  const char* filter = std::getenv("TESTBRIDGE_TEST_ONLY");
  if (filter != nullptr && *filter != '\0' && !HasPositionalArg(args)) {
    args.emplace_back(filter);
  }

  std::vector<char*> cargs;
  cargs.reserve(args.size() + 1);
  for (std::string& a : args) cargs.push_back(a.data());
  cargs.push_back(nullptr);

  Catch::Session session;
  int rc = session.applyCommandLine(static_cast<int>(args.size()), cargs.data());
  if (rc != 0) return rc;
  rc = session.run();

  if (g_summary.valid) {
    const Catch::Totals& t = g_summary.totals;
    std::fprintf(stdout,
                 "Catch2 summary: %zu test cases: %zu passed, %zu failed "
                 "(%zu assertions, %zu failed)%s%s\n",
                 t.testCases.total(), t.testCases.passed, t.testCases.failed, t.assertions.total(),
                 t.assertions.failed, junit ? "; JUnit XML: " : "", junit ? xml : "");
    std::fflush(stdout);
  }
  return rc;
}
