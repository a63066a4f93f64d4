"""Dialog widgets of the algorithms' parameters (QGIS desktop only; imported by QGIS when
it builds a dialog, from the parameter's 'widget_wrapper' metadata)."""
from processing.gui.wrappers import WidgetWrapper
from qgis.PyQt.QtWidgets import QComboBox

FROM_MODEL = "From the model's metadata (rsdl models), else patch-based"


class ServingModeWrapper(WidgetWrapper):
    """FULLY_CONV as three choices. A checkbox always gives true or false, so the dialog
    could never leave the mode to the model's metadata as qgis_process and Python do."""

    CHOICES = ((FROM_MODEL, None), ("Patch-based", False), ("Fully convolutional", True))

    def createWidget(self):  # noqa: N802 (QGIS's name)
        combo = QComboBox()
        for label, value in self.CHOICES:
            combo.addItem(label, value)
        combo.setToolTip("FULLY_CONV: how the model is applied; fully convolutional is "
                         "faster and gives the same values when the model allows it")
        return combo

    def setValue(self, value):  # noqa: N802
        if isinstance(value, str):
            value = {"true": True, "false": False}.get(value.strip().lower())
        for i in range(self.widget.count()):
            if self.widget.itemData(i) == value and \
                    (value is None) == (self.widget.itemData(i) is None):
                self.widget.setCurrentIndex(i)
                return
        self.widget.setCurrentIndex(0)

    def value(self):
        return self.widget.currentData()

