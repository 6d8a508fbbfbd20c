"""Export-time rewrite of the trained encoder into an int8-friendly graph with the same function.

The lab CNN puts BatchNormalization *after* the ReLU (Conv -> ReLU -> BN), so the converter cannot
fold BN into the convolution. It emits each BN as a MUL by a per-channel vector and an ADD, both
quantized *per tensor*: a channel whose multiplier is 20x smaller than the largest one keeps about
3 bits, and each of the two ops rounds the activations again. This module rewrites, with the
same float function:

* BN between convolutions -> a 1x1 DepthwiseConv2D: the multiplier becomes a per-channel int8
  weight (one scale per channel) and the shift an int32 bias, one rounding instead of two;
* the last BN (before Flatten) -> folded into the Dense that follows (exact: no padding there);
* the encoder's final Dense split into one Dense per output (the face logit; the latent mean),
  so each gets its own quantization range instead of sharing the widest one. The DB-VAE's
  log-variance columns are dropped: the kiosk never uses them;
* the face logit clipped to +-LOGIT_CLIP, so its int8 step is fine where thresholds sit;
* `equalize_ranges`: channels scaled to equal ranges, the next layer compensating.

`check_same_function` compares the two graphs on real images before conversion.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import keras
import numpy as np
import numpy.typing as npt
from keras import layers, ops

logger = logging.getLogger(__name__)


# The served face logit is clipped to +-LOGIT_CLIP (p in [0.0003, 0.9997]): thresholds sit near
# logit -3.5, and a narrow output range makes the int8 step ~0.06 logits instead of ~0.2.
LOGIT_CLIP = 8.0
# Written into each card: what the converted graph is, beside the trained one.
INT8_GRAPH = (
    "Same function as the trained model, rewritten for int8: each BatchNorm after a ReLU as a "
    "1x1 depthwise convolution (the last one folded into the Dense), channel ranges equalized "
    f"(Nagel et al. 2019), the face logit clipped to +-{LOGIT_CLIP:g}."
)


class FoldError(RuntimeError):
    """The encoder does not have the layer pattern this rewrite knows; the message says which."""


def _bn_affine(bn: layers.BatchNormalization) -> tuple[np.ndarray, np.ndarray]:
    """BN(y) = a * y + b per channel, with its moving statistics (inference mode)."""
    gamma, beta, mean, var = (np.asarray(w, np.float64) for w in bn.get_weights())
    a = gamma / np.sqrt(var + bn.epsilon)
    return a, beta - mean * a


def folded_encoder(
    encoder: keras.Model, outputs: Sequence[tuple[str, int, int]], name: str = "serving"
) -> keras.Model:
    """[B, 64, 64, 3] -> one tensor per `outputs` entry (name, first column, end column) of the
    encoder's final Dense, computed by the rewritten graph described in the module docstring."""
    # Dropout is an identity when serving: the rewritten graph leaves it out.
    lays = [lay for lay in encoder.layers if not isinstance(lay, layers.Dropout)]
    kinds = [type(lay).__name__ for lay in lays]
    # The encoder: Input, n x (Conv2D, BN) (n = 4 stages x convs per stage), Flatten,
    # Dense(512), Dense(n_out).
    n_pairs = max(0, (len(kinds) - 4) // 2)
    expected = ["InputLayer", *["Conv2D", "BatchNormalization"] * n_pairs, "Flatten", "Dense"]
    expected.append("Dense")
    if n_pairs < 1 or kinds != expected:
        raise FoldError(
            f"unexpected encoder layers {kinds}; expected Input, (Conv2D, BatchNormalization) "
            "pairs, Flatten, Dense, Dense"
        )
    last = 2 * n_pairs - 1  # index of the last Conv2D
    inp = keras.Input((64, 64, 3), name="image")
    x = inp
    for i in range(1, last + 1, 2):  # the (Conv2D, BN) pairs
        conv, bn = lays[i], lays[i + 1]
        new_conv = layers.Conv2D.from_config(conv.get_config())
        x = new_conv(x)
        new_conv.set_weights(conv.get_weights())
        if i == last:  # the last BN is folded into the Dense below
            break
        a, b = _bn_affine(bn)
        dw = layers.DepthwiseConv2D(1, use_bias=True, name=f"{bn.name}_as_depthwise")
        x = dw(x)
        # Depthwise kernel [1, 1, C, 1]: one multiplier per channel.
        dw.set_weights([a.reshape(1, 1, -1, 1).astype(np.float32), b.astype(np.float32)])
    x = layers.Flatten()(x)  # [B, 4 * 4 * C], channel fastest: flat index % C is the channel
    dense, head = lays[last + 3], lays[last + 4]
    kernel, bias = (np.asarray(w, np.float64) for w in dense.get_weights())
    a, b = _bn_affine(lays[last + 1])
    reps = kernel.shape[0] // len(a)
    a_flat, b_flat = np.tile(a, reps), np.tile(b, reps)
    # Dense(a * y + b) = (diag(a) W) y + (W^T b + c)
    new_dense = layers.Dense(dense.units, activation=dense.activation, name=dense.name)
    x = new_dense(x)
    new_dense.set_weights(
        [(kernel * a_flat[:, None]).astype(np.float32), (bias + b_flat @ kernel).astype(np.float32)]
    )
    h_kernel, h_bias = head.get_weights()
    outs = []
    for out_name, start, end in outputs:
        if out_name != "face_logit":
            d = layers.Dense(end - start, name=out_name)
            outs.append(d(x))
            d.set_weights([h_kernel[:, start:end], h_bias[start:end]])
            continue
        # logit / L, clipped to [-1, 1] (fused into the int8 FULLY_CONNECTED as RELU_N1_TO_1),
        # then x L: the output's int8 step is 2 L / 255 logits instead of (logit range) / 255.
        d = layers.Dense(1, name="face_logit_over_clip")
        clipped = layers.Lambda(lambda t: ops.clip(t, -1.0, 1.0), name="clip")(d(x))
        outs.append(layers.Rescaling(LOGIT_CLIP, name=out_name)(clipped))
        d.set_weights([h_kernel[:, start:end] / LOGIT_CLIP, h_bias[start:end] / LOGIT_CLIP])
    return keras.Model(inp, outs if len(outs) > 1 else outs[0], name=name)


def check_same_function(
    original: keras.Model, folded: keras.Model, images: np.ndarray, atol: float = 1e-3
) -> float:
    """Largest absolute difference of every output on `images` (float [N, 64, 64, 3]); raises
    FoldError above `atol` (float32 rounding differs by ~1e-5)."""
    a = original(images, training=False)
    b = folded(images, training=False)
    a_list = list(a) if isinstance(a, (list, tuple)) else [a]
    a_list[0] = np.clip(np.asarray(a_list[0]), -LOGIT_CLIP, LOGIT_CLIP)  # the served logit
    b_list = list(b) if isinstance(b, (list, tuple)) else [b]
    worst = max(
        float(np.max(np.abs(np.asarray(u) - np.asarray(v))))
        for u, v in zip(a_list, b_list, strict=True)
    )
    if worst > atol:
        raise FoldError(f"folded graph differs from the trained model by {worst:.2e} > {atol}")
    logger.info("folded graph matches the trained model (max difference %.2e)", worst)
    return worst


def _channel_range(act: np.ndarray) -> npt.NDArray[np.float64]:
    """Largest |value| per channel (last axis) of activations [N, ..., C]."""
    widest: npt.NDArray[np.float64] = np.max(np.abs(act.reshape(-1, act.shape[-1])), axis=0)
    return widest.astype(np.float64)


def _scales(r: np.ndarray, max_scale: float) -> np.ndarray:
    """Per-channel factors that bring every channel's range up to the widest one (capped)."""
    live = r > 1e-6 * r.max()
    t = np.ones_like(r)
    t[live] = np.minimum(r.max() / r[live], max_scale)
    return t


def equalize_ranges(model: keras.Model, images: np.ndarray, max_scale: float = 16.0) -> None:
    """Cross-layer range equalization (Nagel et al. 2019) of a `folded_encoder`, in place.

    int8 activations have one scale per tensor, so a channel whose values span 1/20 of the widest
    channel keeps ~3 bits. For every producer -> consumer pair, channel c of the producer is
    multiplied by t_c > 0 and the consumer's input weights for c by 1 / t_c: the float function
    is unchanged (ReLU and zero padding commute with a positive scale) but every channel now
    spans about the same range. Ranges are measured on `images` (calibration, [N, 64, 64, 3]).
    """
    lays = model.layers[1:]
    kinds = [type(lay).__name__ for lay in lays]
    flat = kinds.index("Flatten") if "Flatten" in kinds else -1
    convs = kinds[:flat]
    # n Conv2D, each but the last followed by its BN as a DepthwiseConv2D, then Flatten, Dense.
    if flat < 1 or convs != [*["Conv2D", "DepthwiseConv2D"] * (flat // 2), "Conv2D"]:
        raise FoldError(f"equalize_ranges expects a folded encoder, got layers {kinds}")
    probe = keras.Model(model.input, [lay.output for lay in lays])
    acts = [np.asarray(a) for a in probe(images, training=False)]
    heads = [lay for lay in lays[flat + 2 :] if isinstance(lay, layers.Dense)]
    # (producer index, consumer index) over `lays`: each conv layer feeds the next; the last
    # conv feeds the Dense(512) after Flatten; the Dense(512) feeds the heads (-1).
    pairs = [(i, i + 1) for i in range(flat - 1)] + [(flat - 1, flat + 1), (flat + 1, -1)]
    for p, c in pairs:
        t = _scales(_channel_range(acts[p]), max_scale)
        pk, pb = lays[p].get_weights()
        if isinstance(lays[p], layers.DepthwiseConv2D):  # kernel [1, 1, C, 1]
            lays[p].set_weights([pk * t.reshape(1, 1, -1, 1), pb * t])
        else:  # Conv2D [kh, kw, in, C] or Dense [in, C], ReLU after: positive scale commutes
            lays[p].set_weights([pk * t, pb * t])
        if c == -1:  # the heads read the Dense(512) output: their input rows
            for head in heads:
                hk, hb = head.get_weights()
                head.set_weights([hk / t[:, None], hb])
            continue
        ck, cb = lays[c].get_weights()
        if isinstance(lays[c], (layers.DepthwiseConv2D, layers.Conv2D)):
            # Depthwise [1, 1, C, 1] or Conv2D [kh, kw, C, out]: input channel on axis 2.
            lays[c].set_weights([ck / t.reshape(1, 1, -1, 1), cb])
        else:  # Dense after Flatten: row i reads channel i % C
            reps = ck.shape[0] // len(t)
            lays[c].set_weights([ck / np.tile(t, reps)[:, None], cb])


def int8_serving(model: keras.Model, calibration: np.ndarray) -> keras.Model:
    """The graph the bundle converts: the baseline CNN (or a DB-VAE's encoder) folded and
    range-equalized as above, checked against the trained model on `calibration` images
    (float [N, 64, 64, 3] in [0, 1]). Outputs: face logit [B, 1] (+ latent mean [B, D])."""
    from model_export.models import DBVAE

    if isinstance(model, DBVAE):
        d = model.latent_dim
        serving = folded_encoder(model.encoder, [("face_logit", 0, 1), ("latent_mean", 1, 1 + d)])
        reference = model.serving_model()
    else:
        serving = folded_encoder(model, [("face_logit", 0, 1)])
        reference = model
    equalize_ranges(serving, calibration)
    check_same_function(reference, serving, calibration[:64])
    return serving
