#!/usr/bin/python3
"""Test models for ONNX Runtime's QDQ handling, and a numpy reference to check ORT's outputs.

  make_test_qdq.py make OUTDIR [--images 16] [--size 32]
      writes OUTDIR/input.f32 (float32 NCHW, seeded), OUTDIR/fp32.onnx (a tiny ResNet-like conv net with
      seeded weights) and OUTDIR/<variant>.onnx for every QDQ variant (list: make_test_qdq.py variants),
      plus OUTDIR/manifest.json (variant -> description, shape of the input file).
  make_test_qdq.py check MODEL.onnx INPUT.f32 ORT_OUT.f32 [--shape N,C,H,W] [--json]
      runs MODEL on INPUT with the numpy reference below (ONNX semantics: DequantizeLinear -> float op
      -> QuantizeLinear, round half to even, saturate) and compares ORT's output file with it.
      For a QDQ model the difference is also given in steps of the output's quantization scale.
  make_test_qdq.py bigconv OUTDIR
      two conv stacks as FP32 and QDQ (uint8 activations, int8 per-channel weights), for timing:
      big56: 256x56x56 input, (1x1 256->64, 3x3 64->64, 1x1 64->256) x2, 0.437 GMAC/image;
      big28: 128x28x28 input, 3x3 128->128 x4, 0.462 GMAC/image; every conv followed by ReLU.
  make_test_qdq.py qdqify MODEL.onnx OUT.onnx --calib CALIB.f32 [--fp32-out FOLDED.onnx]
      a plain post-training QDQ version of an FP32 CNN (Conv/BatchNormalization/Relu/Add/MaxPool/
      GlobalAveragePool/Flatten/Gemm, e.g. models/resnet50.onnx), in the form above: BatchNormalization
      folded into Conv, activations calibrated by min/max on CALIB.f32 (N x C x H x W float32, run
      through ORT with every activation as an extra output), uint8 after ReLU / asymmetric otherwise.
      A reference for ORT's int8 speed and for fgq's exporter, not an accuracy-tuned quantizer.
  make_test_qdq.py macs MODEL.onnx   multiply-accumulates per image of Conv/Gemm/MatMul (JSON line).
  make_test_qdq.py variants     lists the variants and what each one probes.

The QDQ form written here is the one ORT fuses into its integer kernels (scripts/ort/README.md):
activations uint8 (QuantizeLinear -> DequantizeLinear pairs, zero point 0 after ReLU), weights int8
initializers with per-output-channel scales (DequantizeLinear axis 0, zero points 0), biases int32 with
scale x_scale * w_scale[c] and zero point 0.

Only Debian's python3-onnx (1.12, knows opsets <= 17 and no 4-bit types) and python3-numpy are needed:
4-bit tensors (UINT4 = 21, INT4 = 22) and opsets > 17 are written by number; onnx.checker is not run on
such models.
"""
import argparse
import json
import os
import shutil
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

UINT4, INT4 = 21, 22  # TensorProto.DataType values (onnx >= 1.16)

QTYPES = {  # elem type -> (numpy storage type, qmin, qmax)
    TensorProto.UINT8: (np.uint8, 0, 255),
    TensorProto.INT8: (np.int8, -128, 127),
    TensorProto.UINT16: (np.uint16, 0, 65535),
    TensorProto.INT16: (np.int16, -32768, 32767),
    TensorProto.INT32: (np.int32, -2**31, 2**31 - 1),
    UINT4: (np.uint8, 0, 15),
    INT4: (np.int8, -8, 7),
}
QNAMES = {'u8': TensorProto.UINT8, 's8': TensorProto.INT8, 'u4': UINT4, 's4': INT4}


# ---------------------------------------------------------------------------------------------------
# tensors
# ---------------------------------------------------------------------------------------------------
def make_tensor(name, arr, elem):
    """TensorProto for arr stored as elem (also 4-bit types, packed two per byte, low nibble first)."""
    arr = np.asarray(arr)
    if elem in (UINT4, INT4):
        t = TensorProto()
        t.name = name
        t.data_type = elem
        t.dims.extend(arr.shape)
        nib = (arr.astype(np.int64).ravel() & 0xF).astype(np.uint8)
        if nib.size % 2:
            nib = np.append(nib, np.uint8(0))
        t.raw_data = (nib[0::2] | (nib[1::2] << 4)).astype(np.uint8).tobytes()
        return t
    np_type = {TensorProto.FLOAT: np.float32, TensorProto.INT64: np.int64}.get(elem) or QTYPES[elem][0]
    return numpy_helper.from_array(arr.astype(np_type), name)


def tensor_to_array(t):
    if t.data_type in (UINT4, INT4):
        n = int(np.prod(t.dims)) if len(t.dims) else 1
        if t.raw_data:
            b = np.frombuffer(t.raw_data, dtype=np.uint8)
        else:  # int32_data holds the packed bytes, one per element
            b = np.array(t.int32_data, dtype=np.uint8)
        nib = np.empty(b.size * 2, dtype=np.int64)
        nib[0::2] = b & 0xF
        nib[1::2] = b >> 4
        v = nib[:n]
        if t.data_type == INT4:
            v = np.where(v >= 8, v - 16, v)
        return v.reshape(tuple(t.dims)), t.data_type
    return numpy_helper.to_array(t), t.data_type


# ---------------------------------------------------------------------------------------------------
# numpy reference (the ops the test models use)
# ---------------------------------------------------------------------------------------------------
def _attrs(node):
    return {a.name: helper.get_attribute_value(a) for a in node.attribute}


def _per_axis(p, x, axis):
    p = np.asarray(p)
    if p.ndim == 0 or p.size == 1:
        return p.reshape(())
    shape = [1] * x.ndim
    shape[axis % x.ndim] = p.size
    return p.reshape(shape)


def _pad_hw(x, pads, value=0.0):
    t, l, b, r = pads[0], pads[1], pads[2], pads[3]
    if not any(pads):
        return x
    return np.pad(x, ((0, 0), (0, 0), (t, b), (l, r)), constant_values=value)


def _windows(x, kh, kw, sh, sw, dh=1, dw=1):
    n, c, h, w = x.shape
    oh = (h - (kh - 1) * dh - 1) // sh + 1
    ow = (w - (kw - 1) * dw - 1) // sw + 1
    s = x.strides
    return np.lib.stride_tricks.as_strided(
        x, (n, c, oh, ow, kh, kw), (s[0], s[1], s[2] * sh, s[3] * sw, s[2] * dh, s[3] * dw), writeable=False)


