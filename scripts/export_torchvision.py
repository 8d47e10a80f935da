#!/usr/bin/python3
"""Export a torchvision classifier to ONNX the way the fgq runtime expects it.

Usage: export_torchvision.py ARCH OUT.onnx [--pretrained] [--seed N] [--verify]
  ARCH is a torchvision.models constructor name (resnet101, alexnet, ...).
  Without --pretrained the weights are random but reproducible (seeded): no pretrained weights
  can be downloaded on machines without internet. --pretrained loads torchvision's ImageNet
  weights, which needs internet access (download.pytorch.org) or a filled torch hub cache.
  --verify evaluates the written ONNX with the NumPy evaluator of verify_tfjs_onnx.py and
  compares it with PyTorch on a random input (slow for big networks: tens of seconds).

Output: opset 13, input "input" [N,3,224,224], output "logits" [N,1000], dynamic batch axis,
BatchNormalization kept as its own node (not folded into Conv: the runtime keeps BN parameters
for quantization), fgq.* metadata with torchvision's preprocessing.
"""
import argparse
import os
import sys
import warnings

import onnx
import torch
import torchvision
from onnx import helper

OPSET = 13
INPUT_SIZE = 224


def build_model(arch, pretrained, seed):
    constructor = getattr(torchvision.models, arch, None)
    if constructor is None or not callable(constructor):
        raise SystemExit(f"export_torchvision: torchvision {torchvision.__version__} has no model {arch!r}")
    torch.manual_seed(seed)
    if pretrained:
        try:
            model = constructor(weights="DEFAULT")
        except Exception as e:  # network errors come in many types
            raise SystemExit(f"export_torchvision: cannot load pretrained {arch} weights "
                             f"(needs internet access): {e}")
    else:
        model = constructor(weights=None)
        randomize_batchnorm(model, seed)
    return model.eval()


def randomize_batchnorm(model, seed):
    """Give BN layers distinct, data-consistent statistics.

    Fresh BN layers all hold mean 0 / var 1 / gamma 1 / beta 0; that is unrealistic for
    quantization experiments, and identical parameters get deduplicated by the exporter.
    Random affine parameters, then running statistics measured on random inputs in training
    mode, keep activations at a sane scale through a 100-layer network.
    """
    gen = torch.Generator().manual_seed(seed)
    bns = [m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    if not bns:
        return
    with torch.no_grad():
        for bn in bns:
            bn.weight.copy_(torch.rand(bn.num_features, generator=gen) * 0.5 + 0.5)
            bn.bias.copy_(torch.randn(bn.num_features, generator=gen) * 0.1)
            bn.reset_running_stats()
            bn.momentum = None  # cumulative average over the calibration batches
        model.train()
        for _ in range(2):
            model(torch.randn(4, 3, INPUT_SIZE, INPUT_SIZE, generator=gen))
    model.eval()


def export(model, out_path):
    dummy = torch.zeros(1, 3, INPUT_SIZE, INPUT_SIZE)
    with warnings.catch_warnings():
        # PRESERVE (with the model in eval mode) skips the Conv+BN fusion that EVAL applies;
        # torch then warns that constant folding may touch trainable parameters, which does not
        # apply to an eval-mode model.
        warnings.filterwarnings("ignore", message=".*constant folding be turned off.*")
        torch.onnx.export(model, dummy, out_path, opset_version=OPSET,
                          input_names=["input"], output_names=["logits"],
                          dynamic_axes={"input": {0: "N"}, "logits": {0: "N"}},
                          training=torch.onnx.TrainingMode.PRESERVE, do_constant_folding=True)


def add_metadata(path, arch, pretrained, seed):
    model = onnx.load(path)
    meta = {
        "fgq.channel_order": "RGB",
        "fgq.mean": "0.485,0.456,0.406",
        "fgq.std": "0.229,0.224,0.225",
        "fgq.pixel_scale": repr(1.0 / 255.0),
        "fgq.input_size": str(INPUT_SIZE),
        "fgq.class_order": "imagenet1k",
        "fgq.weights": "pretrained" if pretrained else "random",
        "fgq.source": f"torchvision {torchvision.__version__} {arch}",
    }
    if not pretrained:
        meta["fgq.seed"] = str(seed)
    helper.set_model_props(model, meta)
    onnx.checker.check_model(model)
    onnx.save(model, path)
    return model


def verify(model, onnx_model, seed):
    """Max relative difference between PyTorch and the NumPy ONNX evaluator on a random input."""
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from verify_tfjs_onnx import max_relative_error, onnx_forward

    x = torch.randn(2, 3, INPUT_SIZE, INPUT_SIZE, generator=torch.Generator().manual_seed(seed + 1))
    with torch.no_grad():
        want = model.double()(x.double()).numpy()
    model.float()
    return max_relative_error(onnx_forward(onnx_model, x.double().numpy()), want)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("arch")
    parser.add_argument("out")
    parser.add_argument("--pretrained", action="store_true",
                        help="torchvision ImageNet weights (needs internet)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--verify", action="store_true", help="check the ONNX against PyTorch")
    args = parser.parse_args(argv)

    model = build_model(args.arch, args.pretrained, args.seed)
    tmp = args.out + ".tmp"
    export(model, tmp)
    onnx_model = add_metadata(tmp, args.arch, args.pretrained, args.seed)
    os.replace(tmp, args.out)  # never leave a half-written model behind
    ops = sorted({n.op_type for n in onnx_model.graph.node})
    print(f"wrote {args.out}: {len(onnx_model.graph.node)} nodes, ops {','.join(ops)}")
    if args.verify:
        err = verify(model, onnx_model, args.seed)
        print(f"max relative error onnx (NumPy) vs PyTorch: {err:.3g}")
        if err > 1e-4:
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
