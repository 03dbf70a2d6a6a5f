"""The optimization ladder: rungs that each add one optimization, and what each step did to joules.

Takes in: per-rung measurements (repeats of J per request, prefill and decode J, time, mean power).
Produces: `RungResult` per rung with the change from the rung below split exactly into a time part
and a power part (energy ratio = time ratio x power ratio, since mean power is energy / time), a
verdict, and a reason built from the measured quantities. The GPU measurement lives in
`kernelprof.methods.ladder_run`; this module is pure arithmetic and runs anywhere.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from kernelprof.errors import UsageError


@dataclass(frozen=True)
class RungSpec:
    name: str
    adds: str                     # the one optimization this rung adds to the one below
    supported: bool = True
    why_not: str = ""             # for unsupported rungs: what the model lacks (shown, never faked)


# The paper's ladder mapped onto what the stacks here can do. kernelprof's eager decode reads the
# lengths on the host, which a CUDA graph cannot capture, so the graph rung runs the same references
# with decode over the whole static cache, masked on the device (kernels/decode/reference.py,
# decode_eager_static): it adds that and the graph together, and says so.
RUNGS: tuple[RungSpec, ...] = (
    RungSpec("hf-eager", "transformers eager attention, dynamic cache (the paper's PyTorch baseline)"),
    RungSpec("hf-sdpa-static-compile", "SDPA attention, static KV cache, torch.compile (reduce-overhead)"),
    RungSpec("kp-eager", "kernelprof's model, eager PyTorch references (materialized scores, host-read lengths)"),
    RungSpec("kp-cuda-graphs", "CUDA-graph decode on the eager references (decode over the static cache with a "
                               "device mask, so no host read)"),
    RungSpec("kp-fused-pointwise", "fused Triton RMSNorm/RoPE/SwiGLU and the fused decode-step kernels "
                                   "(attention still the eager references)"),
    RungSpec("kp-triton", "Triton flash attention and split-K decode (kernelprof's optimized mode: with "
                          "the fused pointwise kernels and CUDA-graph decode of the two rungs above)"),
    RungSpec("kp-fp8", "fp8 e4m3 GEMMs in every block (row-wise scales, torch._scaled_mm; LM head bf16); "
                       "the output difference against kp-triton's bf16 weights is stated"),
    RungSpec("kp-triton-max-batch", "the largest batch that fits in memory (J per request at higher occupancy)"),
)
RUNG_NAMES = tuple(r.name for r in RUNGS)


def select_rungs(names: str | None) -> tuple[RungSpec, ...]:
    """Comma-separated rung names (None: all), in ladder order; UsageError for an unknown name."""
    if not names:
        return RUNGS
    wanted = [n.strip() for n in names.split(",") if n.strip()]
    unknown = [n for n in wanted if n not in RUNG_NAMES]
    if unknown:
        raise UsageError(f"unknown rung {unknown[0]!r}; known: {', '.join(RUNG_NAMES)}")
    return tuple(r for r in RUNGS if r.name in wanted)


@dataclass(frozen=True)
class Repeat:
    """One measurement of a rung: a batch of requests generated, measured in-run."""

    j_per_request: float
    prefill_j_per_request: float | None
    decode_j_per_request: float | None
    time_per_batch_s: float        # prefill + decode GPU time of one generate call (the batch's latency)
    prefill_time_s: float | None = None
    decode_time_s: float | None = None
    sm_clock_prefill_mhz: float | None = None
    sm_clock_decode_mhz: float | None = None


@dataclass(frozen=True)
class Change:
    """This rung vs the one below, per request: energy ratio = time ratio x power ratio (exact)."""

    below: str
    time_ratio: float
    power_ratio: float
    energy_ratio: float
    energy_log_ci: tuple[float, float] | None    # 95% CI of ln(energy ratio); None with < 2 repeats each
    time_log_ci: tuple[float, float] | None
    verdict: str                                 # saves energy | saves only time | wastes energy | no significant difference
    text: str                                    # "-30.0% time at +8.0% power: -24.4% energy"


@dataclass(frozen=True)
class RungResult:
    name: str
    adds: str
    supported: bool
    model: str
    batch: int
    input_len: int
    output_len: int
    repeats: tuple[Repeat, ...] = ()
    flags: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()
    change: Change | None = None
    reason: str = ""
    extra: dict[str, Any] = field(default_factory=dict)  # e.g. transformers version, output difference

    def _mean(self, attr: str) -> float | None:
        vals = [getattr(r, attr) for r in self.repeats]
        return None if not vals or any(v is None for v in vals) else sum(vals) / len(vals)

    @property
    def j_per_request(self) -> float | None:
        return self._mean("j_per_request")

    @property
    def prefill_j(self) -> float | None:
        return self._mean("prefill_j_per_request")

    @property
    def decode_j(self) -> float | None:
        return self._mean("decode_j_per_request")

    @property
    def time_s(self) -> float | None:
        """GPU time of one batch (prefill + decode of `batch` requests)."""
        return self._mean("time_per_batch_s")

    @property
    def time_per_request_s(self) -> float | None:
        t = self.time_s
        return None if t is None else t / self.batch

    @property
    def mean_power_w(self) -> float | None:
        """Energy / time over the batch, so that energy = power x time holds exactly."""
        e, t = self.j_per_request, self.time_per_request_s
        return None if e is None or not t else e / t

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d.update(j_per_request=self.j_per_request, prefill_j=self.prefill_j, decode_j=self.decode_j,
                 time_s=self.time_s, mean_power_w=self.mean_power_w)
        return d

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> "RungResult":
        names = {f for f in cls.__dataclass_fields__}
        d = {k: v for k, v in d.items() if k in names}
        reps = tuple(Repeat(**r) for r in d.pop("repeats", ()))
        ch = d.pop("change", None)
        if ch is not None:
            ch = Change(**{**ch, "energy_log_ci": _pair(ch.get("energy_log_ci")),
                           "time_log_ci": _pair(ch.get("time_log_ci"))})
        return cls(**{**d, "repeats": reps, "change": ch, "flags": tuple(d.get("flags", ())),
                      "notes": tuple(d.get("notes", ()))})


def _pair(x: Any) -> tuple[float, float] | None:
    return None if x is None else (float(x[0]), float(x[1]))


# Two-sided 95% Student t quantiles by degrees of freedom (no scipy dependency); above 30, ~normal.
_T95 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306, 9: 2.262, 10: 2.228,
        15: 2.131, 20: 2.086, 30: 2.042}


def t95(dof: int) -> float:
    keys = sorted(k for k in _T95 if k <= dof)
    return 1.96 if dof > 30 else _T95[keys[-1]]  # the next lower tabulated dof: conservative


def _log_ci(a: list[float], b: list[float]) -> tuple[float, float] | None:
    """95% CI of ln(mean a / mean b) from the repeats' logs (Welch, dof = n_a + n_b - 2 conservative min)."""
    if len(a) < 2 or len(b) < 2 or min(a + b) <= 0:
        return None
    la, lb = [math.log(x) for x in a], [math.log(x) for x in b]

    def var(xs: list[float]) -> float:
        m = sum(xs) / len(xs)
        return sum((x - m) ** 2 for x in xs) / (len(xs) - 1)

    se = math.sqrt(var(la) / len(la) + var(lb) / len(lb))
    d = math.log(sum(a) / len(a)) - math.log(sum(b) / len(b))
    h = t95(min(len(a), len(b)) - 1) * se
    return d - h, d + h


