"""Request-length workloads and the binning of Fernandez et al. (2025).

A workload is a list of (input_len, output_len) requests in tokens. The paper estimates its energy
by placing each request in the smallest input bin and the smallest output bin at or above its
lengths (longer requests are dropped), measuring one full batch per occupied bin, and summing
(requests in bin / batch size) x (energy of one batch).

Sources: the Azure LLM inference traces of 2023 shipped in `kernelprof/data` (CC-BY 4.0, Patel et
al., "Splitwise", ISCA 2024), a BurstGPT-like workload *fitted to BurstGPT's published summary
statistics* (the trace itself is not shipped: it is labelled as fitted, never as the trace), and
any CSV of (input_len, output_len).
"""
from __future__ import annotations

import csv
import io
import math
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from kernelprof.errors import UsageError

INPUT_BINS = (32, 128, 256, 512, 1024, 2048, 4096, 8192)
OUTPUT_BINS = (8, 16, 32, 64, 128, 256, 512)
DATA_DIR = Path(__file__).resolve().parents[1] / "data" / "azure_llm_inference_2023"
AZURE_FILES = {"azure-code": "AzureLLMInferenceTrace_code.csv", "azure-conv": "AzureLLMInferenceTrace_conv.csv"}
AZURE_CITATION = ("Azure LLM inference trace 2023 (CC-BY 4.0): Patel et al., \"Splitwise: Efficient generative "
                  "LLM inference using phase splitting\", ISCA 2024")

# BurstGPT's published statistics (tokens): mean / median / p99.
BURSTGPT_INPUT = (256.8, 215.0, 1038.0)
BURSTGPT_OUTPUT = (35.1, 7.0, 478.0)
_Z99 = 2.326347874  # standard normal 99th percentile


@dataclass(frozen=True)
class Workload:
    name: str
    input_lens: np.ndarray   # int64 [requests]
    output_lens: np.ndarray  # int64 [requests]
    source: str              # where the lengths came from, in words (citation or "fitted to ...")

    @property
    def requests(self) -> int:
        return int(self.input_lens.size)


@dataclass(frozen=True)
class Bin:
    input_bin: int
    output_bin: int
    requests: int


@dataclass(frozen=True)
class Binning:
    workload: str
    bins: tuple[Bin, ...]          # occupied bins only, by (input_bin, output_bin)
    dropped: int                   # requests longer than the largest bin
    total: int
    notes: tuple[str, ...] = field(default=())

    def batches(self, batch_size: int, bin_: Bin) -> float:
        """Batches of `batch_size` this bin stands for: requests / batch size (fractional, as the paper)."""
        return bin_.requests / batch_size


def bin_of(length: int, bins: tuple[int, ...]) -> int | None:
    """The smallest bin at or above `length`, or None if longer than all."""
    for b in bins:
        if length <= b:
            return b
    return None


def bin_workload(w: Workload, input_bins: tuple[int, ...] = INPUT_BINS,
                 output_bins: tuple[int, ...] = OUTPUT_BINS) -> Binning:
    counts: Counter[tuple[int, int]] = Counter()
    dropped = 0
    for i, o in zip(w.input_lens.tolist(), w.output_lens.tolist()):
        bi, bo = bin_of(i, input_bins), bin_of(o, output_bins)
        if bi is None or bo is None:
            dropped += 1
        else:
            counts[(bi, bo)] += 1
    bins = tuple(Bin(bi, bo, n) for (bi, bo), n in sorted(counts.items()))
    notes = (f"{dropped} of {w.requests} requests ({100 * dropped / max(1, w.requests):.1f}%) are longer than the "
             f"largest bin ({input_bins[-1]} in / {output_bins[-1]} out) and were dropped, as in the paper",) if dropped else ()
    return Binning(w.name, bins, dropped, w.requests, notes)


def workload_energy_j(binning: Binning, batch_energy_j: dict[tuple[int, int], float],
                      batch_size: dict[tuple[int, int], int] | int) -> tuple[float, list[str]]:
    """Sum over bins of (requests / batch size) x energy of one batch; bins lacking a measurement
    are listed (and left out) rather than guessed."""
    total = 0.0
    missing = []
    for b in binning.bins:
        key = (b.input_bin, b.output_bin)
        bs = batch_size if isinstance(batch_size, int) else batch_size.get(key)
        if key not in batch_energy_j or not bs:
            missing.append(f"{key[0]}/{key[1]}")
            continue
        total += b.requests / bs * batch_energy_j[key]
    return total, missing


