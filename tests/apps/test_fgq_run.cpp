// Runs the fgq-run binary (path compiled in as FGQ_RUN_EXE) on the colour model of
// app_fixture.h. Checks exit codes, the summary line, skipping and the JSON report.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "app_fixture.h"

namespace fs = std::filesystem;
using fgq::test::Fixture;
using fgq::test::Result;
using fgq::test::slurp;

TEST_CASE("fgq-run: scores a folder, skips the corrupt JPEG and prints Top-1/Top-5") {
  Fixture f;
  const Result r = f.run("--model " + f.model() + " --imagenet " + f.val.string() + " --batch 3");
  INFO(r.err);
  CHECK(r.code == 0);
  CHECK(r.out.rfind("Top-1 75.00 % (3/4)  Top-5 100.00 % (4/4)  skipped 1  4 images in ", 0) == 0);
  CHECK(r.err.find("warning: " + (f.val / "img_5.JPEG").string() +
                   ": cannot decode image, skipped\n") != std::string::npos);
}

TEST_CASE("fgq-run: JSON report with per-image records") {
  Fixture f;
  const fs::path json = f.root / "report.json";
  const Result r = f.run("--model " + f.model() + " --imagenet " + f.val.string() +
                         " --quiet --threads 1 --json " + json.string());
  INFO(r.err);
  REQUIRE(r.code == 0);
  const nlohmann::json j = nlohmann::json::parse(slurp(json));
  CHECK(j["counts"]["skipped"] == 1);
  CHECK(j["counts"]["scored"] == 4);
  CHECK(j["counts"]["top1_correct"] == 3);
  CHECK(j["top1"].get<double>() == 0.75);
  CHECK(j["interrupted"] == false);
  CHECK(j["skipped_files"] == std::vector<std::string>{"img_5.JPEG"});
  CHECK(j["model"]["metadata"]["fgq.input_size"] == "8");
  CHECK(j["options"]["preprocess"]["input_size"] == 8);
  REQUIRE(j["images"].size() == 4);
  const auto& red = j["images"][0];
  CHECK(red["file"] == "img_1.png");
  CHECK(red["top5"] == std::vector<int>{0, 1, 2, 3, 4});
  // Logits (1, 0, 0, 0, 0, 0) -> softmax probability of class 0.
  const double e = std::exp(1.0);
  CHECK(red["top5_scores"][0].get<double>() == Approx(e / (e + 5)).epsilon(1e-4));
  CHECK(j["images"][3]["correct1"] == false);
  CHECK(j["images"][3]["correct5"] == true);
  // --quiet: only the skip warning on stderr.
  CHECK(r.err.find("fgq-run:") == std::string::npos);
}

TEST_CASE("fgq-run: a graph ending in Softmax is not softmaxed again") {
  Fixture f;
  const fs::path json = f.root / "report.json";
  const Result r = f.run("--model " + f.model(true) + " --imagenet " + f.val.string() +
                         " --quiet --json " + json.string());
  INFO(r.err);
  REQUIRE(r.code == 0);
  const nlohmann::json j = nlohmann::json::parse(slurp(json));
  const double e = std::exp(1.0);
  CHECK(j["images"][0]["top5_scores"][0].get<double>() == Approx(e / (e + 5)).epsilon(1e-4));
  CHECK(j["top1"].get<double>() == 0.75);
}

TEST_CASE("fgq-run: --limit then --shard select a deterministic slice") {
  Fixture f;
  // First 4 images (img_1..img_4), shard 1 of 2 -> img_2 (right) and img_4 (wrong).
  const Result r = f.run("--model " + f.model() + " --imagenet " + f.val.string() +
                         " --limit 4 --shard 1/2 --quiet");
  INFO(r.err);
  CHECK(r.code == 0);
  CHECK(r.out.rfind("Top-1 50.00 % (1/2)  Top-5 100.00 % (2/2)  skipped 0  2 images", 0) == 0);
  const Result bad = f.run("--model " + f.model() + " --imagenet " + f.val.string() + " --shard 2/2");
  CHECK(bad.code == 2);
  CHECK(bad.err.find("--shard: '2/2' must be i/n") != std::string::npos);
}

TEST_CASE("fgq-run: a missing folder is one line and exit code 2") {
  Fixture f;
  const std::string dir = (f.root / "nope").string();
  const Result r = f.run("--model " + f.model() + " --imagenet " + dir);
  CHECK(r.code == 2);
  CHECK(r.err == "fgq-run: " + dir + ": no such directory\n");
  CHECK(r.out.empty());
}