def _conv(x, w, b, a):
    strides = a.get('strides', [1, 1])
    pads = a.get('pads', [0, 0, 0, 0])
    dil = a.get('dilations', [1, 1])
    group = a.get('group', 1)
    m, cg, kh, kw = w.shape
    xp = _pad_hw(x.astype(np.float64), pads)
    win = _windows(xp, kh, kw, strides[0], strides[1], dil[0], dil[1])  # n c oh ow kh kw
    outs = []
    mg = m // group
    for g in range(group):
        wg = w[g * mg:(g + 1) * mg].astype(np.float64)
        outs.append(np.einsum('ncyxij,mcij->nmyx', win[:, g * cg:(g + 1) * cg], wg, optimize=True))
    y = np.concatenate(outs, axis=1)
    if b is not None:
        y = y + b.astype(np.float64).reshape(1, -1, 1, 1)
    return y.astype(np.float32)


def _pool(x, a, kind):
    k = a['kernel_shape']
    strides = a.get('strides', [1, 1])
    pads = a.get('pads', [0, 0, 0, 0])
    if kind == 'max':
        fill = np.iinfo(x.dtype).min if np.issubdtype(x.dtype, np.integer) else -np.inf
        win = _windows(_pad_hw(x, pads, fill), k[0], k[1], strides[0], strides[1])
        return win.max(axis=(4, 5))
    win = _windows(_pad_hw(x.astype(np.float64), pads), k[0], k[1], strides[0], strides[1])
    return win.mean(axis=(4, 5)).astype(np.float32)  # count_include_pad is irrelevant without pads


def _quantize(x, scale, zp, elem, axis):
    _, lo, hi = QTYPES[elem]
    s = _per_axis(scale, x, axis).astype(np.float32)
    z = _per_axis(zp, x, axis).astype(np.int64) if zp is not None else 0
    q = np.rint(x.astype(np.float32) / s).astype(np.int64) + z  # rint: round half to even
    return np.clip(q, lo, hi), elem


def _dequantize(q, scale, zp, axis, block_size=0):
    if block_size:  # blocked quantization (opset 21): scale/zp have q's rank, one entry per block on axis
        ax = axis % q.ndim
        rep = lambda p: np.take(np.repeat(np.asarray(p), block_size, axis=ax), np.arange(q.shape[ax]), axis=ax)
        s = rep(scale).astype(np.float32)
        z = rep(zp).astype(np.int64) if zp is not None else 0
        return ((q.astype(np.int64) - z).astype(np.float32) * s).astype(np.float32)
    s = _per_axis(scale, q, axis).astype(np.float32)
    z = _per_axis(zp, q, axis).astype(np.int64) if zp is not None else 0
    return ((q.astype(np.int64) - z).astype(np.float32) * s).astype(np.float32)


def run_reference(model, feeds):
    """Evaluates the model's graph in numpy. Returns {name: array} for every value; quantized values are
    int64 arrays whose ONNX element type is in the second dict."""
    vals, types = {}, {}
    for t in model.graph.initializer:
        vals[t.name], types[t.name] = tensor_to_array(t)
    for k, v in feeds.items():
        vals[k], types[k] = v, TensorProto.FLOAT
    for node in model.graph.node:
        a = _attrs(node)
        ins = [vals[i] if i else None for i in node.input]
        op = node.op_type
        out_type = TensorProto.FLOAT
        if op == 'QuantizeLinear':
            zp_name = node.input[2] if len(node.input) > 2 and node.input[2] else None
            elem = types[zp_name] if zp_name else a.get('output_dtype', TensorProto.UINT8)
            y, out_type = _quantize(ins[0], ins[1], ins[2] if zp_name else None, elem, a.get('axis', 1))
        elif op == 'DequantizeLinear':
            zp = ins[2] if len(ins) > 2 else None
            y = _dequantize(ins[0], ins[1], zp, a.get('axis', 1), a.get('block_size', 0))
        elif op == 'Conv':
            y = _conv(ins[0], ins[1], ins[2] if len(ins) > 2 else None, a)
        elif op == 'Relu':
            y = np.maximum(ins[0], 0).astype(ins[0].dtype)
            out_type = types[node.input[0]]
        elif op == 'Clip':
            lo = ins[1] if len(ins) > 1 and ins[1] is not None else -np.inf
            hi = ins[2] if len(ins) > 2 and ins[2] is not None else np.inf
            y = np.clip(ins[0], lo, hi)
            if types[node.input[0]] == TensorProto.FLOAT:
                y = y.astype(np.float32)
            else:  # Clip on a quantized (integer) tensor stays integer
                out_type = types[node.input[0]]
        elif op == 'MaxPool':
            y = _pool(ins[0], a, 'max')
            out_type = types[node.input[0]]
        elif op == 'AveragePool':
            y = _pool(ins[0], a, 'avg')
        elif op == 'GlobalAveragePool':
            y = ins[0].astype(np.float64).mean(axis=(2, 3), keepdims=True).astype(np.float32)
        elif op == 'Add':
            y = (ins[0].astype(np.float64) + ins[1]).astype(np.float32)
        elif op == 'Flatten':
            ax = a.get('axis', 1)
            y = ins[0].reshape(int(np.prod(ins[0].shape[:ax])), -1)
            out_type = types[node.input[0]]
        elif op == 'Reshape':
            y = ins[0].reshape(tuple(int(d) for d in ins[1]))
            out_type = types[node.input[0]]
        elif op == 'Gemm':
            A = ins[0].astype(np.float64)
            B = ins[1].astype(np.float64)
            A = A.T if a.get('transA', 0) else A
            B = B.T if a.get('transB', 0) else B
            y = a.get('alpha', 1.0) * (A @ B)
            if len(ins) > 2 and ins[2] is not None:
                y = y + a.get('beta', 1.0) * ins[2]
            y = y.astype(np.float32)
        elif op == 'MatMul':
            y = (ins[0].astype(np.float64) @ ins[1]).astype(np.float32)
        else:
            raise NotImplementedError(f'reference: op {op}')
        vals[node.output[0]], types[node.output[0]] = y, out_type
    return vals, types


