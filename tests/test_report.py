"""The HTML run report: content and escaping, and a real headless Chromium load with every image checked."""
import functools
import http.server
import json
import re
import shutil
import subprocess
import threading
from pathlib import Path

import imageio.v2 as imageio
import numpy as np
import pytest

from vidiff.cli import main
from vidiff.eval.report import build_report

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[1] / "outputs" / "test-artifacts"
EVIL_PROMPT = '<img src=x onerror="document.title=\'pwned\'"> a red circle & "friends"'


def _gif(path: Path, colour, frames=8, size=32):
    clip = np.full((frames, size, size, 3), 30, np.uint8)
    for f in range(frames):
        clip[f, 10:20, 2 + 2 * f : 12 + 2 * f] = colour
    imageio.mimsave(path, list(clip), duration=125, loop=0)


def make_run(root: Path) -> Path:
    """A small run folder as training writes it (no loss.png: the page must draw the curve)."""
    run = root / "run"
    (run / "previews").mkdir(parents=True)
    (run / "eval").mkdir()
    (run / "config.yaml").write_text("model:\n  channels: 32  # <b>not bold</b>\n")
    with open(run / "metrics.jsonl", "w") as f:
        for step in range(0, 200, 10):
            f.write(json.dumps({"step": step, "loss": 1.0 / (1 + step / 20), "lr": 1e-4, "grad_norm": 0.5}) + "\n")
        f.write("not json\n")
    _gif(run / "previews" / "step_000100.gif", (220, 40, 40))
    (run / "previews" / "step_000100.json").write_text(json.dumps({"prompts": [EVIL_PROMPT], "seeds": [7], "step": 100}))
    _gif(run / "previews" / "step_000200.gif", (50, 80, 230))
    (run / "previews" / "step_000200.json").write_text(json.dumps(
        {"prompts": ["a blue square moving up", "a green triangle moving left"], "seeds": [3, 4], "step": 200,
         "sampler": "dpmpp_2m"}))
    (run / "eval" / "interpolation.json").write_text(json.dumps({
        "eval": "interpolation", "settings": {"stride": 4},
        "columns": ["method", "PSNR (dB)", "SSIM", "frames"],
        "rows": [["model", 31.25, 0.9412, 24], ["linear blend", 27.5, 0.901, 24]], "result": {}}))
    (run / "eval" / "shapes.json").write_text(json.dumps({"eval": "shapes", "result": {"accuracy": {"colour": 0.75}}}))
    return run


def test_page_content_and_escaping(tmp_path):
    run = make_run(tmp_path)
    (run / "eval" / "zz_torn.json").write_text('{"eval": "fvd", "rows": [')
    html = build_report(run).read_text()
    for section in ('id="curves"', 'id="samples"', 'id="evals"', 'id="config"'):
        assert section in html
    assert "data:image/png;base64," in html  # the curve drawn from metrics.jsonl
    assert 'src="previews/step_000100.gif"' in html and 'src="previews/step_000200.gif"' in html
    assert "<td class=\"num\">31.25</td>" in html and "linear blend" in html
    assert "accuracy.colour" in html  # a JSON without columns/rows is shown as key/value
    assert "skipped 1 line" in html
    assert "zz_torn.json: not readable JSON" in html  # a bad eval file is reported, not fatal
    assert "(left to right)" in html and "sampler=dpmpp_2m" in html and "seed 4" in html
    # User text is escaped, never markup.
    assert EVIL_PROMPT not in html and "&lt;img src=x onerror=" in html and "&amp; &quot;friends&quot;" in html
    assert "&lt;b&gt;not bold&lt;/b&gt;" in html


def test_a_preview_or_eval_being_written_is_not_on_the_page(tmp_path):
    """`vidiff report` of a run while training writes a preview (or `eval --json` its file): the writer's hidden
    temporary matched previews/*.gif and eval/*.json, and the page showed it as a broken clip and a "not readable
    JSON" note (as it did a temporary a killed writer left, kept a day)."""
    from vidiff.output_safety import temporary_name

    run = make_run(tmp_path)
    gif, doc = run / "previews" / "step_000300.gif", run / "eval" / "fvd.json"
    (run / "previews" / temporary_name(gif)).write_bytes((run / "previews" / "step_000100.gif").read_bytes()[:40])
    (run / "eval" / temporary_name(doc)).write_text('{"eval": "fvd", "rows": [')
    html = build_report(run).read_text()
    assert "vidiff-tmp" not in html and "not readable JSON" not in html
    assert html.count('<figure class="clip">') == 2 and html.count('<div class="eval"') == 2