TEST_CASE("fgq-run: a bad model file is the loader's one-line error and exit code 2") {
  Fixture f;
  const fs::path bad = f.root / "bad.onnx";
  std::ofstream(bad) << "garbage";
  const Result r = f.run("--model " + bad.string() + " --imagenet " + f.val.string());
  CHECK(r.code == 2);
  CHECK(r.err.rfind("fgq-run: " + bad.string() + ": ", 0) == 0);
  CHECK(std::count(r.err.begin(), r.err.end(), '\n') == 1);
}

TEST_CASE("fgq-run: a crop that does not match the network input is refused") {
  Fixture f;
  const Result r = f.run("--model " + f.model() + " --imagenet " + f.val.string() + " --crop 16");
  CHECK(r.code == 2);
  CHECK(r.err.find("see --crop") != std::string::npos);
}

TEST_CASE("fgq-run: --quant fgq calibrates on the first --calib-count images and still scores") {
  Fixture f;
  const fs::path json = f.root / "report.json";
  // The first 3 sorted images of the folder are readable; img_5.JPEG is not.
  const Result r = f.run("--model " + f.model() + " --imagenet " + f.val.string() +
                         " --quant fgq --calib " + f.val.string() + " --calib-count 3 --quiet --json " +
                         json.string());
  INFO(r.err);
  REQUIRE(r.code == 0);
  CHECK(r.out.rfind("Top-1 75.00 % (3/4)", 0) == 0);
  const nlohmann::json j = nlohmann::json::parse(slurp(json));
  CHECK(j["quantization"]["method"] == "fgq");
  CHECK(j["quantization"]["calib_images"] == 3);
  CHECK(j["quantization"]["group"] == 4);
  // An unreadable calibration image is an error, not a silently smaller calibration set.
  const Result bad = f.run("--model " + f.model() + " --imagenet " + f.val.string() +
                           " --quant fgq --calib " + f.val.string());
  CHECK(bad.code == 2);
  CHECK(bad.err.find("img_5.JPEG: cannot decode image") != std::string::npos);
}

TEST_CASE("fgq-run: usage errors exit with 1") {
  Fixture f;
  CHECK(f.run("--model " + f.model() + " --imagenet " + f.val.string() + " --batch 0").code == 1);
  CHECK(f.run("--imagenet " + f.val.string()).code == 1);  // --model is required
  CHECK(f.run("--help").code == 0);
}

TEST_CASE("fgq-run: --save-quant writes a model a later run scores alike without calibrating") {
  Fixture f;
  const fs::path q = f.root / "colour_fgq.onnx", a = f.root / "a.json", b = f.root / "b.json";
  const std::string data = " --imagenet " + f.val.string() + " --quiet --json ";
  const Result save = f.run("--model " + f.model() + data + a.string() + " --quant fgq --group 2 --calib " +
                            f.val.string() + " --calib-count 3 --save-quant " + q.string());
  INFO(save.err);
  REQUIRE(save.code == 0);
  REQUIRE(fs::exists(q));
  const Result load = f.run("--model " + q.string() + data + b.string());
  INFO(load.err);
  REQUIRE(load.code == 0);
  CHECK(load.out.substr(0, 40) == save.out.substr(0, 40));
  const nlohmann::json ja = nlohmann::json::parse(slurp(a)), jb = nlohmann::json::parse(slurp(b));
  CHECK(jb["quantization"]["group"] == 2);  // recorded in the saved model
  CHECK(jb["timing"]["quantize_s"] == 0);
  for (size_t i = 0; i < ja["images"].size(); ++i)
    CHECK(ja["images"][i]["top5_scores"] == jb["images"][i]["top5_scores"]);
  // --simulate applies to a saved quantized model too (no --quant needed).
  const Result sim = f.run("--model " + q.string() + " --imagenet " + f.val.string() + " --quiet --simulate");
  INFO(sim.err);
  CHECK(sim.code == 0);
  CHECK(sim.out.substr(0, 40) == save.out.substr(0, 40));
  const Result again = f.run("--model " + q.string() + " --imagenet " + f.val.string() + " --quant fgq");
  CHECK(again.code == 2);
  CHECK(again.err.find("already quantized") != std::string::npos);
}

