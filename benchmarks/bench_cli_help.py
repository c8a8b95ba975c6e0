"""Wall time of `afcli --help` (target: under 1.5 s), median of 10 runs in fresh processes."""

import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _timing import median_seconds  # noqa: E402

command = [sys.executable, "-m", "afcli", "--help"]
seconds = median_seconds(lambda: subprocess.run(command, capture_output=True, check=True), repeats=10, warmup=1)
print(f"| `afcli --help` | {seconds:.3f} s | target < 1.5 s |")
