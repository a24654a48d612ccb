"""The stage gate that makes a suspect page run alone, with real threads (no Ray needed)."""

from __future__ import annotations

import threading
import time

from pipeline.run.quarantine import CrashCounter, StageGate


class _Trace:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.inside: list[str] = []
        self.events: list[tuple[str, tuple[str, ...]]] = []  # (event, pages inside a stage then)

    def note(self, event: str) -> None:
        with self.lock:
            self.events.append((event, tuple(self.inside)))


def _page(gate: StageGate, trace: _Trace, key: str, seconds: float) -> None:
    with gate.stage(key):
        with trace.lock:
            trace.inside.append(key)
        trace.note(f"{key} in")
        time.sleep(seconds)
        with trace.lock:
            trace.inside.remove(key)


def _suspect(gate: StageGate, trace: _Trace) -> None:
    with gate.alone("s"):
        for stage in ("read", "infer"):  # its own stages pass the gate while it is alone
            with gate.stage("s"):
                trace.note(f"s {stage}")
                time.sleep(0.1)
        trace.note("s done")


def test_pages_share_stages_but_a_suspect_is_alone() -> None:
    gate, trace = StageGate(), _Trace()
    threads = [threading.Thread(target=_page, args=(gate, trace, f"p{i}", 0.3)) for i in range(2)]
    for t in threads:
        t.start()
    time.sleep(0.1)
    threads.append(threading.Thread(target=_suspect, args=(gate, trace)))
    threads[-1].start()
    time.sleep(0.1)
    threads.append(threading.Thread(target=_page, args=(gate, trace, "late", 0.05)))
    threads[-1].start()  # arrives while the suspect waits for p0 and p1: held back until it is done
    for t in threads:
        t.join(timeout=10)
        assert not t.is_alive(), "the gate deadlocked"
    order = [e for e, _ in trace.events]
    assert any(len(inside) == 2 for _, inside in trace.events[:2]), "normal pages did not share the stages"
    assert dict(trace.events)["s read"] == dict(trace.events)["s infer"] == (), "a page was beside the suspect"
    assert order.index("s done") < order.index("late in"), "a new page overtook the waiting suspect"


def test_crash_counter_counts_stages_never_left() -> None:
    counter = CrashCounter()
    counter.enter("a")
    counter.leave("a")
    counter.enter("a")  # the worker died inside this one
    counter.enter("b")
    counter.leave("b")
    assert (counter.crashes("a"), counter.crashes("b"), counter.crashes("c")) == (1, 0, 0)
