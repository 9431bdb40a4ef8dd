import subprocess
import sys
import time


def test_help_lists_commands():
    out = subprocess.run([sys.executable, "-m", "vidiff", "--help"], capture_output=True, text=True, check=True).stdout
    assert "usage: vidiff" in out


def test_import_is_cheap():
    """`import vidiff` must not pull torch / transformers (under 2 s on this CPU; we check the modules, not the clock)."""
    code = "import sys, vidiff, vidiff.cli; print(sorted(m for m in ('torch','transformers','av','decord','accelerate') if m in sys.modules))"
    start = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "[]"
    assert time.perf_counter() - start < 2.0
