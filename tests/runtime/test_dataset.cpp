// Dataset discovery: flat folder + labels file, ImageFolder + synsets, and their error messages.
// Discovery never decodes, so empty files stand in for images.
#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "graph/error.h"
#include "runtime/dataset.h"
#include "support/test_util.h"

namespace fs = std::filesystem;

namespace {

// A temp folder tree removed at the end of the test.
struct TempTree {
  fs::path root = fgq::test::temp_path("_dataset");
  TempTree() { fs::create_directories(root); }
  ~TempTree() { fs::remove_all(root); }
  fs::path file(const std::string& rel, const std::string& text = "") {
    const fs::path p = root / rel;
    fs::create_directories(p.parent_path());
    std::ofstream(p) << text;
    return p;
  }
};

std::vector<std::string> names(const fgq::Dataset& d) {
  std::vector<std::string> n;
  for (const auto& img : d.images) n.push_back(img.name);
  return n;
}

std::vector<int> labels(const fgq::Dataset& d) {
  std::vector<int> l;
  for (const auto& img : d.images) l.push_back(img.label);
  return l;
}

}  // namespace

TEST_CASE("dataset: flat folder with val_labels.txt in the parent, sorted by name") {
  TempTree t;
  t.file("val/ILSVRC2012_val_00000003.JPEG");
  t.file("val/ILSVRC2012_val_00000001.JPEG");
  t.file("val/b.png");
  t.file("val/notes.txt");  // not an image: ignored
  t.file("val_labels.txt",
         "ILSVRC2012_val_00000001.JPEG 65\nILSVRC2012_val_00000002.JPEG 970\n\n"
         "ILSVRC2012_val_00000003.JPEG 230\nb.png 7\n");
  const fgq::Dataset d = fgq::discover_dataset((t.root / "val").string() + "/");
  CHECK(d.layout == "flat");
  CHECK(d.labels_file == (t.root / "val_labels.txt").string());
  CHECK(names(d) == std::vector<std::string>{"ILSVRC2012_val_00000001.JPEG",
                                             "ILSVRC2012_val_00000003.JPEG", "b.png"});
  CHECK(labels(d) == std::vector<int>{65, 230, 7});
  CHECK(d.images[0].path == (t.root / "val" / "ILSVRC2012_val_00000001.JPEG").string());
}

TEST_CASE("dataset: labels file in the folder itself wins over the parent's; --labels over both") {
  TempTree t;
  t.file("val/a.JPEG");
  t.file("val/val_labels.txt", "a.JPEG 1\n");
  t.file("val_labels.txt", "a.JPEG 2\n");
  const fs::path other = t.file("mine.txt", "a.JPEG 3\n");
  CHECK(labels(fgq::discover_dataset((t.root / "val").string())) == std::vector<int>{1});
  CHECK(labels(fgq::discover_dataset((t.root / "val").string(), {other.string(), ""})) ==
        std::vector<int>{3});
}

TEST_CASE("dataset: images without a label are an error with their count") {
  TempTree t;
  t.file("val/a.JPEG");
  t.file("val/b.JPEG");
  t.file("val/c.JPEG");
  t.file("val/val_labels.txt", "b.JPEG 1\n");
  CHECK_THROWS_WITH(fgq::discover_dataset((t.root / "val").string()),
                    Catch::Contains("2 image(s) without a label") && Catch::Contains("first: a.JPEG"));
}

TEST_CASE("dataset: a missing labels file says where it looked and how to pass one") {
  TempTree t;
  t.file("val/a.JPEG");
  const std::string dir = (t.root / "val").string();
  CHECK_THROWS_WITH(fgq::discover_dataset(dir),
                    Catch::StartsWith(dir + ": no labels file") && Catch::Contains("--labels"));
  CHECK_THROWS_WITH(fgq::discover_dataset(dir, {(t.root / "nope.txt").string(), ""}),
                    (t.root / "nope.txt").string() + ": no such file");
}

TEST_CASE("dataset: malformed labels lines name file and line") {
  TempTree t;
  t.file("val/a.JPEG");
  const fs::path labels = t.file("val/val_labels.txt", "a.JPEG 1\na.JPEG cat\n");
  CHECK_THROWS_WITH(fgq::discover_dataset((t.root / "val").string()),
                    Catch::StartsWith(labels.string() + ":2: expected 'NAME INDEX'"));
}

