"""Progress of long CLI work on stderr: a tqdm bar on a terminal, plain lines otherwise.

On a terminal the bar is redrawn in place and one-line messages (a failed step, a phase)
are printed above it with ``tqdm.write``, so the two never garble. When stderr is not a
terminal (a pipe, a file, CI) or tqdm is disabled (``TQDM_DISABLE=1``), each step is one
plain line instead, e.g. ``  [3/14] pulled 1234567890 2026-12-04 (all feeds): ok``.
"""

from __future__ import annotations

import sys
import time
from typing import Self, TextIO

from tqdm import tqdm


def is_terminal(stream: TextIO) -> bool:
    """Whether ``stream`` is an interactive terminal."""
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # no isatty, or a closed stream
        return False


class Progress:
    """``total`` steps (``None``: unknown) of one piece of work, shown on ``stream``.

    ``advance``/``update_to`` move it; their ``line`` is what a plain stream gets (at most
    one line per ``min_interval`` seconds, the last step always), their ``postfix`` what the
    bar shows after the counts. ``plain=True`` forces plain lines (e.g. with ``-v``, when other
    output would break the bar).
    """

    def __init__(
        self,
        total: int | None,
        desc: str,
        *,
        unit: str = "it",
        stream: TextIO | None = None,
        plain: bool | None = None,
        min_interval: float = 0.0,
    ):
        self.stream = stream if stream is not None else sys.stderr
        self.total = total
        self.n = 0
        self.min_interval = min_interval
        self._last_line = float("-inf")
        self._pending: str | None = None
        self.bar: tqdm | None = None
        if total != 0 and not (plain if plain is not None else not is_terminal(self.stream)):
            bar = tqdm(total=total, desc=desc, unit=unit, file=self.stream, dynamic_ncols=True, leave=True)
            if bar.disable:  # TQDM_DISABLE or similar: fall back to plain lines
                bar.close()
            else:
                self.bar = bar

    @property
    def plain(self) -> bool:
        """Whether this progress prints plain lines (no bar)."""
        return self.bar is None

    def advance(self, n: int = 1, *, line: str | None = None, postfix: str | None = None) -> None:
        """``n`` more steps done."""
        self.update_to(self.n + n, line=line, postfix=postfix)

    def update_to(
        self, n: int, *, total: int | None = None, line: str | None = None, postfix: str | None = None
    ) -> None:
        """``n`` steps done (of ``total``, when it changed)."""
        if total is not None:
            self.total = total
        self.n = n
        if self.bar is not None:
            if total is not None and self.bar.total != total:
                self.bar.total = total
            if postfix is not None:
                self.bar.set_postfix_str(postfix, refresh=False)
            self.bar.update(n - self.bar.n)
            return
        if line is None:
            return
        now = time.monotonic()
        last = self.total is not None and n >= self.total
        if last or now - self._last_line >= self.min_interval:
            self._emit(line)
            self._last_line, self._pending = now, None
        else:
            self._pending = line

    def write(self, message: str) -> None:
        """One message line, above the bar when there is one."""
        if self.bar is not None:
            tqdm.write(message, file=self.stream)
        else:
            self._emit(message)

    def close(self) -> None:
        """Finish: leave the bar's last state on screen, or print the last throttled line."""
        if self.bar is not None:
            self.bar.close()
        elif self._pending is not None:
            self._emit(self._pending)
            self._pending = None

    def _emit(self, text: str) -> None:
        self.stream.write(text + "\n")
        self.stream.flush()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
