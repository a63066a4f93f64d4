"""Enable a Python plugin in a QGIS profile, as the Plugin Manager would."""
import os
import sys

from qgis.PyQt.QtCore import QSettings

profile, plugin = sys.argv[1], sys.argv[2]
ini = os.path.join(profile, "QGIS", "QGIS3.ini")
os.makedirs(os.path.dirname(ini), exist_ok=True)
settings = QSettings(ini, QSettings.Format.IniFormat)
settings.setValue(f"PythonPlugins/{plugin}", True)
settings.sync()
