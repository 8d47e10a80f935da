#!/usr/bin/env node
// Runs an ONNX model with ONNX Runtime (npm onnxruntime-node, CPU EP), independent of fgq.
// Install ORT first: scripts/ort/install_ort.sh (it goes to ${FGQ_ORT_DIR:-<repo>/models/.cache/ort}).
//
//   node scripts/ort/ort_run.js --model M.onnx --input in.f32 --shape 8,3,224,224 [--batch 4] --output out.f32
//   node scripts/ort/ort_run.js --model M.onnx --bench --batch 8 [--input in.f32 --shape ...] [--warmup 3 --reps 10]
//   node scripts/ort/ort_run.js --model M.onnx --info [--dump-optimized opt.onnx] [--list-nodes]
//
// Input: raw little-endian float32, NCHW (or whatever the model's first input is), the whole file's shape
// given by --shape; its first dimension may be -1 (taken from the file size). --batch B runs the file in
// chunks of B along dim 0 (the last chunk may be smaller: the model needs a symbolic batch dimension).
// Output: the first model output (or --output-name) of every chunk, concatenated, as raw float32.
// --bench: W warm-up + R timed runs of one batch of B (the file's first B images, or seeded random data
// when there is no --input) and one JSON line: median/min/mean ms, img/s, the median CPU time of the
// process per run (all threads; includes ORT's spin-waiting unless session.intra_op.allow_spinning=0)
// and the 1-minute load average (the figures are only meaningful on an otherwise idle machine).
// Session: CPU EP, graphOptimizationLevel --opt (default all), intraOpNumThreads --threads (default 2),
// interOpNumThreads 1, executionMode sequential.
//
// Options:
//   --model PATH            ONNX model (required)
//   --input PATH            raw float32 input file
//   --shape D0,D1,...       shape of the whole input file (-1 for dim 0 = from file size)
//   --input-name NAME       model input to feed (default: the first one; every input must be fed)
//   --batch B               images per run (default: all of the file; for --bench: 1)
//   --output PATH           write the output (first one, or --output-name) as raw float32
//   --output-name NAME      which output to write (default: the first one)
//   --save-outputs DIR      write every model output to DIR/<index>.f32 (raw float32, all chunks
//                           concatenated) and DIR/index.json {name: {file, shape, type}}; with a model
//                           whose intermediate tensors were made graph outputs this dumps every layer
//   --output-stats PATH     per model output, over all chunks: min, max, mean, rms -> PATH (JSON)
//   --threads T             intraOpNumThreads (default 2)
//   --opt LEVEL             disabled | basic | extended | layout | all (default all)
//   --config KEY=VALUE      session config entry (repeatable), e.g. session.disable_quant_qdq=1,
//                           session.qdq_is_int8_allowed=1, session.set_denormal_as_zero=1
//   --free-dim NAME=VALUE   freeDimensionOverrides (repeatable)
//   --bench                 time the model, print a JSON line
//   --warmup W              warm-up runs (default 3)
//   --reps R                timed runs (default 10)
//   --info                  print ORT version, execution providers, inputs/outputs and (with
//                           --dump-optimized) the op types of the optimized graph
//   --dump-optimized PATH   save the graph ORT runs (sessionOptions.optimizedModelFilePath)
//   --list-nodes            with --dump-optimized: also list every node of the optimized graph
//   --profile PREFIX        ORT profiling: writes PREFIX_<date>.json, prints time per op type
//   --json                  with --info: one JSON line instead of text
//   --log-level N           ORT log severity 0..4 (default 3 = error)
'use strict';

const fs = require('fs');
const os = require('os');
const path = require('path');

function loadOrt() {
  const root = path.resolve(__dirname, '..', '..');
  const dir = process.env.FGQ_ORT_DIR || path.join(root, 'models', '.cache', 'ort');
  const candidates = [path.join(dir, 'node_modules', 'onnxruntime-node'), 'onnxruntime-node'];
  for (const c of candidates) {
    try {
      return require(c);
    } catch (e) {
      if (e.code !== 'MODULE_NOT_FOUND') throw e;
    }
  }
  die(`onnxruntime-node not found in ${dir} (run scripts/ort/install_ort.sh)`);
}

