// The progress bar text and the non-terminal final line.
#include <catch2/catch.hpp>

#include <cstdio>
#include <string>

#include "runtime/progress.h"

static std::string read_all(std::FILE* f) {
  std::rewind(f);
  std::string s;
  for (int c; (c = std::fgetc(f)) != EOF;) s += static_cast<char>(c);
  return s;
}

TEST_CASE("progress: bar shows done/total, rate and ETA") {
  fgq::Progress p(100, true, false);
  CHECK(p.bar(50, 10.0) == "[###############...............] 50/100  5.0 img/s  ETA 0:10");
  CHECK(p.bar(0, 0.0) == "[..............................] 0/100  0.0 img/s  ETA --:--");
  fgq::Progress big(100000, true, false);
  CHECK(big.bar(1000, 10.0).find("100.0 img/s  ETA 16:30") != std::string::npos);
  CHECK(big.bar(100, 10.0).find("ETA 2:46:30") != std::string::npos);
}

TEST_CASE("progress: not a terminal -> no bar, one final line; quiet -> nothing") {
  std::FILE* f = std::tmpfile();
  fgq::Progress p(10, false, false, f);
  p.update(5);
  p.message("warning: x");
  p.finish(10);
  const std::string out = read_all(f);
  CHECK(out.find('\r') == std::string::npos);
  CHECK(out.rfind("warning: x\n10/10 images in ", 0) == 0);
  std::fclose(f);

  std::FILE* q = std::tmpfile();
  fgq::Progress quiet(10, true, true, q);
  quiet.update(5);
  quiet.finish(10, true);
  CHECK(read_all(q).empty());
  std::fclose(q);
}
