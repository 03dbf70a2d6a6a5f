"""The typed results of `kernelprof llm`: per phase, the in-run measurement and each method's estimate.

A phase (prefill or decode, summed over the measured requests) holds its in-run measurement as
plain fields and every other reading of it as a `PhaseEstimate` keyed by method:

- "inrun_fit": the phase fit (`kernelprof.attribution.phase_fit`) over the same in-run samples, one
  mean power per phase kind, which reads phases shorter than a sample without the neighbours'
  power leaking in;
- "steady": the phase looped alone (`measure_kernel`), its mean power x the in-run time;
- "cycle" / "cycle_fit": the phases cycled as in the run (`kernelprof.methods.llm.cycle`), the
  samples integrated / the phase fit, each power x the in-run time.

`phase.estimate("inrun")` is the in-run measurement in the same shape, so that one function,
`gap_pct(phase, method, reference)`, compares any two of them; gaps are not stored.

No torch here: `kernelprof report` reads these on machines without a GPU. Run files of format
version 1 hold the phases as ~30 flat method x metric keys (`energy_fit_j`, `gap_cycle_fit_pct`,
...); `LLMResult.from_json` reads both shapes.
"""
from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any

INRUN = "inrun"
METHODS = ("inrun_fit", "steady", "cycle", "cycle_fit")  # estimate keys, in report order


@dataclass(frozen=True)
class PhaseEstimate:
    """One method's reading of a phase. Energies are for the in-run phase (all its calls)."""

    method: str                             # "inrun" | "inrun_fit" | "steady" | "cycle" | "cycle_fit"
    power_w: float | None                   # the method's mean power of the phase
    energy_j: float | None                  # in-run phase energy by this method (its power x in-run time, or the fit's)
    power_se_w: float | None = None         # standard error of power_w (the phase fit)
    energy_per_call_j: float | None = None  # per prefill, or per decode step, as this method measured it
    time_per_call_s: float | None = None    # the method's own time per call (looped alone, cycled)
    sm_clock_mhz: float | None = None       # mean SM clock while the method ran the phase (10 Hz readings)

    def to_json(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> PhaseEstimate:
        return cls(**{f.name: d.get(f.name) for f in fields(cls)})


@dataclass(frozen=True)
class PhaseEnergy:
    """One phase of the requests: the in-run measurement, the paper's estimate, and the other methods'."""

    name: str                    # "prefill" | "decode"
    time_s: float                # in-run, summed over the repeated requests
    calls: int                   # prefills, or decode steps, in the phase over all requests
    tokens: int                  # tokens processed in the phase, summed over requests
    flops: float
    energy_inrun_j: float | None  # buffered power samples integrated over the phase's intervals
    mean_power_inrun_w: float | None
    paper_estimate_j: float | None  # TDP / headline peak FLOP/s x FLOPs
    flags: tuple[str, ...] = ()
    sm_clock_inrun_mhz: float | None = None
    estimates: dict[str, PhaseEstimate] = field(default_factory=dict)  # method -> estimate; see METHODS

    def estimate(self, method: str) -> PhaseEstimate | None:
        """The method's estimate; "inrun" is the in-run measurement itself."""
        if method == INRUN:
            e = self.energy_inrun_j
            return PhaseEstimate(INRUN, self.mean_power_inrun_w, e,
                                 energy_per_call_j=None if e is None or not self.calls else e / self.calls,
                                 time_per_call_s=self.time_s / self.calls if self.calls else None,
                                 sm_clock_mhz=self.sm_clock_inrun_mhz)
        return self.estimates.get(method)

    @property
    def j_per_token_inrun(self) -> float | None:
        return None if self.energy_inrun_j is None else self.energy_inrun_j / self.tokens

    @property
    def busy_fraction(self) -> float | None:
        """Looped-alone time of the phase's calls over its in-run time: below ~0.9 the GPU waited on the host.

        Above 1 the run ran the phase faster than the loop, at another clock; steady power x in-run
        time then mixes the two states, energy per call does not.
        """
        st = self.estimates.get("steady")
        if st is None or st.time_per_call_s is None or self.time_s <= 0:
            return None
        return self.calls * st.time_per_call_s / self.time_s

    def to_json(self) -> dict[str, Any]:
        d = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "estimates"}
        d["flags"] = list(self.flags)
        d["estimates"] = {k: v.to_json() for k, v in self.estimates.items()}
        return d

    @classmethod
    def from_json(cls, d: dict[str, Any], *, calls: int | None = None) -> PhaseEnergy:
        """A phase record; version-1 records (flat keys, no "estimates", no "calls") need `calls`."""
        if "estimates" not in d:
            return _phase_from_v1(d, calls)
        return cls(d["name"], d["time_s"], d["calls"], d["tokens"], d["flops"], d["energy_inrun_j"],
                   d["mean_power_inrun_w"], d["paper_estimate_j"], tuple(d.get("flags", ())),
                   d.get("sm_clock_inrun_mhz"),
                   {k: PhaseEstimate.from_json(v) for k, v in d["estimates"].items()})


