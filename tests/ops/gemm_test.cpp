#include "third_party/eigen_core.h"  // first: see the note there

#include <catch2/catch.hpp>

#include <cmath>
#include <cstring>
#include <vector>

#include "fgq/error.h"
#include "ops/gemm.h"
#include "support/test_util.h"

using fgq::test::random_floats;

namespace {

enum class Bias { none, row, matrix };

void check_gemm(int M, int N, int K, bool trans_b, Bias bias, float alpha, float beta,
                uint32_t seed) {
  INFO("M" << M << " N" << N << " K" << K << " transB " << trans_b << " bias "
           << int(bias) << " alpha " << alpha << " beta " << beta);
  const auto A = random_floats(size_t(M) * K, seed);
  const auto B = random_floats(size_t(K) * N, seed + 1);
  const auto C = random_floats(bias == Bias::matrix ? size_t(M) * N : size_t(N), seed + 2);
  const float* c = bias == Bias::none ? nullptr : C.data();
  std::vector<float> got(size_t(M) * N, NAN), want(got.size(), NAN);
  fgq::ops::gemm_f32(M, N, K, A.data(), B.data(), trans_b, c, bias == Bias::row, alpha, beta,
                     got.data());
  fgq::ops::gemm_f32_naive(M, N, K, A.data(), B.data(), trans_b, c, bias == Bias::row, alpha,
                           beta, want.data());
  const double tol = 1e-5 * std::sqrt(double(K)) * std::max(1.f, std::fabs(alpha));
  for (size_t i = 0; i < got.size(); ++i) REQUIRE(std::fabs(got[i] - want[i]) <= tol);
}

}  // namespace

TEST_CASE("gemm: matches the naive loop for all transB / C variants") {
  uint32_t seed = 1;
  for (int M : {1, 3, 8})
    for (int N : {1, 5, 17})
      for (int K : {1, 7, 64})
        for (bool trans_b : {false, true})
          for (Bias bias : {Bias::none, Bias::row, Bias::matrix})
            check_gemm(M, N, K, trans_b, bias, 1.f, 1.f, seed += 3);
}

TEST_CASE("gemm: alpha and beta scale the product and C") {
  check_gemm(4, 9, 13, true, Bias::row, 0.5f, 2.f, 7);
  check_gemm(4, 9, 13, false, Bias::matrix, -1.5f, 0.f, 8);
  check_gemm(2, 3, 5, false, Bias::matrix, 0.f, 1.f, 9);
  // A hand-checked case: [1 2] * [[3],[4]] * 2 + 10 * 0.5 = 27.
  const float A[] = {1, 2}, B[] = {3, 4}, C[] = {10};
  float Y = 0;
  fgq::ops::gemm_f32(1, 1, 2, A, B, false, C, true, 2.f, 0.5f, &Y);
  CHECK(Y == 27.f);
}

TEST_CASE("gemm: FC layers large enough to be split across threads") {
  check_gemm(1, 1000, 2048, true, Bias::row, 1.f, 1.f, 11);   // ResNet-50 classifier, batch 1
  check_gemm(3, 1001, 1024, false, Bias::matrix, 1.f, 1.f, 12);
  check_gemm(8, 4097, 300, true, Bias::none, 1.f, 1.f, 13);
}

TEST_CASE("gemm: non-positive sizes are rejected") {
  float buf[4] = {};
  CHECK_THROWS_AS(fgq::ops::gemm_f32(0, 1, 1, buf, buf, false, nullptr, false, 1, 0, buf),
                  fgq::Error);
}

// Eigen's GEMM blocking follows the CPU's caches unless fixed (third_party/eigen_core.h): after
// an fgq product, whatever Eigen had detected, the sizes are the fixed ones and the result is
// the product under them, bit for bit.
TEST_CASE("gemm: Eigen's blocking is fixed, whatever the CPU's caches") {
  Eigen::setCpuCacheSizes(32 * 1024, 512 * 1024, 8 * 1024 * 1024);  // as another CPU reports
  const int M = 16, N = 48, K = 1200;  // one thread: below gemm_f32's split
  const auto A = random_floats(size_t(M) * K, 7), B = random_floats(size_t(K) * N, 8);
  std::vector<float> got(size_t(M) * N);
  fgq::ops::gemm_f32(M, N, K, A.data(), B.data(), false, nullptr, false, 1.f, 0.f, got.data());
  CHECK(Eigen::l1CacheSize() == 48 * 1024);
  CHECK(Eigen::l2CacheSize() == 1024 * 1024);
  CHECK(Eigen::l3CacheSize() == 32 * 1024 * 1024);
  using RowMat = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
  const RowMat want =
      Eigen::Map<const RowMat>(A.data(), M, K) * Eigen::Map<const RowMat>(B.data(), K, N);
  REQUIRE(std::memcmp(got.data(), want.data(), got.size() * sizeof(float)) == 0);
}