def test_a_page_without_matplotlib_says_so_and_a_runs_summary_names_what_is_there(tmp_path, monkeypatch):
    """matplotlib is an extra ('vidiff[plots]'): without it `vidiff report` ended in a ModuleNotFoundError traceback
    and wrote no page, and `vidiff train` said it had written loss.png."""
    import vidiff.commands.train as train_command
    import vidiff.eval.report as report

    run = make_run(tmp_path)
    monkeypatch.setattr(report, "find_spec", lambda name: None)
    html = build_report(run).read_text()
    assert "no curves: matplotlib is not installed (pip install &#x27;vidiff[plots]&#x27; draws them)" in html
    assert "data:image/png;base64," not in html and "last loss" in html  # the numbers are still there
    monkeypatch.setattr("importlib.util.find_spec", lambda name: None)
    assert train_command.run_summary(run) == ("metrics.jsonl, previews/, no loss.png: matplotlib is not installed, "
                                              "pip install 'vidiff[plots]' draws it")
    monkeypatch.undo()
    (run / "loss.png").write_bytes(b"png")
    assert train_command.run_summary(run) == "metrics.jsonl, loss.png, previews/"


def test_a_folder_that_is_not_a_run_is_refused(tmp_path, capsys):
    """An empty folder or a dataset folder got an empty report.html written into it."""
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "clip.mp4").write_bytes(b"x")
    assert main(["report", str(tmp_path / "data")]) == 2
    assert "not a training run folder (none of config.yaml, metrics.jsonl, previews, eval)" in capsys.readouterr().err
    assert sorted(p.name for p in (tmp_path / "data").iterdir()) == ["clip.mp4"]


