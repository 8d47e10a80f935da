// FP32 convolution of a batch as one GEMM with an AVX-512 register-blocked kernel (no BLAS):
//   y[K, J] = w[K, D] * col[D, J],  D = C*KH*KW, J = batch * OH*OW, then bias + residual + ReLU.
// The columns of all images form one matrix, so a weight row is read once per batch rather than
// once per image (deep layers, whose weights dwarf their activations, are bound by that), and
// small feature maps (7x7 = 49 positions) fill the 32-wide register blocks across image edges.
//
// Columns are lowered in panels of 32 (im2col straight into [depth][32] with masked loads, a
// plain copy for 1x1 convs) and the depth is cut into chunks of whole input channels (<= 512
// rows: a panel chunk, 64 KB at most, stays in L1/L2 while the task's blocks of 8 weight rows
// pass over it, and those rows stay in L2 for the next panel). An 8 x 32 block of outputs lives
// in 16 zmm registers over a chunk (8 weight broadcasts + 2 panel loads per 16 FMAs); bias,
// residual and ReLU are applied as the last chunk leaves the registers: no zeroing pass, no
// separate epilogue pass. Weights are read in place (8 rows as 8 sequential streams): nothing is
// repacked.
//
// Tasks for TBB are (column tile x output-channel tile). Wide layers (more columns than output
// channels) split columns and each task lowers its own panels; deep layers split output
// channels, after all panels are lowered once into a buffer the tasks share.
// ResNet-50 on one core (CPU time per image, batch 1 and 8 alike): 57 ms, Eigen path 79 ms.
#include "ops/conv2d_paths.h"

#if defined(__AVX512F__)

// GCC 12 bug 105593: false -Wmaybe-uninitialized inside <avx512fintrin.h> (_mm512_max_ps).
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#include <immintrin.h>
#pragma GCC diagnostic pop

#include <tbb/blocked_range.h>
#include <tbb/parallel_for.h>
#include <tbb/task_arena.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <new>
#include <vector>

