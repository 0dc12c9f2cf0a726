"""Run every benchmark and print JSON: {"results": [...], "all_within_target": bool}."""

from __future__ import annotations

import argparse
import compileall
import json
import sys
from pathlib import Path

from bench.printer import bench_printer
from bench.qr import bench_qr
from bench.sale import bench_sale
from bench.scanner import bench_scanner
from bench.service import bench_service
from bench.signature_image import bench_signature_image
from bench.signature_pad import bench_signature_pad
from bench.startup import bench_demo_rss, bench_help, bench_ready, bench_ready_real
from bench.web import bench_web


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench")
    parser.add_argument("--quick", action="store_true", help="fewer repetitions (smoke run)")
    args = parser.parse_args()
    reps = 3 if args.quick else 15
    # A real install byte-compiles the code (pip does); this machine may set PYTHONDONTWRITEBYTECODE,
    # which would make every start recompile our sources and measure the compiler instead.
    root = Path(__file__).resolve().parents[1]
    for package in ("terminal", "drivers", "emulator", "sim", "firmware_profiles", "bench"):
        compileall.compile_dir(str(root / package), quiet=1)
    results = [bench_sale(reps), bench_qr(reps), bench_ready(reps), bench_ready_real(reps), bench_help(reps),
               bench_demo_rss(),
               *bench_printer(reps), *bench_scanner(reps), *bench_signature_pad(reps), *bench_service(reps),
               *bench_signature_image(reps), *bench_web(reps)]
    out = {"results": results, "all_within_target": all(r["within_target"] for r in results)}
    json.dump(out, sys.stdout, indent=2)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