def test_output_must_be_an_html_page(tmp_path, capsys):
    """`-o victim.mp4` replaced the clip with HTML (exit 0); a file of the run that is not an input went the same way."""
    run = make_run(tmp_path)
    victim, notes = tmp_path / "victim.mp4", run / "notes.txt"
    victim.write_bytes(b"a video")
    notes.write_text("my notes")
    for target in (victim, notes, tmp_path / "page"):
        assert main(["report", str(run), "-o", str(target)]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and f"-o {target}: the output suffix must be one of .html, .htm" in err
    assert victim.read_bytes() == b"a video" and notes.read_text() == "my notes"
    assert not (tmp_path / "page").exists()
    page = tmp_path / "page.HTM"
    page.write_text("an old report")
    assert main(["report", str(run), "-o", str(page)]) == 0  # re-writing a page stays allowed
    assert page.read_text().startswith("<!DOCTYPE html>")


def test_a_missing_run_folder_or_a_file_is_named_as_such(tmp_path, capsys):
    """Both were told "RUN_DIR: not a folder", the same as a folder that is not a run."""
    (tmp_path / "clip.mp4").write_bytes(b"x")
    assert main(["report", str(tmp_path / "nope")]) == 2
    assert f"RUN_DIR {tmp_path / 'nope'}: no such folder" in capsys.readouterr().err
    assert main(["report", str(tmp_path / "clip.mp4")]) == 2
    assert f"RUN_DIR {tmp_path / 'clip.mp4'}: is a file, not a folder" in capsys.readouterr().err


def test_links_are_relative_to_the_page_and_inline_works(tmp_path):
    run = make_run(tmp_path)
    imageio.imwrite(run / "loss.png", np.zeros((20, 40, 3), np.uint8))
    out = build_report(run, tmp_path / "pages" / "r.html")
    html = out.read_text()
    assert 'src="../run/loss.png"' in html and 'src="../run/previews/step_000200.gif"' in html
    inline = build_report(run, tmp_path / "inline.html", inline=True).read_text()
    assert 'src="previews/' not in inline and 'src="../run/' not in inline
    assert inline.count("data:image/gif;base64,") == 2
    assert main(["report", str(tmp_path / "missing")]) == 2


def _serve(folder: Path):
    handler = functools.partial(_QuietHandler, directory=str(folder))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
    thread.start()
    return server, thread


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def _chromium(url: str, profile: Path, *extra: str) -> str:
    command = [str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
               "--disable-background-networking", "--disable-component-update", "--disable-sync",
               f"--user-data-dir={profile}", *extra, url]
    return subprocess.run(command, capture_output=True, text=True, timeout=120).stdout


def _image_check(dom: str) -> dict:
    tag = re.search(r'<div id="image-check"[^>]*>', dom)
    assert tag, "the image check element is missing from the DOM"
    return dict(re.findall(r'data-([a-z-]+)="([^"]*)"', tag.group(0)))


@pytest.mark.skipif(not CHROMIUM.is_file(), reason="chromium not installed (tools/install_test_tools.sh)")
def test_report_opens_in_headless_chromium_with_every_image(tmp_path):
    run = make_run(tmp_path)
    build_report(run)
    build_report(run, run / "broken.html")  # a second page, shown after one clip is deleted
    server, thread = _serve(run)
    try:
        base = f"http://127.0.0.1:{server.server_address[1]}"
        dom = _chromium(f"{base}/report.html", tmp_path / "profile1", "--virtual-time-budget=5000", "--dump-dom")
        check = _image_check(dom)
        assert check["status"] == "done", check
        assert check["total"] == "3" and check["broken"] == "0", check  # curve + two clips
        for section in ('id="curves"', 'id="samples"', 'id="evals"'):
            assert section in dom
        assert "<title>vidiff run: run</title>" in dom  # the hostile prompt did not run
        assert "a blue square moving up" in dom and "31.25" in dom

        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        shot = ARTIFACTS / "report.png"
        shot.unlink(missing_ok=True)
        _chromium(f"{base}/report.html", tmp_path / "profile2", f"--screenshot={shot}", "--window-size=1200,1600",
                  "--virtual-time-budget=5000")
        assert shot.is_file() and shot.stat().st_size > 10_000

        # The check can fail: the same page with one clip gone reports it.
        (run / "previews" / "step_000200.gif").unlink()
        check = _image_check(_chromium(f"{base}/broken.html", tmp_path / "profile3", "--virtual-time-budget=5000",
                                       "--dump-dom"))
        assert check["broken"] == "1" and "step_000200.gif" in check["broken-src"], check
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
        shutil.rmtree(tmp_path / "profile1", ignore_errors=True)


def test_metrics_with_numbers_no_float_holds_are_skipped_lines_not_a_traceback(tmp_path):
    # A 400-digit integer loss was an OverflowError traceback from matplotlib (and from the table's float()), a
    # 5000-digit step a ValueError traceback from json (over Python's 4300-digit limit); NaN and 1e309 are floats.
    run = tmp_path / "run"
    run.mkdir()
    lines = ['{"step": 0, "loss": 0.5}', '{"step": 1, "loss": 1' + "0" * 400 + "}",
             '{"step": ' + "1" * 5000 + ', "loss": 0.3}', '{"step": 2, "lr": -1' + "0" * 400 + "}",
             '{"step": 3, "loss": NaN}', '{"step": 4, "loss": 1e309}', "[1, 2]", '"step"', '{"step": 5, "loss": 0.25}',
             "[" * 100_000 + "]" * 100_000]  # nested too deep for json: skipped as the others (it was refused whole)
    (run / "metrics.jsonl").write_text("\n".join(lines) + "\n")
    html = build_report(run).read_text()
    assert "skipped 6 line(s)" in html
    assert "<td class=\"num\">5</td>" in html  # the last step, 5, read after the bad lines
    assert "<td class=\"num\">0.2500</td>" in html  # the last loss


def test_the_wrote_line_escapes_control_characters_of_the_path(tmp_path, capsys):
    """A run folder named with a terminal escape sequence (clear the screen) was printed raw after `wrote`."""
    run = tmp_path / "run\x1b[2J\u202e"
    run.mkdir()
    (run / "metrics.jsonl").write_text('{"step": 0, "loss": 0.5}\n')
    assert main(["report", str(run)]) == 0
    out = capsys.readouterr().out
    assert "\x1b" not in out and "\u202e" not in out and "run\\x1b[2J\\u202e/report.html" in out
    assert (run / "report.html").is_file()
