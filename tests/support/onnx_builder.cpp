#include "support/onnx_builder.h"

#include <fstream>
#include <stdexcept>

#include <onnx/onnx_pb.h>  // defines ONNX_API before including onnx-ml.pb.h

namespace fgq::test {

OnnxBuilder::OnnxBuilder(int opset) : m_(std::make_unique<onnx::ModelProto>()) {
  m_->set_ir_version(7);
  m_->set_producer_name("fgq-tests");
  auto* op = m_->add_opset_import();
  op->set_domain("");
  op->set_version(opset);
  m_->mutable_graph()->set_name("test");
}

OnnxBuilder::~OnnxBuilder() = default;
OnnxBuilder::OnnxBuilder(OnnxBuilder&&) noexcept = default;
OnnxBuilder& OnnxBuilder::operator=(OnnxBuilder&&) noexcept = default;

OnnxBuilder& OnnxBuilder::input(const std::string& name, const std::vector<int64_t>& shape) {
  auto* vi = m_->mutable_graph()->add_input();
  vi->set_name(name);
  auto* tt = vi->mutable_type()->mutable_tensor_type();
  tt->set_elem_type(onnx::TensorProto::FLOAT);
  for (int64_t d : shape) {
    auto* dim = tt->mutable_shape()->add_dim();
    if (d < 0)
      dim->set_dim_param("N");
    else
      dim->set_dim_value(d);
  }
  return *this;
}

OnnxBuilder& OnnxBuilder::output(const std::string& name) {
  auto* vi = m_->mutable_graph()->add_output();
  vi->set_name(name);
  vi->mutable_type()->mutable_tensor_type()->set_elem_type(onnx::TensorProto::FLOAT);
  return *this;
}

OnnxBuilder& OnnxBuilder::init_f32(const std::string& name, const std::vector<int64_t>& shape,
                                   const std::vector<float>& data) {
  auto* t = m_->mutable_graph()->add_initializer();
  t->set_name(name);
  t->set_data_type(onnx::TensorProto::FLOAT);
  for (int64_t d : shape) t->add_dims(d);
  t->set_raw_data(std::string(reinterpret_cast<const char*>(data.data()), data.size() * sizeof(float)));
  return *this;
}

OnnxBuilder& OnnxBuilder::init_i64(const std::string& name, const std::vector<int64_t>& shape,
                                   const std::vector<int64_t>& data) {
  auto* t = m_->mutable_graph()->add_initializer();
  t->set_name(name);
  t->set_data_type(onnx::TensorProto::INT64);
  for (int64_t d : shape) t->add_dims(d);
  for (int64_t v : data) t->add_int64_data(v);
  return *this;
}

OnnxBuilder& OnnxBuilder::metadata(const std::string& key, const std::string& value) {
  auto* p = m_->add_metadata_props();
  p->set_key(key);
  p->set_value(value);
  return *this;
}

OnnxBuilder::NodeRef OnnxBuilder::node(const std::string& op, const std::vector<std::string>& inputs,
                                       const std::vector<std::string>& outputs,
                                       const std::string& name) {
  auto* n = m_->mutable_graph()->add_node();
  n->set_op_type(op);
  n->set_name(name.empty() ? op + "_" + std::to_string(m_->graph().node_size()) : name);
  for (const auto& i : inputs) n->add_input(i);
  for (const auto& o : outputs) n->add_output(o);
  return NodeRef(n);
}

OnnxBuilder::NodeRef& OnnxBuilder::NodeRef::i(const std::string& name, int64_t v) {
  auto* a = n_->add_attribute();
  a->set_name(name);
  a->set_type(onnx::AttributeProto::INT);
  a->set_i(v);
  return *this;
}
OnnxBuilder::NodeRef& OnnxBuilder::NodeRef::f(const std::string& name, float v) {
  auto* a = n_->add_attribute();
  a->set_name(name);
  a->set_type(onnx::AttributeProto::FLOAT);
  a->set_f(v);
  return *this;
}
OnnxBuilder::NodeRef& OnnxBuilder::NodeRef::s(const std::string& name, const std::string& v) {
  auto* a = n_->add_attribute();
  a->set_name(name);
  a->set_type(onnx::AttributeProto::STRING);
  a->set_s(v);
  return *this;
}
OnnxBuilder::NodeRef& OnnxBuilder::NodeRef::ints(const std::string& name,
                                                 const std::vector<int64_t>& v) {
  auto* a = n_->add_attribute();
  a->set_name(name);
  a->set_type(onnx::AttributeProto::INTS);
  for (auto x : v) a->add_ints(x);
  return *this;
}
OnnxBuilder::NodeRef& OnnxBuilder::NodeRef::floats(const std::string& name,
                                                   const std::vector<float>& v) {
  auto* a = n_->add_attribute();
  a->set_name(name);
  a->set_type(onnx::AttributeProto::FLOATS);
  for (auto x : v) a->add_floats(x);
  return *this;
}

onnx::ModelProto& OnnxBuilder::proto() { return *m_; }

std::string OnnxBuilder::bytes() const { return m_->SerializeAsString(); }

void OnnxBuilder::save(const std::string& path) const {
  std::ofstream f(path, std::ios::binary);
  if (!f) throw std::runtime_error("cannot write " + path);
  f << bytes();
}

}  // namespace fgq::test
