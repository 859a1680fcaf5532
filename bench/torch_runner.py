"""The benchmark's Python torch runner: the same measurement as bench/native/floor.cc, with PyTorch.

  PYTHON bench/torch_runner.py --model FILE --inputs DIR [--threads 2] [--warmup 5] [--iters 30]
                               [--no-optimize] [--onednn]

PYTHON is an interpreter that has torch: Debian's /usr/bin/python3 (torch 1.13) or a venv with a pip torch
(/opt/torch2/bin/python); the `python3` first on PATH may have none. The model is loaded as the addon and
the floor load it: torch.jit.load on the CPU, eval, and torch.jit.optimize_for_inference (which freezes
first) unless --no-optimize; forwards run in torch.inference_mode with torch.set_num_threads(threads).
--onednn turns on oneDNN Graph (LLGA) fusion (torch.jit.enable_onednn_fusion) before loading, and fails
when this torch cannot; with it the model is only frozen (torch.jit.freeze), as the floor does and as
PyTorch's recipe for oneDNN Graph says, because the fuser fails on optimize_for_inference's graph. The
JSON's "optimization" says which: freeze+optimize_for_inference, freeze or none.

DIR holds spec.json, {"inputs": [{"name", "dtype", "shape", "file"}, ...]}, and one file of raw little-endian
C-contiguous data per input (float32, float64, int32, int64), read once with torch.frombuffer (no numpy:
the torch venv of npm run test:libtorch2 has none). Each timed
forward is measured with time.perf_counter. stdout gets one JSON line at the end, progress goes to stderr;
exit 1 on a model or input error, 2 on a usage error.
"""

import argparse
import json
import math
import os
import sys
import time

DTYPES = {"float32": "<f4", "float64": "<f8", "int32": "<i4", "int64": "<i8"}


class RunnerError(Exception):
    pass


def log(message):
    print(f"torch_runner: {message}", file=sys.stderr, flush=True)


def read_inputs(folder):
    import torch

    torch_dtypes = {"float32": torch.float32, "float64": torch.float64, "int32": torch.int32, "int64": torch.int64}
    spec_path = os.path.join(folder, "spec.json")
    try:
        with open(spec_path, encoding="utf-8") as f:
            spec = json.load(f)
    except OSError as e:
        raise RunnerError(f"cannot read {spec_path}: {e.strerror}") from None
    except ValueError as e:
        raise RunnerError(f"{spec_path}: invalid JSON: {e}") from None
    items = spec.get("inputs") if isinstance(spec, dict) else None
    if not isinstance(items, list):
        raise RunnerError(f'{spec_path}: expected {{"inputs": [{{"name", "dtype", "shape", "file"}}, ...]}}')
    if not items:
        raise RunnerError(f"{spec_path} lists no inputs")
    names, tensors = [], []
    for i, item in enumerate(items):
        where = f"{spec_path}: inputs[{i}]"
        if (
            not isinstance(item, dict)
            or not isinstance(item.get("dtype"), str)
            or not isinstance(item.get("shape"), list)
            or not isinstance(item.get("file"), str)
        ):
            raise RunnerError(f'{where} needs "dtype" (a string), "shape" (an array) and "file" (a string)')
        dtype, shape, file = item["dtype"], item["shape"], item["file"]
        name = item.get("name") if isinstance(item.get("name"), str) else f"input{i}"
        if dtype not in DTYPES:
            raise RunnerError(f"{where} has dtype '{dtype}'; expected float32, float64, int32 or int64")
        if not all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape):
            raise RunnerError(f"{where} has a shape that is not a list of non-negative integers")
        path = file if os.path.isabs(file) else os.path.join(folder, file)
        try:
            with open(path, "rb") as f:
                raw = bytearray(f.read())
        except OSError as e:
            raise RunnerError(f"cannot read {path}: {e.strerror}") from None
        count = math.prod(shape)
        itemsize = torch.empty((), dtype=torch_dtypes[dtype]).element_size()
        if len(raw) != count * itemsize:
            raise RunnerError(
                f"{path} holds {len(raw)} bytes, but {name} ({dtype}, {count} elements) needs {count * itemsize}"
            )
        if sys.byteorder != "little":
            raise RunnerError("the inputs are little-endian; this machine is not")
        data = (
            torch.frombuffer(raw, dtype=torch_dtypes[dtype]).reshape(shape)
            if count
            else torch.empty(shape, dtype=torch_dtypes[dtype])
        )
        names.append(name)
        tensors.append(data)
    return names, tensors


def first_tensor(output):
    import torch

    if isinstance(output, torch.Tensor):
        return output
    if isinstance(output, (tuple, list)) and output and isinstance(output[0], torch.Tensor):
        return output[0]
    if isinstance(output, dict) and output:
        value = next(iter(output.values()))
        if isinstance(value, torch.Tensor):
            return value
    raise RunnerError(f"the model returned {type(output).__name__}, with no tensor first")


def finite_or_none(value):
    return value if math.isfinite(value) else None


