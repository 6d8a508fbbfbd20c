"""Interpreter set-up in one place (pycoral style): which runtime, which delegate, which file.

Runtime order: LiteRT (`ai_edge_litert`, NumPy 2, XNNPACK for int8) then `tflite_runtime` (Coral's
builds pair with libedgetpu). `auto` tries the Edge TPU when the bundle has `model_edgetpu.tflite`
and `libedgetpu.so.1` loads, else the CPU. An explicit choice that cannot load is an error that
says what to install.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from installation.inference.bundle import ModelFile

logger = logging.getLogger(__name__)

EDGETPU_LIB = "libedgetpu.so.1"
GPU_LIBS = ("libLiteRtGpuAccelerator.so", "libtensorflowlite_gpu_delegate.so")


class BackendError(RuntimeError):
    """The requested accelerator cannot be used on this machine."""


def _runtime() -> tuple[str, Any, Callable[..., Any]]:
    """(name, Interpreter class, load_delegate) of the first runtime that imports."""
    try:
        from ai_edge_litert import interpreter as litert

        return "litert", litert.Interpreter, litert.load_delegate
    except ImportError:
        pass
    try:
        from tflite_runtime import interpreter as tfl

        return "tflite-runtime", tfl.Interpreter, tfl.load_delegate
    except ImportError:
        raise BackendError(
            "no TFLite runtime found; install the runtime extra: "
            "pip install 'bias-mirror[runtime]' "
            "(ai-edge-litert), or Coral's tflite-runtime"
        ) from None


def load_delegate(library: str, options: dict[str, str] | None = None) -> Any:
    """Load a TFLite delegate; raises OSError or ValueError when it is missing (tests patch it)."""
    _, _, loader = _runtime()
    return loader(library, options or {})


def make_interpreter(
    model: ModelFile,
    accelerator: str = "auto",
    edgetpu_device: str | None = None,
    num_threads: int = 1,
    edgetpu_model: ModelFile | None = None,
) -> tuple[Any, str, ModelFile]:
    """Return (allocated interpreter, backend name, model actually loaded). Interpreters run
    the bytes the bundle checked (`model_content`), never a mapping of the file."""
    name, interpreter_cls, _ = _runtime()
    model_path = model.path
    if accelerator in ("auto", "edgetpu"):
        if edgetpu_model is None:
            if accelerator == "edgetpu":
                raise BackendError(
                    f"{model_path.parent}: no model_edgetpu.tflite in the bundle; compile it with "
                    "`edgetpu_compiler model.tflite` (Coral's apt package edgetpu-compiler) or use "
                    "accelerator: cpu"
                )
        else:
            options = {"device": edgetpu_device} if edgetpu_device else {}
            try:
                delegate = load_delegate(EDGETPU_LIB, options)
            except (OSError, ValueError) as exc:
                if accelerator == "edgetpu":
                    raise BackendError(
                        f"Edge TPU {edgetpu_device or ''} not usable ({exc}); install "
                        "libedgetpu1-std from Coral's apt repository, plug the device in, or "
                        "set models.accelerator: cpu"
                    ) from None
                logger.info("Edge TPU not available (%s); using the CPU", exc)
            else:
                interp = interpreter_cls(
                    model_content=edgetpu_model.content, experimental_delegates=[delegate]
                )
                interp.allocate_tensors()
                return interp, f"{name}-edgetpu:{edgetpu_device or 'auto'}", edgetpu_model
    if accelerator == "gpu":
        delegate = None
        for lib in GPU_LIBS:
            try:
                delegate = load_delegate(lib)
                break
            except (OSError, ValueError):
                continue
        if delegate is None:
            raise BackendError(
                f"no TFLite GPU delegate ({' or '.join(GPU_LIBS)}) could be loaded; install "
                "LiteRT's GPU accelerator for this board, or set models.accelerator: cpu"
            )
        interp = interpreter_cls(model_content=model.content, experimental_delegates=[delegate])
        interp.allocate_tensors()
        return interp, f"{name}-gpu", model
    interp = interpreter_cls(model_content=model.content, num_threads=num_threads)
    interp.allocate_tensors()
    return interp, f"{name}-cpu", model


def content_interpreter(content: bytes, num_threads: int = 1) -> Any:
    """An allocated CPU interpreter of a model held in memory (installation.inference.batch's
    rewritten copy of a bundle's model)."""
    _, interpreter_cls, _ = _runtime()
    interp = interpreter_cls(model_content=content, num_threads=num_threads)
    interp.allocate_tensors()
    return interp
