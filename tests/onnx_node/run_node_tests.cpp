// ONNX backend conformance: runs the official node test cases (Debian's libonnx-testdata) and
// the old-opset suites next to them through fgq, one forked child per case, and reports per op
// how many cases pass, fail cleanly (fgq::Error: the model does not fit fgq), give wrong numbers
// or crash. Wrong numbers and crashes make the run fail; so does an op passing fewer cases than
// the committed table (--expect) says.
//
//   run_node_tests [--data DIR] [--suite S]... [--op LABEL]... [--other-ops] [--case NAME]...
//                  [--expect docs/onnx_node_tests.md] [--table docs/onnx_node_tests.md]
//                  [--write-ctest FILE] [--no-fork] [--timeout S] [-v]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iostream>
#include <map>
#include <set>
#include <sstream>

#include "graph/op_schema.h"
#include "tests/onnx_node/node_case.h"

#ifndef FGQ_ONNX_TESTDATA
#define FGQ_ONNX_TESTDATA "/usr/share/libonnx-testdata/data"
#endif

namespace fs = std::filesystem;
using namespace fgq::nodetest;

namespace {

// The suites of the data folder fgq runs: the node tests, and the old-opset (6) models
// converted from PyTorch, which exercise the opset 1-6 attribute forms.
const std::vector<std::string> kAllSuites = {"node", "pytorch-converted", "pytorch-operator", "simple"};

struct Options {
  std::string data = FGQ_ONNX_TESTDATA;
  std::vector<std::string> suites;
  std::set<std::string> ops;
  bool other_ops = false;
  std::set<std::string> cases;  // only these (--case); all when empty
  std::string expect, table, write_ctest;
  bool fork = true, verbose = false;
  double timeout = 60;
};

[[noreturn]] void usage(const std::string& why) {
  std::cerr << "run_node_tests: " << why << "\n"
            << "usage: run_node_tests [--data DIR] [--suite S]... [--op LABEL]... [--other-ops] [--case NAME]...\n"
            << "                      [--expect FILE] [--table FILE] [--write-ctest FILE] [--no-fork]\n"
            << "                      [--timeout S] [-v]\n";
  std::exit(2);
}

Options parse(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) usage(a + " needs a value");
      return argv[++i];
    };
    if (a == "--data") o.data = value();
    else if (a == "--suite") o.suites.push_back(value());
    else if (a == "--op") o.ops.insert(value());
    else if (a == "--other-ops") o.other_ops = true;
    else if (a == "--case") o.cases.insert(value());
    else if (a == "--expect") o.expect = value();
    else if (a == "--table") o.table = value();
    else if (a == "--write-ctest") o.write_ctest = value();
    else if (a == "--no-fork") o.fork = false;
    else if (a == "--timeout") o.timeout = std::stod(value());
    else if (a == "-v" || a == "--verbose") o.verbose = true;
    else usage("unknown argument '" + a + "'");
  }
  if (o.suites.empty()) o.suites = o.table.empty() ? std::vector<std::string>{"node"} : kAllSuites;
  return o;
}

// An op label fgq lists as supported (graph/op_schema.cpp): a single op type with a spec.
bool supported_label(const std::string& label) { return fgq::find_op_spec(label) != nullptr; }

// "yes" when fgq accepts every op of the case, "no" when none, "partly" otherwise.
std::string support_of(const CaseInfo& c) {
  size_t n = 0;
  for (const auto& op : c.ops) n += op == "Constant" || fgq::find_op_spec(op) != nullptr;
  return n == c.ops.size() ? "yes" : n == 0 ? "no" : "partly";
}

std::vector<CaseInfo> discover(const Options& o, const std::string& suite) {
  const fs::path root = fs::path(o.data) / suite;
  if (!fs::is_directory(root)) throw std::runtime_error("no suite folder " + root.string());
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(root))
    if (e.is_directory() && fs::exists(e.path() / "model.onnx")) names.push_back(e.path().filename().string());
  std::sort(names.begin(), names.end());
  std::vector<CaseInfo> cases;
  for (const auto& n : names)
    if (o.cases.empty() || o.cases.count(n)) cases.push_back(describe_case(suite, root / n, names));
  return cases;
}

