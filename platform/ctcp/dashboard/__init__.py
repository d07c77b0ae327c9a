"""The dashboard: a portal page composed of the features' own reads (a feature above them all)."""
