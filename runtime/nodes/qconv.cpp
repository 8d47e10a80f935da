// QConv: the integer pipeline's fused convolution / fully-connected layer (ops/qconv/qconv.h).
// Inputs (x, w, levels, mult, bias[, residual]): w is int8 [K,C,KH,KW], or T2 ternary codes with
// u8 levels per group of `ternary_group` input channels (graph/ternary_codes.h); the weights are
// expanded and packed for this CPU's kernel once per model (shared by its sessions).
#include <cmath>
#include <cstdlib>

#include "ops/qconv/qconv.h"
#include "graph/error.h"
#include "graph/ternary_codes.h"
#include "runtime/nodes/qconv_emulated.h"
#include "runtime/nodes/qtype_of.h"
#include "runtime/nodes/window_attrs.h"
#include "runtime/op_registry.h"

namespace fgq::rt {
namespace {

// K finite floats (non-negative: the requantization multipliers).
std::vector<float> channel_floats(const NodeView& nv, int v, const char* role, int64_t K, bool nonneg) {
  const float* p = nv.const_f32(v, role);
  if (nv.constant(v, role).numel() != K) nv.error(std::string(role) + " needs " + std::to_string(K) + " values");
  for (int64_t k = 0; k < K; ++k)
    if (!std::isfinite(p[k]) || (nonneg && p[k] < 0))
      nv.error(std::string(role) + " value " + std::to_string(p[k]) + " (channel " + std::to_string(k) +
               ") is not " + (nonneg ? "finite and >= 0" : "finite"));
  return std::vector<float>(p, p + K);
}

Compiled compile_qconv(const NodeView& nv) {
  const int xv = nv.in(0), yv = nv.out();
  const uint8_t* x = nv.act_in(xv, "input");
  const Tensor& wt = nv.constant(nv.in(1), "weight");
  if (wt.shape.size() != 4) nv.error("weight must be [K,C,KH,KW]");
  const int64_t K = wt.shape[0];
  const Shape& xs = nv.shape1(xv);

  ops::QConvParams p;
  p.in_type = qtype_of(nv, xv);
  if (p.in_type != ops::QType::U8 && p.in_type != ops::QType::U4)
    nv.error(std::string("input must be u8 or u4, is ") + dtype_name(nv.dtype(xv)));
  p.in_zero = int(nv.attrs().i("in_zero_point", 0));
  ops::QConvGeometry& g = p.g;
  g.C = int(xs[1]), g.K = int(K), g.KH = int(wt.shape[2]), g.KW = int(wt.shape[3]);
  if (xs.size() == 4) {
    g.H = int(xs[2]), g.W = int(xs[3]);
    const Window w = node_window(nv, wt.shape[2], wt.shape[3], xs[2], xs[3]);
    g.SH = w.SH, g.SW = w.SW, g.DH = w.DH, g.DW = w.DW, g.PT = w.PT, g.PL = w.PL, g.PB = w.PB, g.PR = w.PR;
    nv.check_output_shape({1, K, g.OH(), g.OW()});
  } else {
    nv.check_output_shape({1, K});
  }
  p.out_type = qtype_of(nv, yv);
  p.clamp_lo = nv.attrs().f("clamp_lo", 0);
  p.clamp_hi = nv.attrs().f("clamp_hi", 0);
  const void* residual = nullptr;
  if (nv.in(5) >= 0) {
    residual = nv.act_in(nv.in(5), "residual");
    p.has_residual = true;
    p.res_type = qtype_of(nv, nv.in(5));
    p.res_scale = nv.attrs().f("res_scale", 0);
    if (nv.shape1(nv.in(5)) != nv.shape1(yv)) nv.error("residual shape differs from the output's");
  }
  const std::vector<float> mult = channel_floats(nv, nv.in(3), "mult", K, true);
  const std::vector<float> bias = channel_floats(nv, nv.in(4), "bias", K, false);
  const std::string where = nv.graph().source + ": QConv node '" + nv.node().name + "'";
  const int64_t group = nv.attrs().i("ternary_group", 0);
  auto int8_weights = [&]() {
    if (wt.dtype == DType::T2) return expand_ternary(wt, nv.constant(nv.in(2), "levels"), group, where);
    if (wt.dtype != DType::S8) nv.error(std::string("weight must be s8 or t2, is ") + dtype_name(wt.dtype));
    if (nv.in(2) >= 0) nv.error("levels are only used with ternary (t2) weights");
    return std::vector<int8_t>(wt.s8(), wt.s8() + wt.numel());
  };
  uint8_t* y = nv.act_out();
  if (nv.attrs().i("emulate", 0))  // the integer-exact simulation on float kernels
    return compile_qconv_emulated(p, int8_weights(), mult, bias, x, residual, y, nv.max_batch(),
                                  nv.node().name);

  // Ternary layers stay resident as their 2-bit codes and levels where the kernel path can
  // expand them per block (half the bytes of packed int8, measured within 2 % of its speed over
  // ResNet-50); FGQ_TERNARY_RESIDENT=0 packs them as int8 instead.
  const char* env = std::getenv("FGQ_TERNARY_RESIDENT");
  const bool resident = wt.dtype == DType::T2 && !(env && std::string(env) == "0");
  const ops::Isa isa = ops::active_isa();
  auto kernel = std::static_pointer_cast<const ops::QConvKernel>(nv.shared(
      std::string("qconv/") + ops::isa_name(isa) + (resident ? "/codes" : "/int8"), [&]() -> CacheItem {
        try {
          std::shared_ptr<const ops::QConvKernel> k;
          if (resident) {
            const Tensor& levels = nv.constant(nv.in(2), "levels");
            check_ternary(wt, levels, group, where);
            k = ops::make_qconv_ternary(isa, p, {wt.raw.data(), levels.raw.data(), int(group)}, mult.data(),
                                        bias.data(), true);
          } else {
            const std::vector<int8_t> w = int8_weights();
            k = ops::make_qconv(isa, p, w.data(), mult.data(), bias.data());
          }
          return {k, ops::qconv_packed_bytes(*k)};
        } catch (const Error& e) {
          if (std::string(e.what()).rfind(nv.graph().source, 0) == 0) throw;  // names the file already
          nv.error(e.what());
        }
      }));
  // The next convolution's kernel (set by the executor): its first weights are prefetched.
  auto next = std::make_shared<const void*>(nullptr);
  Compiled c;
  c.run = [kernel, x, residual, y, next](int batch, void* scratch) {
    ops::qconv_run(*kernel, batch, x, residual, y, scratch, static_cast<const ops::QConvKernel*>(*next));
  };
  c.scratch_bytes = ops::qconv_scratch_bytes(*kernel, nv.max_batch());
  c.lead = kernel.get();
  c.next_lead = next;
  return c;
}

}  // namespace

// The output may take over the residual's buffer: every kernel path reads a pixel's residual
// channels before it stores the same output channels, and no other pixel reads them.
void register_qconv(OpRegistry& r) {
  OpKernelDef qconv{"QConv", {DType::U8, DType::U4}, compile_qconv};
  qconv.in_place = true;
  qconv.in_place_input = 5;  // the residual
  qconv.team_parallel = true;
  r.add(qconv);
}

}  // namespace fgq::rt