TEST_CASE("fgq-run: a truncated JPEG is skipped with its reason, not scored with a grey tail") {
  Fixture f;
  fgq::test::write_truncated_jpeg(f.val / "img_6.JPEG", {255, 0, 0}, 0.6);  // blue, cut
  std::ofstream(f.val / "val_labels.txt", std::ios::app) << "img_6.JPEG 2\n";
  const fs::path json = f.root / "report.json";
  const Result r = f.run_on_val("--quiet --json " + json.string());
  INFO(r.err);
  REQUIRE(r.code == 0);
  // Before: decoded (libjpeg's "Premature end of JPEG file", no file name) and scored.
  CHECK(r.out.rfind("Top-1 75.00 % (3/4)  Top-5 100.00 % (4/4)  skipped 2", 0) == 0);
  CHECK(r.err.find("warning: " + (f.val / "img_6.JPEG").string() + ": truncated JPEG (") != std::string::npos);
  CHECK(r.err.find("Premature end") == std::string::npos);
  const nlohmann::json j = nlohmann::json::parse(slurp(json));
  CHECK(j["skipped_files"] == std::vector<std::string>{"img_5.JPEG", "img_6.JPEG"});
  REQUIRE(j["skipped_images"].size() == 2);
  CHECK(j["skipped_images"][0]["file"] == "img_5.JPEG");
  CHECK(j["skipped_images"][0]["reason"] == "cannot decode image");
  CHECK(j["skipped_images"][1]["file"] == "img_6.JPEG");
  CHECK(j["skipped_images"][1]["reason"].get<std::string>().rfind("truncated JPEG (", 0) == 0);
}

TEST_CASE("fgq-run: a label that wraps at 32 bits is refused, not scored as class 0") {
  Fixture f;
  // img_1 is red (class 0): 2^32 wrapped to 0 and counted as a correct top-1.
  std::ofstream(f.val / "val_labels.txt") << "img_1.png 4294967296\nimg_2.png 1\nimg_3.JPEG 2\n"
                                             "img_4.png 1\nimg_5.JPEG 0\n";
  const Result r = f.run_on_val("");
  CHECK(r.code == 2);
  CHECK(r.err == "fgq-run: " + (f.val / "val_labels.txt").string() +
                     ":1: label 4294967296 is out of range (0..2147483647)\n");
  CHECK(r.out.empty());
  // A label past the model's classes: refused before quantization starts (no FGQ line).
  std::ofstream(f.val / "val_labels.txt") << "img_1.png 6\nimg_2.png 1\nimg_3.JPEG 2\nimg_4.png 1\n"
                                             "img_5.JPEG 0\n";
  const Result q = f.run_on_val("--quant fgq --calib " + f.val.string() + " --calib-count 3");
  CHECK(q.code == 2);
  CHECK(q.err == "fgq-run: img_1.png: label 6 is outside the model's 6 classes\n");
}

TEST_CASE("fgq-run: integer options are read as what they are, within bounds naming the option") {
  Fixture f;
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"--batch 1.5", "--batch: must be a whole number from 1 to 1024, got '1.5'"},
      {"--batch 0x10", "--batch: must be a whole number from 1 to 1024, got '0x10'"},
      {"--batch 4294967297", "--batch: must be a whole number from 1 to 1024, got '4294967297'"},
      {"--limit 4294967297", "--limit: must be a whole number from 1 to 2147483647, got '4294967297'"},
      {"--limit 1e3", "--limit: must be a whole number from 1 to 2147483647, got '1e3'"},
      {"--limit -1", "--limit: must be a whole number from 1 to 2147483647, got '-1'"},
      {"--threads 0", "--threads: must be a whole number from 1 to 1024, got '0'"},
      // A group this large made quantization allocate 15 GB and hang.
      {"--quant fgq --group 2000000000", "--group: must be a whole number from 1 to 65536, got '2000000000'"},
      {"--quant fgq --group 4294967300", "--group: must be a whole number from 1 to 65536, got '4294967300'"},
      {"--resize 100000", "--resize: must be a whole number from 1 to 4096, got '100000'"},
      {"--crop 5000", "--crop: must be a whole number from 1 to 4096, got '5000'"},
      {"--quant fgq --calib-count 99999999999", "--calib-count: must be a whole number from 1 to 2147483647, got '99999999999'"},
      {"--quant fgq --fold-levels 128", "--fold-levels: must be a whole number from 0 to 127, got '128'"},
  };
  for (const auto& [args, message] : cases) {
    INFO(args);
    const Result r = f.run_on_val(args);
    CHECK(r.code == 1);
    CHECK(r.err.rfind(message + "\n", 0) == 0);
    CHECK(r.out.empty());
  }
}

TEST_CASE("fgq-run: batch buffers are sized by the images there are") {
  Fixture f;
  // --batch 1024 over 5 images: the executor and the decode batches plan for 5.
  const Result r = f.run_on_val("--batch 1024 --threads 1");
  INFO(r.err);
  CHECK(r.code == 0);
  CHECK(r.err.find("5 images (flat, " + (f.val / "val_labels.txt").string() + "), batch 5, 1 threads") !=
        std::string::npos);
  CHECK(r.out.rfind("Top-1 75.00 % (3/4)", 0) == 0);
}

