#include "tests/onnx_node/node_case.h"

#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <set>
#include <sstream>

#include "graph/error.h"
#include "graph/onnx_import.h"
#include "graph/onnx_proto.h"
#include "graph/onnx_tensor.h"
#include "graph/prepare.h"
#include "runtime/executor.h"
#include "runtime/run_graph.h"

namespace fgq::nodetest {
namespace fs = std::filesystem;
namespace {

// The suite's tolerances (onnx/backend/test/runner: rtol 1e-3, atol 1e-7 for node tests).
constexpr double kRtol = 1e-3, kAtol = 1e-7;

// A case the executor's model does not fit (no tensor input, ...): reported as a clean error,
// like the fgq::Error the loader gives for everything else that does not fit.
struct NotApplicable : std::runtime_error {
  using std::runtime_error::runtime_error;
};

std::string read_file(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  if (!f) throw std::runtime_error("cannot open " + p.string());
  std::ostringstream s;
  s << f.rdbuf();
  return s.str();
}

onnx::ModelProto read_model(const fs::path& p) {
  onnx::ModelProto m;
  const std::string bytes = read_file(p);
  if (!m.ParseFromString(bytes)) throw std::runtime_error("cannot parse " + p.string());
  return m;
}

onnx::TensorProto read_tensor(const fs::path& p) {
  onnx::TensorProto t;
  const std::string bytes = read_file(p);
  if (!t.ParseFromString(bytes)) throw NotApplicable(p.filename().string() + " is not a TensorProto");
  return t;
}

std::string dims_str(const onnx::TensorProto& t) {
  std::string s = "[";
  for (int k = 0; k < t.dims_size(); ++k) s += (k ? "," : "") + std::to_string(t.dims(k));
  return s + "]";
}

std::vector<fs::path> sorted_dirs(const fs::path& dir, const std::string& prefix) {
  std::vector<fs::path> out;
  for (const auto& e : fs::directory_iterator(dir))
    if (e.is_directory() && e.path().filename().string().rfind(prefix, 0) == 0) out.push_back(e.path());
  std::sort(out.begin(), out.end());
  return out;
}

// The data set's model: runtime inputs 1.. become initializers with the set's tensors; input 0
// keeps its name and gets the data's dims (declared dims may be symbolic or differ).
std::string rewrite_model(onnx::ModelProto m, const std::vector<onnx::TensorProto>& data) {
  onnx::GraphProto* g = m.mutable_graph();
  std::set<std::string> inits;
  for (const auto& t : g->initializer()) inits.insert(t.name());
  std::vector<int> runtime_inputs;
  for (int k = 0; k < g->input_size(); ++k)
    if (!inits.count(g->input(k).name())) runtime_inputs.push_back(k);
  if (runtime_inputs.empty()) throw NotApplicable("the model has no runtime input");
  if (data.size() > runtime_inputs.size())
    throw std::runtime_error("more input files than model inputs");
  for (size_t k = 0; k < data.size(); ++k)
    if (!g->input(runtime_inputs[k]).type().has_tensor_type())
      throw NotApplicable("input '" + g->input(runtime_inputs[k]).name() + "' is not a tensor");
  // Input 0: the activation.
  auto* shape = g->mutable_input(runtime_inputs[0])->mutable_type()->mutable_tensor_type()->mutable_shape();
  shape->clear_dim();
  for (int64_t d : data[0].dims()) shape->add_dim()->set_dim_value(d);
  // Inputs 1..: initializers; dropped from the input list.
  std::set<int> drop;
  for (size_t k = 1; k < data.size(); ++k) {
    onnx::TensorProto* t = g->add_initializer();
    *t = data[k];
    t->set_name(g->input(runtime_inputs[k]).name());
    drop.insert(runtime_inputs[k]);
  }
  google::protobuf::RepeatedPtrField<onnx::ValueInfoProto> kept;
  for (int k = 0; k < g->input_size(); ++k)
    if (!drop.count(k)) *kept.Add() = g->input(k);
  g->mutable_input()->Swap(&kept);
  std::string out;
  if (!m.SerializeToString(&out)) throw std::runtime_error("cannot serialize the rewritten model");
  return out;
}

bool close_enough(float actual, float expected) {
  if (std::isnan(expected) || std::isnan(actual)) return std::isnan(expected) && std::isnan(actual);
  if (std::isinf(expected) || std::isinf(actual)) return actual == expected;
  return std::fabs(double(actual) - double(expected)) <= kAtol + kRtol * std::fabs(double(expected));
}

Outcome run_data_set(const CaseInfo& c, const onnx::ModelProto& model, const fs::path& set) {
  std::vector<onnx::TensorProto> data;
  for (int k = 0; fs::exists(set / ("input_" + std::to_string(k) + ".pb")); ++k)
    data.push_back(read_tensor(set / ("input_" + std::to_string(k) + ".pb")));
  if (data.empty()) throw NotApplicable("the data set has no inputs");
  const std::string bytes = rewrite_model(model, data);

  Graph g = import_onnx_bytes(bytes.data(), bytes.size(), c.name);
  g = prepare_graph(std::move(g), /*fuse=*/false);
  RunGraph rg = make_run_graph(std::move(g));
  // The activation's data, decoded by fgq's own tensor reader (FLOAT only gets this far).
  const Tensor x = tensor_from_onnx(data[0], c.name, "input 0");
  if (x.dtype != DType::F32) throw NotApplicable("input 0 is not float");
  const int64_t batch = x.shape.empty() ? 0 : x.shape[0];
  if (batch > (int64_t(1) << 20)) throw NotApplicable("batch " + std::to_string(batch) + " is too large");
  // At least 2: the executor then checks that every activation scales with dim 0.
  Executor ex(rg.graph, int(std::max<int64_t>(batch, 2)));
  ex.run(x.f.data(), int(batch));
  const float* y = ex.output(0);
  const Shape ys = ex.output_shape(0, int(batch));

  const onnx::TensorProto ref = read_tensor(set / "output_0.pb");
  if (ref.data_type() != onnx::TensorProto::FLOAT)
    return {Result::Wrong, "ran, but the reference output is " +
                               onnx::TensorProto_DataType_Name(onnx::TensorProto_DataType(ref.data_type())) +
                               ", fgq's is float"};
  const Tensor r = tensor_from_onnx(ref, c.name, "output_0.pb");
  if (r.shape != ys)
    return {Result::Wrong, "output shape " + shape_str(ys) + ", reference " + dims_str(ref)};
  size_t bad = 0, first = 0;
  for (size_t k = 0; k < r.f.size(); ++k)
    if (!close_enough(y[k], r.f[k]) && bad++ == 0) first = k;
  if (bad)
    return {Result::Wrong, std::to_string(bad) + " of " + std::to_string(r.f.size()) +
                               " values differ; first at " + std::to_string(first) + ": " +
                               std::to_string(y[first]) + " vs reference " + std::to_string(r.f[first])};
  return {Result::Pass, ""};
}

std::string one_line(std::string s) {
  std::replace(s.begin(), s.end(), '\n', ' ');
  std::replace(s.begin(), s.end(), '\t', ' ');
  return s;
}

}  // namespace

const char* result_name(Result r) {
  switch (r) {
    case Result::Pass: return "pass";
    case Result::CleanError: return "clean error";
    case Result::Wrong: return "wrong";
    case Result::Crash: return "crash";
  }
  return "?";
}

CaseInfo describe_case(const std::string& suite, const fs::path& dir,
                       const std::vector<std::string>& siblings) {
  CaseInfo c;
  c.suite = suite;
  c.dir = dir;
  c.name = dir.filename().string();
  auto distinct_ops = [](const onnx::ModelProto& m) {
    std::vector<std::string> ops;
    for (const auto& n : m.graph().node())
      if (std::find(ops.begin(), ops.end(), n.op_type()) == ops.end()) ops.push_back(n.op_type());
    return ops;
  };
  auto label_of = [](std::vector<std::string> ops) {
    if (ops.size() > 1) ops.erase(std::remove(ops.begin(), ops.end(), "Constant"), ops.end());
    std::sort(ops.begin(), ops.end());
    std::string s;
    for (const auto& o : ops) s += (s.empty() ? "" : "+") + o;
    return s.empty() ? std::string("(no nodes)") : s;
  };
  c.ops = distinct_ops(read_model(dir / "model.onnx"));
  c.label = label_of(c.ops);
  // Function-expanded cases ("test_softmax_axis_0_expanded") test the op of their twin.
  const std::string suffix = "_expanded";
  if (c.name.size() > suffix.size() && c.name.compare(c.name.size() - suffix.size(), suffix.size(), suffix) == 0) {
    const std::string twin = c.name.substr(0, c.name.size() - suffix.size());
    if (std::find(siblings.begin(), siblings.end(), twin) != siblings.end())
      c.label = label_of(distinct_ops(read_model(dir.parent_path() / twin / "model.onnx"))) + " (expanded)";
  }
  return c;
}

Outcome run_case(const CaseInfo& c) {
  const auto t0 = std::chrono::steady_clock::now();
  Outcome o;
  try {
    const onnx::ModelProto model = read_model(c.dir / "model.onnx");
    const auto sets = sorted_dirs(c.dir, "test_data_set_");
    if (sets.empty()) throw NotApplicable("no test data sets");
    o = {Result::Pass, ""};
    for (const auto& set : sets) {
      o = run_data_set(c, model, set);
      if (o.result != Result::Pass) {
        if (sets.size() > 1) o.message = set.filename().string() + ": " + o.message;
        break;
      }
    }
  } catch (const fgq::Error& e) {
    o = {Result::CleanError, e.what()};
  } catch (const NotApplicable& e) {
    o = {Result::CleanError, std::string("not applicable: ") + e.what()};
  } catch (const std::exception& e) {
    o = {Result::Crash, std::string("exception other than fgq::Error: ") + e.what()};
  }
  o.message = one_line(o.message);
  o.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return o;
}

Outcome run_case_isolated(const CaseInfo& c, double timeout_s) {
  const auto t0 = std::chrono::steady_clock::now();
  auto elapsed = [&] { return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(); };
  int fds[2];
  if (pipe(fds) != 0) throw std::runtime_error(std::string("pipe: ") + std::strerror(errno));
  const pid_t pid = fork();
  if (pid < 0) throw std::runtime_error(std::string("fork: ") + std::strerror(errno));
  if (pid == 0) {
    close(fds[0]);
    // Test hooks for the driver's own ctest: the named case crashes or hangs.
    if (const char* e = std::getenv("FGQ_NODE_TEST_CRASH"); e && c.name == e) raise(SIGSEGV);
    if (const char* e = std::getenv("FGQ_NODE_TEST_HANG"); e && c.name == e) pause();
    Outcome o;
    try {
      o = run_case(c);
    } catch (...) {
      o = {Result::Crash, "unknown exception"};
    }
    const std::string line = std::to_string(int(o.result)) + "\t" + o.message + "\n";
    size_t off = 0;
    while (off < line.size()) {
      const ssize_t w = write(fds[1], line.data() + off, line.size() - off);
      if (w <= 0) break;
      off += size_t(w);
    }
    close(fds[1]);
    _exit(0);  // no atexit handlers: the child's only output is the line above
  }
  close(fds[1]);
  std::string text;
  bool timed_out = false;
  for (;;) {
    const double left = timeout_s - elapsed();
    if (left <= 0) {
      timed_out = true;
      break;
    }
    pollfd p{fds[0], POLLIN, 0};
    const int r = poll(&p, 1, int(std::min(left, 1.0) * 1000) + 1);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) continue;
    char buf[4096];
    const ssize_t n = read(fds[0], buf, sizeof buf);
    if (n <= 0) break;  // EOF: the child is done (or died)
    text.append(buf, size_t(n));
  }
  close(fds[0]);
  if (timed_out) kill(pid, SIGKILL);
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  Outcome o;
  o.seconds = elapsed();
  if (timed_out) {
    o = {Result::Crash, "timed out after " + std::to_string(int(timeout_s)) + " s", o.seconds};
  } else if (WIFSIGNALED(status)) {
    o = {Result::Crash, std::string("killed by signal ") + strsignal(WTERMSIG(status)), o.seconds};
  } else if (!WIFEXITED(status) || WEXITSTATUS(status) != 0 || text.empty() || text.back() != '\n') {
    o = {Result::Crash, "exited with status " + std::to_string(WEXITSTATUS(status)) + " without a result",
         o.seconds};
  } else {
    const size_t tab = text.find('\t');
    o.result = Result(std::stoi(text.substr(0, tab)));
    o.message = text.substr(tab + 1, text.size() - tab - 2);
  }
  return o;
}

}  // namespace fgq::nodetest