# ---------------------------------------------------------------------------------------------------
# the test network
# ---------------------------------------------------------------------------------------------------
VARIANTS = {
    # name: (description, config overrides)
    'qdq': ('recommended form: u8 activations (zp 0 after ReLU), s8 per-channel weights (zp 0, axis 0), '
            'int32 bias (scale x_s*w_s[c], zp 0), opset 17', {}),
    'qdq_op13': ('as qdq, opset 13', {'opset': 13}),
    'qdq_op21': ('as qdq, opset 21 (IR 10)', {'opset': 21}),
    'qdq_op22': ('as qdq, opset 22 (MaxPool-22, Conv-22, GlobalAveragePool-22 ...)', {'opset': 22}),
    'qdq_pertensor': ('weights per-tensor (one scale per weight tensor)', {'per_channel': False}),
    'qdq_s8s8': ('s8 activations (zp -128 after ReLU) and s8 weights', {'act': 's8'}),
    'qdq_u8u8': ('u8 weights, asymmetric (zp per channel), u8 activations', {'w': 'u8'}),
    'qdq_wzp': ('s8 weights with non-zero per-channel zero points', {'w_zp': 'nonzero'}),
    'qdq_fakew': ('float weight initializers -> QuantizeLinear -> DequantizeLinear (not pre-quantized); '
                  'bias float', {'fake_w': True}),
    'qdq_biasfloat': ('float bias initializer (no DequantizeLinear)', {'bias': 'float'}),
    'qdq_biasbadscale': ('int32 bias whose DQ scale is 2*x_s*w_s (values rounded for that scale)',
                         {'bias': 'badscale'}),
    'qdq_reluzp': ('conv1 output quantized with zp 128 (ReLU not made redundant by the Q)', {'relu_zp': 128}),
    'qdq_norelu_q': ('ReLU without its own Q: Conv->Relu->Q replaced by Conv->Q->DQ->Relu->Q->DQ',
                     {'relu_qdq': True}),
    'qdq_gemm_noq': ('last Gemm without output Q (float logits straight from Gemm)', {'gemm_q': False}),
    'qdq_pool_diffscale': ('MaxPool output Q with another scale than its input DQ', {'pool_scale': 1.25}),
    'qdq_clip4': ('4-bit activation emulation A: Conv -> Clip(0, 15*s) -> Q(u8, s, 0) -> DQ (Clip instead '
                  'of ReLU), Add -> Clip -> Q likewise', {'act4': 'clip'}),
    'qdq_clip4_qdq': ('4-bit emulation B: Conv -> Q(u8,s) -> DQ -> Clip(0, 15*s) -> Q(u8,s) -> DQ',
                      {'act4': 'clip_qdq'}),
    'qdq_clip4_u8': ('4-bit emulation C: Conv -> Relu -> Q(u8, s, 0) -> Clip(0, 15) on the uint8 tensor -> DQ',
                     {'act4': 'clip_u8'}),
    'qdq_ternary_block4': ('conv2-4 ternary, FGQ-style: int8 {-1,0,1} with one scale per group of 4 input '
                           'channels (DequantizeLinear block_size=4, axis=1, opset 21), float bias',
                           {'ternary': 'block', 'opset': 21}),
    'qdq_ternary_pc': ('conv2-4 ternary with per-group alphas re-quantized to int8 per output channel '
                       '(round(alpha_g / s_m) * t), int32 bias', {'ternary': 'perchannel'}),
    'qdq_u4act': ('4-bit activations as UINT4 QuantizeLinear/DequantizeLinear (opset 21, IR 10)',
                  {'act': 'u4', 'opset': 21}),
    'qdq_s4w': ('INT4 per-channel weights (opset 21), u8 activations', {'w': 's4', 'opset': 21}),
}

BASE_CFG = dict(opset=17, act='u8', w='s8', per_channel=True, w_zp='zero', fake_w=False, bias='int32',
                relu_zp=None, relu_qdq=False, gemm_q=True, pool_scale=1.0, act4=None, ternary=None)


