"""Rebuild the miniature lab's base model, miniature-t5, from the synthetic dialogue world.

    python scripts/build_miniature.py                 # into data/miniature/model (the shipped copy)
    python scripts/build_miniature.py --out DIR       # elsewhere, e.g. to compare with the shipped one

Deterministic for a given machine and thread count; the time and losses it took are in DIR/build.json.
What it trains and why: src/dialogsum_lab/miniature.py and data/miniature/README.md.
"""

import argparse
from pathlib import Path

from dialogsum_lab.config import MINIATURE_DIR
from dialogsum_lab.miniature import STEPS, build_miniature

if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=MINIATURE_DIR / "model", help="where to save the model")
    parser.add_argument("--steps", type=int, default=STEPS, help="optimiser steps of the instruction mixture")
    args = parser.parse_args()
    record = build_miniature(args.out, steps=args.steps)
    print(f"miniature-t5: {record['parameters']:,} parameters, {record['steps']} steps, final loss "
          f"{record['final_loss']}, {record['seconds'] / 60:.1f} min; saved to {args.out}")
