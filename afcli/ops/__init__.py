"""Point-cloud ops with a compiled backend (torch-cluster / torch-scatter) and a pure-PyTorch one.

The API follows PyG's ops on batched ``(B, N, 3)`` tensors; ``afcli doctor`` prints which backend
each op uses, and ``AFCLI_OPS=torch|compiled`` forces one.
"""

from afcli.ops.backend import backend_of, report
from afcli.ops.points import ball_query, fps, gather_points, group, knn, three_nn_interpolate
from afcli.ops.scatter import scatter_max, scatter_mean, scatter_sum

__all__ = [
    "backend_of",
    "ball_query",
    "fps",
    "gather_points",
    "group",
    "knn",
    "report",
    "scatter_max",
    "scatter_mean",
    "scatter_sum",
    "three_nn_interpolate",
]