class Net:
    """Emits the test network, FP32 (q is None) or QDQ (q = config dict, ranges from the FP32 run)."""

    def __init__(self, weights, q=None, ranges=None, size=32):
        self.w = weights
        self.q = q
        self.ranges = ranges or {}
        self.size = size
        self.nodes, self.inits = [], []
        self.qparams = {}  # float tensor name -> (scale, zp, elem) of its Q/DQ pair

    # -- helpers --
    def init(self, name, arr, elem=TensorProto.FLOAT):
        self.inits.append(make_tensor(name, arr, elem))
        return name

    def node(self, op, ins, outs, **attrs):
        self.nodes.append(helper.make_node(op, ins, outs, name=outs[0] + '_' + op, **attrs))
        return outs[0]

    def act_params(self, name, relu):
        lo, hi = self.ranges[name]
        cfg = self.q
        act = cfg['act']
        if cfg['act4'] and relu:
            return float(hi / 15.0), 0, TensorProto.UINT8
        if act == 'u4':
            if relu:
                return float(hi / 15.0), 0, UINT4
            s = float((hi - lo) / 15.0)
            return s, int(np.clip(round(-lo / s), 0, 15)), UINT4
        elem = QNAMES[act]
        qmin, qmax = QTYPES[elem][1:]
        if relu and cfg['relu_zp'] is not None and name == 'c1':
            zp = cfg['relu_zp']
            return float(hi / (qmax - zp)), zp, elem
        if relu:
            return float(hi / (qmax - qmin)), qmin, elem
        lo, hi = min(lo, 0.0), max(hi, 0.0)
        s = float((hi - lo) / (qmax - qmin))
        return s, int(np.clip(round(qmin - lo / s), qmin, qmax)), elem

    def qdq(self, name, relu=False, params=None):
        """Float tensor `name` -> Q -> DQ; returns the DQ output (FP32 mode: name itself)."""
        if self.q is None:
            return name
        s, zp, elem = params or self.act_params(name, relu)
        self.qparams[name] = (s, zp, elem)
        sn = self.init(name + '_scale', np.float32(s))
        zn = self.init(name + '_zp', np.array(zp), elem)
        self.node('QuantizeLinear', [name, sn, zn], [name + '_q'])
        return self.node('DequantizeLinear', [name + '_q', sn, zn], [name + '_dq'])

    def activation(self, name, out):
        """ReLU (or the 4-bit emulation) of float tensor `name` followed by its Q/DQ; returns DQ output."""
        cfg = self.q
        if cfg is None:
            return self.node('Relu', [name], [out])
        if cfg['act4'] == 'clip':
            s = self.act_params(out, True)[0]
            lo = self.init(out + '_clipmin', np.float32(0))
            hi = self.init(out + '_clipmax', np.float32(15 * s))
            self.node('Clip', [name, lo, hi], [out])
            return self.qdq(out, relu=True)
        if cfg['act4'] == 'clip_qdq':
            s = self.act_params(out, True)[0]
            pre = self.qdq_named(name, out + '_pre', (s, 0, TensorProto.UINT8))
            lo = self.init(out + '_clipmin', np.float32(0))
            hi = self.init(out + '_clipmax', np.float32(15 * s))
            self.node('Clip', [pre, lo, hi], [out])
            return self.qdq(out, relu=True)
        if cfg['act4'] == 'clip_u8':
            s, zp, elem = self.act_params(out, True)
            self.node('Relu', [name], [out])
            self.qparams[out] = (s, zp, elem)
            sn = self.init(out + '_scale', np.float32(s))
            zn = self.init(out + '_zp', np.array(zp), elem)
            lo = self.init(out + '_clipmin', np.array(0), TensorProto.UINT8)
            hi = self.init(out + '_clipmax', np.array(15), TensorProto.UINT8)
            self.node('QuantizeLinear', [out, sn, zn], [out + '_q8'])
            self.node('Clip', [out + '_q8', lo, hi], [out + '_q'])
            return self.node('DequantizeLinear', [out + '_q', sn, zn], [out + '_dq'])
        if cfg['relu_qdq']:
            pre = self.qdq_named(name, out + '_pre', self.act_params(name, False))
            self.node('Relu', [pre], [out])
            return self.qdq(out, relu=True)
        self.node('Relu', [name], [out])
        return self.qdq(out, relu=True)

    def qdq_named(self, name, tag, params):
        s, zp, elem = params
        sn = self.init(tag + '_scale', np.float32(s))
        zn = self.init(tag + '_zp', np.array(zp), elem)
        self.node('QuantizeLinear', [name, sn, zn], [tag + '_q'])
        return self.node('DequantizeLinear', [tag + '_q', sn, zn], [tag + '_dq'])

    def weight(self, name, W, axis=0):
        """Returns (tensor name feeding the op, per-channel scale array or None)."""
        if self.q is None:
            return self.init(name, W), None
        cfg = self.q
        if cfg['ternary'] and name in ('w2', 'w3', 'w4'):
            return self.ternary_weight(name, W)
        wt = QNAMES[cfg['w']]
        qmin, qmax = QTYPES[wt][1:]
        red = tuple(i for i in range(W.ndim) if i != axis)
        if cfg['per_channel']:
            lo, hi = W.min(axis=red), W.max(axis=red)
        else:
            lo, hi = np.array([W.min()]), np.array([W.max()])
        if cfg['w'] in ('s8', 's4') and cfg['w_zp'] == 'zero':
            s = np.maximum(np.abs(lo), np.abs(hi)) / qmax  # symmetric, [-qmax, qmax]: /127 or /7
            zp = np.zeros_like(s, dtype=np.int64)
        else:  # asymmetric (u8) or deliberately non-zero zero points (s8)
            lo, hi = np.minimum(lo, 0), np.maximum(hi, 0)
            s = (hi - lo) / (qmax - qmin)
            zp = np.clip(np.rint(qmin - lo / s), qmin, qmax).astype(np.int64)
            if cfg['w_zp'] == 'nonzero':
                zp = np.where(zp == 0, 1, zp)
        s = s.astype(np.float32)
        if not cfg['per_channel']:
            s, zp = s.reshape(()), zp.reshape(())
        shape = [1] * W.ndim
        if cfg['per_channel']:
            shape[axis] = -1
        qw = np.clip(np.rint(W / s.reshape(shape)) + zp.reshape(shape), qmin, qmax).astype(np.int64)
        sn = self.init(name + '_scale', s)
        zn = self.init(name + '_zp', zp, wt)
        dq_attrs = {'axis': axis} if cfg['per_channel'] else {}
        if cfg['fake_w']:
            self.init(name, W)
            self.node('QuantizeLinear', [name, sn, zn], [name + '_q'], **dq_attrs)
        else:
            self.init(name + '_q', qw, wt)
        out = self.node('DequantizeLinear', [name + '_q', sn, zn], [name + '_dq'], **dq_attrs)
        return out, np.broadcast_to(s, (W.shape[axis],)).astype(np.float32)

    def ternary_weight(self, name, W, group=4):
        """FGQ-like ternary weights: groups of `group` consecutive input channels at one kernel position,
        each alpha_g * {-1, 0, +1} (threshold 0.7 * mean |w| of the group, alpha = mean |w| above it)."""
        M, C, kh, kw = W.shape
        g = W.reshape(M, C // group, group, kh, kw)
        delta = 0.7 * np.abs(g).mean(axis=2, keepdims=True)
        t = np.sign(g) * (np.abs(g) > delta)
        nz = np.maximum((t != 0).sum(axis=2, keepdims=True), 1)
        alpha = (np.abs(g) * (t != 0)).sum(axis=2, keepdims=True) / nz  # M, C/g, 1, kh, kw
        if self.q['ternary'] == 'block':
            sc = np.maximum(alpha[:, :, 0], 1e-12).astype(np.float32)      # M, C/g, kh, kw
            self.init(name + '_q', t.reshape(W.shape), TensorProto.INT8)
            sn = self.init(name + '_scale', sc)
            zn = self.init(name + '_zp', np.zeros(sc.shape, np.int64), TensorProto.INT8)
            out = self.node('DequantizeLinear', [name + '_q', sn, zn], [name + '_dq'], axis=1, block_size=group)
            return out, None
        s_m = (np.maximum(alpha.reshape(M, -1).max(axis=1), 1e-12) / 127.0).astype(np.float32)
        q = np.clip(np.rint(alpha / s_m[:, None, None, None, None]), 0, 127) * t
        self.init(name + '_q', q.reshape(W.shape), TensorProto.INT8)
        sn = self.init(name + '_scale', s_m)
        zn = self.init(name + '_zp', np.zeros(M, np.int64), TensorProto.INT8)
        return self.node('DequantizeLinear', [name + '_q', sn, zn], [name + '_dq'], axis=0), s_m

    def bias(self, name, b, x_name, w_scale):
        if self.q is None or self.q['bias'] == 'float' or self.q['fake_w'] or w_scale is None:
            return self.init(name, b)
        xs = self.qparams[x_name][0]
        bs = (xs * w_scale).astype(np.float32)
        if self.q['bias'] == 'badscale':
            bs = bs * 2
        qb = np.clip(np.rint(b / bs), -2**31, 2**31 - 1).astype(np.int64)
        self.init(name + '_q', qb, TensorProto.INT32)
        sn = self.init(name + '_scale', bs)
        zn = self.init(name + '_zp', np.zeros(b.shape, np.int64), TensorProto.INT32)
        return self.node('DequantizeLinear', [name + '_q', sn, zn], [name + '_dq'], axis=0)

    def conv(self, x_dq, x_name, wname, out, stride=1, pad=1):
        W, b = self.w[wname], self.w[wname + '_b']
        wn, ws = self.weight(wname, W)
        bn = self.bias(wname + '_b', b, x_name, ws)
        k = W.shape[2]
        return self.node('Conv', [x_dq, wn, bn], [out], kernel_shape=[k, k], strides=[stride, stride],
                         pads=[pad] * 4)

    # -- the network --
    def build(self, batch_dim='N'):
        q = self.q
        x = self.qdq('input') if q else 'input'
        self.conv(x, 'input', 'w1', 'conv1')                           # 3 -> 16, 3x3
        a1 = self.activation('conv1', 'c1')
        self.node('MaxPool', [a1], ['p1'], kernel_shape=[2, 2], strides=[2, 2])
        if q:
            s, zp, elem = self.qparams['c1']
            p1 = self.qdq('p1', params=(s * q['pool_scale'], zp, elem))
        else:
            p1 = 'p1'
        self.conv(p1, 'p1', 'w2', 'conv2')                             # 16 -> 16, 3x3
        a2 = self.activation('conv2', 'c2')
        self.conv(a2, 'c2', 'w3', 'conv3')                             # 16 -> 16, 3x3, no ReLU
        a3 = self.qdq('conv3') if q else 'conv3'
        self.node('Add', [p1, a3], ['add'])                            # residual
        a4 = self.activation('add', 'c4')
        self.conv(a4, 'c4', 'w4', 'conv4', stride=2, pad=0)            # 16 -> 32, 1x1 /2
        a5 = self.activation('conv4', 'c5')
        self.node('GlobalAveragePool', [a5], ['gap'])
        g = self.qdq('gap', relu=True) if q else 'gap'
        self.node('Flatten', [g], ['flat'], axis=1)
        f = self.qdq('flat', params=self.qparams['gap']) if q else 'flat'
        wn, ws = self.weight('fc', self.w['fc'], axis=0)
        bn = self.bias('fc_b', self.w['fc_b'], 'flat', ws)
        if q and q['gemm_q']:
            self.ranges['fc_out'] = self.ranges['logits']
            self.node('Gemm', [f, wn, bn], ['fc_out'], transB=1)
            self.qdq('fc_out')
            self.nodes[-1].output[0] = 'logits'
        else:
            self.node('Gemm', [f, wn, bn], ['logits'], transB=1)
        opset = q['opset'] if q else 17
        graph = helper.make_graph(
            self.nodes, 'fgq_ort_test',
            [helper.make_tensor_value_info('input', TensorProto.FLOAT, [batch_dim, 3, self.size, self.size])],
            [helper.make_tensor_value_info('logits', TensorProto.FLOAT, [batch_dim, 10])],
            self.inits)
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid('', opset)],
                                  producer_name='fgq make_test_qdq.py')
        model.ir_version = 10 if opset >= 21 else 8
        return model