TEST_CASE("dataset: ImageFolder layout maps synset folders through synset_words.txt") {
  TempTree t;
  t.file("synset_words.txt", "n01440764 tench, Tinca tinca\nn01443537 goldfish\nn01484850 shark\n");
  t.file("train/n01484850/x.JPEG");
  t.file("train/n01440764/b.JPEG");
  t.file("train/n01440764/a.jpg");
  t.file("train/empty_dir/readme.txt");  // no images: not a class folder
  const fgq::Dataset d = fgq::discover_dataset((t.root / "train").string());
  CHECK(d.layout == "imagefolder");
  CHECK(names(d) == std::vector<std::string>{"n01440764/a.jpg", "n01440764/b.JPEG", "n01484850/x.JPEG"});
  CHECK(labels(d) == std::vector<int>{0, 0, 2});
}

TEST_CASE("dataset: ImageFolder with an unknown synset folder is an error") {
  TempTree t;
  const fs::path synsets = t.file("words.txt", "n01440764 tench\n");
  t.file("train/n01440764/a.JPEG");
  t.file("train/n99999999/b.JPEG");
  CHECK_THROWS_WITH(fgq::discover_dataset((t.root / "train").string(), {"", synsets.string()}),
                    Catch::Contains("1 image(s) without a label: sub-folder 'n99999999' is not a "
                                    "synset in " + synsets.string()));
  CHECK_THROWS_WITH(fgq::discover_dataset((t.root / "train").string()),
                    Catch::Contains("no synsets file") && Catch::Contains("--synsets"));
}

TEST_CASE("dataset: missing and empty folders") {
  TempTree t;
  const std::string missing = (t.root / "nope").string();
  CHECK_THROWS_WITH(fgq::discover_dataset(missing), missing + ": no such directory");
  fs::create_directories(t.root / "empty");
  CHECK_THROWS_WITH(fgq::discover_dataset((t.root / "empty").string()), Catch::Contains(": no images"));
}

TEST_CASE("dataset: list_image_files filters by extension, any case, sorted") {
  TempTree t;
  t.file("c/2.PNG");
  t.file("c/1.jpeg");
  t.file("c/3.Jpg");
  t.file("c/x.txt");
  std::vector<std::string> files = fgq::list_image_files((t.root / "c").string());
  REQUIRE(files.size() == 3);
  CHECK(fs::path(files[0]).filename() == "1.jpeg");
  CHECK(fs::path(files[2]).filename() == "3.Jpg");
}

TEST_CASE("dataset: the shared ImageNet val folder has 1000 labelled images", "[data]") {
  const auto dir = fgq::test::shared_data("data/imagenet/val");
  if (!dir) return;  // skipped
  const fgq::Dataset d = fgq::discover_dataset(*dir);
  CHECK(d.images.size() == 1000);
  CHECK(d.images.front().name == "ILSVRC2012_val_00000363.JPEG");
}

TEST_CASE("dataset: labels are read as int class indices, never wrapped") {
  TempTree t;
  t.file("val/a.JPEG");
  t.file("val/b.JPEG");
  const std::string dir = (t.root / "val").string();
  auto error = [&](const std::string& text) {
    t.file("val/val_labels.txt", text);
    try {
      fgq::discover_dataset(dir);
    } catch (const fgq::Error& e) {
      return std::string(e.what());
    }
    return std::string("(no error)");
  };
  const std::string file = (t.root / "val/val_labels.txt").string();
  // 2^32 used to be read as a long and cast to int: class 0, scored against the model's class 0.
  CHECK(error("a.JPEG 0\nb.JPEG 4294967296\n") == file + ":2: label 4294967296 is out of range (0..2147483647)");
  CHECK(error("a.JPEG 0\nb.JPEG 99999999999999999999999\n") ==
        file + ":2: label 99999999999999999999999 is out of range (0..2147483647)");
  for (const char* bad : {"1e3", "0x10", "+5", "-1", "1.0", "7a", "-4294967296"})
    CHECK(error(std::string("a.JPEG 0\nb.JPEG ") + bad + "\n") ==
          file + ":2: expected 'NAME INDEX' with INDEX >= 0, got 'b.JPEG " + bad + "'");
  CHECK(error("a.JPEG 0\nb.JPEG 2\na.JPEG 1\n") == file + ":3: 'a.JPEG' is labelled 0 earlier in the file");
  // The largest int, a repeated identical line and CRLF line ends are fine.
  t.file("val/val_labels.txt", "a.JPEG 2147483647\r\nb.JPEG 3\r\nb.JPEG 3\r\n");
  CHECK(labels(fgq::discover_dataset(dir)) == std::vector<int>{2147483647, 3});
}
