"""The progress bar's clock runs while no replicate has finished (the first unit may be compiling)."""

import io
import sys
import time

from workbench.study import progress


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_the_bar_is_redrawn_while_nothing_advances(monkeypatch):
    terminal = Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    monkeypatch.setattr(progress, "TICK_SECONDS", 0.01)
    bar = progress.Progress("study", total=10, done=0, quiet=False)
    time.sleep(0.3)
    drawn = terminal.getvalue().count("\r")
    bar.advance(10)
    bar.close()
    assert drawn >= 5  # the first draw, then one a tick
    assert not bar._ticker.is_alive()
    assert "10/10" in terminal.getvalue()


def test_no_bar_no_clock_when_quiet_or_not_a_terminal(monkeypatch, capsys):
    quiet = progress.Progress("study", total=10, done=0, quiet=True)
    plain = progress.Progress("study", total=10, done=0, quiet=False)  # capsys: not a terminal
    for bar in (quiet, plain):
        assert bar.bar is None and not hasattr(bar, "_ticker")
        bar.advance(10)
        bar.close()
    assert "10/10 replicates" in capsys.readouterr().err
