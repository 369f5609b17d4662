"""Time every VRAdam kernel against fused AdamW and foreach AdamW, alternated in one run.

Implementations: the for-loop, foreach and fused kernels of both optimizers, VRAdam's fused
kernel with the eager norm pass (``compile_norm=False``), and ``torch.compile(opt.step)`` of
the foreach kernel of both. Parameter sets: many small tensors, a ~10M-parameter GPT-style
stack, one large tensor. Within a set all implementations step their own copy of the same
tensors and gradients in an order that rotates every repetition, so drifting machine load hits
all alike; the figures of merit are the medians (and IQRs) of the per-repetition ratios to
fused AdamW and to foreach AdamW. Also prints each optimizer's state memory.

    .venv/bin/python benchmarks/optimizer_step.py              # default run (~2 min)
    .venv/bin/python benchmarks/optimizer_step.py --quick      # a smoke run
    .venv/bin/python benchmarks/optimizer_step.py --sets gpt2 --device cuda   # GPT-2 small
"""

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from vradam import VRAdam


def transformer_shapes(d: int, layers: int, vocab: int, ctx: int = 256) -> list[tuple[int, ...]]:
    """Parameter shapes of a GPT-style stack: embeddings, attention, MLP, biases, layernorms."""
    shapes: list[tuple[int, ...]] = [(vocab, d), (ctx, d)]
    for _ in range(layers):
        shapes += [(d,), (d,), (3 * d, d), (3 * d,), (d, d), (d,)]
        shapes += [(d,), (d,), (4 * d, d), (4 * d,), (d, 4 * d), (d,)]
    return [*shapes, (d,), (d,)]


SETS: dict[str, list[tuple[int, ...]]] = {
    "small": [(32, 32)] * 1000,  # 1000 tensors, 1.0M parameters
    "10M": transformer_shapes(512, 3, 1024),  # 40 tensors, 10.1M parameters
    "large": [(10_000_000,)],  # one tensor
    "gpt2": transformer_shapes(768, 12, 50257, 1024),  # GPT-2 small, 124M parameters
}


