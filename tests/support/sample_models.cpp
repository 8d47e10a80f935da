#include "support/sample_models.h"

#include "support/test_util.h"

namespace fgq::test {

OnnxBuilder mixed_ops_model() {
  OnnxBuilder b;
  b.input("x", {-1, 3, 8, 8});
  b.init_f32("w", {4, 3, 3, 3}, random_floats(108, 1));
  b.init_i64("p", {8}, {0, 0, 1, 1, 0, 0, 1, 1});
  for (const char* n : {"g", "be", "m"}) b.init_f32(n, {4}, {1, 2, 3, 4});
  b.init_f32("v", {4}, {1, 1, 1, 1});
  b.init_i64("zero", {}, {0});
  b.init_i64("ax", {1}, {0});
  b.init_i64("m1", {1}, {-1});
  b.init_f32("fc", {4, 2}, {1, 2, 3, 4, 5, 6, 7, 8});
  b.node("Pad", {"x", "p"}, {"xp"});
  b.node("Conv", {"xp", "w"}, {"c"}).ints("strides", {2, 2});
  b.node("BatchNormalization", {"c", "g", "be", "m", "v"}, {"bn"});
  b.node("Relu", {"bn"}, {"r"});
  b.node("MaxPool", {"r"}, {"mp"}).ints("kernel_shape", {2, 2}).i("ceil_mode", 1);
  b.node("GlobalAveragePool", {"mp"}, {"gap"});
  b.node("Shape", {"gap"}, {"s"});
  b.node("Gather", {"s", "zero"}, {"n"});
  b.node("Unsqueeze", {"n", "ax"}, {"nu"});
  b.node("Concat", {"nu", "m1"}, {"t"}).i("axis", 0);
  b.node("Reshape", {"gap", "t"}, {"f"});
  b.node("MatMul", {"f", "fc"}, {"y"});
  b.node("Softmax", {"y"}, {"prob"});
  b.output("prob");
  return b;
}

}  // namespace fgq::test
