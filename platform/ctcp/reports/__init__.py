"""Visit reports: versions, thematic sections and their recommendations."""
