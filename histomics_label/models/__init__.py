"""The plugin's Girder models."""
