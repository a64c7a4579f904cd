"""Command line: `sb-native` / `python -m sb_native`."""

import argparse
import sys
from typing import List, Optional


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="sb-native", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    demo = commands.add_parser("demo", help="solve a seeded random Max-Cut on every backend")
    demo.add_argument("--nodes", type=int, default=400)
    demo.add_argument("--seed", type=int, default=0)
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "demo":
        from .demo import main as demo_main

        return demo_main(n=args.nodes, seed=args.seed)
    return 2


if __name__ == "__main__":
    sys.exit(main())
