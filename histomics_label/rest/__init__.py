"""The plugin's REST resources."""