def _check_lengths(name: str, inp: np.ndarray, out: np.ndarray) -> None:
    if inp.size == 0:
        raise UsageError(f"workload {name} has no requests")
    if (inp < 1).any() or (out < 1).any():
        bad = int(((inp < 1) | (out < 1)).sum())
        raise UsageError(f"workload {name}: {bad} request(s) have a length below 1 token; lengths must be positive")


def load_csv(path: str | Path) -> Workload:
    """A CSV with columns input_len,output_len (or the Azure trace's ContextTokens,GeneratedTokens)."""
    from kernelprof.validate import MAX_WORKLOAD_REQUESTS, read_text_file

    path = Path(path)
    text = read_text_file(path, what="workload CSV")
    with io.StringIO(text, newline="") as f:
        reader = csv.DictReader(f)
        cols = reader.fieldnames or []
        pairs = [("input_len", "output_len"), ("ContextTokens", "GeneratedTokens")]
        chosen = next((p for p in pairs if p[0] in cols and p[1] in cols), None)
        if chosen is None:
            raise UsageError(f"{path}: expected columns input_len,output_len (or ContextTokens,GeneratedTokens), got {cols}")
        inp, out = [], []
        for line, row in enumerate(reader, start=2):
            if line - 1 > MAX_WORKLOAD_REQUESTS:
                raise UsageError(f"{path} holds more than {MAX_WORKLOAD_REQUESTS} requests; split it")
            pair = (row.get(chosen[0]), row.get(chosen[1]))
            if not all(isinstance(v, str) and v.strip().isascii() and v.strip().removeprefix("-").isdigit()
                       for v in pair):
                raise UsageError(f"{path}:{line}: lengths must be integers (ASCII digits, in tokens), got "
                                 f"{pair[0]!r}, {pair[1]!r}")
            i, o = int(pair[0]), int(pair[1])
            if max(i, o) > 2**31:
                raise UsageError(f"{path}:{line}: a length of {max(i, o)} tokens is beyond any model (max 2^31)")
            inp.append(i)
            out.append(o)
    w = Workload(path.stem, np.asarray(inp, np.int64), np.asarray(out, np.int64), f"CSV file {path}")
    _check_lengths(w.name, w.input_lens, w.output_lens)
    return w


def azure(kind: str) -> Workload:
    if kind not in AZURE_FILES:
        raise UsageError(f"unknown Azure trace {kind!r}; expected one of {sorted(AZURE_FILES)}")
    w = load_csv(DATA_DIR / AZURE_FILES[kind])
    return Workload(kind, w.input_lens, w.output_lens, AZURE_CITATION)


def lognormal_sigma(median: float, p99: float) -> float:
    """Sigma of a log-normal with this median and 99th percentile."""
    return math.log(p99 / median) / _Z99


def burstgpt_fitted(requests: int = 10_000, seed: int = 0) -> Workload:
    """Log-normal lengths matching BurstGPT's published median and p99 (mean comes out near, not exact).

    Labelled as fitted: these are not BurstGPT's requests.
    """
    rng = np.random.default_rng(seed)
    lens = []
    for _, median, p99 in (BURSTGPT_INPUT, BURSTGPT_OUTPUT):
        sigma = lognormal_sigma(median, p99)
        lens.append(np.maximum(1, np.rint(rng.lognormal(math.log(median), sigma, requests))).astype(np.int64))
    return Workload("burstgpt-fitted", lens[0], lens[1],
                    "fitted to BurstGPT's published statistics (input mean 256.8 / median 215 / p99 1038; "
                    "output 35.1 / 7 / 478 tokens) with log-normals matching median and p99; not the trace")


def load_workload(spec: str) -> Workload:
    """'azure-code', 'azure-conv', 'burstgpt-fitted', or a CSV path."""
    if spec in AZURE_FILES:
        return azure(spec)
    if spec == "burstgpt-fitted":
        return burstgpt_fitted()
    if not isinstance(spec, str):
        raise UsageError(f"workload must be a name or a CSV path, got {spec!r}")
    if spec.endswith(".csv") or Path(spec).exists():
        return load_csv(spec)
    raise UsageError(f"unknown workload {spec!r}; expected azure-code, azure-conv, burstgpt-fitted or a CSV path")