namespace fgq::ops::detail {
namespace {

constexpr int kMR = 8;                 // output channels per register block
constexpr int kNR = 32;                // columns per register block (2 zmm)
constexpr long kMaxChunk = 512;        // depth per chunk: 8 weight rows x 512 = 16 KB (L1)
constexpr int kMaxPanels = 16;         // panels per task: 512 columns x chunk <= 1 MB (L2)
constexpr long kMaxShared = 4L << 20;  // floats (16 MB) of shared panels, else per task
constexpr double kSerialMacs = 2e6;    // below this TBB overhead outweighs the gain
constexpr int kTasksPerThread = 4;     // spare tasks keep both cores busy on a shared machine

long ceil_div(long a, long b) { return (a + b - 1) / b; }

__mmask16 lane_mask(int n) {  // the first n lanes (n <= 0: none, n >= 16: all)
  return n <= 0 ? __mmask16(0) : n >= 16 ? __mmask16(0xFFFF) : __mmask16((1u << n) - 1);
}

// The lanes [lane0, lane0 + count) of a panel: consecutive positions of one image, starting at
// offset `off` (image * stride + position) from the output (and residual) row base.
struct Segment {
  int lane0, count;
  long off;
};

// A panel's segments: one unless it crosses an image edge. At most kNR.
struct PanelMap {
  Segment seg[kNR];
  int n = 0;
};

// Columns [j0, j0 + cols) of the batch matrix (j = image * N + position).
PanelMap map_panel(long j0, int cols, int N, long stride) {
  PanelMap m;
  for (int lane = 0; lane < cols;) {
    const long j = j0 + lane;
    const long img = j / N;
    const int pos = static_cast<int>(j - img * N);
    const int count = std::min(cols - lane, N - pos);
    m.seg[m.n++] = {lane, count, img * stride + pos};
    lane += count;
  }
  return m;
}

struct Epilogue {
  bool accumulate;    // add to what y holds (an earlier depth chunk) instead of overwriting
  const float* bias;  // these rows' biases, or null   (these three: last chunk only)
  const float* res;   // residual rows laid out like y, or null
  bool relu;
};

// y rows [0, rows) (row stride ldy), lanes as `map` says = epilogue(w[0:rows, 0:D] * b[D][32]).
// rows <= 8; w rows have stride ldw; b is a packed panel (lanes past the map are ignored).
void kernel_8x32(long D, const float* w, long ldw, int rows, const float* b, float* y, long ldy,
                 const PanelMap& map, const Epilogue& e) {
  // Rows past `rows` re-read the last real row (their results are dropped): never past w's end.
  const float* a0 = w;
  const float* a1 = w + std::min(1, rows - 1) * ldw;
  const float* a2 = w + std::min(2, rows - 1) * ldw;
  const float* a3 = w + std::min(3, rows - 1) * ldw;
  const float* a4 = w + std::min(4, rows - 1) * ldw;
  const float* a5 = w + std::min(5, rows - 1) * ldw;
  const float* a6 = w + std::min(6, rows - 1) * ldw;
  const float* a7 = w + std::min(7, rows - 1) * ldw;
  __m512 c00 = _mm512_setzero_ps(), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00,
         c30 = c00, c31 = c00, c40 = c00, c41 = c00, c50 = c00, c51 = c00, c60 = c00, c61 = c00,
         c70 = c00, c71 = c00;
  for (long p = 0; p < D; ++p) {
    const __m512 b0 = _mm512_loadu_ps(b), b1 = _mm512_loadu_ps(b + 16);
    b += kNR;
    __m512 t;
#define FGQ_ROW(i)                           \
  t = _mm512_set1_ps(a##i[p]);               \
  c##i##0 = _mm512_fmadd_ps(t, b0, c##i##0); \
  c##i##1 = _mm512_fmadd_ps(t, b1, c##i##1);
    FGQ_ROW(0) FGQ_ROW(1) FGQ_ROW(2) FGQ_ROW(3) FGQ_ROW(4) FGQ_ROW(5) FGQ_ROW(6) FGQ_ROW(7)
#undef FGQ_ROW
  }
  const __m512 acc[2 * kMR] = {c00, c01, c10, c11, c20, c21, c30, c31,
                               c40, c41, c50, c51, c60, c61, c70, c71};
  // Per segment: its lanes as masks of the two halves, and the address lane 0 would have.
  __mmask16 m0[kNR], m1[kNR];
  long base[kNR];
  for (int s = 0; s < map.n; ++s) {
    const Segment& g = map.seg[s];
    const uint32_t lanes = (g.count >= 32 ? ~0u : ((1u << g.count) - 1)) << g.lane0;
    m0[s] = static_cast<__mmask16>(lanes & 0xFFFF);
    m1[s] = static_cast<__mmask16>(lanes >> 16);
    base[s] = g.off - g.lane0;  // >= 0: a segment past lane 0 starts its image's row
  }
  const __m512 zero = _mm512_setzero_ps();
  for (int i = 0; i < rows; ++i) {
    __m512 v0 = acc[2 * i], v1 = acc[2 * i + 1];
    float* yi = y + i * ldy;
    if (e.accumulate)
      for (int s = 0; s < map.n; ++s) {
        v0 = _mm512_add_ps(v0, _mm512_maskz_loadu_ps(m0[s], yi + base[s]));
        v1 = _mm512_add_ps(v1, _mm512_maskz_loadu_ps(m1[s], yi + base[s] + 16));
      }
    if (e.bias) {
      const __m512 bb = _mm512_set1_ps(e.bias[i]);
      v0 = _mm512_add_ps(v0, bb);
      v1 = _mm512_add_ps(v1, bb);
    }
    if (e.res) {
      const float* r = e.res + i * ldy;
      for (int s = 0; s < map.n; ++s) {
        v0 = _mm512_add_ps(v0, _mm512_maskz_loadu_ps(m0[s], r + base[s]));
        v1 = _mm512_add_ps(v1, _mm512_maskz_loadu_ps(m1[s], r + base[s] + 16));
      }
    }
    if (e.relu) {
      v0 = _mm512_max_ps(v0, zero);
      v1 = _mm512_max_ps(v1, zero);
    }
    for (int s = 0; s < map.n; ++s) {
      _mm512_mask_storeu_ps(yi + base[s], m0[s], v0);
      _mm512_mask_storeu_ps(yi + base[s] + 16, m1[s], v1);
    }
  }
}

// Bit i of m moved to bit 2i.
uint32_t spread_even(uint32_t m) {
  m = (m | (m << 8)) & 0x00FF00FFu;
  m = (m | (m << 4)) & 0x0F0F0F0Fu;
  m = (m | (m << 2)) & 0x33333333u;
  return (m | (m << 1)) & 0x55555555u;
}

// A run of consecutive output positions of one output row of one image (n <= kNR), and where
// its lanes go: panel offset + first lane in the lowered buffer.
struct Piece {
  long x_off;  // the image's offset in x
  int oh, ow0, n;
  long dst;
};

// The pieces of batch columns [j0, j1), lowered into panels of kNR lanes (panel p of the range
// at p * depth * kNR). `v` is the conv as lowered (see lower_rows), N its positions per image.
void plan_pieces(const Conv2dShape& v, int N, long x_stride, long j0, long j1, long depth,
                 std::vector<Piece>& out) {
  out.clear();
  const int OW = v.OW();
  for (long j = j0; j < j1;) {
    const long img = j / N;
    const int p = static_cast<int>(j - img * N), oh = p / OW, ow0 = p - oh * OW;
    const long lane = (j - j0) % kNR;
    // Up to the end of the output row, the image and the panel.
    const int n = static_cast<int>(std::min<long>({OW - ow0, N - p, kNR - lane, j1 - j}));
    out.push_back({img * x_stride, oh, ow0, n, (j - j0) / kNR * depth * kNR + lane});
    j += n;
  }
}

// im2col into panels: row r = (c, kh, kw) of every piece. Rows outer, so consecutive pieces
// walk each input row in order (the hardware prefetcher follows; visiting all channels for a
// panel at a time would jump across C pages per panel). Each piece is one masked load per 16
// lanes, two plus a permute for stride 2, a gather otherwise; taps in the zero padding are
// masked off and come out as zeros.
void lower_rows(const Conv2dShape& v, const float* x, const std::vector<Piece>& pieces,
                float* dst) {
  const __m512i lane_idx = _mm512_set_epi32(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0);
  const __m512i step = _mm512_mullo_epi32(lane_idx, _mm512_set1_epi32(v.SW));
  const __m512i even = _mm512_add_epi32(lane_idx, lane_idx);
  const long plane = static_cast<long>(v.H) * v.W;
  long r = 0;  // row of the panels
  for (int c = 0; c < v.C; ++c)
    for (int kh = 0; kh < v.KH; ++kh)
      for (int kw = 0; kw < v.KW; ++kw, ++r)
        for (const Piece& pc : pieces) {
          float* out = dst + pc.dst + r * kNR;
          const int ih = pc.oh * v.SH - v.PT + kh * v.DH;
          const int iw0 = pc.ow0 * v.SW - v.PL + kw * v.DW;  // input column of the first lane
          // Lanes l with 0 <= iw0 + l*SW < W, as [l_lo, l_hi) (empty if the row is padding).
          int l_lo = 0, l_hi = 0;
          if (ih >= 0 && ih < v.H) {
            l_lo = iw0 >= 0 ? 0 : std::min(pc.n, (-iw0 + v.SW - 1) / v.SW);
            l_hi = iw0 >= v.W ? 0 : std::min(pc.n, (v.W - iw0 + v.SW - 1) / v.SW);
          }
          // (Masked-off lanes are never touched, so src may point outside the image.)
          const float* src =
              x + pc.x_off + c * plane + (l_hi > l_lo ? static_cast<long>(ih) * v.W + iw0 : 0);
          for (int h = 0; h < pc.n; h += 16) {  // at most two halves of 16 lanes
            const int n = std::min(16, pc.n - h);
            const __mmask16 valid = static_cast<__mmask16>(lane_mask(std::min(l_hi - h, 16)) &
                                                           ~lane_mask(std::min(l_lo - h, 16)));
            __m512 val;
            if (v.SW == 1) {
              val = valid == 0xFFFF ? _mm512_loadu_ps(src + h)
                                    : _mm512_maskz_loadu_ps(valid, src + h);
            } else if (v.SW == 2) {  // the even lanes of 32 values (gathers are slow on AMD)
              __m512 lo, hi;
              if (valid == 0xFFFF) {
                lo = _mm512_loadu_ps(src + 2 * h);
                // Value 31 (odd, unused) may lie past the end of the image: never read it.
                hi = _mm512_maskz_loadu_ps(0x7FFF, src + 2 * h + 16);
              } else {  // input values q = 2l of the valid lanes l: spread the mask to them
                const uint32_t wide = spread_even(valid);
                lo = _mm512_maskz_loadu_ps(static_cast<__mmask16>(wide & 0xFFFF), src + 2 * h);
                hi = _mm512_maskz_loadu_ps(static_cast<__mmask16>(wide >> 16), src + 2 * h + 16);
              }
              val = _mm512_permutex2var_ps(lo, even, hi);
            } else {
              val = _mm512_mask_i32gather_ps(_mm512_setzero_ps(), valid, step, src + h * v.SW, 4);
            }
            if (n == 16)
              _mm512_storeu_ps(out + h, val);
            else
              _mm512_mask_storeu_ps(out + h, lane_mask(n), val);
          }
        }
}

struct FreeDeleter {
  void operator()(float* p) const { std::free(p); }
};

// A growing, 64-byte aligned buffer: reallocates only for a larger request.
class ScratchBuffer {
 public:
  float* get(long floats) {
    if (size_ < floats) {
      const long bytes = (floats * long(sizeof(float)) + 63) / 64 * 64;
      buf_.reset(static_cast<float*>(std::aligned_alloc(64, bytes)));
      if (!buf_) throw std::bad_alloc();
      size_ = floats;
    }
    return buf_.get();
  }

 private:
  std::unique_ptr<float, FreeDeleter> buf_;
  long size_ = 0;
};

// Panels a task lowers for itself. A task never waits between filling them and its last kernel
// call, so no other conv task can run on the thread in between and overwrite them.
float* task_panels(long floats) {
  thread_local ScratchBuffer buf;
  return buf.get(floats);
}

// Panels lowered once for all tasks of one call, owned by the calling thread. The call runs its
// tasks in an isolated region, so while it waits this thread cannot start another conv call
// (of another image or group, say) that would reuse the buffer.
float* shared_panels(long floats) {
  thread_local ScratchBuffer buf;
  return buf.get(floats);
}

struct Tiling {
  long col_tile, col_tiles;  // columns per task (a multiple of kNR)
  int k_tile, k_tiles;       // output channels per task (a multiple of kMR)
  bool share;                // deep layer: lower all panels once, shared by the tasks
};

// At most kMaxPanels panels per task. Wide layers (more columns than output channels) split
// columns, so each task reads the (small) weights once. Deep layers split output channels, so
// each weight row (the big operand, from DRAM) is read by one task only. About
// kTasksPerThread tasks per thread either way.
Tiling plan_tiles(int K, long J, long D, double macs) {
  const int threads = macs < kSerialMacs ? 1 : tbb::this_task_arena::max_concurrency();
  const long panels = ceil_div(J, kNR);
  const long blocks = ceil_div(K, kMR);
  const long want = threads > 1 ? long(threads) * kTasksPerThread : 1;
  long col_tiles = ceil_div(panels, kMaxPanels);
  if (K <= panels * kNR) col_tiles = std::max(col_tiles, std::min(panels, want));
  const long k_tiles = std::min(blocks, ceil_div(want, col_tiles));
  const long col_tile = ceil_div(panels, col_tiles) * kNR;
  const long k_tile = ceil_div(blocks, k_tiles) * kMR;
  Tiling t{col_tile, ceil_div(J, col_tile), int(k_tile), int(ceil_div(K, k_tile)), false};
  t.share = t.k_tiles > 1 && D * panels * kNR <= kMaxShared;
  return t;
}

}  // namespace

bool conv2d_avx512_available() { return true; }

bool conv2d_f32_avx512(const Conv2dShape& s, int batch, const float* x, long x_stride,
                       const float* w, const float* bias, const float* residual, bool relu,
                       float* y, long y_stride) {
  const int N = s.OH() * s.OW();
  const long J = static_cast<long>(batch) * N;
  const int taps = s.KH * s.KW;
  const long D = static_cast<long>(s.C) * taps;
  const Tiling t = plan_tiles(s.K, J, D, double(s.K) * D * J);
  // Depth chunks are whole input channels, so a chunk is the im2col of a channel slice.
  const int chunk_channels = std::max(1, static_cast<int>(kMaxChunk / taps));
  const int chunks = static_cast<int>(ceil_div(s.C, chunk_channels));
  const int chunk_c = static_cast<int>(ceil_div(s.C, chunks));  // balanced chunks
  const long plane = static_cast<long>(s.H) * s.W;
  const long all_panels = ceil_div(J, kNR);
  auto chunk_depth = [&](int c0) { return static_cast<long>(std::min(chunk_c, s.C - c0)) * taps; };

  // 1x1, stride 1, no padding: each image's input already is a [C, N] matrix. Lowered as a
  // conv over one-row images of N pixels, so pieces run across output rows.
  Conv2dShape view = s;
  if (taps == 1 && s.SH == 1 && s.SW == 1 && s.PT == 0 && s.PL == 0 && s.PB == 0 && s.PR == 0)
    view.H = 1, view.W = N;

  // Lowers chunk c0 of columns [j0, j1) (j0 a multiple of kNR) into panels, depth x kNR each.
  // Unused lanes of a last, partial panel are zero (computed, then dropped: must be finite).
  auto lower = [&](int c0, long j0, long j1, float* dst) {
    thread_local std::vector<Piece> pieces;
    Conv2dShape cs = view;
    cs.C = std::min(chunk_c, s.C - c0);
    const long depth = chunk_depth(c0);
    if ((j1 - j0) % kNR)
      std::memset(dst + (j1 - j0) / kNR * depth * kNR, 0, sizeof(float) * depth * kNR);
    plan_pieces(cs, N, x_stride, j0, j1, depth, pieces);
    lower_rows(cs, x + c0 * plane, pieces, dst);
  };

  float* shared = t.share ? shared_panels(D * all_panels * kNR) : nullptr;
  // Chunk c0's panels from column j0 on, in `shared` (chunk-major, then panel order).
  auto shared_at = [&](int c0, long j0) {
    return shared + static_cast<long>(c0) * taps * all_panels * kNR + j0 * chunk_depth(c0);
  };

  auto compute = [&](long task) {
    const long ct = task / t.k_tiles;
    const int kt = static_cast<int>(task % t.k_tiles);
    const long j0 = ct * t.col_tile, j1 = std::min(J, j0 + t.col_tile);
    const int k0 = kt * t.k_tile, k1 = std::min(s.K, k0 + t.k_tile);
    float* own = t.share ? nullptr : task_panels(chunk_depth(0) * t.col_tile);
    for (int c0 = 0; c0 < s.C; c0 += chunk_c) {
      const long depth = chunk_depth(c0);
      const float* panels = t.share ? shared_at(c0, j0) : own;
      if (!t.share) lower(c0, j0, j1, own);
      const bool first = c0 == 0, last = c0 + chunk_c >= s.C;
      for (long j = j0; j < j1; j += kNR) {
        const PanelMap m = map_panel(j, static_cast<int>(std::min<long>(kNR, j1 - j)), N, y_stride);
        const float* panel = panels + (j - j0) * depth;
        for (int k = k0; k < k1; k += kMR) {
          const long row = static_cast<long>(k) * N;
          const Epilogue e{!first, last && bias ? bias + k : nullptr,
                           last && residual ? residual + row : nullptr, last && relu};
          kernel_8x32(depth, w + k * D + c0 * taps, D, std::min(kMR, k1 - k), panel, y + row, N, m,
                      e);
        }
      }
    }
  };

  const long tasks = t.col_tiles * t.k_tiles;
  if (tasks == 1) {
    compute(0);
    return true;
  }
  tbb::this_task_arena::isolate([&] {
    if (t.share) {  // one task per chunk and run of up to kMaxPanels panels
      const long runs = ceil_div(all_panels, kMaxPanels);
      tbb::parallel_for(0L, chunks * runs, [&](long i) {
        const int c0 = static_cast<int>(i / runs) * chunk_c;
        const long j0 = (i % runs) * kMaxPanels * kNR;
        lower(c0, j0, std::min(J, j0 + kMaxPanels * kNR), shared_at(c0, j0));
      });
    }
    tbb::parallel_for(
        tbb::blocked_range<long>(0, tasks, 1),
        [&](const tbb::blocked_range<long>& r) {
          for (long task = r.begin(); task < r.end(); ++task) compute(task);
        },
        tbb::simple_partitioner());
  });
  return true;
}

}  // namespace fgq::ops::detail

#else  // no AVX-512 in this build: conv2d_f32 keeps its Eigen path

namespace fgq::ops::detail {
bool conv2d_avx512_available() { return false; }
bool conv2d_f32_avx512(const Conv2dShape&, int, const float*, long, const float*, const float*,
                       const float*, bool, float*, long) {
  return false;
}
}  // namespace fgq::ops::detail

#endif
