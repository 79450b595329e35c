"""History pool of generated images (Shrivastava et al. 2017), as the official ``ImagePool``.

Discriminators see a mix of the newest fakes and older ones: while the pool is
filling, every fake is stored and returned; once full, each fake is, with
probability 1/2, swapped for a random stored one (which is returned) or
returned as is.

Differences from the official implementation, on purpose:

* the pool lives in TensorFlow variables and works inside ``tf.function``;
  under ``tf.distribute`` each replica has its own pool (sync-on-read
  variables), as each GPU process would with the official code;
* random numbers come from a seeded stateless generator and a draw counter,
  not Python's ``random``, so runs are reproducible;
* pool contents travel with the crash-safe backups (``training/backup.py``),
  so ``--resume`` continues with the same history; the official code refills
  its pool after a restart. End-of-epoch weight checkpoints do not hold them.
"""

from __future__ import annotations

import keras
import tensorflow as tf

from keras_asym.layers.basic import PACKAGE


def _local_variable(initial, name: str) -> tf.Variable:
    return tf.Variable(
        initial,
        trainable=False,
        name=name,
        synchronization=tf.VariableSynchronization.ON_READ,
        aggregation=tf.VariableAggregation.ONLY_FIRST_REPLICA,
    )


@keras.saving.register_keras_serializable(package=PACKAGE)
class HistoryPool(keras.layers.Layer):
    """A pool of up to ``pool_size`` images of a fixed shape.

    Args:
        pool_size: int. 0 disables the pool (``query`` returns its input).
            Defaults to 50 (official).
        image_shape: (H, W, C) of the stored items. Store drawings together
            with their part masks as extra channels so a pooled drawing keeps
            its own masks.
        seed: int. Seed of the swap decisions.
    """

    def __init__(self, pool_size: int = 50, image_shape=(256, 256, 1), seed: int = 0, **kwargs):
        super().__init__(**kwargs)
        if pool_size < 0:
            raise ValueError(f"pool_size must be >= 0, got {pool_size}.")
        self.pool_size = int(pool_size)
        self.image_shape = tuple(int(d) for d in image_shape)
        self.seed = int(seed)
        if self.pool_size:
            self.images = _local_variable(tf.zeros((self.pool_size,) + self.image_shape), f"{self.name}_images")
            self.count = _local_variable(tf.constant(0, tf.int32), f"{self.name}_count")
            self.draws = _local_variable(tf.constant(0, tf.int32), f"{self.name}_draws")

    def _seeds(self):
        context = tf.distribute.get_replica_context()
        replica = context.replica_id_in_sync_group if context is not None else 0
        draw = self.draws.assign_add(1) - 1
        base = tf.cast(self.seed, tf.int32) + tf.cast(replica, tf.int32) * 7919
        return tf.stack([base, draw]), tf.stack([base + 1, draw])

    def call(self, images):
        """Returns a batch of the same shape, mixing ``images`` with pooled ones."""
        if not self.pool_size:
            return images
        images = tf.cast(images, self.images.dtype)
        batch = tf.shape(images)[0]
        swap_seed, slot_seed = self._seeds()
        coins = tf.random.stateless_uniform([batch], seed=swap_seed)
        slots = tf.random.stateless_uniform([batch], seed=slot_seed, maxval=self.pool_size, dtype=tf.int32)

        def body(i, returned):
            image = images[i]
            count = self.count.read_value()
            filling = count < self.pool_size
            swap = tf.logical_and(tf.logical_not(filling), coins[i] > 0.5)
            slot = tf.where(filling, count, slots[i])
            stored = tf.gather(self.images, slot)
            returned = returned.write(i, tf.where(swap, stored, image))

            def store():
                # A whole-buffer assign: sync-on-read (per-replica) variables
                # support no scatter ops; one copy of the pool per step is
                # negligible beside a training step.
                self.images.assign(tf.tensor_scatter_nd_update(self.images, [[slot]], image[None]))
                return tf.constant(True)

            with tf.control_dependencies([stored]):
                stored_new = tf.cond(tf.logical_or(filling, swap), store, lambda: tf.constant(False))
            with tf.control_dependencies([stored_new]):
                self.count.assign(tf.where(filling, count + 1, count))
            return i + 1, returned

        _, returned = tf.while_loop(
            lambda i, _: i < batch,
            body,
            (tf.constant(0), tf.TensorArray(self.images.dtype, size=batch, element_shape=self.image_shape)),
            parallel_iterations=1,
        )
        return returned.stack()

    def extra_state(self) -> dict:
        """The stored images and counters, which Keras' weights do not hold (backups carry them)."""
        if not self.pool_size:
            return {}
        return {"images": self.images.numpy(), "count": self.count.numpy(), "draws": self.draws.numpy()}

    def restore_extra_state(self, state: dict) -> None:
        if not self.pool_size:
            return
        if set(state) != {"images", "count", "draws"} or tuple(state["images"].shape) != tuple(self.images.shape):
            raise ValueError(f"{self.name}: backed-up pool state does not fit this pool (shape {self.images.shape}).")
        for key, variable in (("images", self.images), ("count", self.count), ("draws", self.draws)):
            variable.assign(state[key])

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "pool_size": self.pool_size, "image_shape": self.image_shape, "seed": self.seed}
