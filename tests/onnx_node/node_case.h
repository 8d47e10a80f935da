#pragma once
// One ONNX backend test case (model.onnx + test_data_set_*/input_*.pb, output_*.pb) run through
// fgq the way fgq runs models: the first graph input stays the activation (its dim 0 is the
// batch), every other input becomes an initializer holding that data set's tensor.
#include <filesystem>
#include <string>
#include <vector>

namespace fgq::nodetest {

struct CaseInfo {
  std::string suite;  // "node", "pytorch-converted", ...
  std::string name;   // "test_add_bcast"
  std::filesystem::path dir;
  std::string label;  // the op the case tests ("Add", "Softmax (expanded)", "AveragePool+Squeeze")
  std::vector<std::string> ops;  // distinct op types of its nodes
};

enum class Result { Pass, CleanError, Wrong, Crash };
const char* result_name(Result r);  // "pass", "clean error", "wrong", "crash"

struct Outcome {
  Result result = Result::Crash;
  std::string message;  // why it is not a pass (one line)
  double seconds = 0;
};

// Reads the case's model and names its op label. `siblings`: the case names of the suite (an
// "X_expanded" case is labelled after the op of its "X" twin). Throws std::runtime_error when
// the model cannot be read.
CaseInfo describe_case(const std::string& suite, const std::filesystem::path& dir,
                       const std::vector<std::string>& siblings);

// Runs every data set of the case in this process: Pass, CleanError (an fgq::Error, or input the
// executor's model does not fit), Wrong (numbers or shape differ from the reference output 0
// beyond rtol 1e-3 / atol 1e-7) or Crash (any other exception). A real crash kills the process:
// run_case_isolated guards against that.
Outcome run_case(const CaseInfo& c);

// run_case in a forked child: a signal, an abnormal exit or `timeout_s` without a result is a
// Crash naming what happened. The parent process never runs fgq code (no TBB threads at fork).
Outcome run_case_isolated(const CaseInfo& c, double timeout_s);

}  // namespace fgq::nodetest
