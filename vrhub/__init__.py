"""vrhub: one photo in, a rigged 3D head avatar out; live facial animation relayed to classrooms."""

from vrhub.pipeline.hookspecs import hookimpl

__version__ = "0.1.0"
__all__ = ["hookimpl", "__version__"]
