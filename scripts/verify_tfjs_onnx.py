#!/usr/bin/python3
"""Check a converted ONNX model against the TF.js layers model it came from, in pure NumPy.

Two independent forwards (no onnxruntime on these machines):
  keras_forward  runs the Keras graph straight from model.json + shards, NHWC, HWIO kernels,
                 Keras padding rules, softmax dropped at the output (the ONNX output is logits);
  onnx_forward   evaluates the ONNX graph node by node, NCHW, for the ops the converter emits.
Both compute in float64 so their difference measures conversion mistakes, not rounding.

Usage: verify_tfjs_onnx.py PACKAGE_DIR MODEL.onnx [--images DIR --labels FILE --count N]
  prints the max relative error (max |onnx - keras| / max |keras|) and Top-5 per image.
"""
import argparse
import json
import os
import sys

import numpy as np
import onnx
from onnx import numpy_helper


# ---- Keras side (NHWC) --------------------------------------------------------------------------
def read_tfjs(model_json_path):
    with open(model_json_path) as f:
        model = json.load(f)
    base = os.path.dirname(model_json_path)
    weights = {}
    for group in model["weightsManifest"]:
        data = np.concatenate([np.fromfile(os.path.join(base, p), dtype="<f4") for p in group["paths"]])
        pos = 0
        for w in group["weights"]:
            n = int(np.prod(w["shape"]))
            weights[w["name"]] = data[pos:pos + n].reshape(w["shape"]).astype(np.float64)
            pos += n
    return model["modelTopology"]["model_config"]["config"], weights


def _tuple2(v):
    return tuple(v) if isinstance(v, (list, tuple)) else (v, v)


