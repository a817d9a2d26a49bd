"""The named choices of the `probnn` command: `--head` and `--calibration` (no imports: light for `--help`).

`HEADS` equals `probnn.heads.HEAD_NAMES` (tests/test_sklearn.py checks it),
written out here so that parsing the command line imports no TensorFlow;
`CALIBRATIONS` are the methods of `probnn.apps.calibrator.CommandCalibrator`.
"""

HEADS = ("normal", "studentt", "mixture", "rbf-mixture")
CALIBRATIONS = ("conformal", "std", "isotonic", "none")
