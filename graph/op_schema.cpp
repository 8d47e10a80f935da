#include "graph/op_schema.h"

#include <cmath>
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
      {"Quantize",           {1, 1, false}},  // domain "fgq": the integer pipeline
      {"Dequantize",         {1, 1, false}},
      {"QConv",              {2, 6, false}},  // x, w, [levels], mult, bias, [residual]
      {"QGlobalAveragePool", {1, 1, false}},
      {"Sub",                {2, 2, false}},
      {"Mul",                {2, 2, false}},
      {"Div",                {2, 2, false}},
      {"Concat",             {1, kMany, false}},
      {"Transpose",          {1, 1, false}},
      {"Unsqueeze",          {1, 2, false}},
      {"Squeeze",            {1, 2, false}},
      {"Gather",             {2, 2, false}},
      {"Slice",              {1, 5, false}},
      {"Cast",               {1, 1, false}},  // activations: to float only
      {"Pow",                {2, 2, false}},
      {"PRelu",              {2, 2, false}},
      // Max / Min / Sum / Mean of any number of inputs and Split: the importer rewrites them
      // into two-input ops and Slices.
      {"Max",                {1, kMany, false}},
      {"Min",                {1, kMany, false}},
      {"Sum",                {1, kMany, false}},
      {"Mean",               {1, kMany, false}},
      {"Split",              {1, 2, false}},
      {"LogSoftmax",         {1, 1, false}},
      {"Clip",               {1, 3, false}},  // min/max: attributes before opset 11, inputs after
      {"Sigmoid",            {1, 1, false}},
      {"Tanh",               {1, 1, false}},
      {"LeakyRelu",          {1, 1, false}},
      {"HardSigmoid",        {1, 1, false}},
      {"HardSwish",          {1, 1, false}},
      {"Elu",                {1, 1, false}},
      {"Celu",               {1, 1, false}},
      {"Selu",               {1, 1, false}},
      {"ThresholdedRelu",    {1, 1, false}},
      {"Softplus",           {1, 1, false}},
      {"Softsign",           {1, 1, false}},
      {"Neg",                {1, 1, false}},
      {"Abs",                {1, 1, false}},
      {"Exp",                {1, 1, false}},
      {"Log",                {1, 1, false}},
      {"Sqrt",               {1, 1, false}},
      {"Reciprocal",         {1, 1, false}},
      {"Floor",              {1, 1, false}},
      {"Ceil",               {1, 1, false}},
      {"Round",              {1, 1, false}},
      {"Erf",                {1, 1, false}},
      {"GlobalMaxPool",      {1, 1, false}},
      {"DepthToSpace",       {1, 1, false}},
      {"SpaceToDepth",       {1, 1, false}},
      {"LRN",                {1, 1, false}},
      {"InstanceNormalization", {3, 3, false}},
      {"ConvTranspose",      {2, 3, false}},
      {"Resize",             {1, 4, false}},  // opset 10's form and Upsample become the opset 11+ one
      {"Upsample",           {1, 2, false}},
      {"ReduceSum",          {1, 2, false}},  // axes: attribute, or an input (ReduceSum 13+, others 18+)
      {"ReduceMean",         {1, 2, false}},
      {"ReduceMax",          {1, 2, false}},
      {"ReduceMin",          {1, 2, false}},
      {"ReduceProd",         {1, 2, false}},
      {"ReduceL1",           {1, 2, false}},
      {"ReduceL2",           {1, 2, false}},
      {"ReduceSumSquare",    {1, 2, false}},
      {"ReduceLogSum",       {1, 2, false}},
      {"ReduceLogSumExp",    {1, 2, false}},
      {"Constant",           {0, 0, true}},
      {"Shape",              {1, 1, true}},
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

void check_window(const Node& n, const std::string& where, bool kernel_required);

bool finite(float v) { return std::isfinite(v); }

// The integer range of an integer-pipeline type name ("u8", "s8", "u4").
bool int_range(const std::string& type, int64_t& lo, int64_t& hi) {
  if (type == "u8") lo = 0, hi = 255;
  else if (type == "s8") lo = -128, hi = 127;
  else if (type == "u4") lo = 0, hi = 15;
  else return false;
  return true;
}