function die(msg) {
  console.error(`ort_run: ${msg}`);
  process.exit(2);
}

function parseArgs(argv) {
  const a = {
    threads: 2, opt: 'all', warmup: 3, reps: 10, config: [], freeDim: [], logLevel: 3,
    bench: false, info: false, listNodes: false, json: false,
  };
  const need = (i) => {
    if (i + 1 >= argv.length) die(`${argv[i]} needs a value`);
    return argv[i + 1];
  };
  for (let i = 0; i < argv.length; i++) {
    let k = argv[i];
    let v;
    const eq = k.indexOf('=');
    if (k.startsWith('--') && eq > 0) {
      v = k.slice(eq + 1);
      k = k.slice(0, eq);
    }
    const val = () => (v !== undefined ? v : (i++, need(i - 1)));
    switch (k) {
      case '--model': a.model = val(); break;
      case '--input': a.input = val(); break;
      case '--shape': a.shape = val().split(/[,x]/).map(Number); break;
      case '--input-name': a.inputName = val(); break;
      case '--batch': a.batch = parseInt(val(), 10); break;
      case '--output': a.output = val(); break;
      case '--output-name': a.outputName = val(); break;
      case '--save-outputs': a.saveOutputs = val(); break;
      case '--output-stats': a.outputStats = val(); break;
      case '--threads': a.threads = parseInt(val(), 10); break;
      case '--opt': a.opt = val(); break;
      case '--config': a.config.push(val()); break;
      case '--free-dim': a.freeDim.push(val()); break;
      case '--bench': a.bench = true; break;
      case '--warmup': a.warmup = parseInt(val(), 10); break;
      case '--reps': a.reps = parseInt(val(), 10); break;
      case '--info': a.info = true; break;
      case '--dump-optimized': a.dumpOptimized = val(); break;
      case '--list-nodes': a.listNodes = true; break;
      case '--profile': a.profile = val(); break;
      case '--json': a.json = true; break;
      case '--log-level': a.logLevel = parseInt(val(), 10); break;
      case '-h': case '--help': {
        const src = fs.readFileSync(__filename, 'utf8').split('\n');
        console.log(src.slice(1, src.findIndex((l) => l.startsWith("'use strict'"))).map((l) => l.replace(/^\/\/ ?/, '')).join('\n'));
        process.exit(0);
      }
      // eslint-disable-next-line no-fallthrough
      default: die(`unknown argument ${argv[i]} (--help)`);
    }
  }
  if (!a.model) die('--model is required');
  if (a.input && !a.shape) die('--input needs --shape');
  if (!(a.threads >= 1)) die('--threads must be >= 1');
  if (a.batch !== undefined && !(a.batch >= 1)) die('--batch must be >= 1');
  if (!['disabled', 'basic', 'extended', 'layout', 'all'].includes(a.opt)) die(`bad --opt ${a.opt}`);
  return a;
}

// Nested {session: {disable_quant_qdq: "1"}} from "session.disable_quant_qdq=1" (the binding flattens
// sessionOptions.extra back into dotted config keys).
function extraFromConfig(entries) {
  const extra = {};
  for (const e of entries) {
    const eq = e.indexOf('=');
    if (eq <= 0) die(`--config wants KEY=VALUE, got ${e}`);
    const keys = e.slice(0, eq).split('.');
    let o = extra;
    for (const k of keys.slice(0, -1)) o = o[k] = o[k] || {};
    o[keys[keys.length - 1]] = e.slice(eq + 1);
  }
  return extra;
}

// ---- minimal protobuf reader: enough of onnx.proto to list the nodes of a ModelProto ----
function readVarint(buf, pos) {
  let lo = 0;
  let shift = 0;
  let b;
  do {
    b = buf[pos++];
    lo += (b & 0x7f) * 2 ** shift; // exact up to 2^53
    shift += 7;
  } while (b & 0x80);
  return [lo, pos];
}

