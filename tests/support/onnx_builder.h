#pragma once
// Writes small ONNX models from C++ (Protobuf API) so tests own their models and know the
// expected outputs.
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace onnx {
class ModelProto;
class NodeProto;
}  // namespace onnx

namespace fgq::test {

class OnnxBuilder {
 public:
  explicit OnnxBuilder(int opset = 13);
  ~OnnxBuilder();
  OnnxBuilder(OnnxBuilder&&) noexcept;
  OnnxBuilder& operator=(OnnxBuilder&&) noexcept;

  // A float graph input; use -1 for a symbolic batch dimension.
  OnnxBuilder& input(const std::string& name, const std::vector<int64_t>& shape);
  OnnxBuilder& output(const std::string& name);
  OnnxBuilder& init_f32(const std::string& name, const std::vector<int64_t>& shape,
                        const std::vector<float>& data);
  OnnxBuilder& init_i64(const std::string& name, const std::vector<int64_t>& shape,
                        const std::vector<int64_t>& data);
  OnnxBuilder& metadata(const std::string& key, const std::string& value);

  // Adds a node; set its attributes on the returned proxy.
  class NodeRef {
   public:
    explicit NodeRef(onnx::NodeProto* n) : n_(n) {}
    NodeRef& i(const std::string& name, int64_t v);
    NodeRef& f(const std::string& name, float v);
    NodeRef& s(const std::string& name, const std::string& v);
    NodeRef& ints(const std::string& name, const std::vector<int64_t>& v);
    NodeRef& floats(const std::string& name, const std::vector<float>& v);

   private:
    onnx::NodeProto* n_;
  };
  NodeRef node(const std::string& op, const std::vector<std::string>& inputs,
               const std::vector<std::string>& outputs, const std::string& name = "");

  onnx::ModelProto& proto();
  std::string bytes() const;
  void save(const std::string& path) const;

 private:
  std::unique_ptr<onnx::ModelProto> m_;
};

}  // namespace fgq::test
