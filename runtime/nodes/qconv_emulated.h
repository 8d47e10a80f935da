#pragma once
// QConv computed on the FP32 convolution kernels (the integer-exact simulation); see the .cpp.
#include <string>
#include <vector>

#include "ops/qconv/qconv.h"
#include "runtime/op_registry.h"

namespace fgq::rt {

// w: int8 [K][C][KH][KW]; mult, bias: K floats. Pointers and batch as for ops::qconv_run.
Compiled compile_qconv_emulated(const ops::QConvParams& p, const std::vector<int8_t>& w,
                                const std::vector<float>& mult, const std::vector<float>& bias,
                                const uint8_t* x, const void* residual, uint8_t* y, int max_batch,
                                const std::string& node);

}  // namespace fgq::rt
