"""Exchange with other tools: LeRobotDataset v3.0 (``lerobot``) and robomimic HDF5 (``robomimic``).

Both directions need the optional ``interop`` extra (pyarrow, PyAV, h5py); the Zarr layout stays
protege's native format.
"""

from protege.datasets.interop.common import FORMATS, export_dataset, import_dataset

__all__ = ["FORMATS", "export_dataset", "import_dataset"]