bool selected(const Options& o, const CaseInfo& c) {
  if (o.ops.empty() && !o.other_ops) return true;
  if (o.ops.count(c.label)) return true;
  return o.other_ops && !(c.suite == "node" && supported_label(c.label));
}

struct Counts {
  int run = 0, pass = 0, error = 0, wrong = 0, crash = 0;
  std::string support;
  void add(Result r) {
    ++run;
    pass += r == Result::Pass;
    error += r == Result::CleanError;
    wrong += r == Result::Wrong;
    crash += r == Result::Crash;
  }
};

struct Ran {
  CaseInfo info;
  Outcome out;
};

// Case and passed counts per (suite, op label) from a table this program wrote.
struct Expected {
  int cases = 0, passed = 0;
};
std::map<std::pair<std::string, std::string>, Expected> read_expectations(const std::string& path) {
  std::ifstream f(path);
  if (!f) throw std::runtime_error("cannot open " + path);
  std::map<std::pair<std::string, std::string>, Expected> exp;
  std::string line, suite;
  while (std::getline(f, line)) {
    if (line.rfind("### `", 0) == 0) {
      const size_t e = line.find('`', 5);
      suite = line.substr(5, e - 5);
      continue;
    }
    if (suite.empty() || line.rfind("| ", 0) != 0) continue;
    std::vector<std::string> cells;
    std::stringstream ss(line.substr(1));
    std::string cell;
    while (std::getline(ss, cell, '|')) {
      const size_t b = cell.find_first_not_of(' '), e = cell.find_last_not_of(' ');
      cells.push_back(b == std::string::npos ? "" : cell.substr(b, e - b + 1));
    }
    if (cells.size() < 7 || cells[2].empty() || !std::isdigit(static_cast<unsigned char>(cells[2][0]))) continue;
    exp[{suite, cells[0]}] = Expected{std::stoi(cells[2]), std::stoi(cells[3])};
  }
  if (exp.empty()) throw std::runtime_error(path + " has no per-op tables");
  return exp;
}

std::string quote(const std::string& s) {
  std::string q = "\"";
  for (char ch : s) {
    if (ch == '"' || ch == '\\') q += '\\';
    q += ch;
  }
  return q + "\"";
}

// One ctest per node-test op fgq supports with at least kOwnTest cases (its cases named, so it
// reads only those), one for the supported ops with fewer, one for the node tests of every
// other op, one per old-opset suite.
void write_ctest(const Options& o, const std::vector<CaseInfo>& node_cases) {
  constexpr int kOwnTest = 4;
  std::map<std::string, std::string> labels;  // label -> its --case arguments
  std::map<std::string, int> counts;
  for (const auto& c : node_cases)
    if (supported_label(c.label)) {
      labels[c.label] += " --case " + quote(c.name);
      ++counts[c.label];
    }
  const std::string exe = fs::canonical("/proc/self/exe").string();
  std::string common = quote(exe) + " --data " + quote(o.data);
  if (!o.expect.empty()) common += " --expect " + quote(o.expect);
  std::ostringstream s;
  s << "# Generated by run_node_tests --write-ctest; do not edit.\n";
  auto add = [&](const std::string& name, const std::string& args) {
    s << "add_test(" << name << " " << common << " " << args << ")\n"
      << "set_tests_properties(" << name << " PROPERTIES LABELS onnx_node TIMEOUT 300)\n";
  };
  std::string few;
  for (const auto& [l, cases] : labels)
    if (counts[l] >= kOwnTest) add("onnx_node." + l, "--suite node --op " + quote(l) + cases);
    else few += " --op " + quote(l) + cases;
  if (!few.empty()) add("onnx_node.ops_with_few_cases", "--suite node" + few);
  add("onnx_node.other_ops", "--suite node --other-ops");
  for (size_t k = 1; k < kAllSuites.size(); ++k)
    if (fs::is_directory(fs::path(o.data) / kAllSuites[k]))
      add("onnx_suite." + kAllSuites[k], "--suite " + kAllSuites[k]);
  const std::string tmp = o.write_ctest + ".tmp";
  std::ofstream(tmp) << s.str();
  fs::rename(tmp, o.write_ctest);
}

