"""A command's outputs move into place together (spacon.io._staged)."""

import os
import signal
import threading
import time

import pytest

from spacon.io._staged import interrupts_held, staged_outputs, stale_staging


def test_ctrl_c_is_held_back_while_other_threads_run():
    """pthread_sigmask held SIGINT in the calling thread only: another thread (BLAS, torch)
    took it and Python raised KeyboardInterrupt in the middle of the renames."""
    if threading.current_thread() is not threading.main_thread():
        pytest.skip("signal handlers are set from the main thread only")
    # Python's own Ctrl-C handler, as a command has it (a test worker may ignore SIGINT)
    before = signal.signal(signal.SIGINT, signal.default_int_handler)
    stop = threading.Event()
    busy = threading.Thread(target=lambda: stop.wait(10), daemon=True)
    busy.start()
    reached = []
    try:
        with pytest.raises(KeyboardInterrupt):
            with interrupts_held():
                os.kill(os.getpid(), signal.SIGINT)
                time.sleep(0.2)  # the signal is handled (noted) by now
                reached.append("end of the held block")
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    finally:
        stop.set()
        signal.signal(signal.SIGINT, before)
    assert reached == ["end of the held block"]


def test_files_move_together_and_a_model_keeps_no_files_of_the_one_before(tmp_path):
    out = tmp_path / "out"
    (out / "model").mkdir(parents=True)
    (out / "model" / "connectivity_map.npz").write_text("old map")
    (out / "model" / "NOTES.txt").write_text("mine")
    (out / "figures").mkdir()
    (out / "figures" / "loss.png").write_text("kept")
    (out / "result.h5ad").write_text("old")
    done = []
    with staged_outputs(out) as stage:
        (stage.path / "model").mkdir()
        (stage.path / "model" / "model.pt").write_text("new")
        (stage.path / "figures").mkdir()
        (stage.path / "figures" / "domains.png").write_text("new")
        (stage.path / "result.h5ad").write_text("new")
        stage.then(lambda: done.append(sorted(p.name for p in out.iterdir()
                                              if not p.name.startswith("."))))
        assert (out / "result.h5ad").read_text() == "old"  # nothing moved before the end
    assert done == [["figures", "model", "result.h5ad"]]  # then: after the moves
    assert (out / "result.h5ad").read_text() == "new"
    assert sorted(p.name for p in (out / "model").iterdir()) == ["NOTES.txt", "model.pt"]
    assert sorted(p.name for p in (out / "figures").iterdir()) == ["domains.png", "loss.png"]


def test_a_failure_before_the_end_leaves_the_folder_as_it_was(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "result.h5ad").write_text("old")
    with pytest.raises(RuntimeError):
        with staged_outputs(out) as stage:
            (stage.path / "result.h5ad").write_text("new")
            raise RuntimeError("the report failed")
    assert [p.name for p in out.iterdir()] == ["result.h5ad"]
    assert (out / "result.h5ad").read_text() == "old"
    assert stale_staging(out) == []


def test_an_ignored_ctrl_c_stays_ignored():
    """A command run in the background (SIGINT ignored) is not stopped by the hold."""
    if threading.current_thread() is not threading.main_thread():
        pytest.skip("signal handlers are set from the main thread only")
    before = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        with interrupts_held():
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(0.2)
        assert signal.getsignal(signal.SIGINT) == signal.SIG_IGN
    finally:
        signal.signal(signal.SIGINT, before)
