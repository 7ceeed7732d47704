"""Labelling: attribution of actions to impressions, labels and point-in-time training samples."""
