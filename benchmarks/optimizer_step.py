"""Time VRAdam.step() against torch.optim.AdamW.step() on ~10M transformer-shaped parameters.

Both optimizers run the same implementation (foreach vs foreach, for-loop vs for-loop) on
their own copy of the same tensors and gradients. Their steps alternate within one run (the
order rotates every repetition), so drifting machine load hits both alike; the figure of
merit is the median of the per-repetition ratios VRAdam/AdamW. Also prints the optimizer
state memory. ``--decompose`` adds VRAdam with beta3=0 (the same code minus the norm pass).

    .venv/bin/python benchmarks/optimizer_step.py            # full run (< 2 min)
    .venv/bin/python benchmarks/optimizer_step.py --quick    # a few seconds
    .venv/bin/python benchmarks/optimizer_step.py --profile  # + where the time goes
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


def transformer_shapes(d: int, layers: int, vocab: int) -> list[tuple[int, ...]]:
    """Parameter shapes of a GPT-style stack: embeddings, attention, MLP, biases, layernorms."""
    shapes: list[tuple[int, ...]] = [(vocab, d), (256, d)]  # token and position embeddings
    for _ in range(layers):
        shapes += [(d,), (d,)]  # ln_1
        shapes += [(3 * d, d), (3 * d,), (d, d), (d,)]  # attention: qkv, out-proj
        shapes += [(d,), (d,)]  # ln_2
        shapes += [(4 * d, d), (4 * d,), (d, 4 * d), (d,)]  # MLP
    shapes += [(d,), (d,)]  # ln_f
    return shapes


def make_params(shapes: list[tuple[int, ...]], device: str, seed: int) -> list[torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    params = []
    for shape in shapes:
        p = torch.randn(shape, generator=gen).mul_(0.02).to(device).requires_grad_()
        p.grad = torch.randn(shape, generator=gen).mul_(1e-3).to(device)
        params.append(p)
    return params


def state_bytes(opt: torch.optim.Optimizer) -> int:
    total = sum(
        t.numel() * t.element_size()
        for s in opt.state.values()
        for t in s.values()
        if isinstance(t, torch.Tensor)
    )
    total += sum(
        v.numel() * v.element_size()
        for g in opt.param_groups
        for k, v in g.items()
        if k != "params" and isinstance(v, torch.Tensor)
    )
    return total


def timed(fn: Callable[[], object], device: str) -> tuple[float, float]:
    """(wall seconds, process CPU seconds) of one call; the CPU time ignores time spent
    descheduled, so it is the steadier figure on a shared machine."""
    if device == "cuda":
        torch.cuda.synchronize()
    wall, cpu = time.perf_counter(), time.process_time()
    fn()
    if device == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - wall, time.process_time() - cpu


Factory = Callable[[list[torch.Tensor], bool], torch.optim.Optimizer]

VARIANTS: dict[str, Factory] = {
    "VRAdam": lambda ps, fe: VRAdam(ps, lr=1e-3, weight_decay=1e-2, foreach=fe),
    # The same code with the penalty off: no norm pass, only η_t's 0-dim bookkeeping.
    "VRAdam(beta3=0)": lambda ps, fe: VRAdam(ps, lr=1e-3, weight_decay=1e-2, beta3=0.0, foreach=fe),
    "AdamW": lambda ps, fe: torch.optim.AdamW(ps, lr=1e-3, weight_decay=1e-2, foreach=fe),
}


def compare(
    shapes: list[tuple[int, ...]],
    names: list[str],
    foreach: bool,
    reps: int,
    warmup: int,
    device: str,
    budget_s: float = float("inf"),
) -> dict[str, dict[str, float]]:
    """Step the optimizers in rotating order; per optimizer, median ms and ratios to AdamW.

    Stops early (after at least 3 repetitions) once ``budget_s`` seconds have passed.
    """
    deadline = time.perf_counter() + budget_s
    opts = {name: VARIANTS[name](make_params(shapes, device, seed=0), foreach) for name in names}
    for _ in range(warmup):
        for opt in opts.values():
            opt.step()
    wall: dict[str, list[float]] = {name: [] for name in names}
    cpu: dict[str, list[float]] = {name: [] for name in names}
    for rep in range(reps):
        if rep >= 3 and time.perf_counter() > deadline:
            break
        shift = rep % len(names)
        for name in names[shift:] + names[:shift]:
            w, c = timed(opts[name].step, device)
            wall[name].append(w)
            cpu[name].append(c)
    out = {}
    for name in names:
        ratios = [a / b for a, b in zip(wall[name], wall["AdamW"], strict=True)]
        cpu_ratios = [a / max(b, 1e-9) for a, b in zip(cpu[name], cpu["AdamW"], strict=True)]
        quartiles = statistics.quantiles(ratios, n=4) if len(ratios) > 1 else [ratios[0]] * 3
        out[name] = {
            "reps": len(ratios),
            "ms": 1e3 * statistics.median(wall[name]),
            "ratio": statistics.median(ratios),
            "ratio_q1": quartiles[0],
            "ratio_q3": quartiles[2],
            "cpu_ratio": statistics.median(cpu_ratios),
            "state": state_bytes(opts[name]),
        }
    return out


def profile(shapes: list[tuple[int, ...]], foreach: bool, device: str, steps: int = 5) -> None:
    """Print the top operators by self time, VRAdam then AdamW."""
    from torch.profiler import ProfilerActivity
    from torch.profiler import profile as torch_profile

    for name, cls in (("VRAdam", VRAdam), ("AdamW", torch.optim.AdamW)):
        params = make_params(shapes, device, seed=0)
        opt = cls(params, lr=1e-3, weight_decay=1e-2, foreach=foreach)
        opt.step()
        activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device == "cuda" else [])
        with torch_profile(activities=activities) as prof:
            for _ in range(steps):
                opt.step()
        sort = "self_cuda_time_total" if device == "cuda" else "self_cpu_time_total"
        print(f"\n--- {name} (foreach={foreach}), {steps} steps, top ops by self time ---")
        print(prof.key_averages().table(sort_by=sort, row_limit=12))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="few repetitions (a smoke run)")
    parser.add_argument("--reps", type=int, default=None, help="repetitions per implementation")
    parser.add_argument("--d-model", type=int, default=512)
    parser.add_argument("--layers", type=int, default=3)
    parser.add_argument("--vocab", type=int, default=1024)
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--impl", choices=["both", "foreach", "forloop"], default="both")
    parser.add_argument("--profile", action="store_true", help="also profile both optimizers")
    parser.add_argument(
        "--budget", type=float, default=80.0, help="seconds of timed steps at most (all impls)"
    )
    parser.add_argument(
        "--decompose", action="store_true", help="also time VRAdam with beta3=0 (no norm pass)"
    )
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    reps = args.reps or (6 if args.quick else 40)
    warmup = 2 if args.quick else 5

    shapes = transformer_shapes(args.d_model, args.layers, args.vocab)
    n_params = sum(torch.Size(s).numel() for s in shapes)
    print(
        f"torch {torch.__version__}, device {args.device}, threads {torch.get_num_threads()}, "
        f"{len(shapes)} tensors, {n_params / 1e6:.2f}M parameters (float32), "
        f"{reps} alternating repetitions per implementation"
    )
    impls = {"both": [True, False], "foreach": [True], "forloop": [False]}[args.impl]
    names = ["VRAdam", *(["VRAdam(beta3=0)"] if args.decompose else []), "AdamW"]
    print(
        f"{'impl':<9}{'optimizer':<17}{'median ms':>10}{'ratio':>8}{'IQR of ratio':>17}"
        f"{'CPU-time ratio':>16}{'reps':>6}"
    )
    for foreach in impls:
        budget = args.budget / len(impls)
        results = compare(shapes, names, foreach, reps, warmup, args.device, budget)
        label = "foreach" if foreach else "for-loop"
        for name, r in results.items():
            iqr = f"[{r['ratio_q1']:.3f}, {r['ratio_q3']:.3f}]"
            print(
                f"{label:<9}{name:<17}{r['ms']:>10.2f}{r['ratio']:>8.3f}{iqr:>17}"
                f"{r['cpu_ratio']:>16.3f}{r['reps']:>6}"
            )
    print("ratio: median over repetitions of (this optimizer's step time / AdamW's, same rep)")
    vr, aw = results["VRAdam"]["state"], results["AdamW"]["state"]
    print(
        f"state memory: VRAdam {vr:,} B, AdamW {aw:,} B "
        f"(difference {vr - aw:+,} B: the per-group effective_lr scalar)"
    )
    if args.profile:
        for foreach in impls:
            profile(shapes, foreach, args.device)


if __name__ == "__main__":
    main()
