"""``linear`` healing: each removed run of blocks replaced by one linear map, fitted in closed form.

Definition (ReplaceMe, Shopkhoev et al. 2025; the lightweight replacement of LLM-Streamline):
for a removed run of blocks i+1..j and the kept block i before it, let M be block i's MLP
output (what its down-projection adds to the residual stream), Y = h_i - M the rest of block
i's output h_i, and L the unpruned model's hidden state after block j. T (C x C) minimises
||Y + M T - L||^2 over every position of the calibration windows, with a ridge of
``ridge`` x the mean eigenvalue of M^T M, solved in float64 from the normal equations.

T is folded into block i's down-projection (nn.Linear: W <- T^T W, b <- b T), so the healed
model has the pruned model's shape and parameter count, runs at its speed and saves as a
stock checkpoint. Runs are fitted in block order, each on the model with the earlier maps
already folded in. A family whose MLP output passes through a norm before the residual
(Gemma 2 and 3) cannot fold T: the first window checks the fold, and ``HealError`` refuses it.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from pruning.common.progress import Bar
from pruning.data.windows import Window
from pruning.models.surgery import get_blocks, remove_layers

DOWN_PROJECTIONS = ("mlp.down_proj", "mlp.c_proj", "mlp.dense_4h_to_h", "mlp.fc2", "fc2", "mlp.fc_out")
FOLD_RTOL = 1e-4  # relative error of the folded block's output against Y + M T (float32 rounding)


class HealError(ValueError):
    """A variant that a healing method cannot heal (the message says why)."""


class _Stop(Exception):
    """Raised by a hook once everything needed is captured: the rest of the forward is skipped."""


def removed_runs(drop: Sequence[int]) -> list[tuple[int, int]]:
    """Maximal runs of consecutive removed blocks, as (first, last)."""
    runs: list[tuple[int, int]] = []
    for i in sorted(drop):
        if runs and runs[-1][1] == i - 1:
            runs[-1] = (runs[-1][0], i)
        else:
            runs.append((i, i))
    return runs


def check_linear(drop: Sequence[int], variant_id: str) -> None:
    """``HealError`` when a removed run has no kept block before it to fold its map into."""
    if 0 in drop:
        raise HealError(
            f"linear healing folds each removed run into the kept block before it; {variant_id!r} "
            "removes block 0, which has none (heal it with lora, or keep block 0)"
        )


def down_projection(block: nn.Module) -> nn.Module:
    """The module whose output is the block's MLP contribution to the residual stream."""
    modules = dict(block.named_modules())
    for name in DOWN_PROJECTIONS:
        if name in modules:
            found: nn.Module = modules[name]
            return found
    raise HealError(f"{type(block).__name__}: no MLP output projection among {', '.join(DOWN_PROJECTIONS)}")


def fit_linear(
    base: nn.Module, pruned: nn.Module, drop: Sequence[int], windows: Sequence[Window], ridge: float, bar: Bar
) -> dict[str, torch.Tensor]:
    """Fit and fold one map per removed run into ``pruned`` (an independent copy, changed in place).

    Returns the maps by the original index of the block each was folded into (``block.<i>``).
    """
    kept = [i for i in range(len(get_blocks(base))) if i not in drop]
    maps = {}
    for first, last in removed_runs(drop):
        host = kept.index(first - 1)  # the kept block before the run, in the pruned model
        maps[f"block.{first - 1}"] = _fit_run(base, pruned, host, last, windows, ridge, bar)
    return maps


def apply_linear(pruned: nn.Module, drop: Sequence[int], maps: dict[str, torch.Tensor]) -> nn.Module:
    """Fold fitted ``maps`` (from ``fit_linear``) into ``pruned`` (an independent copy)."""
    n_layers = len(get_blocks(pruned)) + len(drop)
    kept = [i for i in range(n_layers) if i not in drop]
    for name, t in maps.items():
        fold(get_blocks(pruned)[kept.index(int(name.split(".")[1]))], t)
    return pruned


def _fit_run(
    base: nn.Module,
    pruned: nn.Module,
    host: int,
    last: int,
    windows: Sequence[Window],
    ridge: float,
    bar: Bar,
) -> torch.Tensor:
    block = get_blocks(pruned)[host]
    width = None
    gram = rhs = torch.zeros(0)
    for window in windows:
        ids = window.ids[None].to(next(base.parameters()).device)  # (1, T)
        target = _capture(base, {"out": get_blocks(base)[last]}, ids)["out"]  # (T, C)
        got = _capture(pruned, {"mlp": down_projection(block), "out": block}, ids)
        m, rest = got["mlp"], got["out"] - got["mlp"]  # (T, C) each: M and Y
        if width is None:
            width = m.shape[1]
            gram = torch.zeros(width, width, dtype=torch.float64)
            rhs = torch.zeros(width, width, dtype=torch.float64)
        gram += m.T @ m
        rhs += m.T @ (target - rest)
        bar.update(1)
    lam = ridge * float(gram.diagonal().mean())
    t: torch.Tensor = torch.linalg.solve(gram + lam * torch.eye(gram.shape[0], dtype=torch.float64), rhs)
    t = t.float()
    _check_fold(pruned, block, t, windows[0].ids[None])
    return t


