"""A Progress that keeps the log lines, for tests that read what the user is told."""
from rsdl_qgis.engine.progress import Progress


class Log(Progress):
    def __init__(self):
        self.lines = []

    def info(self, message):
        self.lines.append(message)

    def text(self):
        return "\n".join(self.lines)
