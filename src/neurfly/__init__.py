"""NeurFly: an AutoML platform for many teams sharing compute."""

__version__ = "0.1.0"
