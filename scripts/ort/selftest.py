#!/usr/bin/python3
"""End-to-end check of the ORT scripts on models made by make_test_qdq.py.

  selftest.py [--dir DIR] [--threads 2] [--only qdq,fp32] [--keep-going]

For each model (fp32.onnx + every QDQ variant): runs ort_run.js on input.f32 with graph optimizations
'all' and 'disabled' (batch 5, so the last chunk is smaller), compares both output files with the numpy
reference (make_test_qdq.py check), and dumps the optimized graph at 'extended' and 'all' to report
which op types ORT runs. Prints one line per model and a Markdown table; writes DIR/selftest.json.
Exit status 1 if fp32 or qdq (the recommended QDQ form) disagrees with the reference or is not fused
into QLinearConv/QLinearAdd/QLinearGlobalAveragePool/QGemm. ORT must be installed (install_ort.sh).
"""
import argparse
import json
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
PY = '/usr/bin/python3'


def run(cmd):
    p = subprocess.run(cmd, capture_output=True, text=True)
    return p.returncode, p.stdout, p.stderr


def ort_run(*args):
    return run(['node', os.path.join(HERE, 'ort_run.js'), *args])


def first_error(err):
    lines = [ln for ln in err.strip().splitlines() if ln.strip()]
    for ln in lines:
        if 'Error' in ln or 'error' in ln or 'ort_run:' in ln and 'images in batches' not in ln and 'per batch' not in ln:
            return ln.strip()[:300]
    return (lines[-1] if lines else 'failed')[:300]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--dir', default=os.path.join(ROOT, 'models', '.cache', 'ort-selftest'))
    ap.add_argument('--threads', default='2')
    ap.add_argument('--only', help='comma-separated model names')
    args = ap.parse_args()

    rc, out, err = run([PY, os.path.join(HERE, 'make_test_qdq.py'), 'make', args.dir])
    if rc:
        sys.exit(f'selftest: make_test_qdq.py make failed:\n{err}')
    print(out.strip())
    manifest = json.load(open(os.path.join(args.dir, 'manifest.json')))
    shape = ','.join(['-1'] + [str(d) for d in manifest['shape'][1:]])
    inp = os.path.join(args.dir, 'input.f32')
    names = list(manifest['models'])
    if args.only:
        names = [n for n in names if n in args.only.split(',')]

    results = []
    for name in names:
        model = os.path.join(args.dir, name + '.onnx')
        r = {'model': name, 'desc': manifest['models'][name]}
        for level in ('all', 'disabled'):
            outf = os.path.join(args.dir, f'{name}.{level}.out')
            if os.path.exists(outf):
                os.remove(outf)
            rc, o, e = ort_run('--model', model, '--input', inp, '--shape', shape, '--batch', '5',
                               '--output', outf, '--opt', level, '--threads', args.threads)
            if rc:
                r[f'check_{level}'] = {'ok': False, 'error': first_error(e)}
                continue
            rc, o, e = run([PY, os.path.join(HERE, 'make_test_qdq.py'), 'check', model, inp, outf, '--json'])
            try:
                r[f'check_{level}'] = json.loads(o.strip().splitlines()[-1])
            except (ValueError, IndexError):
                r[f'check_{level}'] = {'ok': False, 'error': first_error(e)}
        for level in ('extended', 'all'):
            opt = os.path.join(args.dir, f'{name}.opt_{level}.onnx')
            rc, o, e = ort_run('--model', model, '--info', '--json', '--opt', level, '--dump-optimized', opt)
            if rc:
                r[f'ops_{level}'] = {'error': first_error(e)}
            else:
                r[f'ops_{level}'] = json.loads(o.strip().splitlines()[-1])['optimized_op_types']
        results.append(r)
        ca, cd = r.get('check_all', {}), r.get('check_disabled', {})

        def fmt(c):
            if 'error' in c:
                return 'ERROR ' + c['error']
            if 'max_diff_steps' in c:
                return f"{'ok' if c['ok'] else 'MISMATCH'} max {c['max_diff_steps']} steps, {100 * c['frac_exact']:.1f}% exact"
            return f"{'ok' if c['ok'] else 'MISMATCH'} max rel {c['max_rel_diff']:.1e}"
        ops = r['ops_extended']
        ops_s = ', '.join(f'{k} x{v}' for k, v in ops.items()) if 'error' not in ops else 'ERROR ' + ops['error']
        print(f"{name:20s} all: {fmt(ca)} | disabled: {fmt(cd)}\n{'':20s} extended: {ops_s}")

    with open(os.path.join(args.dir, 'selftest.json'), 'w') as f:
        json.dump(results, f, indent=1)

    print('\n| model | ORT all vs reference | ORT disabled vs reference | op types after optimization (extended) |')
    print('|---|---|---|---|')
    for r in results:
        def cell(c):
            if 'error' in c:
                return 'error: ' + c['error'].replace('|', '/')
            if 'max_diff_steps' in c:
                return f"{c['max_diff_steps']} steps max, {100 * c['frac_exact']:.1f}% exact"
            return f"rel {c['max_rel_diff']:.1e}"
        ops = r['ops_extended']
        ops_s = ', '.join(f'{k} x{v}' for k, v in ops.items()) if 'error' not in ops else 'error'
        print(f"| {r['model']} | {cell(r.get('check_all', {}))} | {cell(r.get('check_disabled', {}))} | {ops_s} |")

    bad = []
    by = {r['model']: r for r in results}
    for core in ('fp32', 'qdq'):
        if core not in by:
            continue
        for level in ('all', 'disabled'):
            if not by[core].get(f'check_{level}', {}).get('ok'):
                bad.append(f'{core} ({level}) disagrees with the reference')
    if 'qdq' in by:
        ops = by['qdq']['ops_extended']
        for want in ('QLinearConv', 'com.microsoft:QLinearAdd', 'com.microsoft:QLinearGlobalAveragePool',
                     'com.microsoft:QGemm'):
            if want not in ops:
                bad.append(f'qdq: no {want} after optimization')
        if 'Conv' in ops or 'DequantizeLinear' in ops and ops['DequantizeLinear'] > 1:
            bad.append('qdq: float Conv / DequantizeLinear left after optimization')
    for b in bad:
        print(f'selftest: FAIL {b}', file=sys.stderr)
    print(f"selftest: {len(results)} models, {'FAIL' if bad else 'ok'}")
    sys.exit(1 if bad else 0)


if __name__ == '__main__':
    main()
