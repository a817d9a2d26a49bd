"""probnn.fit under tf.distribute.MultiWorkerMirroredStrategy: two worker processes on localhost.

Slow (two fresh TensorFlow processes per run, twice): run with `pytest -m slow`.
"""

import json
import os
import socket
import subprocess
import sys

import keras
import numpy as np
import pytest

import probnn

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import mwms_worker  # noqa: E402


def free_ports(count):
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("localhost", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def run_workers(tmp_path, checkpoint_dir, epochs, tag):
    workers = [f"localhost:{port}" for port in free_ports(2)]
    procs, outs = [], []
    for index in range(2):
        out = tmp_path / f"{tag}-{index}.npz"
        env = dict(
            os.environ,
            PYTHONPATH=os.path.dirname(HERE),
            TF_CONFIG=json.dumps(
                {"cluster": {"worker": workers}, "task": {"type": "worker", "index": index}}
            ),
        )
        procs.append(
            subprocess.Popen(
                [
                    sys.executable,
                    os.path.join(HERE, "mwms_worker.py"),
                    str(out),
                    str(checkpoint_dir),
                    str(epochs),
                ],
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )
        )
        outs.append(out)
    try:
        logs = [p.communicate(timeout=300)[0] for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    for p, log in zip(procs, logs):
        assert p.returncode == 0, log[-3000:]
    return [np.load(out) for out in outs]


@pytest.mark.slow
def test_two_workers_match_one_device_with_checkpoints_and_resume(tmp_path):
    x, y = mwms_worker.data()
    single = mwms_worker.model()
    h_single = probnn.fit(
        single,
        x,
        y,
        epochs=4,
        batch_size=mwms_worker.BATCH,
        verbose=0,
        seed=mwms_worker.SEED,
        optimizer=keras.optimizers.Adam(),
    )

    checkpoint_dir = tmp_path / "ckpt"
    first = run_workers(tmp_path, checkpoint_dir, 2, "first")
    assert (checkpoint_dir / "ckpt-2.index").exists()
    resumed = run_workers(tmp_path, checkpoint_dir, 4, "resumed")  # epochs 2 and 3 only
    for result in first + resumed:
        assert list(result["epoch"]) == list(range(len(result["epoch"])))
    weights = lambda r: [r[f"w{i}"] for i in range(len(single.get_weights()))]  # noqa: E731
    # The two workers hold the same weights, equal to one device's after the same 4 epochs.
    for a, b in zip(weights(resumed[0]), weights(resumed[1])):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_allclose(resumed[0]["loss"], h_single.history["loss"], rtol=1e-5)
    for a, b in zip(weights(resumed[0]), single.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
