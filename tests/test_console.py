"""What the console shows while a job runs: its first line at once, progress from the driver's
counts, the start-up in the summary, a long decoder call's steps, and none of Ray's known noise."""

import os
import selectors
import subprocess
import sys
import time

from cotvtm.music.steps import StepLines
from cotvtm.pipelines.job import Outcome
from cotvtm.pipelines.runner import Summary
from cotvtm.pipelines.ticker import Ticker
from cotvtm.quiet import RAY_FALSE_ALARMS
from cotvtm.stage import Record

FIRST_LINE_S = 2.0  # a new user must see what the job is doing before they wonder whether it runs


class Clock:
    """A clock the test moves by hand."""

    def __init__(self):
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_the_first_line_comes_at_once_before_any_check(tmp_path, tiny_refs, model_cache):
    """Spawned as a user runs it, in a pipe: the first line within FIRST_LINE_S, then the
    missing input is refused as usual (one line, exit 2) without Ray."""
    proc = subprocess.Popen([sys.executable, "-m", "cotvtm.cli", "soundtrack", str(tmp_path / "nothing"),
                             str(tmp_path / "out"), "--cache-dir", str(model_cache)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"})
    began = time.monotonic()
    with selectors.DefaultSelector() as wait:
        wait.register(proc.stdout, selectors.EVENT_READ)
        ready = wait.select(timeout=FIRST_LINE_S)
    first, seconds = (proc.stdout.readline() if ready else ""), time.monotonic() - began
    out, err = proc.communicate(timeout=120)
    assert first.startswith("cotvtm soundtrack: checking the settings and models, then, if there is work, starting a local Ray"), \
        (first, seconds, out, err)
    assert proc.returncode == 2 and err.count("\n") == 1 and "Traceback" not in err, err


def test_the_progress_line_counts_what_the_driver_saw():
    clock, finished = Clock(), [0]
    ticker = Ticker(3, lambda: finished[0], print, clock=clock)
    ticker.pass_began(1)
    clock.now += 20
    assert ticker.line() == ("progress 20 s in: the stages are starting (their actors load the models), "
                             "0/3 outputs finished")
    ticker.saw(Record(), 1), ticker.saw(Record(), 1), ticker.saw(Record(error="unreadable"), 1)
    finished[0] = 1
    clock.now += 21
    assert ticker.line() == "progress 41 s in: 2 segments prepared, 1/3 outputs finished"


def test_start_up_is_ray_and_each_first_record_s_wait_beyond_its_own_work():
    clock = Clock()
    ticker = Ticker(2, lambda: 0, print, clock=clock)
    ticker.ray_started(4.0)
    ticker.pass_began(1)
    clock.now += 15
    ticker.saw(Record(seconds={"decode": 1.0, "embed": 2.0}), 1)  # waited 12 s for the actors
    clock.now += 30
    ticker.saw(Record(seconds={"decode": 30.0}), 1)  # later records are work, not start-up
    ticker.pass_began(2)
    ticker.pass_began(2)  # a later wave's pass 2 starts no new wait
    clock.now += 9
    ticker.saw(Outcome("a.mp4", "ok", seconds={"music": 2.0, "mux": 1.0}), 2)
    assert ticker.startup == 4.0 + 12.0 + 6.0


def test_the_ticker_says_its_line_periodically_in_a_pipe_and_not_under_a_terminal():
    lines = []
    with Ticker(1, lambda: 0, lines.append, every=0.05):
        time.sleep(0.3)
    assert len(lines) >= 2 and all(line.startswith("progress ") for line in lines)
    quiet = []
    with Ticker(1, lambda: 0, quiet.append, every=None):
        time.sleep(0.1)
    assert quiet == []


def test_the_summary_says_how_much_of_the_wall_time_was_start_up():
    summary = Summary(outcomes=[Outcome("a.mp4", "ok", duration=36.0)])
    summary.started = time.monotonic() - 27.0
    assert summary.throughput().startswith("0.010 h of media in 27 s (1.3x real time)")
    summary.startup = 18.0
    assert summary.throughput() == "0.010 h of media in 27 s, 18 s of it start-up (1.3x real time; 4.0x after start-up)"


def test_a_long_decoder_call_says_its_steps_at_most_every_few_seconds():
    clock, lines = Clock(), []
    said = StepLines("stable-audio-3: 4 windows together", 8, lines.append, every=5.0, clock=clock)
    for index in range(8):
        clock.now += 2.0
        said(index)
    assert lines == ["music    stable-audio-3: 4 windows together, step 3/8 (6 s)",
                     "music    stable-audio-3: 4 windows together, step 6/8 (12 s)"]


def test_only_ray_s_known_false_alarm_is_kept_from_standard_error(tmp_path):
    """Written at the file descriptor, as Ray's C++ core writes: the false alarm is dropped,
    every other line (a real core_worker error, Python's own) arrives, and in order."""
    alarm = RAY_FALSE_ALARMS[0].decode()
    script = ("import os, sys\nfrom cotvtm.quiet import quiet_native_stderr\nquiet_native_stderr()\n"
              f"os.write(2, b'[E core_worker.cc:2465] Actor X {alarm}. See ray#53727\\n')\n"
              "os.write(2, b'[E core_worker.cc:99] Failed to register actor\\n')\n"
              "print('cotvtm: error: a real one', file=sys.stderr)\n")
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert proc.stderr == "[E core_worker.cc:99] Failed to register actor\ncotvtm: error: a real one\n", proc.stderr


def test_a_progress_bar_s_unfinished_line_passes_the_filter_at_once(tmp_path):
    """A bar redraws its line without ending it: that part must reach the terminal while the
    process is still running, not when a newline comes."""
    script = ("import os, sys\nfrom cotvtm.quiet import quiet_native_stderr\nquiet_native_stderr()\n"
              "os.write(2, b'\\r 50%|#####     |')\nsys.stdin.read()\nos.write(2, b'\\r100%|##########|\\n')\n")
    proc = subprocess.Popen([sys.executable, "-c", script], stdin=subprocess.PIPE, stderr=subprocess.PIPE)
    with selectors.DefaultSelector() as wait:
        wait.register(proc.stderr, selectors.EVENT_READ)
        ready = wait.select(timeout=30)
        early = os.read(proc.stderr.fileno(), 1024) if ready else b""
    _, rest = proc.communicate(b"", timeout=60)
    assert early == b"\r 50%|#####     |" and rest == b"\r100%|##########|\n", (early, rest)
