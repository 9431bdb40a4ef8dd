"""The evaluation tools the docs give commands for still run on the bundled pipeline, one clip per check: a library
change can make a tool stop at its first clip while every library test passes (tools/eval_edit.py did, twice,
until 2026-12-05). Slow (about 2 minutes); run with -m slow."""
import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
BUNDLE = str(REPO / "vidiff" / "bundled" / "shapes")


def _run(*args: str) -> str:
    run = subprocess.run([sys.executable, *args], capture_output=True, text=True, timeout=600, cwd=REPO)
    assert run.returncode == 0, run.stderr[-2000:]
    return run.stdout


@pytest.mark.slow
def test_eval_bundled_runs_every_check(tmp_path):
    _run("tools/eval_bundled.py", "--model", BUNDLE, "--num", "1", "--paraphrase", "--user-wording", "d", "e",
         "--layouts", "16:6x3", "--layout-num", "1", "--trials", "1", "--extend-long", "16",
         "--user-keyframes", "16@0,7,15", "--first-seed", "20000", "--out", str(tmp_path / "eb"))
    summary = json.loads((tmp_path / "eb" / "summary.json").read_text())
    for clip in ("t2v/t2v_000.mp4.json", "layout_16_6x3/t2v_000.mp4.json"):  # the tuning seeds, not the reported
        assert json.loads((tmp_path / "eb" / clip).read_text())["seed"] == 20000
    assert {"t2v", "paraphrase", "user_wording", "layouts", "user_keyframes", "animate", "extend",
            "extend_long"} <= set(summary)
    assert set(summary["user_wording"]) >= {"d", "e"}


@pytest.mark.slow
@pytest.mark.parametrize("extra", [[], ["--region"], ["--foreground"], ["--structure", "silhouette", "--repeats", "2"]])
def test_eval_edit_runs(extra):
    out = _run("tools/eval_edit.py", "--model", BUNDLE, "--num", "1", *extra)
    result = json.loads(out.strip().splitlines()[-1])
    assert result["num"] == 1 and len(result["results"]) == 1


@pytest.mark.slow
def test_eval_control_and_the_fills_ceiling_run(tmp_path):
    _run("tools/eval_control.py", "--model", BUNDLE, "--num", "1", "--scale", "2", "--no-baseline",
         "--out", str(tmp_path / "c.json"))
    assert json.loads((tmp_path / "c.json").read_text())
    out = _run("tools/interp_gap_ceiling.py", "--model", BUNDLE, "--num", "1", "--first", "0")
    assert json.loads(out.strip().splitlines()[-1])["num"] == 1


@pytest.mark.slow
@pytest.mark.parametrize("extra", [[], ["--no-still"]])
def test_eval_animate_motion_runs(extra):
    out = _run("tools/eval_animate_motion.py", "--model", BUNDLE, "--trials", "1", *extra)
    assert out.strip().splitlines()[-1].endswith("of 1")
