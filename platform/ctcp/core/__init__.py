"""Infrastructure shared by every feature; imports no feature."""
