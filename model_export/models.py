"""The two models (Keras 3, backend-agnostic: TensorFlow here, JAX or PyTorch on a GPU box).

Baseline: the MIT 6.S191 facial-detection CNN. DB-VAE (Amini et al. 2019): the same encoder with
1 + 2 * latent_dim outputs (face logit, latent mean, latent log-variance), a mirrored decoder,
loss = BCE + face x (kl_weight x KL + L1 reconstruction), computed in `compute_loss` with
keras.ops only. Nothing is built or trained at import time; seeds are explicit.
"""

from __future__ import annotations

from typing import Any

import keras
from keras import layers, ops

N_FILTERS = 12  # the lab's base width: 12 / 24 / 48 / 72 filters
CONVS_PER_STAGE = 1  # the lab's depth: one strided conv per stage


def encoder(
    n_outputs: int,
    name: str = "encoder",
    *,
    width: int = N_FILTERS,
    convs_per_stage: int = CONVS_PER_STAGE,
    dropout: float = 0.0,
) -> keras.Model:
    """[B, 64, 64, 3] in [0, 1] -> [B, n_outputs]. Four stages halve the side (64 -> 4) with
    width x (1, 2, 4, 6) filters; `convs_per_stage` > 1 adds stride-1 3x3 convs after each
    strided one (each followed by BatchNorm, which the exporter folds away). `dropout` > 0
    drops that share of the Dense(512)'s outputs in training (an identity when serving, which
    the exporter leaves out); 0 adds no layer, so the graph is the lab's."""
    if width < 1 or convs_per_stage < 1:
        raise ValueError(f"width and convs_per_stage must be >= 1, got {width}, {convs_per_stage}")
    if not 0 <= dropout < 1:
        raise ValueError(f"dropout must be in [0, 1), got {dropout}")
    inp = keras.Input((64, 64, 3), name="image")
    x = inp
    for mult, k in ((1, 5), (2, 5), (4, 3), (6, 3)):
        x = layers.Conv2D(width * mult, k, strides=2, padding="same", activation="relu")(x)
        x = layers.BatchNormalization()(x)
        for _ in range(convs_per_stage - 1):
            x = layers.Conv2D(width * mult, 3, padding="same", activation="relu")(x)
            x = layers.BatchNormalization()(x)
    x = layers.Flatten()(x)  # [B, 4 * 4 * 6 * width]
    x = layers.Dense(512, activation="relu")(x)
    if dropout > 0:
        x = layers.Dropout(dropout)(x)
    # float32 outputs even under a mixed_float16 policy: logits and log-variances need the range.
    return keras.Model(inp, layers.Dense(n_outputs, dtype="float32")(x), name=name)


def baseline_cnn(
    seed: int,
    *,
    width: int = N_FILTERS,
    convs_per_stage: int = CONVS_PER_STAGE,
    dropout: float = 0.0,
) -> keras.Model:
    keras.utils.set_random_seed(seed)
    return encoder(
        1, name="baseline_cnn", width=width, convs_per_stage=convs_per_stage, dropout=dropout
    )


def decoder(latent_dim: int, width: int = N_FILTERS) -> keras.Model:
    """[B, latent_dim] -> [B, 64, 64, 3] in [0, 1], mirroring the encoder's strided stages (one
    transposed conv each: the decoder only trains, so it stays at the lab's depth)."""
    z = keras.Input((latent_dim,), name="z")
    x = layers.Dense(4 * 4 * 6 * width, activation="relu")(z)
    x = layers.Reshape((4, 4, 6 * width))(x)
    for mult, k in ((4, 3), (2, 3), (1, 5)):
        x = layers.Conv2DTranspose(width * mult, k, strides=2, padding="same", activation="relu")(x)
    x = layers.Conv2DTranspose(
        3, 5, strides=2, padding="same", activation="sigmoid", dtype="float32"
    )(x)
    return keras.Model(z, x, name="decoder")


@keras.saving.register_keras_serializable(package="bias_mirror")
class Sampling(layers.Layer):
    """z = mean + exp(logvar / 2) * eps, eps ~ N(0, I) with an explicit seed."""

    def __init__(self, seed: int = 0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, mean: Any, logvar: Any) -> Any:
        eps = keras.random.normal(ops.shape(mean), seed=self.seed_generator)
        return mean + ops.exp(0.5 * logvar) * eps


