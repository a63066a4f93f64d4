"""One error hierarchy for the whole plugin.

Every error the engine, the model adapters or the classifiers raise derives from
:class:`RsdlError`. ``param`` names the Processing parameter the user should fix when
one is known, so algorithms can turn any of them into a clear
``QgsProcessingException`` without knowing where they came from.
"""


class RsdlError(Exception):
    """Root of all errors raised by rsdl_qgis."""

    def __init__(self, message, param=None):
        super().__init__(message)
        self.message = message
        self.param = param

    def __str__(self):
        if self.param:
            return f"{self.param}: {self.message}"
        return self.message


class GridError(RsdlError):
    """Inconsistent geometry: sizes, spacings, extents, fields of view."""


class ParameterError(RsdlError):
    """A parameter value outside what it may be: an unknown choice, a number out of its
    range, settings that contradict each other."""


def check_choice(value, choices, param, what="value"):
    """The one check of a choice parameter (strategy, sampler, classifier...): returns the
    value, or raises a ParameterError listing the choices."""
    if value not in choices:
        raise ParameterError(f"unknown {what} '{value}'; use one of {', '.join(choices)}", param)
    return value


class ModelError(RsdlError):
    """A model that cannot be loaded or does not have what was asked of it."""


class RsdlIOError(RsdlError, OSError):
    """A raster or vector that cannot be read or written."""


class DependencyError(RsdlError):
    """A Python dependency (TensorFlow, scikit-learn...) is missing."""


class CancelledError(RsdlError):
    """The user cancelled the run."""

    def __init__(self, message="Cancelled by the user", param=None):
        super().__init__(message, param)
