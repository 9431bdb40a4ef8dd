"""tools/install_test_tools.sh (make test-tools): installs what it can and exits 0 in every case it promises, run
against stand-in apt-get, sudo and id on PATH and stand-in paths for what it looks for."""
import os
import stat
import subprocess
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "tools" / "install_test_tools.sh"
BASH = "/bin/bash"
pytestmark = pytest.mark.skipif(not os.access(BASH, os.X_OK), reason="no /bin/bash")


def _stub(folder: Path, name: str, body: str) -> None:
    path = folder / name
    path.write_text("#!/bin/bash\n" + body)
    path.chmod(path.stat().st_mode | stat.S_IXUSR)


def _setup(tmp_path: Path, uid: int, sudo: bool, apt_works: bool = True) -> tuple[Path, Path, dict]:
    """(the script with its looked-for paths under tmp_path, the apt-get log, the environment to run it in)."""
    bin_, have = tmp_path / "bin", tmp_path / "have"
    bin_.mkdir()
    have.mkdir()
    log = tmp_path / "apt.log"
    text = SCRIPT.read_text().replace("/usr/bin/chromium", str(have / "chromium"))
    text = text.replace("/usr/share/wordnet/data.noun", str(have / "data.noun"))
    script = tmp_path / "install.sh"
    script.write_text(text)
    for tool in ("env", "touch", "chmod", "true"):  # the only other commands the script and the stand-ins run
        (bin_ / tool).symlink_to(next(Path(d) / tool for d in ("/usr/bin", "/bin") if (Path(d) / tool).exists()))
    _stub(bin_, "id", f'echo {uid}\n')
    # apt-get says what reached it; an install makes what the script looks for
    _stub(bin_, "apt-get", f'echo "$1 frontend=${{DEBIAN_FRONTEND:-unset}}" >> {log}\n'
                           + ("" if apt_works else '[ "$1" = install ] && exit 100\n')
                           + f'case "$*" in *chromium*) touch {have}/chromium; chmod +x {have}/chromium;; '
                             f'*wordnet-base*) touch {have}/data.noun;; esac\n')
    if sudo:  # as sudo's default env_reset: the caller's environment does not reach the command
        _stub(bin_, "sudo", f'[ "$1" = -n ] && shift\nexec env -i PATH={bin_} "$@"\n')
    return script, log, {"PATH": str(bin_), "HOME": str(tmp_path)}


def _run(script: Path, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run([BASH, str(script)], env=env, capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("uid, sudo", [(0, False), (1000, True)])
def test_installs_what_is_missing_non_interactively_then_does_nothing(tmp_path, uid, sudo):
    """Through sudo the exported DEBIAN_FRONTEND never reached apt-get (env_reset): a question asked with the output
    in /dev/null would have waited for ever."""
    script, log, env = _setup(tmp_path, uid, sudo)
    first = _run(script, env)
    assert first.returncode == 0
    assert first.stdout.splitlines() == ["install_test_tools: installed chromium",
                                         "install_test_tools: installed wordnet-base"]
    assert log.read_text().splitlines() == ["install frontend=noninteractive"] * 2
    again = _run(script, env)  # idempotent: both there, nothing asked of apt-get
    assert (again.returncode, again.stdout) == (0, "")
    assert len(log.read_text().splitlines()) == 2


def test_exits_0_saying_why_where_it_cannot_install(tmp_path):
    script, log, env = _setup(tmp_path, 1000, sudo=False)
    result = _run(script, env)
    assert result.returncode == 0 and "need root (or passwordless sudo)" in result.stdout
    assert not log.exists()
    (tmp_path / "bin" / "apt-get").unlink()  # PATH is the stand-ins' folder alone
    result = _run(script, env)
    assert result.returncode == 0 and "no apt-get" in result.stdout


def test_a_failing_apt_get_still_exits_0(tmp_path):
    script, log, env = _setup(tmp_path, 0, sudo=False, apt_works=False)
    result = _run(script, env)
    assert result.returncode == 0
    assert "apt-get could not install chromium" in result.stdout and "could not install wordnet-base" in result.stdout
    # each package: an install, then an update and another install
    assert [line.split()[0] for line in log.read_text().splitlines()] == ["install", "update", "install"] * 2
