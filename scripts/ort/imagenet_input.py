#!/usr/bin/python3
"""ImageNet images -> raw float32 input for ort_run.js, and Top-1/Top-5 of its output.

  imagenet_input.py prep MODEL.onnx IMAGE_DIR OUT.f32 [--limit N] [--plain-resize] [--resize 256]
      decodes IMAGE_DIR/*.JPEG (sorted by name, the first N), preprocesses them as fgq does (the fgq.*
      metadata of MODEL: channel order, (x * pixel_scale - mean) / std, input size; bilinear resize
      straight to the input size with --plain-resize, else shorter side to --resize and a centre crop)
      and writes N x 3 x S x S float32 (NCHW) to OUT.f32 and the image names to OUT.f32.txt.
  imagenet_input.py top1 LOGITS.f32 NAMES.txt LABELS.txt [--classes 1000] [--json]
      Top-1/Top-5 of the logits (N x classes float32, ort_run.js --output) against val_labels.txt
      ("ILSVRC2012_val_00000001.JPEG 65" lines).

Decoding uses PIL (python3-pil); the resize is a numpy re-implementation of OpenCV's INTER_LINEAR
(half-pixel centres, no antialiasing, rounded to uint8), so pixels may differ from fgq's by 1 LSB here
and there: Top-1 agrees to within an image or two, not bit for bit. For bit-exact comparisons feed ORT
the float tensor fgq itself computed.
"""
import argparse
import json
import os
import sys

import numpy as np

TORCHVISION = {'fgq.channel_order': 'RGB', 'fgq.pixel_scale': str(1 / 255), 'fgq.mean': '0.485,0.456,0.406',
               'fgq.std': '0.229,0.224,0.225', 'fgq.input_size': '224'}


def model_preprocess(model_path):
    import onnx
    m = onnx.load(model_path, load_external_data=False)
    meta = dict(TORCHVISION)
    meta.update({p.key: p.value for p in m.metadata_props if p.key.startswith('fgq.')})
    return {
        'order': meta['fgq.channel_order'].upper(),
        'pixel_scale': float(meta['fgq.pixel_scale']),
        'mean': np.array([float(v) for v in meta['fgq.mean'].split(',')], np.float32),
        'std': np.array([float(v) for v in meta['fgq.std'].split(',')], np.float32),
        'size': int(meta['fgq.input_size']),
    }


def _linear_taps(n_in, n_out):
    scale = n_in / n_out
    f = (np.arange(n_out) + 0.5) * scale - 0.5
    i0 = np.floor(f).astype(np.int64)
    w1 = (f - i0).astype(np.float32)
    lo = i0 < 0
    w1[lo] = 0.0
    i0[lo] = 0
    hi = i0 >= n_in - 1
    i0[hi] = n_in - 1
    w1[hi] = 0.0
    i1 = np.minimum(i0 + 1, n_in - 1)
    return i0, i1, w1


def resize_linear(img, w, h):
    """OpenCV INTER_LINEAR (float arithmetic, rounded back to uint8)."""
    H, W = img.shape[:2]
    if (W, H) == (w, h):
        return img
    y0, y1, wy = _linear_taps(H, h)
    x0, x1, wx = _linear_taps(W, w)
    a = img.astype(np.float32)
    rows = a[y0] * (1 - wy)[:, None, None] + a[y1] * wy[:, None, None]
    out = rows[:, x0] * (1 - wx)[None, :, None] + rows[:, x1] * wx[None, :, None]
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def load(path, p, plain, resize):
    from PIL import Image
    with Image.open(path) as im:
        rgb = np.asarray(im.convert('RGB'))
    s = p['size']
    if plain:
        img = resize_linear(rgb, s, s)
    else:
        h, w = rgb.shape[:2]
        nw, nh = (resize, resize * h // w) if w <= h else (resize * w // h, resize)
        img = resize_linear(rgb, nw, nh)
        x0, y0 = int(np.rint((nw - s) / 2.0)), int(np.rint((nh - s) / 2.0))
        img = img[y0:y0 + s, x0:x0 + s]
    if p['order'] == 'BGR':
        img = img[:, :, ::-1]
    x = img.astype(np.float32) * (p['pixel_scale'] / p['std']) - p['mean'] / p['std']
    return np.ascontiguousarray(x.transpose(2, 0, 1), dtype=np.float32)


def cmd_prep(a):
    p = model_preprocess(a.model)
    names = sorted(f for f in os.listdir(a.images) if f.lower().endswith(('.jpeg', '.jpg', '.png')))
    if a.limit:
        names = names[:a.limit]
    if not names:
        sys.exit(f'imagenet_input: no images in {a.images}')
    with open(a.out, 'wb') as f:
        for n in names:
            load(os.path.join(a.images, n), p, a.plain_resize, a.resize).tofile(f)
    with open(a.out + '.txt', 'w') as f:
        f.write('\n'.join(names) + '\n')
    print(f"imagenet_input: {len(names)} images -> {a.out} (shape {len(names)},3,{p['size']},{p['size']}; "
          f"{p['order']}, scale {p['pixel_scale']:.6g}, mean {p['mean'].tolist()}, std {p['std'].tolist()})")


def cmd_top1(a):
    names = [ln.strip() for ln in open(a.names) if ln.strip()]
    labels = {}
    for ln in open(a.labels):
        parts = ln.split()
        if len(parts) >= 2:
            labels[parts[0]] = int(parts[1])
    logits = np.fromfile(a.logits, dtype='<f4').reshape(-1, a.classes)
    if len(logits) != len(names):
        sys.exit(f'imagenet_input: {len(logits)} logit rows, {len(names)} names')
    y = np.array([labels[n] for n in names])
    top5 = np.argsort(-logits, axis=1)[:, :5]
    t1 = int((top5[:, 0] == y).sum())
    t5 = int((top5 == y[:, None]).any(axis=1).sum())
    res = {'images': len(y), 'top1': t1 / len(y), 'top5': t5 / len(y), 'top1_count': t1, 'top5_count': t5,
           'pred': top5[:, 0].tolist() if a.json else None}
    if a.json:
        print(json.dumps(res))
    else:
        print(f"Top-1 {100 * res['top1']:.2f} % ({t1}/{len(y)})  Top-5 {100 * res['top5']:.2f} % ({t5}/{len(y)})")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest='cmd', required=True)
    p = sub.add_parser('prep')
    p.add_argument('model')
    p.add_argument('images')
    p.add_argument('out')
    p.add_argument('--limit', type=int, default=0)
    p.add_argument('--plain-resize', action='store_true')
    p.add_argument('--resize', type=int, default=256)
    p = sub.add_parser('top1')
    p.add_argument('logits')
    p.add_argument('names')
    p.add_argument('labels')
    p.add_argument('--classes', type=int, default=1000)
    p.add_argument('--json', action='store_true')
    a = ap.parse_args()
    cmd_prep(a) if a.cmd == 'prep' else cmd_top1(a)


if __name__ == '__main__':
    main()
