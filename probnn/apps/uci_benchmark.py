"""`probnn bench uci`: the UCI regression benchmark (the code lives in `probnn.apps.uci`).

This module keeps the names the command, `benchmarks/uci.py` and the tests use.
"""

from probnn.apps.uci.jobs import (
    BenchJob,
    check_cli_arguments,
    partition,
    run,
    run_in_processes,
    run_job,
    table_text,
)
from probnn.apps.uci.methods import (
    LEARNING_RATES,
    METHODS,
    QUICK_SETTINGS,
    QUICK_SPLITS,
    WEIGHT_DECAYS,
    Method,
    Settings,
    build_network,
    quick,
)
from probnn.apps.uci.protocol import (
    MethodResult,
    SplitResult,
    integer_valued,
    refit_splits,
    run_method,
    search_splits,
)
from probnn.apps.uci.results import (
    load_result,
    load_results,
    result_from_json,
    result_path,
    result_to_json,
    save_result,
)
from probnn.apps.uci.table import BASELINE, PUBLISHED, best_result, comparable, format_table, uci_total_splits

__all__ = [
    "BASELINE",
    "BenchJob",
    "LEARNING_RATES",
    "METHODS",
    "Method",
    "MethodResult",
    "PUBLISHED",
    "QUICK_SETTINGS",
    "QUICK_SPLITS",
    "Settings",
    "SplitResult",
    "WEIGHT_DECAYS",
    "best_result",
    "build_network",
    "check_cli_arguments",
    "comparable",
    "format_table",
    "integer_valued",
    "load_result",
    "load_results",
    "partition",
    "quick",
    "result_from_json",
    "result_path",
    "result_to_json",
    "run",
    "run_in_processes",
    "run_job",
    "run_method",
    "refit_splits",
    "search_splits",
    "save_result",
    "table_text",
    "uci_total_splits",
]
