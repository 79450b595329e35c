"""``AsymmetricCycleGAN``: the paper's objective and the official training step.

Loss names and their official counterparts (``losses_G``/``losses_D`` of
``asymmetric_cycle_gan_cls_model.py``):

======================  ==========  ===============================================
keras_asym              official    term
======================  ==========  ===============================================
``gan_drawing``         G_A         LSGAN, D_A on G(x, s)
``style_cls``           G_A_cls     style cross-entropy of D_A on G(x, s), weighted by s
``local_<part>``        G_A_l/le/ll LSGAN of the nose/eyes/lips D on masked G(x, s), x 0.5
``gan_photo``           G_B         LSGAN, D_B on F(y)
``relaxed_cycle``       cycle_A     d(F(G(x, s)), x) x lambda_A (1 - 0.9 p)
``truncation_cycle``    cycle_A2    d(F(trunc(G(x, s))), x) x lambda_trunc 0.9 p
``drawing_cycle``       cycle_B     |G(F(y), s) - y|_1 x lambda_B
``generator``           G           sum of the above
``d_drawing``           D_A         LSGAN of D_A, real y vs pooled fakes
``d_style_cls``         D_A_cls     style cross-entropy of D_A on y and on fakes
``d_local_<part>``      D_A_l/le/ll LSGAN of each local D
``d_photo``             D_B         LSGAN of D_B, real x vs pooled F(y)
``discriminator``       (sum)       what the discriminator optimizer minimises
======================  ==========  ===============================================

``x`` photo, ``y`` drawing, ``s`` the drawing's soft style vector, ``p`` the
training progress, ``d`` the relaxed-cycle distance (HED+LPIPS in the paper).
Parts: official ``A_mask``/``D_A_l`` is the nose, ``maske``/``le`` the eyes,
``maskl``/``ll`` the lips.

Deliberate deviation: the official code queries the drawing pool once for D_A
and once per local discriminator, and pairs a pooled drawing with the
*current* photo's masks. Here each fake drawing is stored with its own part
masks and the pool is queried once per step.
"""

from __future__ import annotations

import keras
import tensorflow as tf
from keras import ops

from keras_asym.face.masks import LOCAL_ORDER
from keras_asym.layers.basic import PACKAGE
from keras_asym.models.networks import PatchDiscriminator, PhotoGenerator, StyleDiscriminator, StyleGenerator, check_norm_maps
from keras_asym.models.pool import HistoryPool
from keras_asym.objective import losses
from keras_asym.objective.distances import make_cycle_distance
from keras_asym.objective.schedules import cycle_weights

OFFICIAL_LOSS_NAMES = {
    "gan_drawing": "G_A",
    "style_cls": "G_A_cls",
    "local_nose": "G_A_l",
    "local_eyes": "G_A_le",
    "local_lips": "G_A_ll",
    "gan_photo": "G_B",
    "relaxed_cycle": "cycle_A",
    "truncation_cycle": "cycle_A2",
    "drawing_cycle": "cycle_B",
    "generator": "G",
    "d_drawing": "D_A",
    "d_style_cls": "D_A_cls",
    "d_local_nose": "D_A_l",
    "d_local_eyes": "D_A_le",
    "d_local_lips": "D_A_ll",
    "d_photo": "D_B",
}


# The objective's scalar options: ``__init__`` arguments, ``get_config`` keys and, with build_model's
# sizes, the fields of ``TrainConfig`` marked ``model=True`` (tests/test_configs.py keeps them equal).
HYPERPARAMETERS = (
    "lambda_cycle",
    "lambda_drawing_cycle",
    "lambda_truncation",
    "lambda_local",
    "truncation_levels",
    "use_truncation",
    "weighted_style_loss",
    "style_control",
    "pool_size",
    "seed",
)


