"""Issue 13 items 1-2: usage errors are a usage line and one error line (exit 2, no
traceback), bare ``mis`` is the help (exit 0), and the help reads as words."""

from __future__ import annotations

import subprocess

import pytest

from mis_pipeline.cli import app, main

# (argv, expected exit status, text the error line must contain)
USAGE_CASES = [
    (["preprocess"], 2, "Missing argument 'INPUT'"),
    (["--bogus"], 2, "No such option: --bogus"),
    (["-v", "0"], 2, "No such option: -v"),
    (["preprocess", "imgs", "--out", "s.zarr", "-v", "0"], 2, "unexpected extra argument"),
    (["evaluate", "--workers", "0"], 2, "'--workers'"),
    (["evalute"], 2, "Did you mean 'evaluate'?"),
    (["config", "--bogus"], 2, "No such option: --bogus"),
]
IDS = ["no-input", "unknown-option", "top-level-v", "bad-value-extra-arg", "out-of-range", "typo",
       "sub-unknown-option"]


def _check_usage_error(rc: int, out: str, err: str, want_rc: int, text: str, argv: list[str]) -> None:
    assert rc == want_rc, (rc, out, err)
    assert "Traceback" not in out + err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert lines[0].startswith("Usage: mis"), err
    errors = [ln for ln in lines if ln.startswith("error:")]
    assert len(errors) == 1 and text in errors[0], err
    sub = argv[0] if argv and not argv[0].startswith("-") and argv[0] != "evalute" else None
    if sub:
        assert lines[0].startswith(f"Usage: mis {sub}"), lines[0]
    assert out == ""  # nothing on stdout: stdout is for results


@pytest.mark.parametrize(("argv", "want_rc", "text"), USAGE_CASES, ids=IDS)
def test_usage_error_in_process(argv, want_rc, text, capsys):
    rc = main(argv)
    cap = capsys.readouterr()
    _check_usage_error(rc, cap.out, cap.err, want_rc, text, argv)


@pytest.mark.slow
@pytest.mark.parametrize(("argv", "want_rc", "text"), USAGE_CASES, ids=IDS)
def test_usage_error_console_script(argv, want_rc, text, mis_script, cli_env, tmp_path):
    proc = subprocess.run([mis_script, *argv], capture_output=True, text=True, env=cli_env,
                          cwd=tmp_path, timeout=120)
    _check_usage_error(proc.returncode, proc.stdout, proc.stderr, want_rc, text, argv)


def test_bare_mis_prints_help_exit_0(capsys, mis_script, cli_env, tmp_path):
    rc = main([])
    cap = capsys.readouterr()
    assert rc == 0 and "Usage: mis" in cap.out and "preprocess" in cap.out
    assert "Traceback" not in cap.out + cap.err and "error" not in cap.err
    proc = subprocess.run([mis_script], capture_output=True, text=True, env=cli_env, cwd=tmp_path,
                          timeout=120)
    assert proc.returncode == 0 and "Usage: mis" in proc.stdout and "Commands" in proc.stdout
    assert "Traceback" not in proc.stdout + proc.stderr


def _help(argv: list[str], capsys) -> str:
    assert main([*argv, "--help"]) == 0
    return capsys.readouterr().out


def test_help_placeholders_are_words(capsys):
    top = _help([], capsys)
    assert "<bool>" not in top and "--version" in top
    pre = _help(["preprocess"], capsys)
    assert "Usage: mis preprocess [OPTIONS] INPUT" in pre
    assert "{input}" not in pre and "<str>" not in pre and "<list[str]>" not in pre
    assert "KEY=VALUE" in pre and "PRESET|FILE" in pre and "STORE" in pre
    ev = _help(["evaluate"], capsys)
    assert "Usage: mis evaluate [OPTIONS] [RESULTS]..." in ev and "<" not in ev.replace("<=", "")
    for name in ("config", "demo"):
        text = _help([name], capsys)
        assert "<" not in text.replace("<=", ""), f"mis {name} --help shows a type placeholder"


def test_no_subcommand_shows_bool_or_list_placeholders(capsys):
    import typer.main

    for name in sorted(typer.main.get_command(app).commands):
        text = _help([name], capsys)
        assert "<bool>" not in text and "<list[" not in text, f"mis {name} --help"
        usage = next(ln for ln in text.splitlines() if "Usage:" in ln)
        assert "{" not in usage, f"mis {name}: {usage.strip()}"


@pytest.mark.slow
def test_set_help_not_cut_at_80_columns(mis_script, cli_env, tmp_path):
    for name in ("preprocess", "evaluate", "config", "demo"):
        proc = subprocess.run([mis_script, name, "--help"], capture_output=True, text=True,
                              env=cli_env, cwd=tmp_path, timeout=120)
        assert proc.returncode == 0
        assert max(len(ln) for ln in proc.stdout.splitlines()) <= 80
        assert "…" not in proc.stdout, f"mis {name} --help cuts a word at 80 columns"
        words = " ".join(proc.stdout.replace("│", " ").split())
        assert "e.g. --set io.max_side=1024" in words and "Repeatable;" in words
