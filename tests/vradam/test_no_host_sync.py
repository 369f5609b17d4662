"""step() never synchronises with the host: it traces into one graph that reads no tensor value.

The public ``step`` is wrapped by PyTorch's ``_use_grad_for_differentiable``, which inserts
deliberate graph breaks (so does ``torch.optim.AdamW``'s), so the tests compile the unwrapped
body with ``fullgraph=True`` and inspect the captured graph: a ``.item()``, ``float(tensor)``
or ``.tolist()`` would show up in it as an ``item``/``tolist`` call (torch 2.13 traces them
instead of failing). In eager mode, Python's tensor-to-number hooks are patched to raise.
"""

import inspect
from collections.abc import Callable

import pytest
import torch

from tests.vradam.test_equivalence import make_params, set_grads, split_groups
from vradam import VRAdam

# torch.compile's own tracing of torch.jit internals warns; not ours.
pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit.script_method` is deprecated")

RAW_STEP = inspect.unwrap(VRAdam.step)


HOST_READS = {"item", "tolist", "_local_scalar_dense", "__float__", "__int__", "__bool__"}


def compiled_step(opt: VRAdam, backend: str | Callable[..., object]) -> Callable[[], None]:
    @torch.compile(fullgraph=True, backend=backend)
    def step() -> None:
        with torch.no_grad():
            RAW_STEP(opt)

    return step


def make(params: list[torch.Tensor], foreach: bool, **kwargs: object) -> VRAdam:
    groups = split_groups(params, lr=3e-3, weight_decay=0.0, beta3=0.5)
    return VRAdam(groups, lr=1e-2, beta3=0.2, foreach=foreach, **kwargs)


@pytest.mark.parametrize("foreach", [False, True])
def test_step_traces_as_one_graph_without_host_reads(foreach: bool) -> None:
    graphs: list[torch.fx.GraphModule] = []

    def recording_backend(gm: torch.fx.GraphModule, example_inputs: object) -> Callable:
        graphs.append(gm)
        return gm.forward

    eager_params, graph_params = make_params(), make_params()
    eager, graphed = make(eager_params, foreach), make(graph_params, foreach)
    step = compiled_step(graphed, backend=recording_backend)
    for t in range(3):
        set_grads(eager_params, t)
        set_grads(graph_params, t)
        eager.step()
        step()
    assert graphs, "nothing was compiled"
    targets = {
        getattr(node.target, "__name__", str(node.target))
        for gm in graphs
        for node in gm.graph.nodes
        if node.op in ("call_method", "call_function")
    }
    assert not targets & HOST_READS, targets
    for p, q in zip(eager_params, graph_params, strict=True):
        torch.testing.assert_close(p, q)
    for g_eager, g_graph in zip(eager.param_groups, graphed.param_groups, strict=True):
        torch.testing.assert_close(g_eager["effective_lr"], g_graph["effective_lr"])


@pytest.mark.parametrize("foreach", [False, True])
def test_eager_step_reads_only_the_cpu_step_counters(
    foreach: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Like AdamW (capturable=False), the step counters live on the CPU and are read there."""
    params = make_params()
    opt = make(params, foreach)
    set_grads(params, 0)
    opt.step()
    counters = {id(state["step"]) for state in opt.state.values()}
    assert all(state["step"].device.type == "cpu" for state in opt.state.values())
    original_item = torch.Tensor.item

    def item(self: torch.Tensor) -> object:
        if id(self) not in counters:
            raise AssertionError("host read of a tensor value inside step()")
        return original_item(self)

    def forbidden(*args: object, **kwargs: object) -> None:
        raise AssertionError("host read of a tensor value inside step()")

    set_grads(params, 1)
    with monkeypatch.context() as patch:
        patch.setattr(torch.Tensor, "item", item)
        for name in ("tolist", "__float__", "__int__", "__bool__", "__index__"):
            patch.setattr(torch.Tensor, name, forbidden)
        opt.step()


@pytest.mark.parametrize("foreach", [False, True])
def test_capturable_step_reads_no_tensor_value(
    foreach: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    params = make_params()
    opt = make(params, foreach, capturable=True)
    reference = make(make_params(), foreach)

    def forbidden(*args: object, **kwargs: object) -> None:
        raise AssertionError("host read of a tensor value inside step()")

    for t in range(3):
        set_grads(params, t)
        set_grads(reference.param_groups[0]["params"] + reference.param_groups[1]["params"], t)
        reference.step()
        with monkeypatch.context() as patch:
            for name in ("item", "tolist", "__float__", "__int__", "__bool__", "__index__"):
                patch.setattr(torch.Tensor, name, forbidden)
            opt.step()
    assert all(s["step"].device == params[0].device for s in opt.state.values())
    for p, q in zip(params, [p for g in reference.param_groups for p in g["params"]], strict=True):
        torch.testing.assert_close(p, q)


@pytest.mark.slow
def test_step_compiles_with_inductor() -> None:
    torch.set_num_threads(1)
    eager_params, graph_params = make_params(), make_params()
    eager, graphed = make(eager_params, True), make(graph_params, True)
    step = compiled_step(graphed, backend="inductor")
    for t in range(3):
        set_grads(eager_params, t)
        set_grads(graph_params, t)
        eager.step()
        step()
    for p, q in zip(eager_params, graph_params, strict=True):
        torch.testing.assert_close(p, q)
