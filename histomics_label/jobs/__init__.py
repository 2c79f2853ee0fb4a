"""Girder jobs of the plugin: segment generation and training rounds, each run off the request thread and shown
in the job list; heavy engine work runs in the child processes of ``workers``."""