def make_params(shapes: list[tuple[int, ...]], device: str, seed: int) -> list[torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    params = []
    for shape in shapes:
        p = torch.randn(shape, generator=gen).mul_(0.02).to(device).requires_grad_()
        p.grad = torch.randn(shape, generator=gen).mul_(1e-3).to(device)
        params.append(p)
    return params


def state_bytes(opt: torch.optim.Optimizer) -> int:
    tensors = [t for s in opt.state.values() for t in s.values() if isinstance(t, torch.Tensor)]
    tensors += [
        v
        for g in opt.param_groups
        for k, v in g.items()
        if k != "params" and isinstance(v, torch.Tensor)
    ]
    return sum(t.numel() * t.element_size() for t in tensors)


Factory = Callable[[list[torch.Tensor]], torch.optim.Optimizer]
HP = {"lr": 1e-3, "weight_decay": 1e-2}
# beta3 small enough that η_t is not at its floor on these sets (it does not change the cost).
VR = {**HP, "beta3": 1e-3}

IMPLS: dict[str, tuple[Factory, bool]] = {  # name: (factory, compile the step)
    "AdamW fused": (lambda ps: torch.optim.AdamW(ps, fused=True, **HP), False),
    "AdamW foreach": (lambda ps: torch.optim.AdamW(ps, foreach=True, **HP), False),
    "AdamW for-loop": (lambda ps: torch.optim.AdamW(ps, foreach=False, **HP), False),
    "AdamW compiled": (lambda ps: torch.optim.AdamW(ps, foreach=True, **HP), True),
    "VRAdam fused": (lambda ps: VRAdam(ps, fused=True, **VR), False),
    "VRAdam fused eager-norm": (lambda ps: VRAdam(ps, fused=True, compile_norm=False, **VR), False),
    "VRAdam foreach": (lambda ps: VRAdam(ps, foreach=True, fused=False, **VR), False),
    "VRAdam for-loop": (lambda ps: VRAdam(ps, foreach=False, fused=False, **VR), False),
    "VRAdam compiled": (lambda ps: VRAdam(ps, foreach=True, fused=False, **VR), True),
}


def sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def compare(
    shapes: list[tuple[int, ...]], names: list[str], reps: int, device: str, budget_s: float
) -> dict[str, dict[str, float]]:
    """Step the implementations in rotating order; medians, ratio medians and IQRs."""
    steps: dict[str, Callable[[], object]] = {}
    opts: dict[str, torch.optim.Optimizer] = {}
    for name in names:
        factory, compiled = IMPLS[name]
        opts[name] = factory(make_params(shapes, device, seed=0))
        steps[name] = torch.compile(opts[name].step) if compiled else opts[name].step
    warm = time.perf_counter()
    for _ in range(3):  # compiles and creates state
        for name in names:
            steps[name]()
    sync(device)
    warm = time.perf_counter() - warm
    times: dict[str, list[float]] = {name: [] for name in names}
    deadline = time.perf_counter() + budget_s
    for rep in range(reps):
        if rep >= 5 and time.perf_counter() > deadline:
            break
        shift = rep % len(names)
        for name in names[shift:] + names[:shift]:
            sync(device)
            start = time.perf_counter()
            steps[name]()
            sync(device)
            times[name].append(time.perf_counter() - start)
    out: dict[str, dict[str, float]] = {}
    for name in names:
        row: dict[str, float] = {
            "ms": 1e3 * statistics.median(times[name]),
            "reps": len(times[name]),
            "state": state_bytes(opts[name]),
            "warmup_s": warm,
        }
        for base in ("AdamW fused", "AdamW foreach"):
            if base not in times:
                continue
            ratios = [a / b for a, b in zip(times[name], times[base], strict=True)]
            q1, _, q3 = statistics.quantiles(ratios, n=4)
            row[base] = statistics.median(ratios)
            row[base + " IQR"] = q3 - q1
        out[name] = row
    return out


def copy_bandwidth(device: str, numel: int = 1 << 27) -> float:
    """Bytes per second of ``dst.copy_(src)`` (read + write) on float32, best of 10."""
    src = torch.randn(numel, device=device)
    dst = torch.empty_like(src)
    best = float("inf")
    for _ in range(10):
        sync(device)
        start = time.perf_counter()
        dst.copy_(src)
        sync(device)
        best = min(best, time.perf_counter() - start)
    return 2 * 4 * numel / best


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="few repetitions (a smoke run)")
    parser.add_argument("--reps", type=int, default=None, help="repetitions at most")
    parser.add_argument("--sets", default="small,10M,large", help=f"of {list(SETS)}")
    parser.add_argument("--impls", default=",".join(IMPLS), help="comma-separated names")
    parser.add_argument(
        "--compiled-sets",
        default="10M",
        help="sets that also time torch.compile(opt.step) (compiling is slow; '' for none)",
    )
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--budget", type=float, default=25.0, help="timed seconds per set")
    parser.add_argument("--bandwidth", action="store_true", help="also report GB/s vs a copy")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    reps = args.reps or (6 if args.quick else 200)
    names = [n for n in args.impls.split(",") if n]
    print(
        f"torch {torch.__version__}, device {args.device}, threads {torch.get_num_threads()}, "
        f"float32, up to {reps} alternated repetitions ({args.budget:.0f} s) per set"
    )
    copy_bps = copy_bandwidth(args.device) if args.bandwidth else None
    if copy_bps:
        print(f"measured copy bandwidth: {copy_bps / 1e9:.1f} GB/s (read + write)")
    for set_name in args.sets.split(","):
        shapes = SETS[set_name]
        numel = sum(torch.Size(s).numel() for s in shapes)
        budget = 3.0 if args.quick else args.budget
        compiled_ok = set_name in args.compiled_sets.split(",")
        chosen = [n for n in names if compiled_ok or not IMPLS[n][1]]
        results = compare(shapes, chosen, reps, args.device, budget)
        warm = next(iter(results.values()))["warmup_s"]
        print(
            f"\n{set_name}: {len(shapes)} tensors, {numel / 1e6:.2f}M parameters "
            f"(warm-up incl. compiles {warm:.0f} s)"
        )
        print(
            f"{'implementation':<25}{'median ms':>10}{'/ fused AdamW':>15}{'IQR':>7}"
            f"{'/ foreach AdamW':>17}{'IQR':>7}{'state MB':>10}{'reps':>6}"
            + ("      GB/s  of copy" if copy_bps else "")
        )
        for name, r in results.items():
            line = (
                f"{name:<25}{r['ms']:>10.2f}{r.get('AdamW fused', float('nan')):>15.3f}"
                f"{r.get('AdamW fused IQR', float('nan')):>7.3f}"
                f"{r.get('AdamW foreach', float('nan')):>17.3f}"
                f"{r.get('AdamW foreach IQR', float('nan')):>7.3f}"
                f"{r['state'] / 1e6:>10.2f}{int(r['reps']):>6}"
            )
            if copy_bps:
                words = 9 if name.startswith("VRAdam fused") else 7
                achieved = words * 4 * numel / (r["ms"] / 1e3)
                line += f"{achieved / 1e9:>10.1f}{achieved / copy_bps:>7.0%}"
            print(line)
    print(
        "\nratios: median over repetitions of (this step's time / the baseline's, same rep); "
        "IQR: q3 - q1 of those ratios."
    )
    if copy_bps:
        print("GB/s: the minimum traffic (7 words/param for AdamW, 9 for VRAdam fused) / time.")


if __name__ == "__main__":
    main()