class DBVAE(keras.Model):
    """`faces_per_batch`: training batches hold their faces in the first rows (see
    `model_export.batches.FacesFirstBatches`), so only those rows are decoded; None decodes every
    row. The VAE terms are zero for non-faces, so the loss is the same either way, and the
    decoder (about half of a training step's compute) runs on half the rows."""

    def __init__(
        self,
        latent_dim: int = 100,
        kl_weight: float = 0.0005,
        seed: int = 0,
        faces_per_batch: int | None = None,
        *,
        width: int = N_FILTERS,
        convs_per_stage: int = CONVS_PER_STAGE,
    ) -> None:
        super().__init__(name="dbvae")
        keras.utils.set_random_seed(seed)
        self.latent_dim = latent_dim
        self.kl_weight = kl_weight
        self.faces_per_batch = faces_per_batch
        self.encoder = encoder(1 + 2 * latent_dim, width=width, convs_per_stage=convs_per_stage)
        self.decoder = decoder(latent_dim, width)
        self.sampling = Sampling(seed)

    def encode(self, x: Any, training: bool = False) -> tuple[Any, Any, Any]:
        out = self.encoder(x, training=training)
        d = self.latent_dim
        return out[:, :1], out[:, 1 : 1 + d], out[:, 1 + d :]

    def call(self, x: Any, training: bool = False) -> dict[str, Any]:
        logit, mean, logvar = self.encode(x, training=training)
        z = self.sampling(mean, logvar)  # [B, D]; noise drawn for every row
        if training and self.faces_per_batch is not None:
            z = z[: self.faces_per_batch]  # [k, D]: the rows that can be faces
        recon = self.decoder(z, training=training)  # [k or B, 64, 64, 3]
        return {"logit": logit, "mean": mean, "logvar": logvar, "recon": recon}

    def compute_loss(
        self,
        x: Any = None,
        y: Any = None,
        y_pred: Any = None,
        sample_weight: Any = None,
        training: bool = True,
    ) -> Any:
        y = ops.reshape(ops.cast(y, "float32"), (-1, 1))
        x = ops.cast(x, "float32")
        bce = keras.losses.binary_crossentropy(y, y_pred["logit"], from_logits=True)  # [B]
        mean, logvar = y_pred["mean"], y_pred["logvar"]
        kl = 0.5 * ops.sum(ops.exp(logvar) + ops.square(mean) - 1.0 - logvar, axis=-1)  # [B]
        # The VAE terms apply to faces only: the latent space models faces, not clutter.
        if self.faces_per_batch is None:  # every row decoded
            recon = ops.mean(ops.abs(x - y_pred["recon"]), axis=(1, 2, 3))  # [B]
            return ops.mean(bce + y[:, 0] * (self.kl_weight * kl + recon))
        # Only the first k rows were decoded (k = faces_per_batch, fewer in a short last batch).
        # A non-face among them is gated out by y, so a batch with fewer faces stays correct.
        k = ops.shape(y_pred["recon"])[0]
        recon = ops.mean(ops.abs(x[:k] - y_pred["recon"]), axis=(1, 2, 3))  # [k]
        vae = y[:k, 0] * (self.kl_weight * kl[:k] + recon)  # [k]
        n = ops.cast(ops.shape(y)[0], "float32")
        return ops.mean(bce) + ops.sum(vae) / n  # = mean over B of bce + face x vae

    def serving_model(self) -> keras.Model:
        """[B, 64, 64, 3] -> (face logit [B, 1], latent mean [B, D]): what the bundle runs."""
        inp = keras.Input((64, 64, 3), name="image")
        out = self.encoder(inp, training=False)
        d = self.latent_dim
        logit = layers.Lambda(lambda t: t[:, :1], name="face_logit")(out)
        mean = layers.Lambda(lambda t: t[:, 1 : 1 + d], name="latent_mean")(out)
        return keras.Model(inp, [logit, mean], name="dbvae_serving")
