"""Applications built on the library: the `probnn` command, its CSV jobs, the demo and the UCI protocol.

They are users of probnn, not part of its API: `cli` (argument parsing, light
to import), `tabular` (`probnn fit` / `probnn predict` on CSV files), `demo`
(`probnn demo`) and `uci_benchmark` (`probnn bench uci`).
"""
