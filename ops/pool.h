#pragma once
// Pooling over one image, NCHW.
namespace fgq::ops {

struct Pool2dShape {
  int C = 0, H = 0, W = 0;
  int KH = 1, KW = 1, SH = 1, SW = 1;
  int DH = 1, DW = 1;               // dilation: a window takes every D-th input position
  int PT = 0, PL = 0, PB = 0, PR = 0;
  bool ceil_mode = false;
  bool count_include_pad = false;   // AveragePool only
  int OH() const;
  int OW() const;
};

void maxpool2d_f32(const Pool2dShape& s, const float* x, float* y);
void avgpool2d_f32(const Pool2dShape& s, const float* x, float* y);
void global_avgpool_f32(int C, int HW, const float* x, float* y);

}  // namespace fgq::ops
