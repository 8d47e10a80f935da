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

OnnxBuilder mini_resnet_model(uint32_t seed) {
  OnnxBuilder b;
  b.input("x", {-1, 3, 13, 13});
  auto conv = [&](const std::string& name, const std::string& in, int K, int C, int k, int stride, int pad,
                  bool bn) {
    b.init_f32(name + "_w", {K, C, k, k}, random_floats(size_t(K) * C * k * k, seed++, -0.5f, 0.5f));
    b.init_f32(name + "_b", {K}, random_floats(K, seed++, -0.2f, 0.2f));
    const std::string out = bn ? name + "_c" : name;
    b.node("Conv", {in, name + "_w", name + "_b"}, {out})
        .ints("kernel_shape", {k, k})
        .ints("strides", {stride, stride})
        .ints("pads", {pad, pad, pad, pad});
    if (bn) {
      b.init_f32(name + "_g", {K}, random_floats(K, seed++, 0.5f, 1.5f));
      b.init_f32(name + "_be", {K}, random_floats(K, seed++, -0.3f, 0.3f));
      b.init_f32(name + "_m", {K}, random_floats(K, seed++, -0.2f, 0.2f));
      b.init_f32(name + "_v", {K}, random_floats(K, seed++, 0.5f, 2.f));
      b.node("BatchNormalization", {out, name + "_g", name + "_be", name + "_m", name + "_v"}, {name});
    }
    return name;
  };
  conv("conv1", "x", 13, 3, 3, 2, 1, true);
  b.node("Relu", {"conv1"}, {"r1"});
  b.node("MaxPool", {"r1"}, {"pool"}).ints("kernel_shape", {3, 3}).ints("strides", {2, 2}).ints("pads", {1, 1, 1, 1});
  conv("b1a", "pool", 11, 13, 3, 1, 1, true);
  b.node("Relu", {"b1a"}, {"b1a_r"});
  conv("b1b", "b1a_r", 17, 11, 1, 1, 0, true);
  conv("b1s", "pool", 17, 13, 1, 1, 0, true);
  b.node("Add", {"b1b", "b1s"}, {"b1_sum"});
  b.node("Relu", {"b1_sum"}, {"b1"});
  conv("b2a", "b1", 9, 17, 1, 1, 0, true);
  b.node("Relu", {"b2a"}, {"b2a_r"});
  conv("b2b", "b2a_r", 17, 9, 3, 1, 1, true);
  b.node("Add", {"b2b", "b1"}, {"b2_sum"});
  b.node("Relu", {"b2_sum"}, {"b2"});
  b.node("GlobalAveragePool", {"b2"}, {"gap"});
  b.node("Flatten", {"gap"}, {"flat"}).i("axis", 1);
  b.init_f32("fc_w", {10, 17}, random_floats(170, seed++, -0.5f, 0.5f));
  b.init_f32("fc_b", {10}, random_floats(10, seed++, -0.1f, 0.1f));
  b.node("Gemm", {"flat", "fc_w", "fc_b"}, {"logits"}).i("transB", 1);
  b.output("logits");
  return b;
}

OnnxBuilder colour_classifier_model(int side, int classes, bool red_green) {
  std::vector<float> conv(4 * 3, 0.f), fc(size_t(classes) * 4, 0.f);
  for (int c = 0; c < 3; ++c) conv[c * 3 + c] = fc[c * 4 + c] = 1.f;
  if (red_green) {
    conv[3 * 3 + 0] = conv[3 * 3 + 1] = 0.5f;
    fc[3 * 4 + 3] = 0.25f;
  }
  OnnxBuilder b;
  b.input("image", {-1, 3, side, side})
      .init_f32("conv_w", {4, 3, 1, 1}, conv)
      .init_f32("fc_w", {classes, 4}, fc)
      .init_f32("fc_b", {classes}, std::vector<float>(size_t(classes), 0.f))
      .metadata("fgq.channel_order", "RGB")
      .metadata("fgq.pixel_scale", "0.00392156862745098")
      .metadata("fgq.mean", "0,0,0")
      .metadata("fgq.std", "1,1,1")
      .metadata("fgq.input_size", std::to_string(side));
  b.node("Conv", {"image", "conv_w"}, {"c"});
  b.node("Relu", {"c"}, {"r"});
  b.node("GlobalAveragePool", {"r"}, {"p"});
  b.node("Flatten", {"p"}, {"f"}).i("axis", 1);
  b.node("Gemm", {"f", "fc_w", "fc_b"}, {"logits"}).i("transB", 1);
  b.output("logits");
  return b;
}

}  // namespace fgq::test
