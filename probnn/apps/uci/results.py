"""Results files: one JSON document per (data set, method), written atomically; resumable runs."""

import dataclasses
import os
import pathlib

import numpy as np

from probnn.apps.uci.methods import METHODS
from probnn.apps.uci.protocol import MethodResult, SplitResult
from probnn.apps.uci.table import _order


def result_path(results_dir, dataset, method):
    return pathlib.Path(results_dir) / f"{dataset}.{method}.json"


def result_to_json(result, *, settings, method, quick):
    """The JSON document of one (data set, method) result, with what produced it."""
    import platform
    from datetime import datetime, timezone

    import probnn

    versions = {"probnn": probnn.__version__, "python": platform.python_version(), "numpy": np.__version__}
    for name in ("tensorflow", "keras", "tensorflow_probability"):
        try:
            versions[name] = __import__(name).__version__
        except Exception:  # noqa: BLE001 (not installed or not importable)
            versions[name] = None
    try:
        load = list(os.getloadavg())
    except OSError:
        load = None
    commit = None
    try:  # the checkout's commit, when run from one (benchmarks/uci.py)
        import subprocess

        here = pathlib.Path(__file__).resolve().parent
        commit = (
            subprocess.run(
                ["git", "-C", str(here), "rev-parse", "--short", "HEAD"],
                capture_output=True,
                text=True,
                timeout=10,
            ).stdout.strip()
            or None
        )
    except (OSError, subprocess.SubprocessError):
        pass
    return {
        "dataset": result.dataset,
        "method": result.method,
        "label": method.label,
        "quick": bool(quick),
        "splits": [dataclasses.asdict(s) for s in result.splits],
        "wall_seconds": result.seconds,
        "cpu_seconds": result.cpu_seconds,
        "integer_target": bool(result.integer_target),
        "settings": dataclasses.asdict(settings),
        "grid": {
            "structures": list(method.structures),
            "learning_rates": list(method.learning_rates),
            "weight_decays": list(method.weight_decays),
            "members": method.members,
            "stochastic": method.stochastic,
        },
        "versions": versions,
        "commit": commit,
        "machine": {
            "cpu_count": os.cpu_count(),
            "load_average_at_end": load,
            "platform": platform.platform(),
        },
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
    }


def result_from_json(doc):
    splits = [SplitResult(**s) for s in doc["splits"]]
    return MethodResult(
        doc["dataset"],
        doc["method"],
        splits,
        float(doc["wall_seconds"]),
        float(doc.get("cpu_seconds", float("nan"))),
        bool(doc.get("integer_target", False)),
        meta=doc,
    )


def save_result(result, path, *, settings, method, quick):
    """Write one result atomically (a temporary file renamed), so an interrupted run leaves no half file."""
    import json

    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(
        json.dumps(result_to_json(result, settings=settings, method=method, quick=quick), indent=1) + "\n"
    )
    os.replace(tmp, path)


def load_result(path):
    import json

    path = pathlib.Path(path)
    try:
        doc = json.loads(path.read_text())
        return result_from_json(doc)
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise ValueError(f"probnn bench uci: cannot read results file {path} ({error})") from None


def load_results(results_dir):
    """Every `MethodResult` in a results folder (files `DATASET.METHOD.json`), in table order."""
    found = [load_result(p) for p in sorted(pathlib.Path(results_dir).glob("*.json"))]
    return sorted(
        found,
        key=lambda r: (
            _order(r.dataset),
            list(METHODS).index(r.method) if r.method in METHODS else len(METHODS),
        ),
    )
