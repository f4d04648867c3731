"""Whole-lab cost: `dialogsum-lab demo` stage by stage (zero-shot, train and evaluate each method, compare)."""

import tempfile
import time

from common import parser, print_table, save

from dialogsum_lab.experiments import run_demo
from dialogsum_lab.files import read_json


def main() -> None:
    p = parser(__doc__)
    p.add_argument("--config", default="smoke", help="preset to run (smoke on CPU, lab on a GPU)")
    args = p.parse_args()
    methods = ("lora",) if args.smoke else ("full", "lora", "prompt_tuning")
    with tempfile.TemporaryDirectory() as scratch:
        start = time.perf_counter()
        root = run_demo(args.config, f"{scratch}/demo", methods)
        wall = time.perf_counter() - start
        stages = read_json(root / "timings.json")
    print_table([("stage", "seconds"), *stages.items(), ("wall (with start-up)", f"{wall:.1f}")])
    save("demo" + ("-smoke" if args.smoke else ""), {"config": args.config, "methods": list(methods),
                                                     "stages_seconds": stages, "wall_seconds": wall}, args.out)


if __name__ == "__main__":
    main()
