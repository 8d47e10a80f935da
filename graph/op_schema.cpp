#include "graph/op_schema.h"

#include <limits>
#include <map>

#include "graph/error.h"
#include "graph/limits.h"
#include "graph/onnx_import.h"

namespace fgq {
namespace {

const std::map<std::string, OpSpec>& op_table() {
  constexpr int kMany = 1 << 20;
  // clang-format off
  static const std::map<std::string, OpSpec> t = {
      {"Conv",               {2, 3, false}},
      {"BatchNormalization", {5, 5, false}},
      {"Relu",               {1, 1, false}},
      {"MaxPool",            {1, 1, false}},
      {"AveragePool",        {1, 1, false}},
      {"GlobalAveragePool",  {1, 1, false}},
      {"Add",                {2, 2, false}},
      {"Pad",                {1, 4, false}},
      {"Flatten",            {1, 1, false}},
      {"Reshape",            {2, 2, false}},
      {"Gemm",               {2, 3, false}},
      {"MatMul",             {2, 2, false}},
      {"Softmax",            {1, 1, false}},
      {"Identity",           {1, 1, false}},
      {"Dropout",            {1, 3, false}},
      {"FakeQuant",          {1, 1, false}},  // domain "fgq": quantized models fgq wrote
      {"Constant",           {0, 0, true}},
      {"Shape",              {1, 1, true}},
      {"Gather",             {2, 2, true}},
      {"Unsqueeze",          {1, 2, true}},
      {"Squeeze",            {1, 2, true}},
      {"Concat",             {1, kMany, true}},
      {"Cast",               {1, 1, true}},
      {"Mul",                {2, 2, true}},
      {"Sub",                {2, 2, true}},
      {"Div",                {2, 2, true}},
      {"Transpose",          {1, 1, true}},
  };
  // clang-format on
  return t;
}

[[noreturn]] void bad(const Node& n, const std::string& where, const std::string& what) {
  fail(where, node_desc(n) + ": " + what);
}

// An INTS attribute, when present, must have `count` values within [lo, kMaxWindowParam].
void check_ints(const Node& n, const std::string& where, const char* name, size_t count,
                int64_t lo) {
  if (!n.attrs.has(name)) return;
  const auto v = n.attrs.ints(name);
  if (v.size() != count)
    bad(n, where, std::string("attribute '") + name + "' has " + std::to_string(v.size()) +
                      " values; only 2-D (" + std::to_string(count) + " values) is supported");
  for (int64_t x : v)
    if (x < lo || x > kMaxWindowParam)
      bad(n, where, std::string("attribute '") + name + "' value " + std::to_string(x) +
                        " is out of range");
}

void check_window(const Node& n, const std::string& where, bool kernel_required) {
  const std::string ap = n.attrs.s("auto_pad", "NOTSET");
  if (ap != "NOTSET" && ap != "VALID" && ap != "SAME_UPPER" && ap != "SAME_LOWER")
    bad(n, where, "unsupported auto_pad '" + ap + "'");
  if (kernel_required && !n.attrs.has("kernel_shape"))
    bad(n, where, "missing attribute 'kernel_shape'");
  check_ints(n, where, "kernel_shape", 2, 1);
  check_ints(n, where, "strides", 2, 1);
  check_ints(n, where, "dilations", 2, 1);
  check_ints(n, where, "pads", 4, 0);
}

}  // namespace

const OpSpec* find_op_spec(const std::string& op_type) {
  auto it = op_table().find(op_type);
  return it == op_table().end() ? nullptr : &it->second;
}

bool is_supported_op(const std::string& op_type) { return find_op_spec(op_type) != nullptr; }

std::string node_desc(const Node& n) { return "node '" + n.name + "' (" + n.op + ")"; }

void validate_node(const Node& n, const std::string& where) {
  const OpSpec* spec = find_op_spec(n.op);
  if (!spec) fail(where, "unsupported op '" + n.op + "' (node '" + n.name + "')");
  const int nin = static_cast<int>(n.inputs.size());
  if (nin < spec->min_inputs || nin > spec->max_inputs)
    bad(n, where, "has " + std::to_string(nin) + " inputs, expected " +
                      (spec->min_inputs == spec->max_inputs
                           ? std::to_string(spec->min_inputs)
                           : std::to_string(spec->min_inputs) + " to " +
                                 std::to_string(std::min(spec->max_inputs, 64))));
  for (int k = 0; k < spec->min_inputs; ++k)
    if (n.inputs[k] < 0) bad(n, where, "required input " + std::to_string(k) + " is missing");

  const std::string& op = n.op;
  if (op == "Conv") {
    check_window(n, where, false);
    const int64_t group = n.attrs.i("group", 1);
    if (group < 1 || group > kMaxWindowParam)
      bad(n, where, "attribute 'group' value " + std::to_string(group) + " is out of range");
  } else if (op == "MaxPool" || op == "AveragePool") {
    check_window(n, where, true);
    if (n.attrs.i("storage_order", 0) != 0) bad(n, where, "storage_order=1 is not supported");
    for (int64_t d : n.attrs.ints("dilations"))
      if (d != 1) bad(n, where, "dilated pooling is not supported");
  } else if (op == "FakeQuant") {
    const float scale = n.attrs.f("scale", 0);
    if (!(scale > 0 && scale < std::numeric_limits<float>::infinity()))
      bad(n, where, "needs a finite attribute 'scale' > 0");
    if (n.attrs.i("qmin", 0) >= n.attrs.i("qmax", 0) || n.attrs.i("qmin", 0) < -128 ||
        n.attrs.i("qmax", 0) > 255)
      bad(n, where, "needs 'qmin' < 'qmax' within -128..255");
  } else if (op == "Pad") {
    const std::string mode = n.attrs.s("mode", "constant");
    if (mode != "constant") bad(n, where, "only constant padding is supported, not '" + mode + "'");
    if (n.inputs.size() < 2 && !n.attrs.has("pads")) bad(n, where, "has no pads");
  } else if (op == "Cast") {
    if (!n.attrs.has("to")) bad(n, where, "missing attribute 'to'");
    const int64_t to = n.attrs.i("to", 0);
    if (to != 1 /*FLOAT*/ && to != 7 /*INT64*/ && to != 6 /*INT32*/)
      bad(n, where, "cast to data type " + std::to_string(to) + " is not supported");
  } else if (op == "BatchNormalization") {
    if (n.attrs.i("training_mode", 0) != 0) bad(n, where, "training_mode=1 is not supported");
  }
}

}  // namespace fgq
