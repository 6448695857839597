"""Deployment: inference on photos of any size (shared by misseg.predict and misseg.export)."""
