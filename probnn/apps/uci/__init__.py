"""The UCI regression benchmark behind `probnn bench uci`, split by concept.

- `methods`: the methods, their networks and grids, the training settings;
- `protocol`: the protocol on one data set (grid search, refit, test scores),
  built from `probnn.GridSearch`, `probnn.Ensemble`, `probnn.fit` and
  `probnn.predict_distribution`;
- `results`: one JSON results file per (data set, method), resumable runs;
- `table`: the Markdown table beside the published numbers;
- `jobs`: the command's arguments, runs in processes, the table of a run.

Importing this package (and `methods`, `results`, `table`, `jobs`) does not
import TensorFlow: `probnn bench uci --table-only` trains nothing.
"""