def _tf_same_pad(x, kernel, stride, value=0.0):
    """Pads NHWC x the way TensorFlow's 'same' does (extra element at the end)."""
    widths = [(0, 0)]
    for size, k, s in zip(x.shape[1:3], kernel, stride):
        total = max((-(-size // s) - 1) * s + k - size, 0)
        widths.append((total // 2, total - total // 2))
    return np.pad(x, widths + [(0, 0)], constant_values=value)


def _windows_nhwc(x, kernel, stride):
    """Yields (ky, kx, strided view) for every kernel offset, NHWC."""
    oh = (x.shape[1] - kernel[0]) // stride[0] + 1
    ow = (x.shape[2] - kernel[1]) // stride[1] + 1
    for ky in range(kernel[0]):
        for kx in range(kernel[1]):
            yield ky, kx, x[:, ky:ky + stride[0] * (oh - 1) + 1:stride[0],
                            kx:kx + stride[1] * (ow - 1) + 1:stride[1], :]


def _keras_activation(x, name):
    if name in (None, "linear", "softmax"):  # softmax: compare logits
        return x
    if name == "relu":
        return np.maximum(x, 0)
    raise ValueError(f"keras_forward: activation {name}")


def keras_forward(config, weights, x):
    """x: [N,H,W,C] float64. Returns the output layer's pre-softmax values."""
    out = {}
    for layer in config["layers"]:
        cfg, name, kind = layer["config"], layer["name"], layer["class_name"]
        ins = [out[e[0]] for e in layer["inbound_nodes"][0]] if layer["inbound_nodes"] else []
        w = lambda s: weights[f"{name}/{s}"]
        if kind == "InputLayer":
            y = x
        elif kind == "ZeroPadding2D":
            (t, b), (l, r) = [_tuple2(p) for p in _tuple2(cfg["padding"])]
            y = np.pad(ins[0], [(0, 0), (t, b), (l, r), (0, 0)])
        elif kind == "Conv2D":
            k, s = _tuple2(cfg["kernel_size"]), _tuple2(cfg["strides"])
            if _tuple2(cfg.get("dilation_rate", 1)) != (1, 1):
                raise ValueError(f"keras_forward: dilated Conv2D {name}")
            xin = _tf_same_pad(ins[0], k, s) if cfg["padding"] == "same" else ins[0]
            kern = w("kernel")
            y = sum(view @ kern[ky, kx] for ky, kx, view in _windows_nhwc(xin, k, s))
            if cfg.get("use_bias", True):
                y = y + w("bias")
            y = _keras_activation(y, cfg.get("activation"))
        elif kind == "BatchNormalization":
            gamma = w("gamma") if cfg.get("scale", True) else 1.0
            beta = w("beta") if cfg.get("center", True) else 0.0
            y = (ins[0] - w("moving_mean")) / np.sqrt(w("moving_variance") + cfg["epsilon"]) * gamma + beta
        elif kind == "Activation":
            y = _keras_activation(ins[0], cfg["activation"])
        elif kind == "ReLU":
            y = np.maximum(ins[0], 0)
        elif kind == "Dropout":
            y = ins[0]
        elif kind in ("MaxPooling2D", "AveragePooling2D"):
            k = _tuple2(cfg["pool_size"])
            s = _tuple2(cfg.get("strides") or cfg["pool_size"])
            is_max = kind == "MaxPooling2D"
            xin = ins[0]
            if cfg["padding"] == "same":
                xin = _tf_same_pad(xin, k, s, -np.inf if is_max else np.nan)
            views = np.stack([v for _, _, v in _windows_nhwc(xin, k, s)])
            y = views.max(axis=0) if is_max else np.nanmean(views, axis=0)
        elif kind == "GlobalAveragePooling2D":
            y = ins[0].mean(axis=(1, 2))
        elif kind == "Flatten":
            y = ins[0].reshape(ins[0].shape[0], -1)  # NHWC order, as Keras does
        elif kind == "Dense":
            y = ins[0] @ w("kernel")
            if cfg.get("use_bias", True):
                y = y + w("bias")
            y = _keras_activation(y, cfg.get("activation"))
        elif kind == "Add":
            y = sum(ins)
        else:
            raise ValueError(f"keras_forward: layer {kind}")
        out[name] = y
    return out[config["output_layers"][0][0]]


# ---- ONNX side (NCHW) ---------------------------------------------------------------------------
def _attrs(node):
    return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}


def _pad_nchw(x, pads, value):
    h0, w0, h1, w1 = pads
    return np.pad(x, [(0, 0), (0, 0), (h0, h1), (w0, w1)], constant_values=value)


def _windows_nchw(x, kernel, stride, dilation=(1, 1)):
    oh = (x.shape[2] - dilation[0] * (kernel[0] - 1) - 1) // stride[0] + 1
    ow = (x.shape[3] - dilation[1] * (kernel[1] - 1) - 1) // stride[1] + 1
    for ky in range(kernel[0]):
        for kx in range(kernel[1]):
            y0, x0 = ky * dilation[0], kx * dilation[1]
            yield ky, kx, x[:, :, y0:y0 + stride[0] * (oh - 1) + 1:stride[0],
                            x0:x0 + stride[1] * (ow - 1) + 1:stride[1]]


def _onnx_conv(x, w, b, a):
    k = a.get("kernel_shape", w.shape[2:])
    assert a.get("group", 1) == 1 and a.get("auto_pad", b"NOTSET") in (b"NOTSET", "NOTSET")
    xp = _pad_nchw(x, a.get("pads", [0, 0, 0, 0]), 0.0)
    y = 0
    for ky, kx, view in _windows_nchw(xp, k, a.get("strides", [1, 1]), a.get("dilations", [1, 1])):
        y = y + np.einsum("oc,nchw->nohw", w[:, :, ky, kx], view, optimize=True)
    return y if b is None else y + b[None, :, None, None]


def _onnx_pool(x, a, is_max):
    k = a["kernel_shape"]
    pads = a.get("pads", [0, 0, 0, 0])
    xp = _pad_nchw(x, pads, -np.inf if is_max else np.nan)
    views = np.stack([v for _, _, v in _windows_nchw(xp, k, a.get("strides", [1, 1]))])
    if is_max:
        return views.max(axis=0)
    if a.get("count_include_pad", 0):
        return np.nan_to_num(views).mean(axis=0)
    return np.nanmean(views, axis=0)


def onnx_forward(model, x):
    """x: [N,C,H,W] float64. Returns the first graph output."""
    env = {t.name: numpy_helper.to_array(t).astype(np.float64) for t in model.graph.initializer}
    env[model.graph.input[0].name] = x
    for node in model.graph.node:
        a, i = _attrs(node), [env[n] if n else None for n in node.input]
        op = node.op_type
        if op == "Conv":
            y = _onnx_conv(i[0], i[1], i[2] if len(i) > 2 else None, a)
        elif op == "BatchNormalization":
            xx, s, b, m, v = i
            sh = (1, -1, 1, 1)
            y = (xx - m.reshape(sh)) / np.sqrt(v.reshape(sh) + a.get("epsilon", 1e-5)) * s.reshape(sh) + b.reshape(sh)
        elif op == "Relu":
            y = np.maximum(i[0], 0)
        elif op == "MaxPool":
            y = _onnx_pool(i[0], a, True)
        elif op == "AveragePool":
            y = _onnx_pool(i[0], a, False)
        elif op == "GlobalAveragePool":
            y = i[0].mean(axis=(2, 3), keepdims=True)
        elif op == "Add":
            y = i[0] + i[1]
        elif op == "Pad":
            assert a.get("mode", b"constant") in (b"constant", "constant")
            p = i[1].astype(np.int64)
            value = i[2] if len(i) > 2 and i[2] is not None else 0.0
            y = np.pad(i[0], [(p[d], p[d + 4]) for d in range(4)], constant_values=value)
        elif op == "Flatten":
            ax = a.get("axis", 1)
            y = i[0].reshape(int(np.prod(i[0].shape[:ax])), -1)
        elif op == "Transpose":
            y = i[0].transpose(a["perm"])
        elif op == "Gemm":
            A = i[0].T if a.get("transA", 0) else i[0]
            B = i[1].T if a.get("transB", 0) else i[1]
            y = a.get("alpha", 1.0) * (A @ B)
            if len(i) > 2:
                y = y + a.get("beta", 1.0) * i[2]
        else:
            raise ValueError(f"onnx_forward: op {op} (node {node.name})")
        env[node.output[0]] = y
    return env[model.graph.output[0].name]


def max_relative_error(got, want):
    return float(np.max(np.abs(got - want)) / max(np.max(np.abs(want)), 1e-30))


# ---- real images --------------------------------------------------------------------------------
def load_caffe_image(path, size=224):
    """224x224 bilinear, RGB->BGR, Caffe mean subtracted, as the model's metadata says. NHWC."""
    try:
        import cv2
        bgr = cv2.resize(cv2.imread(path, cv2.IMREAD_COLOR), (size, size), interpolation=cv2.INTER_LINEAR)
    except ImportError:
        from PIL import Image
        rgb = np.asarray(Image.open(path).convert("RGB").resize((size, size), Image.BILINEAR))
        bgr = rgb[:, :, ::-1]
    return bgr.astype(np.float64) - np.array([103.939, 116.779, 123.68])


def main(argv=None):
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from convert_tfjs_resnet50 import find_model_json

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("package_dir")
    parser.add_argument("onnx")
    parser.add_argument("--images", help="folder of ImageNet validation JPEGs")
    parser.add_argument("--labels", help="val_labels.txt: 'FILE INDEX' per line")
    parser.add_argument("--synsets", help="synset_words.txt, for readable Top-5")
    parser.add_argument("--count", type=int, default=2)
    parser.add_argument("--tolerance", type=float, default=1e-4)
    args = parser.parse_args(argv)

    config, weights = read_tfjs(find_model_json(args.package_dir))
    model = onnx.load(args.onnx)
    if args.images:
        files = sorted(f for f in os.listdir(args.images) if f.lower().endswith((".jpeg", ".jpg")))[:args.count]
        x = np.stack([load_caffe_image(os.path.join(args.images, f)) for f in files])
    else:
        files = [f"random{i}" for i in range(args.count)]
        x = np.random.default_rng(0).normal(0, 50, (args.count, 224, 224, 3))
    want = keras_forward(config, weights, x)
    got = onnx_forward(model, x.transpose(0, 3, 1, 2))
    err = max_relative_error(got, want)
    print(f"max relative error onnx vs keras: {err:.3g} (tolerance {args.tolerance:g})")

    labels = {}
    if args.labels:
        with open(args.labels) as f:
            labels = dict((p[0], int(p[1])) for p in (line.split() for line in f) if len(p) == 2)
    names = []
    if args.synsets:
        with open(args.synsets) as f:
            names = [line.strip().split(" ", 1)[-1].split(",")[0] for line in f]
    top1 = top5 = 0
    for f, logits in zip(files, got):
        best = np.argsort(-logits)[:5]
        truth = labels.get(f)
        top1 += truth == best[0]
        top5 += truth in best
        shown = ", ".join(f"{c}{'(' + names[c] + ')' if names else ''}" for c in best)
        print(f"{f}: label {truth} top5 [{shown}]")
    if labels:
        print(f"top1 {top1}/{len(files)}  top5 {top5}/{len(files)}")
    return 0 if err <= args.tolerance else 1


if __name__ == "__main__":
    sys.exit(main())
