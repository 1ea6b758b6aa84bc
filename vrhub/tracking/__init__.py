"""Face tracking: landmarks -> 52 ARKit weights + head pose (solver), camera/video -> room (tracker)."""

from vrhub.tracking.solver import (
    FaceSolver,
    HeadPose,
    SolverBasis,
    SolverMatrices,
    TrackingResult,
    build_solver_matrices,
    default_solver_matrices,
    solver_matrices_json,
)

__all__ = [
    "FaceSolver",
    "HeadPose",
    "SolverBasis",
    "SolverMatrices",
    "TrackingResult",
    "build_solver_matrices",
    "default_solver_matrices",
    "solver_matrices_json",
]
