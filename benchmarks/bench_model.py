"""Speed of the SimpleClick model on CPU: one training forward+backward and one inference
forward per architecture, batch 4 at 224 x 224 (best and median of N after a warm-up).

Also the share of a training step taken by the MIS loss (BCE + the paper's 5x5 smoothness term,
and the public code's 3x3 variant), measured in the same process. The host is shared, so the
figures are best-of-N; compare the entries of one run with each other.

Run from the project root::

    .venv/bin/python benchmarks/bench_model.py [--repeats 7] [--archs vit_test,vit_tiny,vit_xtiny]

Writes ``benchmarks/results/model_step.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from mis_pipeline.config import LossConfig, ModelConfig, from_dict  # noqa: E402
from mis_pipeline.losses import mis_loss  # noqa: E402
from mis_pipeline.model import build_model  # noqa: E402


def timed(fn, repeats: int) -> dict[str, float]:  # type: ignore[no-untyped-def]
    """Wall and process CPU seconds (best and median of ``repeats`` after a warm-up). On a busy
    host the CPU time is the steadier figure: with one thread it bounds the wall time the same
    work takes on an idle core."""
    fn()  # warm-up (allocator, oneDNN primitives)
    wall, cpu = [], []
    for _ in range(repeats):
        t, c = time.perf_counter(), time.process_time()
        fn()
        wall.append(time.perf_counter() - t)
        cpu.append(time.process_time() - c)
    return {
        "best_s": min(wall),
        "median_s": statistics.median(wall),
        "cpu_best_s": min(cpu),
        "cpu_median_s": statistics.median(cpu),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--archs", default="vit_test,vit_tiny,vit_xtiny")
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--size", type=int, default=224)
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "model_step.json"))
    args = ap.parse_args()

    if args.threads is not None:
        torch.set_num_threads(args.threads)
    b, s = args.batch, args.size
    g = torch.Generator().manual_seed(0)
    image = torch.rand(b, 3, s, s, generator=g)
    prev = torch.zeros(b, 1, s, s)
    points = torch.tensor([[[s // 2, s // 2], [10, 10]]] * b, dtype=torch.int32)
    labels = torch.tensor([[1, 0]] * b, dtype=torch.int8)
    valid = torch.ones(b, 2, dtype=torch.bool)
    target = torch.rand(b, 1, s, s, generator=g) > 0.5
    results: dict[str, object] = {
        "batch": b,
        "size": s,
        "torch_threads": torch.get_num_threads(),
        "cpu": platform.processor() or platform.machine(),
        "load_average_at_start": os.getloadavg()[0],
        "archs": {},
    }
    for name in args.archs.split(","):
        cfg = from_dict(ModelConfig, {"arch": name, "init": "random", "img_size": s})
        model = build_model(cfg)
        n_params = sum(p.numel() for p in model.parameters())

        def train_step(loss_cfg: LossConfig | None = None, with_loss: bool = False, model=model) -> None:  # type: ignore[no-untyped-def]
            model.train()
            model.zero_grad(set_to_none=True)
            logits = model(image, prev, points, labels, valid)
            loss = mis_loss(logits, target, image, loss_cfg)[0] if with_loss else logits.mean()
            loss.backward()

        def infer(model=model) -> None:  # type: ignore[no-untyped-def]
            model.eval()
            with torch.no_grad():
                model(image, prev, points, labels, valid)

        entry = {
            "params": n_params,
            "train_forward_backward": timed(train_step, args.repeats),
            "train_step_with_mis_loss": timed(lambda: train_step(with_loss=True), args.repeats),
            "train_step_with_reference_loss": timed(
                lambda: train_step(from_dict(LossConfig, {"reference_code": True}), with_loss=True), args.repeats
            ),
            "inference_forward": timed(infer, args.repeats),
        }
        results["archs"][name] = entry  # type: ignore[index]
        line = "  ".join(
            f"{label} {entry[key]['best_s']:.3f} s wall / {entry[key]['cpu_best_s']:.3f} s cpu"
            for label, key in (
                ("fwd+bwd", "train_forward_backward"),
                ("+MIS loss", "train_step_with_mis_loss"),
                ("+reference loss", "train_step_with_reference_loss"),
                ("inference", "inference_forward"),
            )
        )
        print(f"{name:10s} {n_params / 1e6:6.2f} M params  {line}")
    results["load_average_at_end"] = os.getloadavg()[0]
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
