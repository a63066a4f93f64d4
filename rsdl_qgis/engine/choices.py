"""The choices the algorithms offer, in a module that imports nothing: loading the
plugin (QGIS start-up, the Processing toolbox) reads them without importing numpy, GDAL
or the engine."""

#: sample selection strategies (OTB's SampleSelection) and samplers
STRATEGIES = ("all", "constant", "smallest", "percent", "total", "byclass")
SAMPLERS = ("periodic", "random")
#: data types of a served output; automatic: the smallest integer type that holds the
#: classes for a class map of a model that names its classes, else float32
OUTPUT_TYPES = ("automatic", "float32", "uint8", "uint16", "int16", "int32")
#: windows (pixels) of the neighbourhood statistics of raw-pixel features
NEIGHBOURHOOD = (3, 7, 15)
#: learning-rate schedules of rsdl:trainmodel, the default first
SCHEDULES = ("cosine", "constant")
#: how rsdl:trainmodel spreads a training: one process; every GPU of this machine
#: (MirroredStrategy); the workers of a Dask cluster (MultiWorkerMirroredStrategy)
DISTRIBUTIONS = ("none", "gpus", "workers")
#: the largest patch side (a receptive field, a model's fixed input) and the largest batch
#: rsdl feeds a model: what fits in a machine's memory
MAX_PATCH = 4096
MAX_BATCH = 4096