# With one repeat per rung there is no CI; below this |change| a point estimate is called no
# significant difference: 2x the H200 accuracy benchmark's worst CV (0.46%, benchmarks/results/accuracy-h200.json).
NO_CI_THRESHOLD = 0.01


def _significant(ci: tuple[float, float] | None, log_ratio: float) -> int:
    """-1 significantly lower, +1 significantly higher, 0 not."""
    if ci is not None:
        return -1 if ci[1] < 0 else (1 if ci[0] > 0 else 0)
    return 0 if abs(log_ratio) < math.log1p(NO_CI_THRESHOLD) else (-1 if log_ratio < 0 else 1)


def verdict(energy_ratio: float, time_ratio: float, energy_log_ci: tuple[float, float] | None,
            time_log_ci: tuple[float, float] | None) -> str:
    e = _significant(energy_log_ci, math.log(energy_ratio))
    t = _significant(time_log_ci, math.log(time_ratio))
    if e < 0:
        return "saves energy"
    if e > 0:
        return "wastes energy"
    return "saves only time" if t < 0 else "no significant difference"


def change_text(time_ratio: float, power_ratio: float) -> str:
    """'-30.0% time at +8.0% power: -24.4% energy' (multiplicative: 0.700 x 1.080 = 0.756)."""
    return (f"{100 * (time_ratio - 1):+.1f}% time at {100 * (power_ratio - 1):+.1f}% power: "
            f"{100 * (time_ratio * power_ratio - 1):+.1f}% energy")


def compare(rung: RungResult, below: RungResult) -> Change | None:
    """Per request (so a larger batch compares by throughput); None if either lacks energy."""
    e1, e0 = rung.j_per_request, below.j_per_request
    t1, t0 = rung.time_per_request_s, below.time_per_request_s
    if not e1 or not e0 or not t1 or not t0:
        return None
    tr, er = t1 / t0, e1 / e0
    pr = er / tr
    eci = _log_ci([r.j_per_request for r in rung.repeats], [r.j_per_request for r in below.repeats])
    tci = _log_ci([r.time_per_batch_s / rung.batch for r in rung.repeats],
                  [r.time_per_batch_s / below.batch for r in below.repeats])
    return Change(below.name, tr, pr, er, eci, tci, verdict(er, tr, eci, tci), change_text(tr, pr))


def reason(rung: RungResult, below: RungResult) -> str:
    """What moved, in measured quantities: phase times and energies, and the mean SM clocks."""
    parts = []
    for ph, tattr, eattr in (("prefill", "prefill_time_s", "prefill_j_per_request"),
                             ("decode", "decode_time_s", "decode_j_per_request")):
        t1, t0 = rung._mean(tattr), below._mean(tattr)
        e1, e0 = rung._mean(eattr), below._mean(eattr)
        bits = []
        if t1 and t0:
            bits.append(f"time {t0:.3g}->{t1:.3g} s/batch")
        if e1 and e0:
            bits.append(f"{e0:.3g}->{e1:.3g} J/request")
        c1, c0 = rung._mean(f"sm_clock_{ph}_mhz"), below._mean(f"sm_clock_{ph}_mhz")
        if c1 and c0:
            bits.append(f"SM clock {c0:.0f}->{c1:.0f} MHz")
        if bits:
            parts.append(f"{ph}: " + ", ".join(bits))
    if rung.batch != below.batch:
        parts.append(f"batch {below.batch}->{rung.batch}: the weights are read once per step for more requests")
    return "; ".join(parts) or "no phase breakdown on one side"


def link(results: list[RungResult]) -> list[RungResult]:
    """Each measured rung compared with the nearest measured rung below it."""
    out, below = [], None
    for r in results:
        if r.supported and r.repeats and below is not None:
            r = replace(r, change=compare(r, below), reason=reason(r, below))
        out.append(r)
        if r.supported and r.repeats:
            below = r
    return out
