#pragma once
// Which integer-kernel instruction set this process uses, decided at run time from CPUID (the
// binary itself may be built for a baseline x86-64 CPU). FGQ_ISA=scalar|avx2|avx512vnni in the
// environment, or set_forced_isa() (fgq-run --isa), forces a path; forcing one the CPU lacks is
// an fgq::Error.
#include <string>
#include <vector>

namespace fgq::ops {

enum class Isa : uint8_t {
  Scalar,      // portable C++, the specification
  Avx2,        // AVX2 + FMA (Haswell and later, Zen 1 and later)
  Avx512Vnni,  // AVX-512 F/BW/VL/DQ + VNNI (Cascade Lake, Ice Lake, Zen 4 and later)
};

const char* isa_name(Isa isa);                   // "scalar" | "avx2" | "avx512vnni"
Isa parse_isa(const std::string& name);          // throws fgq::Error on an unknown name
bool cpu_supports(Isa isa);                      // CPUID (and OS-enabled register state)
Isa best_isa();                                  // the fastest path cpu_supports()
std::vector<Isa> supported_isas();               // every path this CPU runs, scalar first

// The path kernels compiled from now on use: the forced one, else FGQ_ISA, else best_isa().
Isa active_isa();
// Forces a path for kernels compiled from now on (empty string: back to FGQ_ISA / best).
// Throws fgq::Error naming the path if this CPU cannot run it.
void set_forced_isa(const std::string& name);

}  // namespace fgq::ops
