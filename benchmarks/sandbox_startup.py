"""Start-up cost of one `reasonlab.sandbox.run_python` call: the median wall time of N calls of trivial code.

    .venv/bin/python benchmarks/sandbox_startup.py --calls 30

Each call starts the whole stack (bubblewrap's namespaces, the root-to-uid-65534 staging when the caller
is root, seccomp, a Python interpreter, the runner, the audit hook) and reads the result back, so the
figure is the fixed cost a tool call or program run pays before its own work. One warm-up call first (it
also probes which bubblewrap setup works, a cost paid once per process). `runtime_s` is the time to find the
sandbox's runtime copy (reasonlab.sandbox.runtime), which includes building it when it is not in the cache yet;
`REASONLAB_SANDBOX_CACHE=$(mktemp -d)` measures a first build. Prints one JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time

from reasonlab.sandbox import SandboxMode, available_layers, run_python
from reasonlab.sandbox.runtime import runtime


def measure(calls: int, mode: SandboxMode, code: str) -> list[float]:
    """Wall seconds of `calls` runs of `code`, after one warm-up run."""
    run_python(code, mode=mode)
    seconds = []
    for _ in range(calls):
        started = time.perf_counter()
        result = run_python(code, mode=mode)
        seconds.append(time.perf_counter() - started)
        assert result.ok, result.error
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=30, help="timed calls after the warm-up")
    parser.add_argument("--mode", default="auto", help="sandbox mode: auto or unsafe-hook-only")
    parser.add_argument("--code", default="result = 6 * 7", help="the code each call runs")
    args = parser.parse_args()
    started = time.perf_counter()
    runtime()
    runtime_s = time.perf_counter() - started
    seconds = measure(args.calls, args.mode, args.code)
    layers = available_layers(args.mode)
    print(json.dumps({
        "median_s": round(statistics.median(seconds), 4), "min_s": round(min(seconds), 4),
        "max_s": round(max(seconds), 4), "runtime_s": round(runtime_s, 3), "calls": args.calls, "mode": args.mode, "code": args.code,
        "layers": sorted(name for name, status in layers.items() if status.active),
        "machine": f"{platform.machine()}, {os.cpu_count()} cpus, Linux {platform.release()}, "
                   f"Python {platform.python_version()}, euid {os.geteuid()}",
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    }))


if __name__ == "__main__":
    main()
