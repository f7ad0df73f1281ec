"""Imports every module that adds commands to the ``neurfly`` app."""
