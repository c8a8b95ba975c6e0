"""afcli: move the knowledge of 2D foundation models into 3D point clouds."""

__version__ = "0.1.0"