// Attributes of the integer ops (graph/pass_lower_integer.h). Constants are checked where the
// kernels are built; here everything a hostile file could put in attributes.
void check_integer_op(const Node& n, const std::string& where) {
  const Attrs& a = n.attrs;
  auto need_f = [&](const char* k, bool positive) {
    if (!a.has(k)) bad(n, where, std::string("missing attribute '") + k + "'");
    const float v = a.f(k, 0);
    if (!finite(v) || (positive && !(v > 0)))
      bad(n, where, std::string("attribute '") + k + "' must be finite" + (positive ? " and > 0" : ""));
  };
  auto type_attr = [&](const char* k, bool allow_f32) {
    const std::string t = a.s(k, "");
    int64_t lo, hi;
    if (!int_range(t, lo, hi) && !(allow_f32 && t == "f32"))
      bad(n, where, std::string("attribute '") + k + "' must be u8, s8, u4" + (allow_f32 ? " or f32" : "") +
                        ", got '" + t + "'");
    return t;
  };
  auto range_attrs = [&](const std::string& type, const char* kmin, const char* kmax) {
    int64_t lo, hi;
    int_range(type, lo, hi);
    const int64_t qmin = a.i(kmin, lo), qmax = a.i(kmax, hi);
    if (qmin < lo || qmax > hi || qmin > qmax)
      bad(n, where, std::string("'") + kmin + "'/'" + kmax + "' must satisfy " + std::to_string(lo) +
                        " <= min <= max <= " + std::to_string(hi) + " for " + type);
  };
  auto zero_attr = [&](const char* k, const std::string& type) {
    int64_t lo, hi;
    if (!int_range(type, lo, hi)) return;
    const int64_t z = a.i(k, 0);
    if (z < lo || z > hi) bad(n, where, std::string("attribute '") + k + "' is out of range for " + type);
  };
  const std::string& op = n.op;
  if (op == "Quantize") {
    need_f("scale", true);
    const std::string t = type_attr("to", false);
    range_attrs(t, "qmin", "qmax");
    zero_attr("zero_point", t);
  } else if (op == "Dequantize") {
    need_f("scale", true);
    if (a.i("zero_point", 0) < -128 || a.i("zero_point", 0) > 255)
      bad(n, where, "attribute 'zero_point' is out of range");
  } else if (op == "QGlobalAveragePool") {
    need_f("mult", true);
    const std::string t = type_attr("out_type", false);
    if (t == "s8") bad(n, where, "a signed output is not supported");
    range_attrs(t, "qmin", "qmax");
    if (a.has("y_scale")) need_f("y_scale", true);
  } else if (op == "QConv") {
    check_window(n, where, false);
    const std::string t = type_attr("out_type", true);
    need_f("clamp_lo", false);
    need_f("clamp_hi", false);
    if (a.f("clamp_lo", 0) > a.f("clamp_hi", 0)) bad(n, where, "clamp_lo > clamp_hi");
    if (t != "f32") {
      int64_t lo, hi;
      int_range(t, lo, hi);
      if (a.f("clamp_lo", 0) < lo || a.f("clamp_hi", 0) > hi)
        bad(n, where, "clamp range exceeds the " + t + " output range");
    }
    for (size_t k : {size_t(3), size_t(4)})
      if (n.inputs.size() <= k || n.inputs[k] < 0)
        bad(n, where, "required input " + std::to_string(k) + " (" + (k == 3 ? "mult" : "bias") + ") is missing");
    const int64_t z = a.i("in_zero_point", 0);
    if (z < 0 || z > 255) bad(n, where, "attribute 'in_zero_point' must be in 0..255");
    if (n.inputs.size() > 5 && n.inputs[5] >= 0) need_f("res_scale", true);
    if (a.has("y_scale")) need_f("y_scale", true);
    if (a.has("preadd_scale")) need_f("preadd_scale", true);
    const int64_t group = a.i("ternary_group", 0);
    if (group < 0 || group > kMaxWindowParam) bad(n, where, "attribute 'ternary_group' is out of range");
  }
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
  } else if (op == "FakeQuant") {
    const float scale = n.attrs.f("scale", 0);
    if (!(scale > 0 && scale < std::numeric_limits<float>::infinity()))
      bad(n, where, "needs a finite attribute 'scale' > 0");
    if (n.attrs.i("qmin", 0) >= n.attrs.i("qmax", 0) || n.attrs.i("qmin", 0) < -128 ||
        n.attrs.i("qmax", 0) > 255)
      bad(n, where, "needs 'qmin' < 'qmax' within -128..255");
  } else if (op == "Quantize" || op == "Dequantize" || op == "QConv" || op == "QGlobalAveragePool") {
    check_integer_op(n, where);
  } else if (op == "Pad") {
    const std::string mode = n.attrs.s("mode", "constant");
    if (mode != "constant" && mode != "reflect" && mode != "edge")
      bad(n, where, "padding mode '" + mode + "' is not supported (constant, reflect and edge are)");
    if (n.inputs.size() < 2 && !n.attrs.has("pads")) bad(n, where, "has no pads");
  } else if (op == "Cast") {
    if (!n.attrs.has("to")) bad(n, where, "missing attribute 'to'");
    const int64_t to = n.attrs.i("to", 0);
    if (to != 1 /*FLOAT*/ && to != 7 /*INT64*/ && to != 6 /*INT32*/)
      bad(n, where, "cast to data type " + std::to_string(to) + " is not supported");
  } else if (op == "BatchNormalization") {
    if (n.attrs.i("training_mode", 0) != 0) bad(n, where, "training_mode=1 is not supported");
    // Opsets 1-8: spatial=0 normalizes every element with its own statistics.
    if (n.attrs.i("spatial", 1) != 1) bad(n, where, "spatial=0 is not supported");
  } else if (op == "Resize") {
    auto one_of = [&](const char* attr, const char* def, std::initializer_list<const char*> ok) {
      const std::string v = n.attrs.s(attr, def);
      for (const char* o : ok)
        if (v == o) return;
      bad(n, where, std::string("attribute '") + attr + "' value '" + v + "' is not supported");
    };
    one_of("mode", "nearest", {"nearest", "linear", "cubic"});
    one_of("coordinate_transformation_mode", "half_pixel",
           {"half_pixel", "asymmetric", "align_corners", "pytorch_half_pixel", "tf_half_pixel_for_nn"});
    one_of("nearest_mode", "round_prefer_floor", {"round_prefer_floor", "round_prefer_ceil", "floor", "ceil"});
  } else if (op == "Slice") {
    if (n.inputs.size() < 3 && !(n.attrs.has("starts") && n.attrs.has("ends")) && !n.attrs.has("split_part"))
      bad(n, where, "needs starts and ends");
  }
}

}  // namespace fgq
