"""How busy a GPU was during a time window, from ``nvidia-smi``'s once-a-second samples.

Run:  nvidia-smi -i 0 --query-gpu=timestamp,memory.used,utilization.gpu --format=csv,noheader \
        -l 1 > gpu.csv &
      ... (the measured command prints its unix start and end times) ...
      python benchmarks/gpu_busy.py gpu.csv START END

Prints the samples inside ``[START, END]`` (unix seconds): their number, the mean utilisation,
the share of seconds at 50 % or more, and the peak memory. One GPU's samples (``-i``: with
several GPUs, nvidia-smi writes a line per GPU). Its timestamps are local time, read here in this
process's time zone: run both on the same machine with the same ``TZ``. Samples that read
``[N/A]`` are left out.
"""

from __future__ import annotations

import argparse
import datetime


def samples(path: str, start: float, end: float) -> list[tuple[float, float]]:
    """``(memory MiB, utilisation %)`` of every sample taken between ``start`` and ``end``."""
    rows = []
    with open(path) as lines:
        for line in lines:
            parts = [p.strip() for p in line.split(",")]
            if len(parts) != 3:
                continue
            try:
                when = datetime.datetime.strptime(parts[0], "%Y/%m/%d %H:%M:%S.%f").timestamp()
                memory, busy = float(parts[1].split()[0]), float(parts[2].split()[0])
            except ValueError:  # a header or a line cut short
                continue
            if start <= when <= end:
                rows.append((memory, busy))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("csv")
    parser.add_argument("start", type=float)
    parser.add_argument("end", type=float)
    args = parser.parse_args()
    rows = samples(args.csv, args.start, args.end)
    if not rows:
        raise SystemExit(f"no samples between {args.start} and {args.end} in {args.csv}")
    busy = [b for _, b in rows]
    print(f"{len(rows)} samples over {args.end - args.start:.1f} s: mean utilisation "
          f"{sum(busy) / len(busy):.0f}%, >= 50% in {sum(b >= 50 for b in busy) / len(busy):.0%} "
          f"of them; peak memory {max(m for m, _ in rows):.0f} MiB")


if __name__ == "__main__":
    main()