def seeded_weights(seed=1234):
    rng = np.random.default_rng(seed)

    def he(*shape):
        fan_in = int(np.prod(shape[1:]))
        return (rng.standard_normal(shape) * np.sqrt(2.0 / fan_in)).astype(np.float32)

    w = {'w1': he(16, 3, 3, 3), 'w2': he(16, 16, 3, 3), 'w3': he(16, 16, 3, 3) * 0.5, 'w4': he(32, 16, 1, 1),
         'fc': he(10, 32)}
    for k in list(w):
        w[k + '_b'] = (rng.standard_normal(w[k].shape[0]) * 0.1).astype(np.float32)
    return w


def save(model, path, check=True):
    if check:
        onnx.checker.check_model(model)
    onnx.save(model, path)


def cmd_make(args):
    os.makedirs(args.outdir, exist_ok=True)
    rng = np.random.default_rng(99)
    x = rng.uniform(-1.5, 2.5, size=(args.images, 3, args.size, args.size)).astype(np.float32)
    x.tofile(os.path.join(args.outdir, 'input.f32'))
    w = seeded_weights()
    fp32 = Net(w, size=args.size).build()
    save(fp32, os.path.join(args.outdir, 'fp32.onnx'))
    vals, _ = run_reference(fp32, {'input': x})
    ranges = {k: (float(v.min()), float(v.max())) for k, v in vals.items() if isinstance(v, np.ndarray)}
    manifest = {'shape': list(x.shape), 'models': {'fp32': 'FP32 reference network (seeded weights)'}}
    for name, (desc, over) in VARIANTS.items():
        cfg = dict(BASE_CFG, **over)
        m = Net(w, cfg, ranges, size=args.size).build()
        save(m, os.path.join(args.outdir, name + '.onnx'), check=cfg['opset'] <= 17)
        manifest['models'][name] = desc
    with open(os.path.join(args.outdir, 'manifest.json'), 'w') as f:
        json.dump(manifest, f, indent=1)
    print(f'make_test_qdq: {len(manifest["models"])} models, input {list(x.shape)} -> {args.outdir}')


