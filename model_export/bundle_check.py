"""Checks an int8 TFLite file against the bundle contract before it is written.

No float tensor at the inputs or outputs, no float op, every op on the Edge TPU's list, batch 1,
output 0 the [1, 1] face logit and (DB-VAE) output 1 the [1, D] latent mean.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

# Ops the Edge TPU compiler maps (coral.ai "TensorFlow models on the Edge TPU"), as TFLite names.
EDGETPU_OPS = frozenset(
    {
        "ADD", "AVERAGE_POOL_2D", "CONCATENATION", "CONV_2D", "DEPTHWISE_CONV_2D", "EXPAND_DIMS",
        "DEQUANTIZE", "FULLY_CONNECTED", "L2_NORMALIZATION", "LOGISTIC", "LSTM", "MAX_POOL_2D",
        "MAXIMUM", "MEAN", "MINIMUM", "MUL", "PACK", "PAD", "PRELU", "QUANTIZE", "REDUCE_MAX",
        "REDUCE_MIN", "RELU", "RELU6", "RELU_N1_TO_1", "RESHAPE", "RESIZE_BILINEAR",
        "RESIZE_NEAREST_NEIGHBOR", "RSQRT", "SLICE", "SOFTMAX", "SPACE_TO_DEPTH", "SPLIT",
        "SQUARED_DIFFERENCE", "SQUEEZE", "STRIDED_SLICE", "SUB", "SUM", "TANH",
        "TRANSPOSE", "TRANSPOSE_CONV",
    }
)  # fmt: skip


class BundleCheckError(ValueError):
    pass


@dataclass(frozen=True)
class TensorQuant:
    shape: list[int]
    dtype: str
    scale: float
    zero_point: int


@dataclass(frozen=True)
class TfliteSummary:
    input_dtype: str
    input_scale: float
    input_zero_point: int
    outputs: list[TensorQuant]  # contract order
    ops: list[str]
    float_tensors: list[str]
    size_bytes: int


def _interpreter(content: bytes) -> Any:
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    # Without the default XNNPACK delegate, so the op list shows the model's own ops.
    interp = Interpreter(
        model_content=content,
        experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES,
    )
    interp.allocate_tensors()
    return interp


def summarize(content: bytes) -> TfliteSummary:
    from installation.inference.int8 import ordered_outputs

    interp = _interpreter(content)
    (inp,) = interp.get_input_details()
    outs = ordered_outputs(interp)
    floats = [t["name"] for t in interp.get_tensor_details() if np.dtype(t["dtype"]).kind == "f"]
    ops = sorted({o["op_name"] for o in interp._get_ops_details()})
    return TfliteSummary(
        input_dtype=np.dtype(inp["dtype"]).name,
        input_scale=float(inp["quantization"][0]),
        input_zero_point=int(inp["quantization"][1]),
        outputs=[
            TensorQuant(
                shape=[int(s) for s in o["shape"]],
                dtype=np.dtype(o["dtype"]).name,
                scale=float(o["quantization"][0]),
                zero_point=int(o["quantization"][1]),
            )
            for o in outs
        ],
        ops=ops,
        float_tensors=floats,
        size_bytes=len(content),
    )


def check_tflite(content: bytes, expect_latent: bool) -> TfliteSummary:
    s = summarize(content)
    problems = []
    if s.input_dtype != "int8":
        problems.append(f"input is {s.input_dtype}, not int8")
    if s.float_tensors:
        problems.append(f"float tensors remain: {s.float_tensors[:5]}")
    if any(o.dtype != "int8" for o in s.outputs):
        problems.append("outputs are not int8")
    bad_ops = [op for op in s.ops if op not in EDGETPU_OPS]
    if bad_ops:
        problems.append(f"ops the Edge TPU cannot run: {bad_ops}")
    if not s.outputs or s.outputs[0].shape != [1, 1]:
        problems.append(f"output 0 must be the face logit [1, 1], got {s.outputs[:1]}")
    n_expected = 2 if expect_latent else 1
    if len(s.outputs) != n_expected:
        problems.append(f"expected {n_expected} outputs, got {len(s.outputs)}")
    elif expect_latent and (len(s.outputs[1].shape) != 2 or s.outputs[1].shape[0] != 1):
        problems.append(f"output 1 must be the latent mean [1, D], got {s.outputs[1].shape}")
    if problems:
        raise BundleCheckError("int8 model breaks the bundle contract: " + "; ".join(problems))
    return s
