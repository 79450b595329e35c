"""One training step as one worker of a two-worker MultiWorkerMirroredStrategy (TF_CONFIG), on its own shard.

    python -m tests.multi_worker_step OUT.npz

Worker i reads only sample i of ``global_batch()``; the weights after one SGD
step are saved, for tests/test_train.py to compare with one device on both samples.
"""

from __future__ import annotations

import sys

import keras
import numpy as np
import tensorflow as tf

from keras_asym.data.synthetic import random_batch
from keras_asym.models.cycle_gan import build_model


def global_batch(n=2):
    return random_batch(n, 64, mask_fraction=0.3, soft_styles=True)


def trained(strategy, dataset) -> list[np.ndarray]:
    keras.utils.set_random_seed(5)
    with strategy.scope():
        model = build_model(image_size=64, ngf=4, ndf=4, n_blocks=1, n_layers_d=2, pool_size=0)
        model.compile(g_optimizer=keras.optimizers.SGD(0.1), d_optimizer=keras.optimizers.SGD(0.1), jit_compile=False)
    model.fit(dataset, epochs=1, steps_per_epoch=1, verbose=0)
    return [np.asarray(w) for w in model.trainable_weights]


def main(out: str) -> None:
    strategy = tf.distribute.MultiWorkerMirroredStrategy()
    batch = global_batch()

    def shard(context: tf.distribute.InputContext):
        own = tf.nest.map_structure(lambda x: x[context.input_pipeline_id : context.input_pipeline_id + 1], batch)
        return tf.data.Dataset.from_tensors(own).repeat()

    weights = trained(strategy, strategy.distribute_datasets_from_function(shard))
    np.savez(out, *weights)


if __name__ == "__main__":
    main(sys.argv[1])
