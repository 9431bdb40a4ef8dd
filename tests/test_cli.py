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


def test_a_reader_that_stops_early_gets_no_traceback():
    """`vidiff ... | head -1`: the command's other lines meet a closed pipe; it ends with 141 (SIGPIPE) and one
    line of output read, no traceback."""
    script = ("import sys, argparse\n"
              "from vidiff.cli import run_command\n"
              "def handler(args):\n"
              "    for i in range(200000):\n"
              "        print('line', i)\n"
              "sys.exit(run_command(handler, argparse.Namespace()))\n")
    writer = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    first = writer.stdout.readline()
    writer.stdout.close()
    stderr = writer.stderr.read().decode()
    assert writer.wait(timeout=60) == 141, stderr
    assert first == b"line 0\n"
    assert "Traceback" not in stderr and "BrokenPipe" not in stderr, stderr
