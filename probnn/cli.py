"""The `probnn` command."""

import argparse
import os
import sys


def _demo(args):
    from probnn.demo import format_report, run_demo

    result = run_demo(args.output, epochs=args.epochs, seed=args.seed, verbose=args.verbose)
    print(format_report(result))
    return 0


def build_parser():
    parser = argparse.ArgumentParser(
        prog="probnn", description="Probabilistic deep learning on TensorFlow Probability and Keras 3."
    )
    parser.add_argument("--version", action="store_true", help="print the version and exit")
    commands = parser.add_subparsers(dest="command")
    demo = commands.add_parser(
        "demo",
        help="train a heteroscedastic regression model on built-in data and report NLL, RMSE, coverage",
    )
    demo.add_argument("--output", default="probnn-demo", help="folder for the figure (default: %(default)s)")
    demo.add_argument("--epochs", type=int, default=300, help="maximum epochs (default: %(default)s)")
    demo.add_argument("--seed", type=int, default=0, help="random seed (default: %(default)s)")
    demo.add_argument("--verbose", type=int, default=0, choices=(0, 1), help="progress bar (default: off)")
    demo.set_defaults(run=_demo)
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    if args.version:
        from probnn import __version__

        print(__version__)
        return 0
    if args.command is None:
        build_parser().print_help()
        return 2
    if getattr(args, "epochs", 1) < 1:
        print("probnn demo: --epochs must be a positive integer", file=sys.stderr)
        return 2
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
