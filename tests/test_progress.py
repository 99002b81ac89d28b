"""Progress for people and for logs: lines instead of bars where nobody watches (skimgclf._progress)."""

import io
from unittest import mock

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

import skimgclf._progress as progress


@settings(max_examples=80, deadline=None)
@given(st.lists(st.floats(0.0, 12.0), min_size=1, max_size=40), st.integers(0, 3))
def test_lines_for_logs_come_at_most_every_few_seconds_and_always_at_the_end(durations, initial):
    """An epoch of any length: a line at most every LINE_EVERY seconds, the first and the last always."""
    clock = iter(np.cumsum([0.0] + durations))
    stream = io.StringIO()
    total = initial + len(durations)
    with mock.patch.object(progress, "_clock", lambda: next(clock)):
        lines = progress.LineProgress(stream, total=total, initial=initial, desc="training", unit="epoch")
        times = np.cumsum(durations)
        for done in range(len(durations)):
            lines.set_postfix({"loss": f"{done:.4f}"})
            lines.update(1)
    written = stream.getvalue().splitlines()
    told = [int(line.split(" ")[2].split("/")[0]) for line in written]
    assert told[0] == initial + 1 and told[-1] == total and written[-1].endswith(" s") and "done in" in written[-1]
    assert all(f"/{total}, loss=" in line for line in written)
    at = [times[n - initial - 1] for n in told]
    assert all(b - a >= progress.LINE_EVERY for a, b in zip(at[:-2], at[1:-1])), (at, told)
    assert all("left" in line for line in written[:-1])