@keras.saving.register_keras_serializable(package=PACKAGE)
class AsymmetricCycleGAN(keras.Model):
    """Photo→drawing G and drawing→photo F trained with the asymmetric cycle objective.

    ``fit`` takes batches ``{"photo": (B,H,W,3), "drawing": (B,H,W,1),
    "style": (B,3), "photo_masks": {part: (B,H,W,1)}, "drawing_masks": {...}}``
    with images in [-1, 1] and masks in {0, 1}. Each step updates G and F
    first, then every discriminator on the same fakes (through the pools), as
    the official ``optimize_parameters`` does.

    Args:
        generator: ``StyleGenerator`` (G).
        photo_generator: ``PhotoGenerator`` (F).
        drawing_discriminator: ``StyleDiscriminator`` (D_A).
        photo_discriminator: ``PatchDiscriminator`` with 3 input channels (D_B).
        local_discriminators: dict part -> 2-channel ``PatchDiscriminator``;
            any subset of ``("nose", "eyes", "lips")``, may be empty.
        cycle_distance: layer from ``keras_asym.objective.distances``.
        lambda_cycle, lambda_drawing_cycle, lambda_truncation: official
            ``lambda_A``, ``lambda_B``, ``lambda_A_trunc``. Default 5.
        lambda_local: weight of the local GAN terms in G's loss (0.5).
        truncation_levels: ``trunc_a`` (31.875, 6 bits).
        use_truncation: official ``ntrunc_trunc``; without it the relaxed cycle
            keeps its full weight.
        weighted_style_loss: official ``style_loss_with_weight``; otherwise the
            argmax label is used.
        style_control: official ``style_control``; when off, G is given a zero
            style vector (an unconditioned generator), the style losses stay.
        pool_size: history pool size (50).
        seed: seed of the pools' random swaps.
    """

    def __init__(
        self,
        generator: keras.Model,
        photo_generator: keras.Model,
        drawing_discriminator: keras.Model,
        photo_discriminator: keras.Model,
        local_discriminators: dict,
        cycle_distance: keras.layers.Layer,
        lambda_cycle: float = 5.0,
        lambda_drawing_cycle: float = 5.0,
        lambda_truncation: float = 5.0,
        lambda_local: float = 0.5,
        truncation_levels: float = losses.TRUNCATION_LEVELS,
        use_truncation: bool = True,
        weighted_style_loss: bool = True,
        style_control: bool = True,
        pool_size: int = 50,
        seed: int = 0,
        name: str = "asymmetric_cycle_gan",
        **kwargs,
    ):
        super().__init__(name=name, **kwargs)
        unknown = set(local_discriminators) - set(LOCAL_ORDER)
        if unknown:
            raise ValueError(f"Unknown local discriminator parts {sorted(unknown)}; expected a subset of {LOCAL_ORDER}.")
        self.generator = generator
        self.photo_generator = photo_generator
        self.drawing_discriminator = drawing_discriminator
        self.photo_discriminator = photo_discriminator
        self.parts = tuple(p for p in LOCAL_ORDER if p in local_discriminators)
        self.local_discriminators = {p: local_discriminators[p] for p in self.parts}
        self.cycle_distance = cycle_distance
        self.lambda_cycle = float(lambda_cycle)
        self.lambda_drawing_cycle = float(lambda_drawing_cycle)
        self.lambda_truncation = float(lambda_truncation)
        self.lambda_local = float(lambda_local)
        self.truncation_levels = float(truncation_levels)
        self.use_truncation = bool(use_truncation)
        self.weighted_style_loss = bool(weighted_style_loss)
        self.style_control = bool(style_control)
        self.pool_size = int(pool_size)
        self.seed = int(seed)

        size = drawing_discriminator.image_size
        self.drawing_pool = HistoryPool(pool_size, (size, size, 1 + len(self.parts)), seed=seed, name="drawing_pool")
        self.photo_pool = HistoryPool(pool_size, (size, size, 3), seed=seed + 1, name="photo_pool")
        self.progress = keras.Variable(0.0, dtype="float32", trainable=False, name="progress")
        # Where the input stream stands (its next element); saved with the weights so that a
        # resumed run reads exactly the data an uninterrupted one would.
        self.data_position = keras.Variable(0, dtype="int64", trainable=False, name="data_position", aggregation="only_first_replica")

        self.loss_names = self._generator_loss_names() + self._discriminator_loss_names()
        self.trackers = {n: keras.metrics.Mean(name=n) for n in self.loss_names}
        self.built = True

    # === Loss bookkeeping ===
    def _generator_loss_names(self):
        names = ["gan_drawing", "style_cls"] + [f"local_{p}" for p in self.parts] + ["gan_photo", "relaxed_cycle"]
        if self.use_truncation:
            names.append("truncation_cycle")
        return names + ["drawing_cycle", "generator"]

    def _discriminator_loss_names(self):
        return ["d_drawing", "d_style_cls"] + [f"d_local_{p}" for p in self.parts] + ["d_photo", "discriminator"]

    @property
    def metrics(self):
        return list(self.trackers.values())

    def compile(self, g_optimizer: keras.optimizers.Optimizer, d_optimizer: keras.optimizers.Optimizer, **kwargs):
        """Takes one optimizer for G+F and one for all discriminators (official Adam(2e-4, 0.5)).

        Both are built here, so call ``compile`` inside the strategy scope:
        Keras 3 cannot create optimizer slots lazily in a distributed step.
        """
        super().compile(**kwargs)
        self.g_optimizer = g_optimizer
        self.d_optimizer = d_optimizer
        self.g_optimizer.build(self.generator_variables)
        self.d_optimizer.build(self.discriminator_variables)

    @property
    def generator_variables(self):
        return self.generator.trainable_variables + self.photo_generator.trainable_variables

    @property
    def discriminator_variables(self):
        nets = [self.drawing_discriminator, self.photo_discriminator] + [self.local_discriminators[p] for p in self.parts]
        return [v for net in nets for v in net.trainable_variables]

    def _style_weights(self, style):
        style = ops.cast(style, "float32")
        if self.weighted_style_loss:
            return style
        return ops.one_hot(ops.argmax(style, axis=-1), ops.shape(style)[-1])

    # === Forward passes ===
    def generate(self, batch: dict, training: bool = False) -> dict:
        """G(x, s), F(G(x, s)), F(trunc(G(x, s))), F(y), G(F(y), s).

        The three F passes run as one batch (instance norm is per sample, so
        this is exact).
        """
        photo, drawing, style = batch["photo"], batch["drawing"], batch["style"]
        if not self.style_control:
            style = ops.zeros_like(style)
        fake_drawing = self.generator({"photo": photo, "style": style}, training=training)
        f_inputs = [fake_drawing, ops.cast(drawing, fake_drawing.dtype)]
        if self.use_truncation:
            f_inputs.append(losses.truncate(fake_drawing, self.truncation_levels))
        f_outputs = self.photo_generator(ops.concatenate(f_inputs, axis=0), training=training)
        batch_size = ops.shape(photo)[0]
        images = {
            "fake_drawing": fake_drawing,
            "reconstructed_photo": f_outputs[:batch_size],
            "fake_photo": f_outputs[batch_size : 2 * batch_size],
        }
        if self.use_truncation:
            images["reconstructed_photo_truncated"] = f_outputs[2 * batch_size :]
        images["reconstructed_drawing"] = self.generator({"photo": images["fake_photo"], "style": style}, training=training)
        return images

    def generator_losses(self, batch: dict, images: dict) -> tuple[dict, dict]:
        """G's objective on the images of ``generate``; also returns the edge maps."""
        style_weights = self._style_weights(batch["style"])
        fake_drawing = images["fake_drawing"]
        out = {}
        patch, logits = self.drawing_discriminator(fake_drawing)
        out["gan_drawing"] = losses.lsgan_loss(patch, True)
        out["style_cls"] = losses.style_classification_loss(logits, style_weights)
        for part in self.parts:
            local = self.local_discriminators[part](losses.masked_part(fake_drawing, batch["photo_masks"][part]))
            out[f"local_{part}"] = losses.lsgan_loss(local, True) * self.lambda_local
        out["gan_photo"] = losses.lsgan_loss(self.photo_discriminator(images["fake_photo"]), True)

        if self.use_truncation:
            lambda_cycle, lambda_truncation = cycle_weights(self.progress, self.lambda_cycle, self.lambda_truncation)
            reconstructions = [images["reconstructed_photo"], images["reconstructed_photo_truncated"]]
        else:
            lambda_cycle, reconstructions = self.lambda_cycle, [images["reconstructed_photo"]]
        cycle = self.cycle_distance(reconstructions, ops.cast(batch["photo"], "float32"))
        out["relaxed_cycle"] = ops.mean(cycle["distances"][0]) * lambda_cycle
        if self.use_truncation:
            out["truncation_cycle"] = ops.mean(cycle["distances"][1]) * lambda_truncation
        out["drawing_cycle"] = losses.l1_loss(images["reconstructed_drawing"], batch["drawing"]) * self.lambda_drawing_cycle
        out["generator"] = sum(out.values())
        edges = {"photo_edges": cycle["target_edges"], "reconstructed_photo_edges": cycle["reconstruction_edges"][0]}
        if self.use_truncation:
            edges["reconstructed_photo_truncated_edges"] = cycle["reconstruction_edges"][1]
        return out, edges

    def pooled_fakes(self, batch: dict, images: dict) -> tuple:
        """Fake drawings (with the masks they were drawn for) and fake photos from the pools."""
        masks = [ops.cast(batch["photo_masks"][p], "float32") for p in self.parts]
        stacked = ops.concatenate([ops.cast(images["fake_drawing"], "float32")] + masks, axis=-1)
        pooled = self.drawing_pool(ops.stop_gradient(stacked))
        fake_masks = {p: pooled[..., i + 1 : i + 2] for i, p in enumerate(self.parts)}
        fake_photo = self.photo_pool(ops.stop_gradient(ops.cast(images["fake_photo"], "float32")))
        return pooled[..., :1], fake_masks, fake_photo

    def discriminator_losses(self, batch: dict, fake_drawing, fake_masks: dict, fake_photo) -> dict:
        """Every discriminator's objective on real images and (pooled) fakes."""
        style_weights = self._style_weights(batch["style"])
        fake_drawing = ops.stop_gradient(fake_drawing)
        fake_photo = ops.stop_gradient(fake_photo)
        out = {}
        real_patch, real_logits = self.drawing_discriminator(batch["drawing"])
        fake_patch, fake_logits = self.drawing_discriminator(fake_drawing)
        out["d_drawing"] = losses.discriminator_loss(real_patch, fake_patch)
        out["d_style_cls"] = 0.5 * (
            losses.style_classification_loss(real_logits, style_weights) + losses.style_classification_loss(fake_logits, style_weights)
        )
        for part in self.parts:
            net = self.local_discriminators[part]
            real = net(losses.masked_part(batch["drawing"], batch["drawing_masks"][part]))
            fake = net(losses.masked_part(fake_drawing, fake_masks[part]))
            out[f"d_local_{part}"] = losses.discriminator_loss(real, fake)
        out["d_photo"] = losses.discriminator_loss(self.photo_discriminator(batch["photo"]), self.photo_discriminator(fake_photo))
        out["discriminator"] = sum(out.values())
        return out

    def compute_losses(self, batch: dict, training: bool = False) -> tuple[dict, dict]:
        """Every loss term and image of one step, without updating anything or using the pools."""
        batch = keras.tree.map_structure(ops.convert_to_tensor, batch)
        images = self.generate(batch, training=training)
        g_losses, edges = self.generator_losses(batch, images)
        fake_masks = {p: batch["photo_masks"][p] for p in self.parts}
        d_losses = self.discriminator_losses(batch, images["fake_drawing"], fake_masks, images["fake_photo"])
        return {**g_losses, **d_losses}, {**images, **edges}

    # === Training step ===
    def train_step(self, data):
        # Per-replica gradients are summed across replicas: scale by 1/replicas
        # so each step follows the loss averaged over the global batch.
        replicas = tf.distribute.get_strategy().num_replicas_in_sync
        with tf.GradientTape() as tape:
            images = self.generate(data, training=True)
            g_losses, _ = self.generator_losses(data, images)
            scaled = self.g_optimizer.scale_loss(g_losses["generator"] / replicas)
        g_vars = self.generator_variables
        self.g_optimizer.apply(tape.gradient(scaled, g_vars), g_vars)

        fake_drawing, fake_masks, fake_photo = self.pooled_fakes(data, images)
        with tf.GradientTape() as tape:
            d_losses = self.discriminator_losses(data, fake_drawing, fake_masks, fake_photo)
            scaled = self.d_optimizer.scale_loss(d_losses["discriminator"] / replicas)
        d_vars = self.discriminator_variables
        self.d_optimizer.apply(tape.gradient(scaled, d_vars), d_vars)

        if "position" in data:
            self._record_position(data["position"])
        for name, value in {**g_losses, **d_losses}.items():
            self.trackers[name].update_state(value)
        return self._logs()

    def _record_position(self, position) -> None:
        """Stores the stream position after this global batch (the largest over replicas)."""
        last = ops.max(ops.cast(position, "int64")) + 1
        context = tf.distribute.get_replica_context()
        if context is not None and context.num_replicas_in_sync > 1:
            last = tf.reduce_max(context.all_gather(tf.reshape(last, [1]), axis=0))
        self.data_position.assign(last)

    def _logs(self) -> dict:
        logs = {name: tracker.result() for name, tracker in self.trackers.items()}
        if isinstance(tf.distribute.get_strategy(), tf.distribute.MultiWorkerMirroredStrategy):
            # Keras averages per-replica logs across workers along axis 0, which scalars lack.
            logs = {name: ops.reshape(value, (1,)) for name, value in logs.items()}
        return logs

    def _maybe_symbolic_build(self, iterator=None, data_batch=None):
        """Skipped: every network is built in ``__init__``.

        Keras' version averages a first batch across replicas to build the
        model symbolically; with a nested batch (the mask dicts) under
        ``MultiWorkerMirroredStrategy`` that reduction fails.
        """

    def test_step(self, data):
        all_losses, _ = self.compute_losses(data)
        for name, value in all_losses.items():
            self.trackers[name].update_state(value)
        return self._logs()

    def call(self, inputs, training=False):
        """Inference: G on ``{"photo", "style"}`` (other keys of a training batch are ignored)."""
        return self.generator({"photo": inputs["photo"], "style": inputs["style"]}, training=training)

    # === Config ===
    def get_config(self):
        ser = keras.saving.serialize_keras_object
        return {
            "name": self.name,
            "trainable": self.trainable,
            "generator": ser(self.generator),
            "photo_generator": ser(self.photo_generator),
            "drawing_discriminator": ser(self.drawing_discriminator),
            "photo_discriminator": ser(self.photo_discriminator),
            "local_discriminators": {p: ser(m) for p, m in self.local_discriminators.items()},
            "cycle_distance": ser(self.cycle_distance),
            **{name: getattr(self, name) for name in HYPERPARAMETERS},
        }

    @classmethod
    def from_config(cls, config):
        de = keras.saving.deserialize_keras_object
        config = dict(config)
        for key in ("generator", "photo_generator", "drawing_discriminator", "photo_discriminator", "cycle_distance"):
            config[key] = de(config[key])
        config["local_discriminators"] = {p: de(m) for p, m in config["local_discriminators"].items()}
        return cls(**config)


