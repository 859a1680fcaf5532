"""bf16 against fp32 on this CPU: `npm run bench:bf16` (issue 18, item 3), with the pip torch 2.x of
`npm run test:libtorch2` (oneDNN's bf16 kernels are LibTorch 2.x's; TORCH2_PYTHON names another python).

For each part of a model folder (text_encoder.pth, head.pth: TorchScript, traced at fp32), batch 1, a fixed
thread count, interleaved rounds, medians and p95:
  fp32       the file as exported, frozen and optimised for inference, as the addon loads it;
  bf16       the same module's weights and inputs cast to bfloat16 (every operator in bf16);
  autocast   fp32 weights, run under torch.autocast("cpu", torch.bfloat16) (matrix products and
             convolutions in bf16, the rest in fp32), the way PyTorch's guide offers bf16 on CPUs.
It says which bf16 instructions the CPU has (avx512_bf16, amx_bf16 in /proc/cpuinfo): without them oneDNN
emulates bf16 with fp32 arithmetic and conversions, and bf16 can only be slower. The last line of stdout is
one JSON object with every figure.

    npm run bench:bf16 [-- --model DIR] [-- --threads 2] [-- --rounds 5] [-- --iters 10]
"""

import argparse
import json
import os
import platform
import statistics
import sys
import time

import torch

BF16_FLAGS = ("avx512_bf16", "amx_bf16", "amx_tile")


def cpu_description():
    model, flags = platform.processor() or "unknown", set()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key.strip() == "model name":
                    model = value.strip()
                elif key.strip() == "flags":
                    flags = set(value.split())
                    break
    except OSError:
        pass
    return model, [f for f in BF16_FLAGS if f in flags]


def part_inputs(part, model_json, vocab_size):
    """Seeded inputs at batch 1, shaped as model.json says the part takes them (token ids within the vocabulary)."""
    generator = torch.Generator().manual_seed(0)
    spec = model_json[part]["inputs"]
    out = []
    for item in spec:
        shape = [1 if d == -1 else d for d in item["shape"]]
        if item["dtype"] == "int64":
            ids = torch.randint(1, vocab_size, shape, generator=generator)
            if item["name"] == "attention_mask":
                ids = torch.ones(shape, dtype=torch.int64)
            out.append(ids)
        else:
            out.append(torch.randn(shape, generator=generator))
    return out


def timed(fn, iters):
    times = []
    for _ in range(iters):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1000)
    return times


def percentile(values, p):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, -(-len(ordered) * p // 100) - 1))]


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="models", help="a model folder with text_encoder.pth, head.pth, model.json")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--iters", type=int, default=10)
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    cpu, bf16_flags = cpu_description()
    with open(os.path.join(args.model, "model.json"), encoding="utf-8") as f:
        info = json.load(f)
    log = lambda m: print(m, file=sys.stderr, flush=True)  # noqa: E731
    log(
        f"torch {torch.__version__} (CPU capability {torch.backends.cpu.get_cpu_capability()}), {cpu}, "
        f"bf16 instructions: {', '.join(bf16_flags) or 'none (bf16 is emulated)'}; {args.threads} threads"
    )
    results = {
        "torch": torch.__version__,
        "cpu": cpu,
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "bf16_instructions": bf16_flags,
        "threads": args.threads,
        "model": os.path.abspath(args.model),
        "parts": {},
    }
    with torch.inference_mode():
        for part in ("text_encoder", "head"):
            module = torch.jit.load(os.path.join(args.model, info[part]["file"])).eval()
            with open(os.path.join(args.model, "vocab.txt"), encoding="utf-8") as f:
                vocab_size = sum(1 for _ in f)
            inputs = part_inputs(part, info, vocab_size)
            fp32 = torch.jit.optimize_for_inference(torch.jit.freeze(module))
            bf16_module = torch.jit.load(os.path.join(args.model, info[part]["file"])).eval().to(torch.bfloat16)
            bf16_inputs = [x.to(torch.bfloat16) if x.is_floating_point() else x for x in inputs]

            def run_autocast(module=module, inputs=inputs):
                with torch.autocast("cpu", dtype=torch.bfloat16):
                    return module(*inputs)

            variants = {
                "fp32": lambda fp32=fp32, inputs=inputs: fp32(*inputs),
                "bf16": lambda module=bf16_module, inputs=bf16_inputs: module(*inputs),
                "autocast": run_autocast,
            }
            reference = fp32(*inputs).float()
            errors, failed = {}, {}
            for name, fn in list(variants.items()):
                try:
                    for _ in range(2):
                        out = fn()  # warm-up (and the profiling runs of the JIT)
                except RuntimeError as e:  # a traced module's fp32 constants meet bf16 inputs
                    failed[name] = str(e).strip().splitlines()[-1][:200]
                    del variants[name]
                    continue
                errors[name] = float((out.float() - reference).abs().max() / (reference.abs().max() + 1e-12))
            times = {name: [] for name in variants}
            for _ in range(args.rounds):
                for name, fn in variants.items():
                    times[name] += timed(fn, args.iters)
            row = {name: {"failed": why} for name, why in failed.items()}
            for name in variants:
                row[name] = {
                    "p50_ms": round(statistics.median(times[name]), 3),
                    "p95_ms": round(percentile(times[name], 95), 3),
                    "max_rel_error_vs_fp32": round(errors[name], 5),
                }
                if name != "fp32":
                    row[name]["vs_fp32"] = round(row[name]["p50_ms"] / row["fp32"]["p50_ms"], 3)
            results["parts"][part] = row
            cells = [f"{part:12s} fp32 {row['fp32']['p50_ms']:8.2f} ms"]
            for name in ("bf16", "autocast"):
                r = row[name]
                cells.append(
                    f"{name} failed: {r['failed']}"
                    if "failed" in r
                    else f"{name} {r['p50_ms']:8.2f} ms ({r['vs_fp32']:.2f}x fp32, "
                    f"max rel. error {r['max_rel_error_vs_fp32']:.4f})"
                )
            log(" | ".join(cells))
    print(json.dumps(results))


if __name__ == "__main__":
    main()
