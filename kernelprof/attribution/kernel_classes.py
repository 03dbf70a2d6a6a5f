"""Kernel classes and the busy seconds each class spends in each sample window.

A class is one kernel name, or a group of names when single names cannot be told apart by the
regression (kernelprof.attribution.kernel_regression). The auto groups go by what a kernel does, as
read from its CUPTI name; a user's regex overrides come first and name their own groups.

Busy seconds: per class, the union of its kernels' [start, end) on one GPU (two overlapping kernels
of one class count once). Where kernels of several classes overlap (streams), each of the k classes
running gets 1/k of that time, so a window's class columns plus its idle column add up to its length
and the model reads "the window's mean power is the time-weighted mean of the class powers".
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Sequence

import numpy as np

# Order matters: the first match wins (a flash-attention kernel's name may contain "gemm"; an
# elementwise copy's name contains "elementwise").
AUTO_GROUPS: tuple[tuple[str, str], ...] = (
    ("communication", r"nccl|all_?reduce|all_?gather|reduce_?scatter|sendrecv|alltoall"),
    ("attention", r"flash|fmha|attention|attn|sdpa|_fwd_kernel|decode.*split|paged"),
    ("gemm", r"gemm|matmul|cublas|cutlass|nvjet|xmma|wgmma|sm\d+_.*(?:tensorop|hmma)|_mm_kernel|_bmm|dot"),
    ("copy/memset", r"^Memcpy|^Memset|copy|fill|cat_|index_put|scatter_gather"),
    ("norm/pointwise", r"norm|elementwise|vectorized|pointwise|softmax|rope|rotary|silu|gelu|swiglu|"
                       r"triton_(?:poi|red|per)|reduce|act_and_mul|add|mul|embedding"),
)
OTHER_GROUP = "other"
GROUP_NAMES = tuple(g for g, _ in AUTO_GROUPS) + (OTHER_GROUP,)


@dataclass(frozen=True)
class ClassOverride:
    """Kernel names matching `pattern` (re.search) form the class `group`, ahead of the auto groups."""

    group: str
    pattern: str

    @classmethod
    def parse(cls, spec: str) -> "ClassOverride":
        """'GROUP=REGEX', as the CLI takes it."""
        group, sep, pattern = spec.partition("=")
        if not sep or not group or not pattern:
            raise ValueError(f"a class override is GROUP=REGEX (e.g. 'my_attn=my_attention_kernel'), got {spec!r}")
        re.compile(pattern)
        return cls(group.strip(), pattern)


def auto_group(name: str, kind: str = "kernel") -> str:
    """The auto group of one kernel name (`kind` from KernelTrace: kernel, memcpy or memset)."""
    if kind in ("memcpy", "memset"):
        return "copy/memset"
    for group, pattern in AUTO_GROUPS:
        if re.search(pattern, name, flags=re.IGNORECASE):
            return group
    return OTHER_GROUP


def override_group(name: str, overrides: Sequence[ClassOverride]) -> str | None:
    for o in overrides:
        if re.search(o.pattern, name):
            return o.group
    return None


def merged_spans(start_s: np.ndarray, end_s: np.ndarray) -> np.ndarray:
    """[m, 2] union of the intervals, sorted and non-touching."""
    if len(start_s) == 0:
        return np.zeros((0, 2))
    order = np.argsort(start_s, kind="stable")
    s, e = start_s[order], np.maximum.accumulate(end_s[order])
    # A new span starts where a start lies after every earlier end.
    new = np.concatenate([[True], s[1:] > e[:-1]])
    idx = np.flatnonzero(new)
    ends = np.concatenate([e[idx[1:] - 1], e[-1:]])
    return np.stack([s[idx], ends], axis=1)


class _StepIntegral:
    """Integral from -inf of a step function given by +1/-1 events (value k): of 1/k, and of [k > 0]."""

    def __init__(self, spans: Sequence[np.ndarray]) -> None:
        starts = np.concatenate([sp[:, 0] for sp in spans]) if spans else np.zeros(0)
        ends = np.concatenate([sp[:, 1] for sp in spans]) if spans else np.zeros(0)
        t = np.concatenate([starts, ends])
        d = np.concatenate([np.ones(len(starts)), -np.ones(len(ends))])
        order = np.argsort(t, kind="stable")
        self.t, k = t[order], np.cumsum(d[order])
        dt = np.diff(self.t)
        share = np.where(k[:-1] > 0, 1.0 / np.maximum(k[:-1], 1.0), 0.0)
        self.g = np.concatenate([[0.0], np.cumsum(share * dt)])  # 1/k: each class's share
        self.h = np.concatenate([[0.0], np.cumsum((k[:-1] > 0) * dt)])  # any kernel running

    def share(self, x: np.ndarray) -> np.ndarray:
        return np.interp(x, self.t, self.g) if len(self.t) else np.zeros_like(x)

    def busy(self, x: np.ndarray) -> np.ndarray:
        return np.interp(x, self.t, self.h) if len(self.t) else np.zeros_like(x)


def busy_seconds(a_s: np.ndarray, b_s: np.ndarray, spans: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """([n, C] busy seconds of each class in each window [a_i, b_i], [n] idle seconds); see the docstring."""
    a_s, b_s = np.asarray(a_s, float), np.asarray(b_s, float)
    step = _StepIntegral(spans)
    out = np.zeros((len(a_s), len(spans)))
    for c, sp in enumerate(spans):
        if not len(sp):
            continue
        s, e = sp[:, 0], sp[:, 1]
        gs, ge = step.share(s), step.share(e)
        cum = np.concatenate([[0.0], np.cumsum(ge - gs)])

        def w(x: np.ndarray) -> np.ndarray:  # this class's share-weighted busy time before x
            m = np.searchsorted(e, x, side="right")  # spans that ended by x count whole
            partial = np.zeros_like(x)
            inside = m < len(s)
            mi = m[inside]
            xi = x[inside]
            partial[inside] = np.where(s[mi] < xi, step.share(xi) - gs[mi], 0.0)
            return cum[m] + partial

        out[:, c] = w(b_s) - w(a_s)
    idle = (b_s - a_s) - (step.busy(b_s) - step.busy(a_s))
    return out, np.clip(idle, 0.0, None)
