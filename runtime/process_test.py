"""sigterm_raises: SIGTERM is Terminated however the library code it lands in wraps it."""

import os
import signal
import sys

import pytest

from runtime.process import Terminated, raise_if_terminated, sigterm_raises


def _library_call_that_rewraps():
    """What Ray's Cython wait did: the handler's exception comes out as a different error."""
    try:
        os.kill(os.getpid(), signal.SIGTERM)
        for _ in range(1000):  # the handler runs between bytecodes
            pass
    except Terminated as e:
        raise SystemError("<cyfunction CoreWorker.wait> returned a result with an exception set") from e
    raise AssertionError("SIGTERM did not reach the handler")


def test_an_error_a_library_makes_of_the_sigterm_is_terminated():
    with pytest.raises(Terminated) as info:
        with sigterm_raises():
            _library_call_that_rewraps()
    assert isinstance(info.value.__cause__, SystemError)


def test_an_error_without_a_sigterm_stays_what_it_is():
    with pytest.raises(ValueError):
        with sigterm_raises():
            raise ValueError("a bug, not a signal")


def test_a_swallowed_sigterm_is_raised_again_and_the_handler_is_put_back():
    before = signal.getsignal(signal.SIGTERM)
    with pytest.raises(Terminated):
        with sigterm_raises():
            try:
                os.kill(os.getpid(), signal.SIGTERM)
                for _ in range(1000):
                    pass
            except Terminated:
                pass  # swallowed, as Ray's deserialization of a task result did
            raise_if_terminated()
    assert signal.getsignal(signal.SIGTERM) is before
    raise_if_terminated()  # the flag went with the block: nothing raised after it


if __name__ == "__main__":
    sys.exit(pytest.main([__file__, "-q", "-p", "no:cacheprovider"]))
