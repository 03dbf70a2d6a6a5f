"""A binned workload's per-bin records in the resumable JSONL store (kernelprof/outputs/jsonl_store.py).

Each bin record carries the configuration it was measured under (trace and a digest of its
request lengths, model, mode, batch rule, GPU, driver, kernelprof version), so a resume with
another model, mode or trace stops instead of reusing bins measured for something else.
`stream_bins` is the measuring loop without the GPU: the real measurement and the crash tests'
fake one both go through it.
"""
from __future__ import annotations

import hashlib
import math
from pathlib import Path
from typing import Any, Callable

from kernelprof.errors import BUG_HINT, InternalError, KernelprofError, RunFileError, is_internal_bug
from kernelprof.methods.workloads import Bin, Binning, Workload
from kernelprof.outputs.jsonl_store import Appender, StoreRead, prepare, read_store


def _int_at_least(rec: dict, k: str, lo: int, where: str) -> None:
    v = rec.get(k)
    if isinstance(v, bool) or not isinstance(v, int) or v < lo:
        raise RunFileError(f"{where}: \"{k}\" must be an integer >= {lo}, got {v!r}; the file is corrupt")


def _finite(rec: dict, k: str, where: str) -> None:
    v = rec.get(k)
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v < 0:
        raise RunFileError(f"{where}: \"{k}\" must be a non-negative number, got {v!r}; the file is corrupt")


def validate_bin_record(rec: dict[str, Any], where: str) -> None:
    """A workload bin's record: integer bins and counts; an ok one has its batch, energy and time."""
    for k in ("input_bin", "output_bin", "requests"):
        _int_at_least(rec, k, 1, where)
    if rec["status"] == "ok":
        _int_at_least(rec, "batch", 1, where)
        _finite(rec, "energy_per_batch_j", where)
        _finite(rec, "time_per_batch_s", where)
        if "phases" in rec and not isinstance(rec["phases"], dict):
            raise RunFileError(f"{where}: \"phases\" must be an object; the file is corrupt")


def read_bin_store(path: Path) -> StoreRead:
    return read_store(path, validate=validate_bin_record)


def workload_digest(w: Workload) -> str:
    """SHA-256 (16 hex digits) of the request lengths: two traces of one name are told apart."""
    h = hashlib.sha256()
    h.update(w.input_lens.astype("<i8").tobytes())
    h.update(w.output_lens.astype("<i8").tobytes())
    return h.hexdigest()[:16]


def workload_config(w: Workload, model: str, mode: str, max_batch: int, gpu: dict[str, Any] | None = None
                    ) -> dict[str, Any]:
    from kernelprof import __version__

    cfg: dict[str, Any] = {"kind": "workload", "trace": w.name, "trace_sha256": workload_digest(w), "model": model,
                           "mode": mode, "batch_rule": f"largest that fits in 90% of free memory, <= {max_batch}",
                           "kernelprof": __version__}
    if gpu is not None:
        cfg.update(gpu)
    return cfg


def resume_config(config: dict[str, Any], other_gpu: bool) -> dict[str, Any]:
    """The fields a resume must match: all of them, or all but the card's uuid (`other_gpu`: another
    card with the same driver continues the file; each bin keeps its own card's uuid)."""
    return {k: v for k, v in config.items() if k != "gpu_uuid"} if other_gpu else config


def bin_key(b: Bin) -> str:
    return f"{b.input_bin}/{b.output_bin}"


class FatalBinError(KernelprofError):
    """A bin failed in a way that ends this process's GPU use; `record` is still written."""

    exit_code = 7

    def __init__(self, message: str, record: dict[str, Any]):
        super().__init__(message)
        self.record = record


def stream_bins(binning: Binning, measure_bin: Callable[[Bin], dict[str, Any]], out: Path, read: StoreRead,
                config: dict[str, Any], on_bin: Callable[[Bin, dict[str, Any]], None] | None = None
                ) -> list[dict[str, Any]]:
    """Measure every bin not already ok in `read`, appending each record as it finishes.
    `measure_bin(b)` returns the record's fields (with "status"); an exception other than a bug in
    kernelprof records the bin as failed; a bug stops with InternalError (nothing recorded)."""
    done = {k: r for k, r in read.records.items() if r.get("status") == "ok"}
    records = []
    with Appender(out, config) as store:
        for b in binning.bins:
            key = bin_key(b)
            rec = done.get(key)
            if rec is None:
                rec = {"key": key, "input_bin": b.input_bin, "output_bin": b.output_bin, "requests": b.requests}
                try:
                    rec.update(measure_bin(b))
                except KeyboardInterrupt:
                    raise
                except FatalBinError as exc:
                    store.append({**rec, **exc.record})
                    raise
                except Exception as exc:  # noqa: BLE001 - one bin failing must not lose the others
                    if is_internal_bug(exc):
                        raise InternalError(f"bin {key} hit {type(exc).__name__}: {exc}; {BUG_HINT}. "
                                            f"The finished bins are in {out}") from exc
                    rec.update(status="failed", error=f"{type(exc).__name__}: {exc}")
                rec = store.append(rec)
            records.append(rec)
            if on_bin:
                on_bin(b, rec)
    return records


def prepare_bins(out: Path, config: dict[str, Any], *, resume: bool, new_file: bool) -> StoreRead:
    read = prepare(out, config, resume=resume, new_file=new_file, validate=validate_bin_record, what="workload")
    read.emit_warnings("kernelprof workload")
    return read