TEST_CASE("fgq-run: output destinations are checked before any evaluation or quantization") {
  Fixture f;
  const std::string nodir = (f.root / "nodir" / "r.json").string();
  const Result j = f.run_on_val("--json " + nodir);
  CHECK(j.code == 2);
  CHECK(j.err == "fgq-run: --json: " + nodir + ": folder " + (f.root / "nodir").string() + " does not exist\n");
  CHECK(j.out.empty());  // nothing was evaluated
  // A folder as the destination of --save-quant: refused before calibration (no FGQ line).
  const Result q = f.run_on_val("--quant fgq --calib " + f.val.string() + " --calib-count 3 --save-quant " +
                                f.root.string());
  CHECK(q.code == 2);
  CHECK(q.err == "fgq-run: --save-quant: " + f.root.string() + ": is a folder, not a file\n");
  const Result e = f.run_on_val("--quant fgq --export-qdq /proc/fgq_test_qdq.onnx");
  CHECK(e.code == 2);
  CHECK(e.err.rfind("fgq-run: --export-qdq: /proc/fgq_test_qdq.onnx: cannot create files in /proc (", 0) == 0);
  const Result d = f.run_on_val("--dump-inputs " + nodir);
  CHECK(d.code == 2);
  CHECK(d.err.rfind("fgq-run: --dump-inputs: " + nodir + ": folder ", 0) == 0);
  CHECK_FALSE(fs::exists(f.root / "nodir"));
  // Nothing left behind by the checks.
  for (const auto& entry : fs::directory_iterator(f.root))
    CHECK(entry.path().filename().string().rfind(".fgq-write-test", 0) == std::string::npos);
}

TEST_CASE("fgq-run: options that would do nothing are an error, not ignored") {
  Fixture f;
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"--group 2", "fgq-run: --group needs --quant fgq (without it nothing is quantized)\n"},
      {"--act-bits 4", "fgq-run: --act-bits needs --quant fgq (without it nothing is quantized)\n"},
      {"--fold-levels 15", "fgq-run: --fold-levels needs --quant fgq (without it nothing is quantized)\n"},
      {"--calib-count 3", "fgq-run: --calib-count needs --quant fgq (without it nothing is quantized)\n"},
      {"--no-gptq", "fgq-run: --no-gptq needs --quant fgq (without it nothing is quantized)\n"},
      {"--quant none --save-quant x.onnx",
       "fgq-run: --save-quant needs --quant fgq (without it nothing is quantized)\n"},
      {"--quant fgq --percentile 99.9", "fgq-run: --percentile needs --act-calib percentile\n"},
      {"--quant fgq --no-gptq --gptq-samples 100", "fgq-run: --gptq-samples does nothing with --no-gptq\n"},
      {"--quant fgq --simulate --fake-quant", "fgq-run: --simulate and --fake-quant exclude each other\n"},
  };
  for (const auto& [args, message] : cases) {
    INFO(args);
    const Result r = f.run_on_val(args);
    CHECK(r.code == 1);
    CHECK(r.err == message);
  }
  // --simulate and --fake-quant also run a saved quantized model; on an FP32 one they do nothing.
  const Result sim = f.run_on_val("--simulate");
  CHECK(sim.code == 2);
  CHECK(sim.err == "fgq-run: --simulate: needs a quantized model (--quant fgq, or a saved one)\n");
  const Result fq = f.run_on_val("--fake-quant");
  CHECK(fq.code == 2);
  CHECK(fq.err == "fgq-run: --fake-quant: needs a quantized model (--quant fgq, or a saved one)\n");
  // The same options that take effect are accepted.
  const Result ok = f.run_on_val("--quant fgq --act-calib percentile --percentile 99.9 --calib " +
                                 f.val.string() + " --calib-count 3 --simulate --quiet");
  INFO(ok.err);
  CHECK(ok.code == 0);
}

TEST_CASE("fgq-run: a calibration folder name that is not UTF-8 does not lose the quantization") {
  Fixture f;
  const fs::path calib = f.root / "calib_\xe9";  // Latin-1 name
  fs::create_directories(calib);
  for (const char* name : {"img_1.png", "img_2.png", "img_3.JPEG"}) fs::copy_file(f.val / name, calib / name);
  const fs::path json = f.root / "report.json";
  const fs::path q = f.root / "q.onnx";
  // Before: the quantization record was dumped as strict UTF-8 after quantizing: exit 2 with
  // "[json.exception.type_error.316] invalid UTF-8 byte".
  const Result r = f.run_on_val("--quant fgq --calib '" + calib.string() + "' --quiet --json " + json.string() +
                                " --save-quant " + q.string());
  INFO(r.err);
  REQUIRE(r.code == 0);
  const nlohmann::json j = nlohmann::json::parse(slurp(json));
  CHECK(j["quantization"]["calib_dir"] == (f.root / "calib_\xef\xbf\xbd").string());
  CHECK(j["quantization"]["calib_images"] == 3);
  CHECK(fs::exists(q));
}
