"""Dialog widgets of the algorithms' parameters (QGIS desktop only; imported by QGIS when
it builds a dialog, from the parameter's 'widget_wrapper' metadata)."""
import os
import re

from processing.gui.FileSelectionPanel import FileSelectionPanel
from processing.gui.wrappers import DIALOG_BATCH, DIALOG_STANDARD, WidgetWrapper
from qgis.core import (
    NULL,
    QgsProcessingOutputFile,
    QgsProcessingOutputFolder,
    QgsProcessingOutputString,
    QgsProcessingParameterDefinition,
    QgsProcessingParameterFile,
)
from qgis.PyQt.QtWidgets import QComboBox, QFileDialog, QMenu, QToolButton

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



class EdgesWrapper(ServingModeWrapper):
    """PAD as three choices: automatic (the model decides), OTBTF's extent, whole image."""

    CHOICES = (("Automatic: the whole image for tile models, else OTBTF's", None),
               ("OTBTF's extent: only where whole patches fit", False),
               ("The whole image (edges mirrored)", True))

    def createWidget(self):  # noqa: N802 (QGIS's name)
        combo = super().createWidget()
        combo.setToolTip("PAD: the map's extent. Tile models (a U-Net, a Deepness model) "
                         "map the whole image; OTBTF's extent loses half a receptive "
                         "field at each edge")
        return combo


class ModelPanel(FileSelectionPanel):
    """A path and a '…' button that offers a model folder or a model file, of the kinds
    the parameter's file filter names."""

    def __init__(self, file_filter):
        super().__init__(False)
        self.file_filter = file_filter
        found = re.search(r"\((.*?)\)", file_filter)
        kinds = found.group(1).replace("*", "").split() if found else []
        self.btnSelect.clicked.disconnect()
        menu = QMenu(self.btnSelect)
        menu.addAction("Model folder (SavedModel)…", lambda: self.choose(True))
        menu.addAction(f"Model file ({', '.join(kinds)})…", lambda: self.choose(False))
        self.btnSelect.setMenu(menu)
        self.btnSelect.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        self.leText.setPlaceholderText("a SavedModel folder, or a .keras or .onnx file")

    def choose(self, folder):
        text = self.leText.text()
        start = text if os.path.isdir(text) else os.path.dirname(text)
        if folder:
            path = QFileDialog.getExistingDirectory(self, "Model folder", start)
        else:
            path = QFileDialog.getOpenFileName(self, "Model file", start, self.file_filter)[0]
        if path:
            self.leText.setText(path)


class ModelPathWrapper(WidgetWrapper):
    """MODEL parameters: a SavedModel is a folder, which QGIS's file widget cannot pick.
    In the modeler: a combo of the model's inputs and the outputs of earlier steps (a
    trained model's folder included), or a typed path."""

    def createWidget(self):  # noqa: N802
        if self.dialogType in (DIALOG_STANDARD, DIALOG_BATCH):
            return ModelPanel(self.parameterDefinition().fileFilter())
        self.combo = QComboBox()
        self.combo.setEditable(True)
        for value in self.dialog.getAvailableValuesOfType(
                QgsProcessingParameterFile,
                (QgsProcessingOutputFolder, QgsProcessingOutputFile, QgsProcessingOutputString)):
            self.combo.addItem(self.dialog.resolveValueDescription(value), value)
        if self.parameterDefinition().flags() & QgsProcessingParameterDefinition.FlagOptional:
            self.combo.setEditText("")
        return self.combo

    def setValue(self, value):  # noqa: N802
        if value is None or value == NULL:
            return
        if self.dialogType in (DIALOG_STANDARD, DIALOG_BATCH):
            self.widget.setText(value)
        else:
            self.setComboValue(value, combobox=self.combo)

    def value(self):
        if self.dialogType in (DIALOG_STANDARD, DIALOG_BATCH):
            return self.widget.getValue()
        return self.comboValue(combobox=self.combo)
