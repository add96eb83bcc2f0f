"""benchmarks/cpu_profile.py's reading of py-spy's raw samples: counts per function, where it was
running and where it was on the stack, with herald's modules named by package."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.append(str(Path(__file__).resolve().parents[2] / "benchmarks"))  # last: shadows nothing

import cpu_profile  # benchmarks/cpu_profile.py


def test_samples_are_counted_by_function_on_and_at_the_top_of_the_stack(tmp_path: Path) -> None:
    assert Path(cpu_profile.__file__).parent.name == "benchmarks"
    raw = tmp_path / "recorder.txt"
    root = "/work/x/.venv/lib/python3.11/site-packages"
    raw.write_text(
        'process 7:"herald recorder";thread (0x1);main (/w/src/herald/cli.py:79);'
        "run (/w/src/herald/kafka.py:500) 5\n"
        'process 7:"herald recorder";thread (0x1);main (/w/src/herald/cli.py:79);'
        f"run (/w/src/herald/kafka.py:503);write_row ({root}/psycopg/_copy_base.py:289) 3\n"
        'process 7:"herald recorder";thread (0x1);main (/w/src/herald/cli.py:79);'
        "run (/w/src/herald/kafka.py:503) 2\n"
        "\n"
    )
    p = cpu_profile.read_profile("recorder", raw)
    assert p.samples == 10
    assert dict(p.own) == {"herald/kafka.py: run": 7, "_copy_base.py: write_row": 3}
    assert dict(p.within) == {
        "herald/cli.py: main": 10,
        "herald/kafka.py: run": 10,
        "_copy_base.py: write_row": 3,
    }
