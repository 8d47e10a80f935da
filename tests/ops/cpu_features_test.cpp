// ops/cpu_features: names, CPUID-based support, FGQ_ISA and set_forced_isa.
#include <catch2/catch.hpp>

#include <cstdlib>
#include <optional>
#include <string>

#include "fgq/error.h"
#include "ops/cpu_features.h"

using fgq::ops::Isa;

namespace {

// Sets (or unsets) FGQ_ISA for the scope and restores the previous value and the forced path.
class EnvIsa {
 public:
  explicit EnvIsa(const char* value) {
    if (const char* old = std::getenv("FGQ_ISA")) old_ = old;
    if (value)
      setenv("FGQ_ISA", value, 1);
    else
      unsetenv("FGQ_ISA");
    fgq::ops::set_forced_isa("");
  }
  ~EnvIsa() {
    if (old_)
      setenv("FGQ_ISA", old_->c_str(), 1);
    else
      unsetenv("FGQ_ISA");
    fgq::ops::set_forced_isa("");
  }

 private:
  std::optional<std::string> old_;
};

}  // namespace

TEST_CASE("isa names round-trip and unknown names are errors", "[qconv][cpu_features]") {
  for (Isa i : {Isa::Scalar, Isa::Avx2, Isa::Avx512Vnni})
    CHECK(fgq::ops::parse_isa(fgq::ops::isa_name(i)) == i);
  CHECK(std::string(fgq::ops::isa_name(Isa::Avx512Vnni)) == "avx512vnni");
  CHECK_THROWS_AS(fgq::ops::parse_isa("avx512"), fgq::Error);
  CHECK_THROWS_AS(fgq::ops::parse_isa(""), fgq::Error);
  CHECK_THROWS_AS(fgq::ops::parse_isa("AVX2 "), fgq::Error);
}

TEST_CASE("supported paths: scalar first, best last, nested levels", "[qconv][cpu_features]") {
  const auto v = fgq::ops::supported_isas();
  REQUIRE(!v.empty());
  CHECK(v.front() == Isa::Scalar);
  CHECK(v.back() == fgq::ops::best_isa());
  CHECK(fgq::ops::cpu_supports(Isa::Scalar));
  // avx512vnni (x86-64-v4 + VNNI) implies avx2 (x86-64-v3).
  if (fgq::ops::cpu_supports(Isa::Avx512Vnni)) CHECK(fgq::ops::cpu_supports(Isa::Avx2));
  std::string s;
  for (Isa i : v) s += std::string(" ") + fgq::ops::isa_name(i);
  WARN("this CPU runs the integer-kernel paths:" << s);
}

TEST_CASE("active_isa: best by default, FGQ_ISA, then set_forced_isa", "[qconv][cpu_features]") {
  {
    EnvIsa env(nullptr);
    CHECK(fgq::ops::active_isa() == fgq::ops::best_isa());
  }
  {
    EnvIsa env("");
    CHECK(fgq::ops::active_isa() == fgq::ops::best_isa());
  }
  {
    EnvIsa env("scalar");
    CHECK(fgq::ops::active_isa() == Isa::Scalar);
    // The forced path wins over the environment, "" goes back to it.
    fgq::ops::set_forced_isa(fgq::ops::isa_name(fgq::ops::best_isa()));
    CHECK(fgq::ops::active_isa() == fgq::ops::best_isa());
    fgq::ops::set_forced_isa("");
    CHECK(fgq::ops::active_isa() == Isa::Scalar);
  }
  {
    EnvIsa env("sse9");
    try {
      fgq::ops::active_isa();
      FAIL("no error for FGQ_ISA=sse9");
    } catch (const fgq::Error& e) {
      CHECK(std::string(e.what()).find("FGQ_ISA=sse9") != std::string::npos);
    }
  }
  {
    EnvIsa env(nullptr);
    CHECK_THROWS_AS(fgq::ops::set_forced_isa("neon"), fgq::Error);
    CHECK(fgq::ops::active_isa() == fgq::ops::best_isa());  // unchanged by the failed call
    for (Isa i : {Isa::Avx2, Isa::Avx512Vnni}) {
      if (fgq::ops::cpu_supports(i)) {
        fgq::ops::set_forced_isa(fgq::ops::isa_name(i));
        CHECK(fgq::ops::active_isa() == i);
      } else {
        CHECK_THROWS_AS(fgq::ops::set_forced_isa(fgq::ops::isa_name(i)), fgq::Error);
        EnvIsa env2(fgq::ops::isa_name(i));
        CHECK_THROWS_AS(fgq::ops::active_isa(), fgq::Error);
      }
    }
  }
}
