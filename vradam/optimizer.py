"""VRAdam: Velocity-Regularized Adam (Vaidhyanathan et al., arXiv 2505.13196), a drop-in AdamW."""

from collections.abc import Callable, Mapping
from typing import Any, overload

import torch
from torch import Tensor
from torch.optim.optimizer import (
    Optimizer,
    ParamsT,
    _get_scalar_dtype,
    _use_grad_for_differentiable,
)

from vradam._dispatch import _resolve_kernel
from vradam._functional import _moments, _update
from vradam._fused import _fused_penalty, _fused_update
from vradam._groups import GROUP_DEFAULTS, check_global_groups, describe, record_effective_lr
from vradam._moments import _acc_dtype, _effective_lr, _needs_norm
from vradam._validation import _as_floats, check_kernel_options, validate_hyperparameters

__all__ = ["VRAdam"]


class VRAdam(Optimizer):
    r"""Velocity-Regularized Adam: AdamW whose step size shrinks as the velocity grows.

    .. math::
       \begin{aligned}
         & m_t \leftarrow \beta_1 m_{t-1} + (1-\beta_1) g_t,\qquad
           v_t \leftarrow \beta_2 v_{t-1} + (1-\beta_2) g_t^2 \\
         & V_t \leftarrow \textstyle\sum_{\text{params}} |m_t|^{p}
           \quad(p = 2:\ \lVert m_t\rVert_2^2,\ \text{the raw first moment after this update}) \\
         & \eta_t \leftarrow \alpha_0 / \big(1 + \min(\beta_3 V_t, \alpha_1)\big) \\
         & \theta_t \leftarrow \theta_{t-1}(1 - \eta_t\lambda)
           - \eta_t\, \frac{m_t/(1-\beta_1^t)}{\sqrt{v_t/(1-\beta_2^t)} + \epsilon}
       \end{aligned}

    (PyTorch's names: :math:`m` is ``exp_avg``, the paper's velocity; :math:`v` is
    ``exp_avg_sq``.) :math:`\eta_t \in [\alpha_0/(1+\alpha_1), \alpha_0]`; ``beta3=0`` or
    ``alpha1=0`` is exactly AdamW. η_t of the last step is kept per group in
    ``group["effective_lr"]``, a 0-dim tensor on the parameters' device (never synchronised
    to the host inside :meth:`step`); ``group["lr"]`` is α0, so every
    ``torch.optim.lr_scheduler`` drives it.

    Reference: P. Vaidhyanathan, L. Schorling, N. Ares, M. A. Osborne, "A Physics-Inspired
    Optimizer: Velocity Regularized Adam", ICLR 2026, arXiv:2505.13196.

    Args:
        params: iterable of parameters, named parameters, or dicts defining parameter groups.
        lr: α0, the maximal learning rate (float or 1-element tensor; default: 1e-3).
        betas: (β1, β2), coefficients of the first and second moments (default: (0.9, 0.999)).
        eps: term added to the denominator (default: 1e-8).
        weight_decay: decoupled weight decay λ, applied as θ(1-η_tλ) (default: 1e-2, AdamW's
            default, so VRAdam drops in for ``torch.optim.AdamW``; the paper's sweeps fixed
            1e-5).
        beta3: β3, the velocity penalty (default: 1.0, the authors' released code and the
            value the paper used throughout). V is an unnormalised sum over all parameters,
            so for large models β3 must shrink, or η_t sits at its floor lr/(1+α1).
        alpha1: α1, the cap of the penalty, so η_t ≥ lr/(1+α1) (default: 10.0, the authors'
            released code; their benchmark code used 19).
        norm_scope: ``"global"`` (default, the paper: one V over the parameters of every
            group whose scope is global, computed before any parameter moves) or
            ``"group"`` (one V per parameter group, as the authors' released code does).
            Each group always applies its own lr, beta3 and alpha1 to its V.
        penalize: ``"velocity"`` (default, the paper: V from the first moment) or
            ``"gradient"`` (V from the raw gradient of this step, the authors' older
            ``normgrad=True``).
        power: exponent p of V = Σ|x|^p, no root taken (default: 2, the squared L2 norm; the
            paper's Table 4 ablates it). Global-scope groups must agree on power and penalize.
        amsgrad: use the running maximum of the second moment, as AdamW's ``amsgrad``
            (default: False; every kernel supports it).
        maximize: maximise the objective instead (default: False).
        foreach: use the multi-tensor kernel (see ``fused`` for what None picks).
        capturable: keep step counters on the parameters' device and compute bias
            corrections there, for graph capture (default: False).
        differentiable: let autograd record the step (for-loop kernel; default: False).
        fused: use the fused kernel: one read-only pass for V over m and g, then PyTorch's
            fused AdamW kernel (``torch._fused_adamw_``) with the tensor learning rate η_t.
            Step counters live on the parameters' devices; ``GradScaler`` passes its scale
            and ``found_inf`` in (no unscale pass, no host read). None (default), with
            ``foreach=None``, picks the fused kernel wherever it is correct: all parameters
            with a gradient floating point on a fused device (CPU, CUDA, ...), not
            ``differentiable``, ``eps > 0``; otherwise PyTorch's default (foreach on CUDA,
            else the for-loop kernel). An explicit ``foreach`` is respected.
        compile_norm: for the fused kernel, compile the norm pass with ``torch.compile`` so
            that it reads m and g once with no scratch copy. None (default) compiles it for a
            (device, dtype) bucket of at least 2^20 elements (compile time, seconds, is paid on
            the first step and once per new parameter set); True always, False never. A failed
            compilation logs a warning and falls back to the eager pass.

    Raises:
        ValueError: for a negative lr, eps, weight_decay, beta3 or alpha1, betas outside
            [0, 1), a power that is not a finite positive number, a numeric argument that
            is not a real number (``numbers.Real``, not bool), a Tensor lr with more than one
            element ("Tensor lr must be 1-element"), an unknown norm_scope or penalize, a
            non-bool amsgrad/fused/compile_norm, or global-scope groups that disagree on
            power or penalize.
        RuntimeError: for ``fused=True`` with ``differentiable=True`` or ``foreach=True``,
            or with a parameter that is not floating point on a fused device.
    """

    def __init__(
        self,
        params: ParamsT,
        lr: float | Tensor = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 1e-2,
        *,
        beta3: float = 1.0,
        alpha1: float = 10.0,
        norm_scope: str = "global",
        penalize: str = "velocity",
        power: float = 2.0,
        amsgrad: bool = False,
        maximize: bool = False,
        foreach: bool | None = None,
        capturable: bool = False,
        differentiable: bool = False,
        fused: bool | None = None,
        compile_norm: bool | None = None,
    ) -> None:
        defaults: dict[str, Any] = {
            "lr": lr,
            "betas": betas,
            "eps": eps,
            "weight_decay": weight_decay,
            "beta3": beta3,
            "alpha1": alpha1,
            "norm_scope": norm_scope,
            "penalize": penalize,
            "power": power,
            "amsgrad": amsgrad,
            "maximize": maximize,
            "foreach": foreach,
            "capturable": capturable,
            "differentiable": differentiable,
            "fused": fused,
            "compile_norm": compile_norm,
        }
        validate_hyperparameters(defaults)
        _as_floats(defaults)
        super().__init__(params, defaults)
        if fused:
            # GradScaler then hands over grad_scale and found_inf instead of unscaling.
            self._step_supports_amp_scaling = True

    @torch._disable_dynamo
    def add_param_group(self, param_group: dict[str, Any]) -> None:
        """Add a parameter group after checking its hyperparameters.

        Args:
            param_group: the group; keys it lacks take the optimizer's defaults.

        Raises:
            ValueError: when the group's hyperparameters are invalid (see the class).
        """
        merged = {**self.defaults, **{k: v for k, v in param_group.items() if k != "params"}}
        validate_hyperparameters(merged)
        check_kernel_options(merged, param_group.get("params"))
        check_global_groups([*self.param_groups, merged])
        _as_floats(param_group)
        super().add_param_group(param_group)
        group = self.param_groups[-1]
        if "effective_lr" not in group:
            first = group["params"][0] if group["params"] else None
            lr = group["lr"]
            dtype = _acc_dtype(first.dtype) if first is not None else torch.float32
            device = first.device if first is not None else None
            if isinstance(lr, Tensor):
                group["effective_lr"] = (
                    lr.detach().to(device=device, dtype=dtype).reshape(()).clone()
                )
            else:
                group["effective_lr"] = torch.tensor(lr, dtype=dtype, device=device)

    def __setstate__(self, state: dict[str, Any]) -> None:
        super().__setstate__(state)
        for group in self.param_groups:
            for key, value in GROUP_DEFAULTS.items():
                group.setdefault(key, value)
            # Build the tensor only when it is missing: under dynamo (copy.deepcopy of a
            # traced optimizer) a tensor made inside setdefault's argument lost the groups.
            if "effective_lr" not in group:
                lr = group["lr"]
                value = lr.detach().reshape(()).clone() if isinstance(lr, Tensor) else lr
                group["effective_lr"] = torch.as_tensor(value, dtype=torch.float32)
            on_device = group["capturable"] or group["fused"]
            for p in group["params"]:
                p_state = self.state.get(p, [])
                if len(p_state) != 0 and not torch.is_tensor(p_state["step"]):
                    step_val = float(p_state["step"])
                    p_state["step"] = torch.tensor(
                        step_val,
                        dtype=_get_scalar_dtype(is_fused=group["fused"]),
                        device=p.device if on_device else None,
                    )

    def _check_group(self, group: Mapping[str, Any], group_index: int) -> None:
        """Raise on what step() cannot do, before it touches any state.

        Raises:
            RuntimeError: on a sparse gradient or a complex parameter (naming it), a
                ``step`` that requires grad in differentiable mode, or ``foreach=True``
                with ``differentiable=True``.
        """
        for index, p in enumerate(group["params"]):
            grad = p.grad
            if grad is None:
                continue
            if grad.is_sparse or torch.is_complex(p) or grad.is_complex():
                kind = "sparse gradients" if grad.is_sparse else "complex parameters"
                where = describe(group, group_index, index)
                raise RuntimeError(f"VRAdam does not support {kind}: {where}")
            if group["differentiable"] and group["foreach"]:
                raise RuntimeError("VRAdam's foreach kernel does not support differentiable=True")
            if group["differentiable"]:
                state = self.state.get(p)
                if state and state["step"].requires_grad:
                    raise RuntimeError(
                        "`requires_grad` is not supported for `step` in differentiable mode"
                    )

    def _init_group(
        self,
        group: dict[str, Any],
        params: list[Tensor],
        grads: list[Tensor],
        exp_avgs: list[Tensor],
        exp_avg_sqs: list[Tensor],
        max_exp_avg_sqs: list[Tensor],
        state_steps: list[Tensor],
        fused: bool,
    ) -> None:
        """Collect the group's tensors that have a gradient, creating their state lazily.

        (Separate list arguments, as torch.optim's: dynamo runs this eagerly then.) Call
        :meth:`_check_group` on every group first.
        """
        for p in group["params"]:
            if p.grad is None:
                continue
            params.append(p)
            grads.append(p.grad)
            state = self.state[p]
            if len(state) == 0:
                # Like AdamW: the step counter lives on the CPU unless capturable or fused,
                # so reading it for the bias corrections is not a device synchronisation.
                state["step"] = (
                    torch.zeros((), dtype=_get_scalar_dtype(is_fused=fused), device=p.device)
                    if group["capturable"] or fused
                    else torch.tensor(0.0, dtype=_get_scalar_dtype())
                )
                state["exp_avg"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                state["exp_avg_sq"] = torch.zeros_like(p, memory_format=torch.preserve_format)
            if group["amsgrad"] and "max_exp_avg_sq" not in state:
                state["max_exp_avg_sq"] = torch.zeros_like(p, memory_format=torch.preserve_format)
            step = state["step"]
            if fused and (step.device != p.device or step.dtype != torch.float32):
                # A counter from another kernel: the fused kernel reads it on the device.
                state["step"] = step = step.to(p.device, torch.float32, non_blocking=True)
            exp_avgs.append(state["exp_avg"])
            exp_avg_sqs.append(state["exp_avg_sq"])
            if group["amsgrad"]:
                max_exp_avg_sqs.append(state["max_exp_avg_sq"])
            state_steps.append(step)

    def _kernel(self, group: Mapping[str, Any]) -> str:
        """The kernel this group runs now ("fused", "foreach" or "loop")."""
        params = [p for p in group["params"] if p.grad is not None]
        return _resolve_kernel(
            group["fused"],
            group["foreach"],
            params,
            differentiable=group["differentiable"],
            eps=group["eps"],
        )

    @overload
    def step(self, closure: None = None) -> None: ...

    @overload
    def step(self, closure: Callable[[], float]) -> float: ...

    @_use_grad_for_differentiable
    def step(self, closure: Callable[[], float] | None = None) -> float | None:
        """Perform one optimisation step.

        Every group is checked before any state changes (an unsupported gradient in one
        group leaves all of them as they were). Phase 1 then collects every group's penalty
        sum (the for-loop and foreach kernels update the moments on the way; the fused one
        only reads them); phase 2 computes η_t per group (from the global or the group's V)
        and moves the parameters. ``group["effective_lr"]`` is written in place.

        Args:
            closure: re-evaluates the model and returns the loss; called under
                ``torch.enable_grad()``.

        Returns:
            The closure's loss, or None.

        Raises:
            RuntimeError: on a sparse or complex gradient (naming the parameter), or on
                GradScaler's ``grad_scale``/``found_inf`` reaching a group that is not fused.
            ValueError: when global-scope groups disagree on power or penalize.
        """
        self._accelerator_graph_capture_health_check()

        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()

        check_global_groups(self.param_groups)
        needs_global = any(
            _needs_norm(g["beta3"], g["alpha1"])
            for g in self.param_groups
            if g["norm_scope"] == "global"
        )
        grad_scale: Tensor | None = getattr(self, "grad_scale", None)
        found_inf: Tensor | None = getattr(self, "found_inf", None)

        # Check every group before any state is created or moved, so a raise is atomic.
        kernels = []
        for group_index, group in enumerate(self.param_groups):
            self._check_group(group, group_index)
            kernels.append(self._kernel(group))
            if kernels[-1] != "fused" and (grad_scale is not None or found_inf is not None):
                raise RuntimeError(
                    f"VRAdam: GradScaler passed grad_scale/found_inf, but param_groups"
                    f"[{group_index}] does not run the fused kernel (set fused=True on it)"
                )

        work: list[tuple[dict[str, Any], list[list[Tensor]], str, Tensor | None]] = []
        global_sum: Tensor | None = None
        for group, kernel in zip(self.param_groups, kernels, strict=True):
            lists: list[list[Tensor]] = [[], [], [], [], [], []]
            self._init_group(group, *lists, kernel == "fused")
            params, grads, exp_avgs, exp_avg_sqs, _, state_steps = lists
            if not params:
                continue
            is_global = group["norm_scope"] == "global"
            wants_norm = needs_global if is_global else _needs_norm(group["beta3"], group["alpha1"])
            beta1, beta2 = group["betas"]
            if kernel == "fused":
                part = None
                if wants_norm:
                    part = _fused_penalty(
                        grads,
                        exp_avgs,
                        beta1=beta1,
                        power=group["power"],
                        penalize=group["penalize"],
                        maximize=group["maximize"],
                        grad_scale=grad_scale,
                        compile_norm=group["compile_norm"],
                    )
            else:
                part = _moments(
                    grads,
                    exp_avgs,
                    exp_avg_sqs,
                    state_steps,
                    foreach=kernel == "foreach",
                    beta1=beta1,
                    beta2=beta2,
                    power=group["power"] if wants_norm else None,
                    penalize=group["penalize"],
                    maximize=group["maximize"],
                    differentiable=group["differentiable"],
                )
            if is_global and part is not None:
                global_sum = part if global_sum is None else global_sum + part.to(global_sum.device)
            work.append((group, lists, kernel, None if is_global else part))

        for group, lists, kernel, part in work:
            params, grads, exp_avgs, exp_avg_sqs, max_exp_avg_sqs, state_steps = lists
            penalty_sum = global_sum if group["norm_scope"] == "global" else part
            eta = _effective_lr(
                penalty_sum,
                lr=group["lr"],
                beta3=group["beta3"],
                alpha1=group["alpha1"],
                like=params[0],
            )
            beta1, beta2 = group["betas"]
            options: dict[str, Any] = {
                "eta": eta,
                "beta1": beta1,
                "beta2": beta2,
                "eps": group["eps"],
                "weight_decay": group["weight_decay"],
                "amsgrad": group["amsgrad"],
            }
            if kernel == "fused":
                _fused_update(
                    params,
                    grads,
                    exp_avgs,
                    exp_avg_sqs,
                    max_exp_avg_sqs,
                    state_steps,
                    maximize=group["maximize"],
                    grad_scale=grad_scale,
                    found_inf=found_inf,
                    **options,
                )
            else:
                _update(
                    params,
                    exp_avgs,
                    exp_avg_sqs,
                    state_steps,
                    foreach=kernel == "foreach",
                    capturable=group["capturable"],
                    differentiable=group["differentiable"],
                    max_exp_avg_sqs=max_exp_avg_sqs,
                    **options,
                )
            record_effective_lr(group, eta, found_inf)

        return loss