def gap_pct(phase: PhaseEnergy, method: str, reference: str, *, per_call: bool = False) -> float | None:
    """(method - reference) / reference in %, of the phase energy (or of the energy per call)."""
    a, b = phase.estimate(method), phase.estimate(reference)
    if a is None or b is None:
        return None
    x, ref = (a.energy_per_call_j, b.energy_per_call_j) if per_call else (a.energy_j, b.energy_j)
    return pct(x, ref)


def pct(x: float | None, ref: float | None) -> float | None:
    return None if x is None or not ref else 100.0 * (x - ref) / ref


@dataclass(frozen=True)
class LLMResult:
    model: str
    mode: str
    gemm: str
    batch: int
    input_len: int
    output_len: int
    requests: int           # generate calls measured in-run (each a batch of `batch` requests)
    gpu_name: str
    phases: tuple[PhaseEnergy, ...]
    total_energy_inrun_j: float | None
    total_time_s: float
    counter_energy_j: float | None
    counter_vs_samples_pct: float | None
    j_per_request_inrun: float | None
    paper_ratio: float | None  # measured total / paper estimate
    flags: tuple[str, ...]
    notes: tuple[str, ...] = field(default=())
    wall_s: float = 0.0
    paper_peak_convention: str = "headline"  # files without the key were written with the dense peak

    def phase(self, name: str) -> PhaseEnergy | None:
        return next((p for p in self.phases if p.name == name), None)

    def to_json(self) -> dict[str, Any]:
        d = {f.name: getattr(self, f.name) for f in fields(self)}
        d.update(phases=[p.to_json() for p in self.phases], flags=list(self.flags), notes=list(self.notes))
        return d

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> LLMResult:
        """Either format: version-1 phases (flat keys) are mapped into estimates on the way in."""
        calls = {"prefill": d["requests"], "decode": d["requests"] * (d["output_len"] - 1)}
        phases = tuple(PhaseEnergy.from_json(p, calls=calls.get(p["name"])) for p in d["phases"])
        return cls(d["model"], d["mode"], d["gemm"], d["batch"], d["input_len"], d["output_len"], d["requests"],
                   d["gpu_name"], phases, d["total_energy_inrun_j"], d["total_time_s"], d["counter_energy_j"],
                   d["counter_vs_samples_pct"], d["j_per_request_inrun"], d["paper_ratio"], tuple(d["flags"]),
                   tuple(d.get("notes", ())), d.get("wall_s", 0.0),
                   # version-1 files without the key were written with the dense peak
                   d.get("paper_peak_convention", "dense"))


def _phase_from_v1(d: dict[str, Any], calls: int | None) -> PhaseEnergy:
    """A version-1 phase: flat keys (`steady_power_w`, `energy_fit_j`, `cycle_power_fit_w`, ...).

    Stored gaps are dropped (`gap_pct` recomputes them from the same stored floats, bit for bit);
    energies the writer derived as power x in-run time are derived the same way here. A method
    whose every key is missing or null was not measured and gets no estimate. `calls` is what
    `run_llm` used: requests for prefill, requests x (output_len - 1) for decode.
    """
    if calls is None:
        raise KeyError(f"phase {d.get('name')!r}: a version-1 phase needs its call count")
    t = d["time_s"]

    def times_t(w: float | None) -> float | None:
        return None if w is None else w * t

    def per_call(e: float | None) -> float | None:
        return None if e is None or not calls else e / calls

    est: dict[str, PhaseEstimate] = {}

    def add(e: PhaseEstimate) -> None:
        if any(getattr(e, f.name) is not None for f in fields(e) if f.name != "method"):
            est[e.method] = e

    add(PhaseEstimate("inrun_fit", d.get("power_fit_w"), d.get("energy_fit_j"), d.get("power_fit_se_w"),
                      per_call(d.get("energy_fit_j"))))
    add(PhaseEstimate("steady", d.get("steady_power_w"), d.get("energy_steady_j"),
                      energy_per_call_j=d.get("steady_energy_per_call_j"),
                      time_per_call_s=d.get("steady_time_per_call_s"), sm_clock_mhz=d.get("sm_clock_steady_mhz")))
    cycle_t, cycle_clock = d.get("cycle_time_per_call_s"), d.get("sm_clock_cycle_mhz")
    add(PhaseEstimate("cycle", d.get("cycle_power_w"), times_t(d.get("cycle_power_w")),
                      time_per_call_s=cycle_t, sm_clock_mhz=cycle_clock))
    add(PhaseEstimate("cycle_fit", d.get("cycle_power_fit_w"), times_t(d.get("cycle_power_fit_w")),
                      d.get("cycle_power_fit_se_w"), time_per_call_s=cycle_t, sm_clock_mhz=cycle_clock))
    return PhaseEnergy(d["name"], t, calls, d["tokens"], d["flops"], d["energy_inrun_j"], d["mean_power_inrun_w"],
                       d["paper_estimate_j"], tuple(d.get("flags", ())), d.get("sm_clock_inrun_mhz"),
                       {m: est[m] for m in METHODS if m in est})