std::string row(const std::string& label, const Counts& c) {
  return "| " + label + " | " + c.support + " | " + std::to_string(c.run) + " | " + std::to_string(c.pass) +
         " | " + std::to_string(c.error) + " | " + std::to_string(c.wrong) + " | " + std::to_string(c.crash) +
         " |\n";
}

std::string escape_md(std::string s) {
  std::string out;
  for (char ch : s) {
    if (ch == '|') out += "\\|";
    else out += ch;
  }
  return out;
}

// "1.12.0-2" when dpkg knows the package, else empty.
std::string testdata_version() {
  FILE* p = popen("dpkg-query -W -f='${Version}' libonnx-testdata 2>/dev/null", "r");
  if (!p) return "";
  char buf[128] = {0};
  const size_t n = fread(buf, 1, sizeof buf - 1, p);
  pclose(p);
  return std::string(buf, n);
}

void write_table(const Options& o, const std::vector<Ran>& ran) {
  std::map<std::string, std::map<std::string, Counts>> per;  // suite -> label -> counts
  std::map<std::string, Counts> totals;
  for (const auto& r : ran) {
    Counts& c = per[r.info.suite][r.info.label];
    c.support = support_of(r.info);
    c.add(r.out.result);
    totals[r.info.suite].add(r.out.result);
  }
  const std::string version = testdata_version();
  std::ostringstream s;
  s << "# ONNX backend tests\n\n"
    << "Generated by `run_node_tests --table docs/onnx_node_tests.md` (tests/onnx_node/, built as "
       "`build/tests/onnx_node/run_node_tests`) from the ONNX backend test data of Debian's `libonnx-testdata`"
    << (version.empty() ? "" : " " + version) << " (`" << o.data
    << "`); do not edit by hand. ctest runs the same cases (`ctest -L onnx_node`) and fails on any wrong "
       "result or crash, or when an op passes fewer cases than this table says.\n\n"
    << "How a case runs: the first graph input stays the activation (fgq treats its dim 0 as the batch), "
       "every other input becomes an initializer holding the data set's tensor; fgq imports, prepares and "
       "runs the model and output 0 is compared with the reference (rtol 1e-3, atol 1e-7, the suite's "
       "tolerances). Each case runs in a forked child, so a crash is counted, not fatal.\n\n"
    << "- **passed**: output 0 matches on every data set.\n"
    << "- **clean error**: an `fgq::Error` (unsupported op, attribute or data type; or the case does not fit "
       "fgq's model of one float activation whose dim 0 is the batch: rank-0 or integer inputs, ops across the "
       "batch axis, several activations, ...).\n"
    << "- **wrong**: fgq ran the model and the numbers or the shape differ. Must be 0.\n"
    << "- **crash**: a signal, a timeout or an exception other than `fgq::Error`. Must be 0.\n"
    << "- **fgq**: whether fgq's importer accepts every op of the case (graph/op_schema.cpp): yes / partly / no.\n\n";
  s << "| suite | cases | passed | clean error | wrong | crash |\n|---|---|---|---|---|---|\n";
  for (const auto& suite : kAllSuites) {
    auto it = totals.find(suite);
    if (it == totals.end()) continue;
    const Counts& c = it->second;
    s << "| `" << suite << "` | " << c.run << " | " << c.pass << " | " << c.error << " | " << c.wrong << " | "
      << c.crash << " |\n";
  }
  for (const auto& suite : kAllSuites) {
    auto it = per.find(suite);
    if (it == per.end()) continue;
    s << "\n### `" << suite << "`\n\n"
      << (suite == "node" ? "One row per op; `(expanded)`: the op's function-expanded form (a graph of simpler ops).\n\n"
                          : "Opset 6-12 models; one row per op combination.\n\n")
      << "| op | fgq | cases | passed | clean error | wrong | crash |\n|---|---|---|---|---|---|---|\n";
    // Ops fgq supports first, then the rest; alphabetical within each.
    for (int pass = 0; pass < 2; ++pass)
      for (const auto& [label, c] : it->second)
        if ((c.support == "yes") == (pass == 0)) s << row(escape_md(label), c);
  }
  s << "\n## Cases of supported ops that do not pass\n\n"
       "Every case whose ops fgq accepts, but which does not pass, with the reason.\n\n"
       "| suite | case | result | message |\n|---|---|---|---|\n";
  for (const auto& r : ran)
    if (support_of(r.info) == "yes" && r.out.result != Result::Pass) {
      std::string msg = r.out.message;
      // The message starts with the case name (the loader's file name): drop the repeat.
      if (msg.rfind(r.info.name + ": ", 0) == 0) msg = msg.substr(r.info.name.size() + 2);
      s << "| " << r.info.suite << " | " << r.info.name << " | " << result_name(r.out.result) << " | "
        << escape_md(msg) << " |\n";
    }
  const std::string tmp = o.table + ".tmp";
  std::ofstream(tmp) << s.str();
  fs::rename(tmp, o.table);
}

}  // namespace

