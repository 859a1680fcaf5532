"""The Python side of `npm run bench:addon` (run by bench/addon.bench.ts with Debian's /usr/bin/python3).

It writes the benchmark's TorchScript models, so that both sides run the very same files, then answers
timing requests on stdin, one JSON object a line, with the per-forward times in milliseconds:
  {"model": "resnet18", "batch": 1, "iters": 50, "threads": 2}  ->  {"times_ms": [...]}   (threads optional)
The model is loaded as the addon does by default: torch.jit.load, eval, and on CPU
torch.jit.optimize_for_inference (which freezes first); in inference mode, with the same thread count.
On CUDA each timed forward includes copying the input in and the output out, as the addon's does.
"""

import json
import os
import sys
import time

import torchvision

import torch


def make_models(folder):
    torch.manual_seed(0)
    resnet = torchvision.models.resnet18(num_classes=101).eval()
    traced = torch.jit.trace(resnet, torch.randn(2, 3, 224, 224))
    torch.jit.save(traced, os.path.join(folder, "resnet18.pt"))
    # A small model for the memory check: 10,000 forwards must not grow the process.
    mlp = torch.nn.Sequential(torch.nn.Linear(64, 128), torch.nn.ReLU(), torch.nn.Linear(128, 10)).eval()
    torch.jit.save(torch.jit.trace(mlp, torch.randn(2, 64)), os.path.join(folder, "mlp.pt"))
    # Many small parallel regions a forward: the model of the "after another model" row.
    mobilenet = torchvision.models.mobilenet_v3_small().eval()
    torch.jit.save(torch.jit.trace(mobilenet, torch.randn(2, 3, 224, 224)), os.path.join(folder, "mobilenet.pt"))


def main():
    folder, threads, device = sys.argv[1], int(sys.argv[2]), torch.device(sys.argv[3])
    torch.set_num_threads(threads)
    make_models(folder)
    models = {}
    for name in ("resnet18", "mlp", "mobilenet"):
        m = torch.jit.load(os.path.join(folder, name + ".pt"), map_location=device).eval()
        models[name] = torch.jit.optimize_for_inference(m) if device.type == "cpu" else m
    shapes = {"resnet18": (3, 224, 224), "mlp": (64,), "mobilenet": (3, 224, 224)}
    print(json.dumps({"ready": True, "torch": torch.__version__, "threads": torch.get_num_threads()}), flush=True)
    for line in sys.stdin:
        req = json.loads(line)
        torch.set_num_threads(req.get("threads", threads))
        model = models[req["model"]]
        x = torch.randn(req["batch"], *shapes[req["model"]])
        times = []
        with torch.inference_mode():
            for _ in range(req["iters"]):
                start = time.perf_counter()
                if device.type == "cpu":
                    model(x)
                else:
                    model(x.to(device)).cpu()
                times.append((time.perf_counter() - start) * 1000)
        print(json.dumps({"times_ms": times}), flush=True)


if __name__ == "__main__":
    main()
