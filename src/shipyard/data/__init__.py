"""Training data checks: profiles, declarative checks (pandera) and drift against live.

pandas, pandera and pyarrow are imported inside the functions that use them: importing this
package costs nothing at CLI start.
"""

from shipyard.data.drift import FeatureDrift, feature_drift
from shipyard.data.files import read_frame
from shipyard.data.profile import FileProfile, profile_frame
from shipyard.data.report import DataReport, LiveData, inspect_data

__all__ = [
    "DataReport",
    "FeatureDrift",
    "FileProfile",
    "LiveData",
    "feature_drift",
    "inspect_data",
    "profile_frame",
    "read_frame",
]
