"""One onnxruntime InferenceSession per model: options, input feeding, thread-safe runs."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np
import onnxruntime as ort

from .choices import check_threads
from .errors import OnnxModelError
from .system import usable_cpus

_LEVELS = {
    "disable": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
    "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
    "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
    "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
}


@dataclass(frozen=True)
class SessionOptions:
    """Settings of the onnxruntime session; the defaults suit a small server (see README)."""

    threads: Optional[int] = None  # intra-op threads per call; None: 1 (texts are spread over worker threads)
    spinning: bool = False  # busy-wait between ops: lower latency, more idle CPU
    memory_arena: bool = True
    optimization: str = "auto"  # auto | disable | basic | extended | all
    # onnxruntime's memory pattern: one block per input shape instead of many small allocations. With several
    # worker threads it removes their contention on the allocator (2 threads: 1.96x one thread's throughput
    # instead of 1.53x); it holds memory, 138 instead of 111 MB after the soak's mixed inputs when calls come
    # one at a time. None: on when workers > 1.
    memory_pattern: Optional[bool] = None

    @property
    def intra_op_threads(self) -> int:
        """The intra-op threads of a call: `threads`, or 1 by default."""
        return self.threads if self.threads is not None else 1


def default_workers(threads: int) -> int:
    """Worker threads that keep the usable CPUs busy when each call uses `threads` intra-op threads."""
    return max(1, usable_cpus() // max(1, threads))


def session_options(threads: int, level: str = "all", *, spinning: bool = False, memory_arena: bool = True,
                    mem_pattern: bool = False) -> "ort.SessionOptions":
    """onnxruntime options as koner sets them: `threads` intra-op threads, sequential, quiet, no spinning."""
    if level not in _LEVELS:
        raise ValueError(f"optimization must be 'auto' or one of {sorted(_LEVELS)}, not {level!r}")
    check_threads("threads", threads)
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.enable_cpu_mem_arena = memory_arena
    so.enable_mem_pattern = mem_pattern
    so.graph_optimization_level = _LEVELS[level]
    so.add_session_config_entry("session.intra_op.allow_spinning", "1" if spinning else "0")
    so.log_severity_level = 3
    return so


class ModelSession:
    """The model under onnxruntime; `run` may be called from many threads at once."""

    def __init__(self, path: Path, options: SessionOptions = SessionOptions(), quantized: Optional[bool] = None,
                 prefused: bool = False):
        if not path.is_file():
            raise OnnxModelError(path, "missing; re-export the model with `koner export`")
        level = options.optimization
        if level == "auto":  # a graph that export already fused needs only the cheap clean-ups at load time
            level = "basic" if prefused else "all"
        threads = options.intra_op_threads
        so = session_options(threads, level, spinning=options.spinning, memory_arena=options.memory_arena,
                             mem_pattern=bool(options.memory_pattern))
        try:
            self._sess = ort.InferenceSession(str(path), sess_options=so, providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own Fail/InvalidProtobuf/... classes
            raise OnnxModelError(path, f"onnxruntime cannot load it ({str(exc).strip()[:200]}); "
                                       "the file may be truncated: re-export or re-copy it") from None
        self.path = path
        self.threads = threads
        self.input_names = [i.name for i in self._sess.get_inputs()]
        if "input_ids" not in self.input_names:
            raise OnnxModelError(path, f"has inputs {self.input_names}, not input_ids; export it with `koner export`")
        self.output_width = self._sess.get_outputs()[0].shape[-1]
        self.quantized = _is_quantized(path) if quantized is None else quantized

    @property
    def options(self) -> "ort.SessionOptions":
        """The onnxruntime options the session runs with (threads, memory pattern, optimization level)."""
        return self._sess.get_session_options()

    def run(self, ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """Logits [batch, seq, labels] for padded ids and their attention mask."""
        feed = {"input_ids": ids}
        if "attention_mask" in self.input_names:
            feed["attention_mask"] = mask
        if "token_type_ids" in self.input_names:
            feed["token_type_ids"] = np.zeros_like(ids)
        return self._sess.run(None, feed)[0]

    def run_each(self, ids: list[np.ndarray], alone: bool = False) -> list[np.ndarray]:
        """Logits [seq, labels] of each id sequence: one padded batch, or one call each when `alone` (a graph
        whose dynamic int8 scales a whole call together) or for a single sequence."""
        if alone or len(ids) == 1:
            return [self.run(x[None, :], np.ones((1, len(x)), np.int64))[0] for x in ids]
        n = max(len(x) for x in ids)
        batch = np.zeros((len(ids), n), dtype=np.int64)
        mask = np.zeros((len(ids), n), dtype=np.int64)
        for r, x in enumerate(ids):
            batch[r, :len(x)] = x
            mask[r, :len(x)] = 1
        lg = self.run(batch, mask)
        return [lg[r, :len(x)] for r, x in enumerate(ids)]


def _is_quantized(path: Path) -> bool:
    """Whether the graph quantizes activations at run time (DynamicQuantizeLinear appears in it)."""
    with open(path, "rb") as f:
        return b"DynamicQuantizeLinear" in f.read()
