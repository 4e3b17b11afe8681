"""The command line as a user meets it: short errors, no stack traces, help that tells the truth."""

from __future__ import annotations

import pytest

from playerpulse.cli import main


def test_an_unknown_env_names_the_missing_file_and_the_known_ones(capsys):
    assert main(["pipeline", "all", "--env", "nope"]) == 1
    err = " ".join(capsys.readouterr().err.split())  # the console wraps long lines
    assert "nope.yaml does not exist" in err and "local" in err
    assert "Traceback" not in err


def test_a_bad_option_value_is_a_usage_error_not_a_crash(capsys):
    assert main(["demo", "--players", "3"]) == 2
    captured = capsys.readouterr()
    assert "--players" in captured.err + captured.out
    assert "Traceback" not in captured.err


def test_an_unknown_job_lists_the_known_ones(capsys, tmp_path):
    assert main(["pipeline", "nosuch", "--workdir", str(tmp_path)]) == 1
    assert "bronze, silver, gold, maintain, monitoring, all" in " ".join(capsys.readouterr().err.split())


@pytest.mark.parametrize("command", ["demo", "serve", "simulate", "pipeline", "train", "promote", "models list"])
def test_every_command_takes_env_and_workdir(command, capsys):
    assert main([*command.split(), "--help"]) == 0
    out = capsys.readouterr().out
    assert "--env" in out and "--workdir" in out