int main(int argc, char** argv) {
  const Options o = parse(argc, argv);
  try {
    if (!o.write_ctest.empty()) {
      write_ctest(o, discover(o, "node"));
      return 0;
    }
    const auto t0 = std::chrono::steady_clock::now();
    std::vector<Ran> ran;
    for (const auto& suite : o.suites)
      for (const auto& c : discover(o, suite)) {
        if (!selected(o, c)) continue;
        Outcome out = o.fork ? run_case_isolated(c, o.timeout) : run_case(c);
        if (o.verbose || out.result == Result::Wrong || out.result == Result::Crash)
          std::printf("%-12s %-58s %-22s %6.3f s  %s\n", result_name(out.result), c.name.c_str(),
                      c.label.c_str(), out.seconds, out.message.c_str());
        ran.push_back({c, std::move(out)});
      }
    if (ran.empty()) {
      std::fprintf(stderr, "run_node_tests: no case selected\n");
      return 2;
    }
    std::map<std::pair<std::string, std::string>, Counts> per;
    Counts total;
    for (const auto& r : ran) {
      per[{r.info.suite, r.info.label}].add(r.out.result);
      total.add(r.out.result);
    }
    int failures = total.wrong + total.crash;
    if (!o.expect.empty() && !fs::exists(o.expect))
      std::printf("note: %s does not exist yet: no per-op expectations checked\n", o.expect.c_str());
    if (!o.expect.empty() && fs::exists(o.expect)) {
      // Ops whose cases all ran must pass at least as many as the table says.
      const auto exp = read_expectations(o.expect);
      for (const auto& [key, c] : per) {
        auto it = exp.find(key);
        if (it != exp.end() && c.run == it->second.cases && c.pass < it->second.passed) {
          std::printf("REGRESSION   %s %s: %d of %d cases pass, %s says %d\n", key.first.c_str(),
                      key.second.c_str(), c.pass, c.run, o.expect.c_str(), it->second.passed);
          ++failures;
        }
      }
    }
    if (!o.table.empty()) write_table(o, ran);
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    std::printf("%d cases: %d passed, %d clean errors, %d wrong, %d crashed (%.1f s)\n", total.run, total.pass,
                total.error, total.wrong, total.crash, secs);
    return failures ? 1 : 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "run_node_tests: %s\n", e.what());
    return 2;
  }
}