def _networks(image_size: int, ngf: int, ndf: int, n_blocks: int, model0_res: int, n_layers_d: int, parts) -> dict:
    """G, F, D_A, D_B and the local discriminators with the official layouts."""
    return {
        "generator": StyleGenerator(ngf=ngf, n_blocks=n_blocks, model0_res=model0_res),
        "photo_generator": PhotoGenerator(ngf=ngf, n_blocks=n_blocks),
        "drawing_discriminator": StyleDiscriminator(image_size=image_size, ndf=ndf, n_layers=n_layers_d),
        "photo_discriminator": PatchDiscriminator(input_channels=3, ndf=ndf, n_layers=n_layers_d, name="photo_discriminator"),
        "local_discriminators": {
            p: PatchDiscriminator(input_channels=2, ndf=ndf, n_layers=n_layers_d, name=f"{p}_discriminator") for p in parts
        },
    }


def check_trainable_size(image_size: int, n_layers_d: int = 3, parts=LOCAL_ORDER, networks: dict | None = None) -> None:
    """Refuses (``ValueError``) a size at which some network would instance-normalise a map too small to have
    statistics (``networks.MIN_NORM_POSITIONS``): such a network cannot learn. Map sizes depend on the geometry
    only, so without ``networks`` the check builds one-channel stand-ins (a fraction of a second)."""
    nets = networks or _networks(image_size, 1, 1, 1, 0, n_layers_d, parts)
    image = lambda channels: keras.KerasTensor((1, image_size, image_size, channels))  # noqa: E731
    generator = nets["generator"]
    check_norm_maps(generator, {"photo": image(3), "style": keras.KerasTensor((1, generator.style_dim))}, f"G at {image_size} px")
    check_norm_maps(nets["photo_generator"], image(1), f"F at {image_size} px")
    check_norm_maps(nets["drawing_discriminator"], image(1), f"D_A at {image_size} px")
    check_norm_maps(nets["photo_discriminator"], image(3), f"D_B at {image_size} px")
    for part, discriminator in nets["local_discriminators"].items():
        check_norm_maps(discriminator, image(2), f"the {part} discriminator at {image_size} px")


def build_model(
    image_size: int = 512,
    ngf: int = 64,
    ndf: int = 64,
    n_blocks: int = 9,
    model0_res: int = 0,
    n_layers_d: int = 3,
    parts=LOCAL_ORDER,
    cycle_distance: str = "edges",
    **model_kwargs,
) -> AsymmetricCycleGAN:
    """Builds G, F, D_A, D_B and the local discriminators with the official layouts.

    G and F have ``n_blocks`` ResNet blocks each (official: both 9); every discriminator has
    ``n_layers_d`` stride-2 layers (official ``n_layers_D``, 3). ``model_kwargs`` go to
    ``AsymmetricCycleGAN`` (``HYPERPARAMETERS``: lambdas, pool size, seed...).

    Refuses a size at which a network cannot learn (``check_trainable_size``). At 64 px use
    ``n_layers_d=2``, at 32 px ``n_layers_d=1``.
    """
    networks = _networks(image_size, ngf, ndf, n_blocks, model0_res, n_layers_d, parts)
    check_trainable_size(image_size, n_layers_d, parts, networks)
    return AsymmetricCycleGAN(**networks, cycle_distance=make_cycle_distance(cycle_distance), **model_kwargs)