function* fields(buf, start, end) {
  let pos = start;
  while (pos < end) {
    let key;
    [key, pos] = readVarint(buf, pos);
    const field = Math.floor(key / 8);
    const wt = key & 7;
    if (wt === 0) {
      let v;
      [v, pos] = readVarint(buf, pos);
      yield { field, wt, value: v };
    } else if (wt === 2) {
      let len;
      [len, pos] = readVarint(buf, pos);
      yield { field, wt, start: pos, end: pos + len };
      pos += len;
    } else if (wt === 1) {
      pos += 8;
    } else if (wt === 5) {
      pos += 4;
    } else {
      throw new Error(`protobuf wire type ${wt} not handled`);
    }
  }
}

function listModelNodes(file) {
  const buf = fs.readFileSync(file);
  const str = (f) => buf.toString('utf8', f.start, f.end);
  const nodes = [];
  const opsets = {};
  for (const f of fields(buf, 0, buf.length)) {
    if (f.field === 8 && f.wt === 2) { // opset_import
      let domain = '';
      let version = 0;
      for (const g of fields(buf, f.start, f.end)) {
        if (g.field === 1 && g.wt === 2) domain = str(g);
        if (g.field === 2 && g.wt === 0) version = g.value;
      }
      opsets[domain || 'ai.onnx'] = version;
    }
    if (f.field !== 7 || f.wt !== 2) continue; // graph
    for (const g of fields(buf, f.start, f.end)) {
      if (g.field !== 1 || g.wt !== 2) continue; // node
      const n = { op: '', domain: '', name: '', inputs: [], outputs: [] };
      for (const h of fields(buf, g.start, g.end)) {
        if (h.wt !== 2) continue;
        if (h.field === 1) n.inputs.push(str(h));
        else if (h.field === 2) n.outputs.push(str(h));
        else if (h.field === 3) n.name = str(h);
        else if (h.field === 4) n.op = str(h);
        else if (h.field === 7) n.domain = str(h);
      }
      nodes.push(n);
    }
  }
  return { nodes, opsets };
}

function opKey(n) {
  return n.domain && n.domain !== 'ai.onnx' ? `${n.domain}:${n.op}` : n.op;
}

function histogram(nodes) {
  const h = {};
  for (const n of nodes) h[opKey(n)] = (h[opKey(n)] || 0) + 1;
  return Object.fromEntries(Object.entries(h).sort((x, y) => y[1] - x[1] || (x[0] < y[0] ? -1 : 1)));
}

// ---- tensors ----
const typedArrays = {
  float32: Float32Array, float64: Float64Array, int8: Int8Array, uint8: Uint8Array, int16: Int16Array,
  uint16: Uint16Array, int32: Int32Array, uint32: Uint32Array, int64: BigInt64Array, uint64: BigUint64Array,
};

function readFloat32File(file, shape) {
  if (os.endianness() !== 'LE') die('big-endian host not supported');
  const buf = fs.readFileSync(file);
  if (buf.length % 4) die(`${file}: ${buf.length} bytes is not a whole number of float32`);
  const n = buf.length / 4;
  shape = shape.slice();
  const rest = shape.slice(1).reduce((p, d) => p * d, 1);
  if (shape[0] === -1) {
    if (n % rest) die(`${file}: ${n} floats is not a multiple of ${shape.slice(1).join('x')}`);
    shape[0] = n / rest;
  }
  if (shape.some((d) => !(d >= 1))) die(`bad --shape ${shape}`);
  if (shape[0] * rest !== n) die(`${file}: ${n} floats, --shape ${shape.join(',')} wants ${shape[0] * rest}`);
  const data = buf.byteOffset % 4 === 0 ? new Float32Array(buf.buffer, buf.byteOffset, n)
    : new Float32Array(new Uint8Array(buf).buffer);
  return { data, shape, per: rest };
}

// Deterministic uniform [-1, 1) data for --bench without --input (xorshift32).
function seededData(n, seed = 12345) {
  const out = new Float32Array(n);
  let s = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    s ^= s << 13; s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5; s >>>= 0;
    out[i] = (s / 4294967296) * 2 - 1;
  }
  return out;
}