def run(args):
    import warnings

    # torch 2.x deprecates torch.jit (FutureWarning on every load/freeze): true, but noise on a benchmark's stderr.
    warnings.filterwarnings("ignore", category=FutureWarning, module=r"torch\.jit")
    import torch

    version = torch.__version__
    mkldnn = bool(torch.backends.mkldnn.is_available())
    if args.onednn:
        if not hasattr(torch.jit, "enable_onednn_fusion"):
            raise RunnerError(f"--onednn: torch {version} has no torch.jit.enable_onednn_fusion (needs torch 1.12+)")
        if not mkldnn:
            raise RunnerError(f"--onednn: torch {version} was built without MKLDNN/oneDNN")
        torch.jit.enable_onednn_fusion(True)
        if hasattr(torch.jit, "onednn_fusion_enabled") and not torch.jit.onednn_fusion_enabled():
            raise RunnerError(
                f"--onednn: torch {version} has no oneDNN Graph (LLGA) fuser "
                "(enable_onednn_fusion(True) left it off); use a torch that has it, such as a pip torch 2.x"
            )
    torch.set_num_threads(args.threads)

    names, inputs = read_inputs(args.inputs)
    start = time.perf_counter()
    try:
        model = torch.jit.load(args.model, map_location="cpu")
    except Exception as e:  # noqa: BLE001 - torch raises RuntimeError, ValueError, ... with its own message
        raise RunnerError(
            f"cannot load {args.model}: {str(e).strip().splitlines()[0] if str(e).strip() else e!r}"
        ) from None
    model.eval()
    if args.no_optimize:
        optimization = "none"
    elif args.onednn:
        # oneDNN Graph's recipe: freeze, then let the fuser work on the frozen graph. optimize_for_inference's
        # MKLDNN-prepacked graph makes the LLGA fuser fail (torch 2.15: "vector::_M_range_check").
        model = torch.jit.freeze(model)
        optimization = "freeze"
    else:
        model = torch.jit.optimize_for_inference(model)
        optimization = "freeze+optimize_for_inference"
    load_ms = (time.perf_counter() - start) * 1000
    model_names = [a.name for a in model.forward.schema.arguments[1:]]
    log(
        f"torch {version}, {args.threads} thread(s), {optimization}{', oneDNN Graph fusion' if args.onednn else ''}; "
        f"loaded in {load_ms:.1f} ms"
    )
    if len(model_names) != len(inputs):
        log(f"warning: the model's forward takes {len(model_names)} input(s), spec.json gives {len(inputs)}")
    for i, (given, expected) in enumerate(zip(names, model_names, strict=False)):
        if given != expected:
            log(
                f"warning: input {i} is '{given}' in spec.json but '{expected}' in the model "
                "(inputs are passed by position)"
            )

    times = []
    with torch.inference_mode():
        start = time.perf_counter()
        output = None
        for _ in range(args.warmup):
            output = model(*inputs)
        warmup_ms = (time.perf_counter() - start) * 1000
        for _ in range(args.iters):
            start = time.perf_counter()
            output = model(*inputs)
            times.append((time.perf_counter() - start) * 1000)
        out = first_tensor(output).detach().to("cpu")
        if out.is_mkldnn:
            out = out.to_dense()
        out = out.contiguous().to(torch.float64)
        output_sum = float(out.sum())
        output_first = [finite_or_none(v) for v in out.flatten()[:8].tolist()]
        output_shape = list(out.shape)
    median = sorted(times)[(len(times) - 1) // 2]
    log(f"warm-up {args.warmup} in {warmup_ms:.1f} ms; {args.iters} timed, median {median:.3f} ms")
    return {
        "runner": "python",
        "libtorch": version,
        "threads": torch.get_num_threads(),
        "optimized": optimization != "none",
        "optimization": optimization,
        "onednn": bool(args.onednn),
        "mkldnn": mkldnn,
        "warmup": args.warmup,
        "load_ms": load_ms,
        "times_ms": times,
        "output_sum": finite_or_none(output_sum),
        "output_first": output_first,
        "output_shape": output_shape,
    }


def positive_int(minimum):
    def parse(text):
        try:
            value = int(text)
        except ValueError:
            value = None
        if value is None or value < minimum:
            raise argparse.ArgumentTypeError(f"expected an integer >= {minimum}, got '{text}'")
        return value

    return parse


def main():
    parser = argparse.ArgumentParser(
        prog="torch_runner.py", description="Time a TorchScript model's forward with PyTorch."
    )
    parser.add_argument("--model", required=True, help="TorchScript file")
    parser.add_argument("--inputs", required=True, help="folder with spec.json and the inputs' raw files")
    parser.add_argument("--threads", type=positive_int(1), default=2)
    parser.add_argument("--warmup", type=positive_int(0), default=5)
    parser.add_argument("--iters", type=positive_int(1), default=30)
    parser.add_argument("--no-optimize", action="store_true", help="skip freeze + optimize_for_inference")
    parser.add_argument("--onednn", action="store_true", help="enable oneDNN Graph (LLGA) fusion")
    args = parser.parse_args()
    try:
        import torch  # noqa: F401
    except ImportError:
        log(
            f"{sys.executable} has no torch: run this script with a Python that has it "
            "(Debian's /usr/bin/python3, or a venv with a pip torch)"
        )
        sys.exit(1)
    try:
        result = run(args)
    except RunnerError as e:
        log(str(e))
        sys.exit(1)
    except Exception as e:  # noqa: BLE001 - a failing forward: torch's first line says why
        text = str(e).strip()
        log(f"{type(e).__name__}: {text.splitlines()[-1] if text else e!r}")
        sys.exit(1)
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
