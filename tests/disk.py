"""A small disk that fills up: a tmpfs mounted by the test (root only)."""
import contextlib
import os
import subprocess

import pytest


@contextlib.contextmanager
def small_disk(folder, size="3m", read_only=False):
    """Mount a tmpfs of `size` at `folder` (read-only with `read_only`: a disk where
    even root cannot write); skip the test, with the reason, where that is not possible
    (not root, no mount in this sandbox)."""
    if os.geteuid() != 0:
        pytest.skip("a full disk is simulated with a tmpfs, which only root can mount")
    os.makedirs(folder, exist_ok=True)
    opts = f"size={size}" + (",ro" if read_only else "")
    res = subprocess.run(["mount", "-t", "tmpfs", "-o", opts, "tmpfs", str(folder)],
                         capture_output=True, text=True)
    if res.returncode:
        pytest.skip(f"cannot mount a tmpfs here: {res.stderr.strip()}")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], capture_output=True)


def fill(disk, leave=0):
    """Fill the disk with a file named 'filler', leaving `leave` bytes free."""
    with open(os.path.join(disk, "filler"), "wb") as fh:
        try:
            while True:
                st = os.statvfs(disk)
                free = st.f_bavail * st.f_frsize - leave
                if free <= 0:
                    break
                fh.write(bytes(min(free, 1 << 20)))
                fh.flush()
        except OSError:
            pass
