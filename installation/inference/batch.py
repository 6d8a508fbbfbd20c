"""Many crops in one invoke: the heatmaps' occlusions batched through one int8 interpreter.

A heatmap update judges the crop and 16 covered copies of it (installation.heatmap). One invoke
per copy spends much of each call on what a batch shares: the call itself, XNNPACK's set-up of
each operator and reading every weight again. The exported graphs cannot take a batch as they
are: they flatten the last feature map with a RESHAPE to the constant shape [1, K], so a graph
resized to [N, 64, 64, 3] fails to prepare. `batch_agnostic_model` rewrites that constant's
leading 1 to -1 in a copy of the model held in memory (the bundle's file is never touched);
`Int8BatchReader` resizes its input to [N, 64, 64, 3] and reads the N face logits of one invoke.

The arithmetic is int8 throughout, so each row of a batch gives the very logit a batch-1 invoke
of the same crop gives; `load_batch_reader` checks that on a probe crop before the kiosk uses
it, and anything that does not hold (another runtime without the flatbuffer schema, a graph of
another shape, a single differing bit) leaves the heatmaps on the one-by-one path, with the
reason in the log. The saving is the kiosk's, where a heatmap update comes every sixth of a
second to caches other work has emptied: the heatmaps' share of its CPU fell from 4.5-5.0 to
3.4-3.9 % of a core (7 paired runs, 2-core x86 VM). The copy is made from the bundle's own
file after that file was checked against its card, and lives only as long as the kiosk.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from installation.inference.backends import content_interpreter
from installation.inference.int8 import input_lut, ordered_outputs

logger = logging.getLogger(__name__)

# (crop, fill colour [3], corners, patch side) -> (logit of the crop, [K] covered logits)
OccludedFn = Callable[
    [npt.NDArray[np.uint8], npt.NDArray[np.uint8], Sequence[tuple[int, int]], int],
    tuple[float, npt.NDArray[np.float32]],
]
PROBE_PATCH = 16  # the check's occlusions: a 4 x 4 tiling of the crop, as the heatmaps cover it


class BatchError(ValueError):
    """This model cannot be read in batches here (the reason says why); use one by one."""


def batch_agnostic_model(content: bytes) -> bytes:
    """A copy of a .tflite model whose RESHAPE ops keep the batch: each constant target shape
    [1, ...] becomes [-1, ...] (and ReshapeOptions.new_shape likewise). Raises BatchError when
    the runtime has no flatbuffer schema or the graph holds no such RESHAPE."""
    try:
        import flatbuffers
        from ai_edge_litert import schema_py_generated as schema
    except ImportError as exc:
        raise BatchError(f"no TFLite flatbuffer schema in this runtime ({exc})") from None
    try:
        model = schema.ModelT.InitFromPackedBuf(bytearray(content), 0)
    except Exception as exc:  # a file the schema cannot parse: its message is the reason
        raise BatchError(f"the model cannot be parsed ({exc})") from None
    reshape = schema.BuiltinOperator.RESHAPE
    rewritten = 0
    for graph in model.subgraphs or []:
        for op in graph.operators or []:
            code = model.operatorCodes[op.opcodeIndex]
            # Codes above 127 live in builtinCode only; older files keep the deprecated byte.
            if max(code.builtinCode, code.deprecatedBuiltinCode) != reshape:
                continue
            if op.inputs is not None and len(op.inputs) > 1:
                buffer = model.buffers[graph.tensors[op.inputs[1]].buffer]
                if buffer.data is not None and len(buffer.data) >= 4:
                    shape = np.frombuffer(bytes(buffer.data), np.int32).copy()
                    if shape[0] == 1:
                        shape[0] = -1
                        buffer.data = np.frombuffer(shape.tobytes(), np.uint8)
                        rewritten += 1
            options = op.builtinOptions
            new_shape = getattr(options, "newShape", None)
            if new_shape is not None and len(new_shape) > 0 and int(new_shape[0]) == 1:
                options.newShape = [-1, *(int(v) for v in new_shape[1:])]
    if not rewritten:
        raise BatchError("the graph has no RESHAPE to a constant [1, ...] shape to rewrite")
    builder = flatbuffers.Builder(len(content) + 4096)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


class Int8BatchReader:
    """Face logits of N crops in one invoke, through an allocated interpreter of a
    batch-agnostic model (`batch_agnostic_model`); not thread-safe. The input is resized when
    N changes (an allocation: the heatmaps always ask for the same N)."""

    def __init__(self, interp: Any) -> None:
        inp = interp.get_input_details()[0]
        self._interp = interp
        self._in_index = inp["index"]
        self._shape = [int(v) for v in inp["shape"]]  # [n, S, S, 3]
        self.side = self._shape[1]
        scale, zero_point = inp["quantization"]
        self._lut = input_lut(scale, zero_point, inp["dtype"])
        out = ordered_outputs(interp)[0]
        self._logit = (out["index"], *out["quantization"])

    def _resize(self, n: int) -> None:
        if n != self._shape[0]:
            self._interp.resize_tensor_input(self._in_index, [n, *self._shape[1:]])
            self._interp.allocate_tensors()
            self._shape[0] = n

    def _invoke(self) -> npt.NDArray[np.float64]:
        self._interp.invoke()
        idx, scale, zp = self._logit
        raw = self._interp.get_tensor(idx).reshape(-1)  # [N] int8: one face logit per crop
        # float64 as Int8Reader's float(scale * (int(q) - zp)): the same numbers, bit for bit.
        return scale * (raw.astype(np.float64) - zp)  # type: ignore[no-any-return]

    def logits(self, crops_rgb: npt.NDArray[np.uint8]) -> npt.NDArray[np.float64]:
        """uint8 RGB [N, S, S, 3] -> the N face logits."""
        self._resize(len(crops_rgb))
        # `tensor` hands out a view of the input buffer; invoke() refuses while one is alive,
        # so the view lives for this one statement.
        np.take(self._lut, crops_rgb, out=self._interp.tensor(self._in_index)())
        return self._invoke()

    def occluded_logits(
        self,
        crop_rgb: npt.NDArray[np.uint8],
        fill_rgb: npt.NDArray[np.uint8],
        corners: Sequence[tuple[int, int]],
        patch: int,
    ) -> tuple[float, npt.NDArray[np.float32]]:
        """`Int8Reader.occluded_logits` in one invoke: row 0 of the batch is the crop, row k + 1
        the crop with the square at corners[k] covered by `fill_rgb`. The crop is quantized once
        and written into each row of the input tensor in place."""
        self._resize(1 + len(corners))
        q = np.take(self._lut, crop_rgb)  # [S, S, 3] quantized crop
        q_fill = np.take(self._lut, fill_rgb)  # [3]
        view = self._interp.tensor(self._in_index)
        view()[:] = q
        for k, (y, x) in enumerate(corners):
            view()[k + 1, y : y + patch, x : x + patch] = q_fill
        out = self._invoke()
        return float(out[0]), out[1:].astype(np.float32)


def load_batch_reader(model: bytes, one_by_one: OccludedFn) -> Int8BatchReader:
    """A batch reader of the model (the bytes the batch-1 reader runs) whose occlusions of a
    probe crop equal `one_by_one`'s (that batch-1 reader) exactly; BatchError with the reason
    otherwise."""
    try:
        content = batch_agnostic_model(model)
        reader = Int8BatchReader(content_interpreter(content))
    except BatchError:
        raise
    except (OSError, ValueError, RuntimeError) as exc:  # the interpreter's own refusals
        raise BatchError(f"the batch-agnostic copy does not load ({exc})") from None
    side = reader.side
    probe = np.random.default_rng(0).integers(0, 256, (side, side, 3), dtype=np.uint8)
    fill = np.full(3, 128, np.uint8)
    starts = range(0, side - PROBE_PATCH + 1, PROBE_PATCH)
    corners = [(y, x) for y in starts for x in starts]
    try:
        got = reader.occluded_logits(probe, fill, corners, PROBE_PATCH)
    except (ValueError, RuntimeError) as exc:
        raise BatchError(f"a batch of {1 + len(corners)} does not run ({exc})") from None
    want = one_by_one(probe, fill, corners, PROBE_PATCH)
    if got[0] != want[0] or not np.array_equal(got[1], want[1]):
        raise BatchError("a batch reads other logits than one crop at a time")
    return reader
