"""The choices the algorithms offer, in a module that imports nothing: loading the
plugin (QGIS start-up, the Processing toolbox) reads them without importing numpy, GDAL
or the engine."""

#: sample selection strategies (OTB's SampleSelection) and samplers
STRATEGIES = ("all", "constant", "smallest", "percent", "total", "byclass")
SAMPLERS = ("periodic", "random")
#: data types of a served output
OUTPUT_TYPES = ("float32", "uint8", "uint16", "int16", "int32")