def cmd_check(args):
    model = onnx.load(args.model)
    if args.shape:
        shape = [int(d) for d in args.shape.split(',')]
    else:
        d = model.graph.input[0].type.tensor_type.shape.dim
        shape = [-1] + [di.dim_value for di in d[1:]]
    x = np.fromfile(args.input, dtype='<f4')
    per = int(np.prod(shape[1:]))
    x = x.reshape([x.size // per] + shape[1:])
    vals, _ = run_reference(model, {model.graph.input[0].name: x})
    out_name = model.graph.output[0].name
    ref = vals[out_name].astype(np.float32)
    got = np.fromfile(args.ort, dtype='<f4')
    res = {'model': os.path.basename(args.model), 'images': int(x.shape[0])}
    if got.size != ref.size:
        res.update(ok=False, error=f'ORT output has {got.size} floats, reference {ref.size}')
    else:
        got = got.reshape(ref.shape)
        diff = np.abs(got - ref)
        res['max_abs_diff'] = float(diff.max())
        res['max_rel_diff'] = float(diff.max() / max(np.abs(ref).max(), 1e-30))
        res['top1_agree'] = float(np.mean(got.argmax(1) == ref.argmax(1))) if ref.ndim == 2 else None
        # output quantization step: scale of the DequantizeLinear that produces the output, if any
        step = None
        for n in model.graph.node:
            if n.output[0] == out_name and n.op_type == 'DequantizeLinear':
                init = {t.name: t for t in model.graph.initializer}
                step = float(tensor_to_array(init[n.input[1]])[0].reshape(-1)[0])
        if step:
            st = np.rint(diff / step)
            res['out_scale'] = step
            res['max_diff_steps'] = int(st.max())
            res['frac_exact'] = float(np.mean(st == 0))
            res['frac_within_1_step'] = float(np.mean(st <= 1))
            res['ok'] = bool(st.max() <= args.tol_steps)
        else:
            res['ok'] = bool(res['max_rel_diff'] <= args.tol_rel)
    if args.json:
        print(json.dumps(res))
    else:
        print(' '.join(f'{k}={v}' for k, v in res.items()))
    return 0 if res.get('ok') else 1


def cmd_bigconv(args):
    """Conv stacks for timing: ResNet-50 shaped layers, batch symbolic."""
    os.makedirs(args.outdir, exist_ok=True)
    rng = np.random.default_rng(7)
    # (name, input CxHxW, layers: (cout, k, stride)) - each layer Conv + ReLU
    stacks = {
        'big56': (256, 56, [(64, 1, 1), (64, 3, 1), (256, 1, 1), (64, 1, 1), (64, 3, 1), (256, 1, 1)]),
        'big28': (128, 28, [(128, 3, 1), (128, 3, 1), (128, 3, 1), (128, 3, 1)]),
    }
    for sname, (cin, hw, layers) in stacks.items():
        macs = 0
        for quant in (False, True):
            nodes, inits = [], []
            xname = 'input'
            c, h = cin, hw
            ql = {'scale': 4.0 / 255}
            if quant:
                inits += [make_tensor('in_s', np.float32(ql['scale']), TensorProto.FLOAT),
                          make_tensor('in_z', np.array(0), TensorProto.UINT8)]
                nodes += [helper.make_node('QuantizeLinear', ['input', 'in_s', 'in_z'], ['in_q']),
                          helper.make_node('DequantizeLinear', ['in_q', 'in_s', 'in_z'], ['in_dq'])]
                xname = 'in_dq'
            for i, (cout, k, st) in enumerate(layers):
                W = (rng.standard_normal((cout, c, k, k)) * np.sqrt(2.0 / (c * k * k))).astype(np.float32)
                b = (rng.standard_normal(cout) * 0.05).astype(np.float32)
                ho = (h + 2 * (k // 2) - k) // st + 1
                macs += cout * c * k * k * ho * ho if not quant else 0
                wn, bn = f'w{i}', f'b{i}'
                if quant:
                    ws = (np.abs(W).max(axis=(1, 2, 3)) / 127.0).astype(np.float32)
                    qw = np.clip(np.rint(W / ws[:, None, None, None]), -127, 127)
                    xs = ql['scale']
                    inits += [make_tensor(wn + 'q', qw, TensorProto.INT8), make_tensor(wn + 's', ws, TensorProto.FLOAT),
                              make_tensor(wn + 'z', np.zeros(cout), TensorProto.INT8),
                              make_tensor(bn + 'q', np.rint(b / (xs * ws)), TensorProto.INT32),
                              make_tensor(bn + 's', (xs * ws).astype(np.float32), TensorProto.FLOAT),
                              make_tensor(bn + 'z', np.zeros(cout), TensorProto.INT32)]
                    nodes += [helper.make_node('DequantizeLinear', [wn + 'q', wn + 's', wn + 'z'], [wn], axis=0),
                              helper.make_node('DequantizeLinear', [bn + 'q', bn + 's', bn + 'z'], [bn], axis=0)]
                else:
                    inits += [make_tensor(wn, W, TensorProto.FLOAT), make_tensor(bn, b, TensorProto.FLOAT)]
                nodes.append(helper.make_node('Conv', [xname, wn, bn], [f'conv{i}'], kernel_shape=[k, k],
                                              strides=[st, st], pads=[k // 2] * 4))
                nodes.append(helper.make_node('Relu', [f'conv{i}'], [f'relu{i}']))
                xname = f'relu{i}'
                if quant:
                    ys = 4.0 / 255  # He-init keeps the activations O(1)
                    ql['scale'] = ys
                    inits += [make_tensor(f'a{i}s', np.float32(ys), TensorProto.FLOAT),
                              make_tensor(f'a{i}z', np.array(0), TensorProto.UINT8)]
                    nodes += [helper.make_node('QuantizeLinear', [xname, f'a{i}s', f'a{i}z'], [f'a{i}q']),
                              helper.make_node('DequantizeLinear', [f'a{i}q', f'a{i}s', f'a{i}z'], [f'a{i}dq'])]
                    xname = f'a{i}dq'
                c, h = cout, ho
            nodes.append(helper.make_node('Identity', [xname], ['output']))
            graph = helper.make_graph(
                nodes, sname, [helper.make_tensor_value_info('input', TensorProto.FLOAT, ['N', cin, hw, hw])],
                [helper.make_tensor_value_info('output', TensorProto.FLOAT, ['N', c, h, h])], inits)
            m = helper.make_model(graph, opset_imports=[helper.make_opsetid('', 17)], producer_name='fgq')
            m.ir_version = 8
            save(m, os.path.join(args.outdir, f'{sname}_{"qdq" if quant else "fp32"}.onnx'))
            if not quant:
                mac_count = macs
        info = {'input_shape': [cin, hw, hw], 'macs_per_image': mac_count, 'layers': layers}
        with open(os.path.join(args.outdir, f'{sname}.json'), 'w') as f:
            json.dump(info, f)
        print(f'make_test_qdq: {sname}: {len(layers)} convs, {mac_count / 1e9:.3f} GMAC/image')



def fold_batchnorm(model):
    """Conv -> BatchNormalization (Conv output used only there) becomes one Conv with folded weights."""
    g = model.graph
    init = {t.name: t for t in g.initializer}
    consumers = {}
    for n in g.node:
        for i in n.input:
            consumers.setdefault(i, []).append(n)
    producer = {o: n for n in g.node for o in n.output}
    drop, new_inits = set(), {}
    for bn in g.node:
        if bn.op_type != 'BatchNormalization':
            continue
        conv = producer.get(bn.input[0])
        if conv is None or conv.op_type != 'Conv' or len(consumers[conv.output[0]]) != 1:
            continue
        eps = _attrs(bn).get('epsilon', 1e-5)
        gamma, beta, mean, var = (numpy_helper.to_array(init[i]).astype(np.float64) for i in bn.input[1:5])
        W = numpy_helper.to_array(init[conv.input[1]]).astype(np.float64)
        b = numpy_helper.to_array(init[conv.input[2]]).astype(np.float64) if len(conv.input) > 2 and conv.input[2] \
            else np.zeros(W.shape[0])
        k = gamma / np.sqrt(var + eps)
        wname, bname = conv.input[1] + '_bnfold', conv.output[0] + '_bias_bnfold'
        new_inits[wname] = (W * k[:, None, None, None]).astype(np.float32)
        new_inits[bname] = ((b - mean) * k + beta).astype(np.float32)
        x = conv.input[0]
        del conv.input[:]
        conv.input.extend([x, wname, bname])
        conv.output[0] = bn.output[0]
        drop.add(id(bn))
    keep = [n for n in g.node if id(n) not in drop]
    del g.node[:]
    g.node.extend(keep)
    for k_, v in new_inits.items():
        g.initializer.append(numpy_helper.from_array(v, k_))
    used = {i for n in g.node for i in n.input}
    live = [t for t in g.initializer if t.name in used]
    del g.initializer[:]
    g.initializer.extend(live)
    return model


def quant_points(model):
    """Float tensors that get a Q/DQ pair, in graph order: (tensor, kind) with kind 'relu' (>= 0),
    'signed', or 'same:<tensor>' (MaxPool/Flatten: same parameters as their input)."""
    g = model.graph
    consumers = {}
    for n in g.node:
        for i in n.input:
            consumers.setdefault(i, []).append(n)
    points = [(g.input[0].name, 'signed')]
    for n in g.node:
        out = n.output[0]
        cons = consumers.get(out, [])
        if n.op_type in ('Conv', 'Add', 'Gemm'):
            if len(cons) == 1 and cons[0].op_type == 'Relu':
                continue  # quantized after the Relu
            points.append((out, 'signed'))
        elif n.op_type == 'Relu':
            points.append((out, 'relu'))
        elif n.op_type == 'GlobalAveragePool':
            points.append((out, 'relu' if _all_nonneg_source(n, g) else 'signed'))
        elif n.op_type in ('MaxPool', 'Flatten', 'Reshape'):
            points.append((out, 'same:' + n.input[0]))
    return points


def _all_nonneg_source(node, graph):
    producer = {o: n for n in graph.node for o in n.output}
    p = producer.get(node.input[0])
    return p is not None and p.op_type == 'Relu'


def cmd_qdqify(args):
    import subprocess
    import tempfile
    model = fold_batchnorm(onnx.load(args.model))
    if args.fp32_out:
        onnx.save(model, args.fp32_out)
    points = quant_points(model)
    # Calibration: every quantization point becomes an extra graph output, ORT computes them.
    calib_model = onnx.ModelProto()
    calib_model.CopyFrom(model)
    have = {o.name for o in calib_model.graph.output}
    for t, _ in points:
        if t not in have and t != model.graph.input[0].name:
            calib_model.graph.output.append(helper.make_tensor_value_info(t, TensorProto.FLOAT, None))
    tmp = tempfile.mkdtemp(prefix='qdqify_')
    cpath = os.path.join(tmp, 'calib.onnx')
    onnx.save(calib_model, cpath)
    in_dims = [d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim[1:]]
    shape = ','.join(['-1'] + [str(d) for d in in_dims])
    here = os.path.dirname(os.path.abspath(__file__))
    try:
        subprocess.run(['node', os.path.join(here, 'ort_run.js'), '--model', cpath, '--input', args.calib, '--shape',
                        shape, '--batch', '8', '--output-stats', os.path.join(tmp, 'stats.json')], check=True)
        stats = json.load(open(os.path.join(tmp, 'stats.json')))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    x = np.fromfile(args.calib, dtype='<f4')
    ranges = {model.graph.input[0].name: (float(x.min()), float(x.max()))}
    for name, st in stats.items():
        ranges[name] = (st['min'], st['max'])
    qparams = {}
    for t, kind in points:
        if kind.startswith('same:'):
            qparams[t] = qparams[kind[5:]]
            continue
        lo, hi = ranges[t]
        if kind == 'relu':
            qparams[t] = (max(hi, 1e-8) / 255.0, 0)
        else:
            lo, hi = min(lo, 0.0), max(hi, 0.0)
            s = max(hi - lo, 1e-8) / 255.0
            qparams[t] = (s, int(np.clip(round(-lo / s), 0, 255)))
    # Rewrite: Q/DQ after every point, weights/biases quantized.
    g = model.graph
    init = {t.name: t for t in g.initializer}
    out_names = {o.name for o in g.output}
    new_nodes, new_inits = [], []
    dq_of = {}

    def add_qdq(t):
        s, zp = qparams[t]
        tag = t.replace('/', '_')
        new_inits.extend([numpy_helper.from_array(np.array(s, np.float32), tag + '_scale'),
                          numpy_helper.from_array(np.array(zp, np.uint8), tag + '_zp')])
        is_out = t in out_names
        src = t + '_float' if is_out else t
        new_nodes.append(helper.make_node('QuantizeLinear', [src, tag + '_scale', tag + '_zp'], [tag + '_q'],
                                          name=tag + '_Q'))
        new_nodes.append(helper.make_node('DequantizeLinear', [tag + '_q', tag + '_scale', tag + '_zp'],
                                          [t if is_out else tag + '_dq'], name=tag + '_DQ'))
        dq_of[t] = t if is_out else tag + '_dq'
        return src

    point_set = {t for t, _ in points}
    if g.input[0].name in point_set:
        add_qdq(g.input[0].name)
    for n in g.node:
        n = copy_node(n)
        # inputs: activations through their DQ, weights/biases quantized
        for i, name in enumerate(list(n.input)):
            if name in dq_of:
                n.input[i] = dq_of[name]
        if n.op_type in ('Conv', 'Gemm'):
            x_s = qparams[_point_of(n.input[0], dq_of)][0]
            W = numpy_helper.to_array(init[n.input[1]]).astype(np.float32)
            axis = 0
            if n.op_type == 'Gemm' and not _attrs(n).get('transB', 0):
                axis = 1
            red = tuple(i for i in range(W.ndim) if i != axis)
            ws = (np.maximum(np.abs(W).max(axis=red), 1e-12) / 127.0).astype(np.float32)
            shp = [1] * W.ndim
            shp[axis] = -1
            qw = np.clip(np.rint(W / ws.reshape(shp)), -127, 127).astype(np.int8)
            wt = n.input[1].replace('/', '_')
            new_inits.extend([numpy_helper.from_array(qw, wt + '_q'), numpy_helper.from_array(ws, wt + '_scale'),
                              numpy_helper.from_array(np.zeros(ws.shape, np.int8), wt + '_zp')])
            new_nodes.append(helper.make_node('DequantizeLinear', [wt + '_q', wt + '_scale', wt + '_zp'],
                                              [wt + '_dq'], axis=axis, name=wt + '_DQ'))
            n.input[1] = wt + '_dq'
            if len(n.input) > 2 and n.input[2]:
                b = numpy_helper.to_array(init[n.input[2]]).astype(np.float64)
                bs = (np.float32(x_s) * ws).astype(np.float32)
                qb = np.clip(np.rint(b / bs), -2**31, 2**31 - 1).astype(np.int32)
                bt = n.input[2].replace('/', '_')
                new_inits.extend([numpy_helper.from_array(qb, bt + '_q'), numpy_helper.from_array(bs, bt + '_scale'),
                                  numpy_helper.from_array(np.zeros(bs.shape, np.int32), bt + '_zp')])
                new_nodes.append(helper.make_node('DequantizeLinear', [bt + '_q', bt + '_scale', bt + '_zp'],
                                                  [bt + '_dq'], axis=0, name=bt + '_DQ'))
                n.input[2] = bt + '_dq'
        out = n.output[0]
        if out in point_set and out in out_names:
            n.output[0] = out + '_float'
        new_nodes.append(n)
        if out in point_set:
            add_qdq(out)
    weights = {i for n in g.node if n.op_type in ('Conv', 'Gemm') for i in n.input[1:]}
    keep_inits = [t for t in g.initializer if t.name not in weights]
    del g.node[:]
    g.node.extend(new_nodes)
    del g.initializer[:]
    g.initializer.extend(keep_inits + new_inits)
    model.producer_name = 'fgq make_test_qdq.py qdqify'
    onnx.checker.check_model(model)
    onnx.save(model, args.out)
    print(f'make_test_qdq: {args.out}: {len(points)} activation Q/DQ pairs, '
          f'{sum(1 for n in g.node if n.op_type in ("Conv", "Gemm"))} quantized Conv/Gemm')


def copy_node(n):
    c = onnx.NodeProto()
    c.CopyFrom(n)
    return c


def _point_of(dq_name, dq_of):
    for t, d in dq_of.items():
        if d == dq_name:
            return t
    raise KeyError(f'{dq_name} is not a DequantizeLinear output')



def count_macs(model_path):
    """MACs per image of Conv, Gemm and MatMul nodes (batch dimension set to 1, shapes inferred by onnx)."""
    m = onnx.load(model_path)
    for vi in list(m.graph.input) + list(m.graph.output):
        d = vi.type.tensor_type.shape.dim
        if d and not d[0].dim_value:
            d[0].dim_value = 1
    m = onnx.shape_inference.infer_shapes(m)
    shapes = {}
    for vi in list(m.graph.value_info) + list(m.graph.input) + list(m.graph.output):
        shapes[vi.name] = [d.dim_value for d in vi.type.tensor_type.shape.dim]
    for t in m.graph.initializer:
        shapes[t.name] = list(t.dims)
    total, per_op = 0, {}
    for n in m.graph.node:
        if n.op_type == 'Conv':
            w = shapes[n.input[1]]
            out = shapes.get(n.output[0])
            if not out or not w:
                raise ValueError(f'no shape for {n.output[0]}')
            macs = int(np.prod(out)) * int(np.prod(w[1:]))
        elif n.op_type in ('Gemm', 'MatMul'):
            a = shapes[n.input[0]]
            k = a[-1] if not _attrs(n).get('transA', 0) else a[-2]
            out = shapes[n.output[0]]
            macs = int(np.prod(out)) * k
        else:
            continue
        total += macs
        per_op[n.op_type] = per_op.get(n.op_type, 0) + macs
    return total, per_op


def cmd_macs(args):
    total, per_op = count_macs(args.model)
    print(json.dumps({'model': os.path.basename(args.model), 'macs_per_image': total, 'gmac_per_image': total / 1e9,
                      'per_op': per_op}))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest='cmd', required=True)
    p = sub.add_parser('make')
    p.add_argument('outdir')
    p.add_argument('--images', type=int, default=16)
    p.add_argument('--size', type=int, default=32)
    p = sub.add_parser('check')
    p.add_argument('model')
    p.add_argument('input')
    p.add_argument('ort')
    p.add_argument('--shape')
    p.add_argument('--tol-steps', type=int, default=2, help='QDQ: allowed difference in output steps')
    p.add_argument('--tol-rel', type=float, default=1e-4, help='FP32: allowed max |diff| / max |ref|')
    p.add_argument('--json', action='store_true')
    p = sub.add_parser('bigconv')
    p.add_argument('outdir')
    p = sub.add_parser('macs')
    p.add_argument('model')
    p = sub.add_parser('qdqify')
    p.add_argument('model')
    p.add_argument('out')
    p.add_argument('--calib', required=True)
    p.add_argument('--fp32-out')
    sub.add_parser('variants')
    args = ap.parse_args()
    if args.cmd == 'make':
        cmd_make(args)
    elif args.cmd == 'check':
        sys.exit(cmd_check(args))
    elif args.cmd == 'bigconv':
        cmd_bigconv(args)
    elif args.cmd == 'macs':
        cmd_macs(args)
    elif args.cmd == 'qdqify':
        cmd_qdqify(args)
    else:
        for k, (d, o) in VARIANTS.items():
            print(f'{k:20s} {d}')


if __name__ == '__main__':
    main()
