"""A 12-configuration grid: probnn.GridSearch (one compiled program) vs keras_tuner.GridSearch.

The job: the UCI network (13 inputs, 50 ReLU units, a Normal head) on split 0
of bostonHousing (the standard split's first 80 % of training rows to fit,
the last 20 % to validate, standardised), batch 32, at most `--epochs`
epochs with early stopping on the validation NLL (`--patience`, best weights
restored). The grid: learning rate {3e-3, 1e-2} x Keras weight decay {1e-5,
1e-4, 1e-3} (Adam's decoupled `weight_decay`) x seed {0, 1}: 12 trainings.

  probnn      probnn.GridSearch(build, grid, seeds=2).fit(...): the 12 members
              in ONE compiled program (probnn.fit, per-member Adam and early
              stopping).
  keras_tuner keras_tuner.GridSearch over the same 12 (seed as a hyperparameter:
              `keras.utils.set_random_seed(seed)` in build), each trial
              `model.fit` with Keras's EarlyStopping(val_loss, patience,
              restore_best_weights=True), objective val_loss.

Both run in this one process, probnn first; wall times include compilation
(every trial of KerasTuner compiles its own model; probnn compiles once).
Both choose on validation NLL: KerasTuner its best trial, probnn the best
configuration by mean over seeds and its best single member (reported both).

Usage: python benchmarks/grid_search.py [--epochs 100] [--patience 10] [--data-dir PATH]
Writes benchmarks/results/grid_search.md.
"""

import argparse
import os
import shutil
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from _common import REPO, RESULTS, machine_description, markdown_table  # noqa: E402

LEARNING_RATES = [3e-3, 1e-2]
WEIGHT_DECAYS = [1e-5, 1e-4, 1e-3]
SEEDS = [0, 1]


def load_job(data_dir):
    import numpy as np

    from probnn.datasets import load_uci

    split = load_uci("bostonHousing", 0, data_dir)
    x, y = split.x_train, split.y_train
    x_mean, x_std = x.mean(0), x.std(0)
    y_mean, y_std = y.mean(), y.std()
    x = ((x - x_mean) / x_std).astype(np.float32)
    y = ((y - y_mean) / y_std).astype(np.float32)
    n_val = int(round(0.2 * len(x)))
    return x[:-n_val], y[:-n_val], x[-n_val:], y[-n_val:]


def build():
    import keras

    import probnn

    return keras.Sequential(
        [keras.Input((13,)), keras.layers.Dense(50, activation="relu"), probnn.heads.NormalHead()]
    )


def run_probnn(data, epochs, patience):
    import probnn

    x, y, xv, yv = data
    started = time.perf_counter()
    search = probnn.GridSearch(
        build, {"learning_rate": LEARNING_RATES, "weight_decay": WEIGHT_DECAYS}, seeds=SEEDS
    )
    search.fit(x, y, validation_data=(xv, yv), epochs=epochs, batch_size=32, patience=patience)
    seconds = time.perf_counter() - started
    best_single = min(search.results, key=lambda r: r["val_nll"])
    started = time.perf_counter()  # warm: the same search again reuses its compiled stack
    search.fit(x, y, validation_data=(xv, yv), epochs=epochs, batch_size=32, patience=patience)
    warm = time.perf_counter() - started
    return seconds, warm, search.best_params, best_single


def run_keras_tuner(data, epochs, patience):
    import keras
    import keras_tuner

    import probnn

    x, y, xv, yv = data

    def build_trial(hp):
        lr = hp.Choice("learning_rate", LEARNING_RATES)
        wd = hp.Choice("weight_decay", WEIGHT_DECAYS)
        keras.utils.set_random_seed(hp.Choice("seed", SEEDS))
        model = build()
        head = probnn.heads.find_head(model)
        model.compile(
            keras.optimizers.Adam(lr, weight_decay=wd), loss=probnn.losses.NegativeLogLikelihood(head)
        )
        return model

    folder = tempfile.mkdtemp(prefix="probnn_kt_")
    try:
        started = time.perf_counter()
        tuner = keras_tuner.GridSearch(
            build_trial,
            objective="val_loss",
            max_trials=12,
            directory=folder,
            project_name="grid",
            overwrite=True,
        )
        tuner.search(
            x,
            y,
            validation_data=(xv, yv),
            epochs=epochs,
            batch_size=32,
            verbose=0,
            callbacks=[
                keras.callbacks.EarlyStopping("val_loss", patience=patience, restore_best_weights=True)
            ],
        )
        seconds = time.perf_counter() - started
        trials = tuner.oracle.get_best_trials(12)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    best = trials[0].hyperparameters.values
    return seconds, best, trials[0].score, len(trials)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=100)
    parser.add_argument("--patience", type=int, default=10)
    parser.add_argument(
        "--data-dir",
        default=str(REPO.parent / "shared" / "datasets" / "uci"),
        help="the folder of the UCI data set folders (default: ../shared/...)",
    )
    args = parser.parse_args()
    load_before = os.getloadavg()[0]
    data = load_job(args.data_dir)
    ours, warm, best_params, best_single = run_probnn(data, args.epochs, args.patience)
    theirs, kt_best, kt_score, kt_trials = run_keras_tuner(data, args.epochs, args.patience)
    load_after = os.getloadavg()[0]
    kt_config = {"learning_rate": kt_best["learning_rate"], "weight_decay": kt_best["weight_decay"]}
    same_config = kt_config == best_params
    same_member = kt_config == best_single["params"] and kt_best["seed"] == best_single["seed"]
    rows = [
        [
            "probnn.GridSearch (one program)",
            f"{ours:.1f}",
            "1.00",
            f"{best_params} (mean over seeds); best member {best_single['params']} seed "
            f"{best_single['seed']}, val NLL {best_single['val_nll']:.4f}",
        ],
        [
            "probnn.GridSearch, warm (a second fit: programs reused)",
            f"{warm:.1f}",
            f"{warm / ours:.2f}",
            "(the same training again)",
        ],
        [
            "keras_tuner.GridSearch",
            f"{theirs:.1f}",
            f"{theirs / ours:.2f}",
            f"{kt_config} seed {kt_best['seed']}, val NLL {kt_score:.4f} ({kt_trials} trials)",
        ],
    ]
    text = "\n".join(
        [
            "# Grid search: probnn.GridSearch vs keras_tuner.GridSearch",
            "",
            __doc__.split("\n\n")[1].strip(),
            "",
            *machine_description(),
            f"- 1-minute load average: {load_before:.1f} before, {load_after:.1f} after "
            "(2 cores shared by several people: wall times are noisy, the ratio less so)",
            f"- epochs {args.epochs}, patience {args.patience}, batch 32, 12 configurations",
            "",
            markdown_table(["arm", "wall s (compile included)", "x probnn", "chosen"], rows),
            "",
            f"Same configuration (learning rate, weight decay) chosen: {'yes' if same_config else 'no'}"
            f"; same single (configuration, seed) as probnn's best member: "
            f"{'yes' if same_member else 'no'}.",
        ]
    )
    (RESULTS / "grid_search.md").write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
