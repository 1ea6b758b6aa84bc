"""The avatar pipeline: slots filled by pluggy plugins, run in order."""
