"""
The PyTorch side of a step bench, as a command: the paper DeepLab of
agcl_torch.py and its projection head (128 wide), one SGD optimiser
(lr 1e-4) for the three training modes, timed in the four modes of
`bench_steps` on `--device` (cpu or cuda). Prints one JSON object: the
median ms of each mode, the fp32 sgemm rate, and what it ran on; or
{"skip": reason} (exit 0) when torch is missing or the device is absent,
so the caller can print the reason and go on.

    python3 step_ref.py --device cuda --config '{"depth": 18, ...}' --reps 20

On CUDA, fp32 means fp32: TF32 is off for matrix products and
convolutions (PyTorch allows it for cuDNN convolutions by default), and
cuDNN picks its fastest algorithms (`cudnn.benchmark`) during the warm-up.
"""

import argparse, json, sys

p = argparse.ArgumentParser(description=__doc__.strip().split("\n\n")[0])
p.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
p.add_argument("--config", required=True, help="DeepLab options as JSON (models/deeplab.ts keys)")
p.add_argument("--reps", type=int, default=10)
p.add_argument("--warmup", type=int, default=3)
p.add_argument("--batch", type=int, default=4)
p.add_argument("--size", type=int, default=128)
p.add_argument("--tf32", action="store_true", help="allow TF32 (not fp32: for a second opinion only)")
p.add_argument("--sgemm", type=int, default=4096, help="side of the sgemm that measures the fp32 peak")
a = p.parse_args()

try:
    import torch
except ImportError as e:
    print(json.dumps({"skip": f"PyTorch side skipped: torch is missing for {sys.executable} ({e})"}))
    sys.exit(0)
if a.device == "cuda" and not torch.cuda.is_available():
    print(json.dumps({"skip": f"PyTorch side skipped: CUDA is not available to torch {torch.__version__} "
                              f"({sys.executable}; built for CUDA {torch.version.cuda})"}))
    sys.exit(0)

from agcl_torch import DeepLab, ProjectionHead, bench_steps, median_ms

if a.device == "cuda":
    torch.backends.cuda.matmul.allow_tf32 = a.tf32
    torch.backends.cudnn.allow_tf32 = a.tf32
    torch.backends.cudnn.benchmark = True

torch.manual_seed(0)
net = DeepLab(json.loads(a.config)).to(a.device)
head = ProjectionHead(net.backbone.channels, 128).to(a.device)
opt = torch.optim.SGD(list(net.parameters()) + list(head.parameters()), 1e-4)
steps = bench_steps(net, head, (opt, opt, opt), batch=a.batch, size=a.size, device=a.device)
out = {mode: median_ms(f, a.reps, a.warmup) for mode, f in steps.items()}

n = a.sgemm
x = torch.rand(n, n, device=a.device); y = torch.rand(n, n, device=a.device)
sync = torch.cuda.synchronize if a.device == "cuda" else (lambda: None)
out["sgemm GFLOP/s"] = 2 * n ** 3 / median_ms(lambda: (x @ y, sync()), a.reps, a.warmup) / 1e6
out["torch"] = torch.__version__
out["device"] = torch.cuda.get_device_name() if a.device == "cuda" else f"cpu, {torch.get_num_threads()} threads"
out["precision"] = "tf32 allowed" if a.tf32 and a.device == "cuda" else "fp32"
if a.device == "cuda":
    out["peak GiB"] = torch.cuda.max_memory_allocated() / 2 ** 30
print(json.dumps(out))