function toFloat32(t) {
  if (t.type === 'float32') return t.data;
  if (!typedArrays[t.type]) die(`output type ${t.type} cannot be written as float32`);
  return Float32Array.from(t.data, Number);
}

function median(xs) {
  const s = xs.slice().sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

async function main() {
  const args = parseArgs(process.argv.slice(2));
  const ort = loadOrt();
  if (!fs.existsSync(args.model)) die(`${args.model}: no such file`);

  const opts = {
    executionProviders: ['cpu'],
    graphOptimizationLevel: args.opt,
    intraOpNumThreads: args.threads,
    interOpNumThreads: 1,
    executionMode: 'sequential',
    logSeverityLevel: args.logLevel,
  };
  if (args.config.length) opts.extra = extraFromConfig(args.config);
  if (args.freeDim.length) {
    opts.freeDimensionOverrides = {};
    for (const e of args.freeDim) {
      const [k, v] = e.split('=');
      opts.freeDimensionOverrides[k] = Number(v);
    }
  }
  if (args.dumpOptimized) opts.optimizedModelFilePath = path.resolve(args.dumpOptimized);
  if (args.profile) {
    opts.enableProfiling = true;
    opts.profileFilePrefix = args.profile;
  }

  const t0 = process.hrtime.bigint();
  const session = await ort.InferenceSession.create(args.model, opts);
  const loadMs = Number(process.hrtime.bigint() - t0) / 1e6;

  const inName = args.inputName || session.inputNames[0];
  if (!session.inputNames.includes(inName)) die(`model has no input ${inName} (${session.inputNames})`);
  if (session.inputNames.length > 1) die(`model has ${session.inputNames.length} inputs; only one is fed`);
  const outName = args.outputName || session.outputNames[0];
  if (!session.outputNames.includes(outName)) die(`model has no output ${outName} (${session.outputNames})`);

  if (args.info) {
    const info = {
      ort: ort.env.versions,
      execution_providers: opts.executionProviders,
    };
    try {
      // listSupportedBackends is exported by the binding, not by onnxruntime-common
      info.backends_available = ort.listSupportedBackends().map((b) => b.name + (b.bundled ? '' : ' (not bundled)'));
    } catch (e) { /* older bindings */ }
    info.session = {
      graphOptimizationLevel: opts.graphOptimizationLevel, intraOpNumThreads: opts.intraOpNumThreads,
      interOpNumThreads: opts.interOpNumThreads, executionMode: opts.executionMode, extra: opts.extra || {},
    };
    info.load_ms = +loadMs.toFixed(1);
    const meta = (m) => m.map((x) => ({ name: x.name, type: x.type, shape: x.shape }));
    info.inputs = session.inputMetadata ? meta(session.inputMetadata) : session.inputNames;
    info.outputs = session.outputMetadata ? meta(session.outputMetadata) : session.outputNames;
    if (args.dumpOptimized) {
      const g = listModelNodes(opts.optimizedModelFilePath);
      info.optimized_model = opts.optimizedModelFilePath;
      info.optimized_opsets = g.opsets;
      info.optimized_op_types = histogram(g.nodes);
      if (args.listNodes) info.optimized_nodes = g.nodes.map((n) => `${opKey(n)} ${n.name}: ${n.inputs.join(',')} -> ${n.outputs.join(',')}`);
    }
    if (args.json) {
      console.log(JSON.stringify(info));
    } else {
      console.log(`onnxruntime-node ${info.ort.node} (common ${info.ort.common}); EP ${info.execution_providers.join(',')}; ` +
        `available backends: ${(info.backends_available || []).join(', ')}`);
      console.log(`session: ${JSON.stringify(info.session)}; load ${info.load_ms} ms`);
      for (const x of info.inputs) console.log(`input  ${x.name || x}: ${x.type || ''} [${(x.shape || []).join(',')}]`);
      for (const x of info.outputs) console.log(`output ${x.name || x}: ${x.type || ''} [${(x.shape || []).join(',')}]`);
      if (info.optimized_model) {
        console.log(`optimized graph -> ${info.optimized_model} (opsets ${JSON.stringify(info.optimized_opsets)})`);
        console.log(`optimized op types: ${Object.entries(info.optimized_op_types).map(([k, c]) => `${k} x${c}`).join(', ')}`);
        if (info.optimized_nodes) for (const l of info.optimized_nodes) console.log(`  ${l}`);
      }
    }
  }

  // Input data, if any (needed for --output; optional for --bench).
  let input = null;
  if (args.input) input = readFloat32File(args.input, args.shape);

  if (args.output || args.saveOutputs || args.outputStats) {
    if (!input) die('--output/--save-outputs/--output-stats need --input and --shape');
    const total = input.shape[0];
    const B = args.batch || total;
    const fetch = args.saveOutputs || args.outputStats ? session.outputNames : [outName];
    const stats = {};
    const fd = args.output ? fs.openSync(args.output, 'w') : null;
    const saved = {};
    if (args.saveOutputs) {
      fs.mkdirSync(args.saveOutputs, { recursive: true });
      session.outputNames.forEach((n, i) => {
        saved[n] = { file: `${String(i).padStart(4, '0')}.f32`, shape: null, type: null };
        saved[n].fd = fs.openSync(path.join(args.saveOutputs, saved[n].file), 'w');
      });
    }
    for (let s = 0; s < total; s += B) {
      const b = Math.min(B, total - s);
      const data = input.data.subarray(s * input.per, (s + b) * input.per);
      const feeds = { [inName]: new ort.Tensor('float32', data, [b, ...input.shape.slice(1)]) };
      const res = await session.run(feeds, fetch);
      const write = (f, t) => {
        const out = toFloat32(t);
        fs.writeSync(f, Buffer.from(out.buffer, out.byteOffset, out.byteLength));
      };
      if (fd !== null) write(fd, res[outName]);
      if (args.outputStats) {
        for (const n of fetch) {
          const d = toFloat32(res[n]);
          const st = stats[n] || (stats[n] = { min: Infinity, max: -Infinity, sum: 0, sumsq: 0, count: 0 });
          for (let i = 0; i < d.length; i++) {
            const v = d[i];
            if (v < st.min) st.min = v;
            if (v > st.max) st.max = v;
            st.sum += v;
            st.sumsq += v * v;
          }
          st.count += d.length;
          st.shape = Array.from(res[n].dims);
        }
      }
      for (const n of Object.keys(saved)) {
        write(saved[n].fd, res[n]);
        const dims = Array.from(res[n].dims);
        if (saved[n].shape === null) saved[n].shape = dims;
        else if (dims.length) saved[n].shape[0] += dims[0];
        saved[n].type = res[n].type;
      }
      if (s === 0) console.error(`ort_run: ${outName} [${res[outName].dims}] per batch of ${b}`);
    }
    if (fd !== null) fs.closeSync(fd);
    if (args.saveOutputs) {
      for (const n of Object.keys(saved)) {
        fs.closeSync(saved[n].fd);
        delete saved[n].fd;
      }
      fs.writeFileSync(path.join(args.saveOutputs, 'index.json'), JSON.stringify(saved, null, 1));
    }
    if (args.outputStats) {
      const out = {};
      for (const [n, st] of Object.entries(stats)) {
        out[n] = { min: st.min, max: st.max, mean: st.sum / st.count, rms: Math.sqrt(st.sumsq / st.count),
          count: st.count, batch_shape: st.shape };
      }
      fs.writeFileSync(args.outputStats, JSON.stringify(out, null, 1));
    }
    console.error(`ort_run: ${total} images in batches of ${B} -> ${[args.output, args.saveOutputs, args.outputStats].filter(Boolean).join(', ')}`);
  }

  if (args.bench) {
    const B = args.batch || 1;
    let data;
    let dims;
    if (input) {
      if (input.shape[0] < B) die(`--bench --batch ${B}: the input file has only ${input.shape[0]} images`);
      data = input.data.subarray(0, B * input.per);
      dims = [B, ...input.shape.slice(1)];
    } else {
      const m = session.inputMetadata ? session.inputMetadata.find((x) => x.name === inName) : null;
      if (!m || !m.shape) die('--bench without --input needs the model input shape (or give --input/--shape)');
      dims = m.shape.map((d, i) => (typeof d === 'number' && d > 0 ? d : (i === 0 ? B : die(`input dim ${i} is symbolic (${d}); give --input/--shape`))));
      if (dims[0] !== B) die(`the model's batch dimension is fixed at ${dims[0]}; use --batch ${dims[0]}`);
      data = seededData(dims.reduce((p, d) => p * d, 1));
    }
    const feeds = { [inName]: new ort.Tensor('float32', data, dims) };
    for (let i = 0; i < args.warmup; i++) await session.run(feeds, [outName]);
    const times = [];
    const cpu = [];
    for (let i = 0; i < args.reps; i++) {
      const c = process.cpuUsage();
      const t = process.hrtime.bigint();
      await session.run(feeds, [outName]);
      times.push(Number(process.hrtime.bigint() - t) / 1e6);
      const d = process.cpuUsage(c);
      cpu.push((d.user + d.system) / 1e3);
    }
    const med = median(times);
    const min = Math.min(...times);
    const mean = times.reduce((p, x) => p + x, 0) / times.length;
    console.log(JSON.stringify({
      model: path.basename(args.model), ort: ort.env.versions.node, batch: B, input_shape: dims,
      threads: args.threads, opt: args.opt, config: args.config, warmup: args.warmup, reps: args.reps,
      median_ms: +med.toFixed(3), min_ms: +min.toFixed(3), mean_ms: +mean.toFixed(3),
      cpu_ms_median: +median(cpu).toFixed(3), load_avg_1min: +os.loadavg()[0].toFixed(2),
      img_s: +(B * 1000 / med).toFixed(2), img_s_best: +(B * 1000 / min).toFixed(2), load_ms: +loadMs.toFixed(1),
    }));
  }

  if (args.profile) {
    session.endProfiling();
    summarizeProfile(args.profile);
  }
  await session.release();
}

// Sums the kernel times of ORT's profile (chrome trace JSON) per op type and EP.
function summarizeProfile(prefix) {
  const dir = path.dirname(path.resolve(prefix));
  const base = path.basename(prefix);
  const files = fs.readdirSync(dir).filter((f) => f.startsWith(base) && f.endsWith('.json'))
    .map((f) => path.join(dir, f)).sort((x, y) => fs.statSync(y).mtimeMs - fs.statSync(x).mtimeMs);
  if (!files.length) {
    console.error(`ort_run: no profile file ${prefix}*.json`);
    return;
  }
  const ev = JSON.parse(fs.readFileSync(files[0], 'utf8'));
  const per = {};
  let runs = 0;
  let total = 0;
  for (const e of ev) {
    if (e.cat === 'Session' && e.name === 'model_run') runs++;
    if (e.cat !== 'Node' || !e.name.endsWith('_kernel_time')) continue;
    const k = `${e.args.op_name}@${(e.args.provider || '').replace('ExecutionProvider', '')}`;
    per[k] = per[k] || { us: 0, calls: 0 };
    per[k].us += e.dur;
    per[k].calls++;
    total += e.dur;
  }
  const rows = Object.entries(per).sort((a, b) => b[1].us - a[1].us);
  console.log(`profile ${files[0]}: ${runs} runs, kernel time ${(total / 1000).toFixed(1)} ms`);
  for (const [k, v] of rows) {
    console.log(`  ${k.padEnd(40)} ${(v.us / 1000).toFixed(2).padStart(10)} ms ${(100 * v.us / total).toFixed(1).padStart(5)} %  ${v.calls} calls`);
  }
}

main().catch((e) => {
  console.error(`ort_run: ${e && e.stack ? e.stack : e}`);
  process.exit(1);
});
