"""One worker of the two-process MultiWorkerMirroredStrategy test (tests/test_training_distributed.py).

Usage: python tests/mwms_worker.py OUT.npz CHECKPOINT_DIR EPOCHS  (TF_CONFIG set by the caller)
"""

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

ROWS, BATCH, SEED = 512, 96, 2


def data():
    import numpy as np

    rng = np.random.default_rng(20261124)
    x = rng.normal(size=(ROWS, 2)).astype("float32")
    y = (x[:, :1] * x[:, 1:] + 0.5 * rng.normal(size=(ROWS, 1))).astype("float32")
    return x, y


def model():
    import keras

    import probnn

    keras.utils.set_random_seed(5)
    return keras.Sequential(
        [keras.Input((2,)), keras.layers.Dense(16, activation="relu"), probnn.heads.NormalHead()]
    )


def main(out, checkpoint_dir, epochs):
    import numpy as np
    import tensorflow as tf

    import probnn

    strategy = tf.distribute.MultiWorkerMirroredStrategy()
    x, y = data()
    with strategy.scope():
        net = model()
    history = probnn.fit(
        net,
        x,
        y,
        epochs=epochs,
        batch_size=BATCH,
        seed=SEED,
        verbose=0,
        optimizer="adam",
        strategy=strategy,
        checkpoint_dir=checkpoint_dir,
    )
    np.savez(
        out,
        loss=np.array(history.history["loss"]),
        epoch=np.array(history.epoch),
        **{f"w{i}": w for i, w in enumerate(net.get_weights())},
    )


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]))
