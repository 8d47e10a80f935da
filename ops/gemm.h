#pragma once
// Fully connected layers: ONNX Gemm / MatMul on row-major matrices.
namespace fgq::ops {

// Y[M,N] = alpha * A[M,K] * op(B) + beta * C (C broadcast from [N] or [M,N], may be null),
// op(B) = B[N,K]^T when trans_b else B[K,N]. Eigen GEMM.
void gemm_f32(int M, int N, int K, const float* A, const float* B, bool trans_b, const float* C,
              bool c_is_row /*C has shape [N]*/, float alpha, float beta, float* Y);

void gemm_f32_naive(int M, int N, int K, const float* A, const float* B, bool trans_b,
                    const float* C, bool c_is_row, float alpha, float beta, float* Y);

}  // namespace fgq::ops
