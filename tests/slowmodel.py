"""A model that takes its time, so that tests can kill, cancel or lose a worker in the
middle of a run. Its values are the wrapped model's: only the clock changes."""
import time

from rsdl_qgis.models import load_model


class Slow:
    def __init__(self, inner, delay):
        self.inner, self.delay = inner, delay

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def run(self, feeds, names):
        time.sleep(self.delay)
        return self.inner.run(feeds, names)


def build(path, delay=0.1):
    """The recipe builder of the tests' Dask workers: {"builder": build}."""
    return Slow(load_model(path, trusted=True), delay)