def check_foldable(model: nn.Module, variant_id: str) -> None:
    """``HealError`` unless a map folded into a block's down-projection is exactly y -> y T there.

    Checked on block 0 alone (a one-block view whose down-projection weights are copies, so
    ``model`` is untouched), a fixed T near the identity, and an 8-token probe.
    """
    probe = remove_layers(model, range(1, len(get_blocks(model))))
    block = get_blocks(probe)[0]
    proj = down_projection(block)
    for name in ("weight", "bias"):
        value = getattr(proj, name, None)
        if isinstance(value, torch.Tensor):
            setattr(proj, name, nn.Parameter(value.detach().clone(), requires_grad=False))
    weight = proj.weight
    assert isinstance(weight, torch.Tensor)
    width = int(weight.shape[0 if isinstance(proj, nn.Linear) else 1])  # the residual width C
    t = torch.eye(width) + 0.1 * torch.randn(width, width, generator=torch.Generator().manual_seed(0))
    ids = fold_probe(int(getattr(getattr(model, "config", None), "vocab_size", 256)))
    try:
        _check_fold(probe, block, t, ids)
    except HealError as exc:
        raise HealError(f"cannot heal {variant_id!r} with linear: {exc}") from None


def fold_probe(vocab: int) -> torch.Tensor:
    """The fold check's input (1, 8): token ids spread over the vocabulary, no text at all."""
    return (torch.arange(8) * 31 % vocab)[None]


def _check_fold(pruned: nn.Module, block: nn.Module, t: torch.Tensor, ids: torch.Tensor) -> None:
    """Fold ``t`` into ``block`` and prove the block now outputs Y + M T on ``ids`` (1, T)."""
    ids = ids.to(next(pruned.parameters()).device)
    before = _capture(pruned, {"mlp": down_projection(block), "out": block}, ids)
    want = before["out"] - before["mlp"] + before["mlp"] @ t.double()  # (T, C)
    fold(block, t)
    got = _capture(pruned, {"out": block}, ids)["out"]
    err = float((got - want).norm() / want.norm())
    if err > FOLD_RTOL:
        raise HealError(
            f"{type(block).__name__}: a linear map cannot be folded into the MLP output (relative "
            f"error {err:.2g}; its MLP output passes through a norm or gate before the residual)"
        )


def fold(block: nn.Module, t: torch.Tensor) -> None:
    """Replace the block's MLP output y by y T, in place (nn.Linear and GPT-2's Conv1D)."""
    proj = down_projection(block)
    weight, bias = proj.weight, getattr(proj, "bias", None)
    assert isinstance(weight, torch.Tensor)
    t = t.to(weight.device, torch.float64)
    with torch.no_grad():
        if isinstance(proj, nn.Linear):  # y = x W^T + b, W: (C, in)
            weight.copy_((t.T @ weight.double()).to(weight.dtype))
        else:  # Conv1D: y = x W + b, W: (in, C)
            weight.copy_((weight.double() @ t).to(weight.dtype))
        if isinstance(bias, torch.Tensor):
            bias.copy_((bias.double() @ t).to(bias.dtype))


def _capture(model: nn.Module, modules: dict[str, nn.Module], ids: torch.Tensor) -> dict[str, torch.Tensor]:
    """The float64 outputs (T, C) of ``modules`` on ``ids`` (1, T); the forward stops after the last."""
    got: dict[str, torch.Tensor] = {}

    def hook(name: str) -> object:
        def grab(_: nn.Module, __: object, out: object) -> None:
            tensor = out[0] if isinstance(out, tuple) else out
            assert isinstance(tensor, torch.Tensor)
            got[name] = tensor.detach().reshape(-1, tensor.shape[-1]).double()  # (T, C); OPT's MLP is 2-D
            if len(got) == len(modules):
                raise _Stop

        return grab

    handles = [m.register_forward_hook(hook(n)) for n, m in modules.items()]  # type: ignore[arg-type]
    try:
        with torch.inference_mode():
            model(input_ids=ids, use_cache=False)
    except _Stop:
        pass
    finally:
        for h in handles:
            h.remove()
    return got
