// Run-time instruction-set selection for the integer kernels (ops/cpu_features.h).
//
// A path counts as supported when CPUID reports every feature the compiler may use for the
// -march level its files are built with (CMakeLists.txt, fgq_isa_flags) AND the OS saves the
// register state (XCR0 via XGETBV, OSXSAVE first):
//   avx2       = x86-64-v3: AVX, AVX2, FMA, F16C, BMI1, BMI2, LZCNT, MOVBE; XCR0 SSE+AVX state
//   avx512vnni = x86-64-v4 + VNNI: the above and AVX-512 F, BW, CD, DQ, VL, VNNI; XCR0 also
//                opmask, ZMM_Hi256 and Hi16_ZMM state
// This file is compiled for the project's default target and only runs CPUID / XGETBV.
#include "ops/cpu_features.h"

#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

#include "graph/error.h"

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#define FGQ_X86 1
#endif

namespace fgq::ops {
namespace {

struct CpuFlags {
  bool avx2 = false;        // x86-64-v3 level, OS-enabled
  bool avx512vnni = false;  // x86-64-v4 level + VNNI, OS-enabled
};

#if defined(FGQ_X86)
uint64_t read_xcr0() {
  uint32_t lo = 0, hi = 0;
  // xgetbv with ECX = 0; inline asm so that no -mxsave is needed.
  __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
  return (uint64_t(hi) << 32) | lo;
}
#endif

CpuFlags detect() {
  CpuFlags f;
#if defined(FGQ_X86)
  unsigned a = 0, b = 0, c = 0, d = 0;
  if (!__get_cpuid(0, &a, &b, &c, &d)) return f;
  const unsigned max_leaf = a;
  if (!__get_cpuid(1, &a, &b, &c, &d)) return f;
  const bool fma = c & (1u << 12), movbe = c & (1u << 22), osxsave = c & (1u << 27),
             avx = c & (1u << 28), f16c = c & (1u << 29);
  if (!osxsave || !avx || max_leaf < 7) return f;
  const uint64_t xcr0 = read_xcr0();
  const bool os_avx = (xcr0 & 0x6) == 0x6;           // XMM + YMM state
  const bool os_avx512 = (xcr0 & 0xE6) == 0xE6;      // + opmask, ZMM_Hi256, Hi16_ZMM
  __cpuid_count(7, 0, a, b, c, d);
  const bool bmi1 = b & (1u << 3), avx2 = b & (1u << 5), bmi2 = b & (1u << 8),
             avx512f = b & (1u << 16), avx512dq = b & (1u << 17), avx512cd = b & (1u << 28),
             avx512bw = b & (1u << 30), avx512vl = b & (1u << 31);
  const bool vnni = c & (1u << 11);
  bool lzcnt = false;
  if (__get_cpuid(0x80000000u, &a, &b, &c, &d) && a >= 0x80000001u) {
    __get_cpuid(0x80000001u, &a, &b, &c, &d);
    lzcnt = c & (1u << 5);  // ABM
  }
  f.avx2 = os_avx && avx2 && fma && f16c && bmi1 && bmi2 && lzcnt && movbe;
  f.avx512vnni = f.avx2 && os_avx512 && avx512f && avx512bw && avx512cd && avx512dq &&
                 avx512vl && vnni;
#endif
  return f;
}

const CpuFlags& flags() {
  static const CpuFlags f = detect();
  return f;
}

// -1: nothing forced; else the Isa value.
std::atomic<int> g_forced{-1};

const char* const kNames = "scalar|avx2|avx512vnni";

// parse_isa with `where` as the subject of the error.
Isa parse_as(const std::string& where, const std::string& name) {
  if (name == "scalar") return Isa::Scalar;
  if (name == "avx2") return Isa::Avx2;
  if (name == "avx512vnni") return Isa::Avx512Vnni;
  fail(where, std::string("unknown instruction set, expected one of ") + kNames);
}

}  // namespace

const char* isa_name(Isa isa) {
  switch (isa) {
    case Isa::Scalar: return "scalar";
    case Isa::Avx2: return "avx2";
    case Isa::Avx512Vnni: return "avx512vnni";
  }
  return "unknown";
}

Isa parse_isa(const std::string& name) { return parse_as("'" + name + "'", name); }

bool cpu_supports(Isa isa) {
  switch (isa) {
    case Isa::Scalar: return true;
    case Isa::Avx2: return flags().avx2;
    case Isa::Avx512Vnni: return flags().avx512vnni;
  }
  return false;
}

Isa best_isa() {
  if (cpu_supports(Isa::Avx512Vnni)) return Isa::Avx512Vnni;
  if (cpu_supports(Isa::Avx2)) return Isa::Avx2;
  return Isa::Scalar;
}

std::vector<Isa> supported_isas() {
  std::vector<Isa> v;
  for (Isa i : {Isa::Scalar, Isa::Avx2, Isa::Avx512Vnni})
    if (cpu_supports(i)) v.push_back(i);
  return v;
}

namespace {
std::string supported_list() {
  std::string s;
  for (Isa i : supported_isas()) s += (s.empty() ? "" : ", ") + std::string(isa_name(i));
  return s;
}

// parse_isa + cpu_supports, failing with `where` as the subject.
Isa checked(const std::string& where, const std::string& name) {
  const Isa isa = parse_as(where, name);
  if (!cpu_supports(isa))
    fail(where, std::string("this CPU cannot run the ") + isa_name(isa) + " path (supported: " +
                    supported_list() + ")");
  return isa;
}
}  // namespace

Isa active_isa() {
  const int forced = g_forced.load(std::memory_order_acquire);
  if (forced >= 0) return static_cast<Isa>(forced);
  const char* env = std::getenv("FGQ_ISA");
  if (env && *env) return checked(std::string("FGQ_ISA=") + env, env);
  return best_isa();
}

void set_forced_isa(const std::string& name) {
  if (name.empty()) {
    g_forced.store(-1, std::memory_order_release);
    return;
  }
  const Isa isa = checked("'" + name + "'", name);
  g_forced.store(static_cast<int>(isa), std::memory_order_release);
}

}  // namespace fgq::ops
